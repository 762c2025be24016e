"""Active references (6.19): what listns(2) and namespace handles see.

A namespace is active while tasks use it or namespace files (open fds, bind
mounts) hold it, and an active namespace keeps its owning user namespaces
active up the chain (kernel/nscommon.c __ns_ref_active_get/put). listns()
lists only active namespaces, and nsfs_fh_to_dentry() decodes a handle only
for one (ns_get_unless_inactive()); do_handle_to_path() turns the refusal
into ESTALE. Both views are checked together, so a test sees if they
disagree. Root only: other processes' namespaces are visible only to
CAP_SYS_ADMIN in the initial user and pid namespaces.
"""
import errno
import os
import time

from helpers.errors import errno_of
from helpers.ns import listns_all, open_ns_by_id


def opens(ns_id):
    """0 if open_by_handle_at(FD_NSFS_ROOT, {ns_id}) succeeds, else its errno."""
    return errno_of(lambda: os.close(open_ns_by_id(ns_id)))


def views(*ids):
    """{id: (listed by listns(), open_by_handle_at() errno or 0)}."""
    listed = set(listns_all())
    return {i: (i in listed, opens(i)) for i in ids}


def _show(seen):
    return ", ".join(f"{i}: {'listed' if listed else 'not listed'}, "
                     f"{'opens' if err == 0 else errno.errorcode.get(err, err)}"
                     for i, (listed, err) in seen.items())


def assert_active(*ids):
    seen = views(*ids)
    assert seen == {i: (True, 0) for i in ids}, f"expected active: {_show(seen)}"


def assert_inactive(*ids):
    seen = views(*ids)
    assert seen == {i: (False, errno.ESTALE) for i in ids}, f"expected inactive: {_show(seen)}"


def assert_inactive_within(seconds, *ids):
    """For a reference the kernel drops after the event the test can wait
    for: inactive within `seconds` (a leak still fails)."""
    deadline = time.monotonic() + seconds
    while views(*ids) != {i: (False, errno.ESTALE) for i in ids} and time.monotonic() < deadline:
        time.sleep(0.05)
    assert_inactive(*ids)
