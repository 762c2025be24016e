"""Twins of tools/testing/selftests/filesystems/statmount/statmount_test_ns.c
(fs/namespace.c do_statmount, grab_requested_root): STATMOUNT_MNT_NS_ID, and listmount/statmount
of another mount namespace by its id.

Differences from upstream, on purpose:
- "test statmount ns id" has two twins: by mount id, and by fd
  (STATMOUNT_BY_FD, 7.0, `requires` marker), so the by-id half still runs on
  kernels without BY_FD instead of the whole case erroring out.
- The by-fd half binds a scratch directory under /tmp, not a new directory in
  the real "/": upstream needs root for that (ERROR, i.e. FAIL, otherwise),
  and the location is irrelevant to what is checked.
- After the detach, upstream only checks that the mask is not exactly
  MNT_NS_ID; here MNT_NS_ID must be absent (the kernel drops it for a mount
  that is in no namespace).
- "test listmount ns id" asserts the kernel's real rule for a foreign
  listing instead of "same count as the child's own listing" (see its test).
"""
import os

import pytest

from harness.upstream import upstream
from helpers import sys as k
from helpers import uapi
from helpers.cleanup import scratch_dir_here
from helpers.mounts import listmount, mnt_id_req, statmount, statmount_raw
from helpers.ns import ns_id, open_ns, own_mntns_id, setup_userns
from helpers.proc import in_child, reporting_child

FILE = "filesystems/statmount/statmount_test_ns.c"
SM_SIZE = uapi.STATMOUNT_FIXED_SIZE

pytestmark = [pytest.mark.userns, pytest.mark.requires("statmount", "ns_get_mntns_id")]


def statmount_fixed(req, flags=0):
    """statmount into exactly a struct statmount (512 bytes), as upstream does."""
    _, buf = statmount_raw(req, SM_SIZE, flags)
    return k.ffi.cast("struct statmount *", buf)


@upstream(FILE, "test statmount ns id")
def test_statmount_mnt_ns_id_of_own_root():
    def child():
        setup_userns()
        sm = statmount_fixed(mnt_id_req(k.mnt_id_unique("/"), uapi.STATMOUNT_MNT_NS_ID))
        assert sm.size == SM_SIZE
        assert sm.mask == uapi.STATMOUNT_MNT_NS_ID
        assert sm.mnt_ns_id == own_mntns_id()
    in_child(child)


@upstream(FILE, "test statmount ns id")
@pytest.mark.requires("statmount_by_fd")
def test_statmount_by_fd_mnt_ns_id_until_detached():
    def child():
        setup_userns()
        mntns_id = own_mntns_id()
        with scratch_dir_here("statmount.fd.") as mnt:
            k.mount(mnt, mnt, None, uapi.MS_BIND)
            fd = os.open(mnt, os.O_PATH)
            sm = statmount_fixed(mnt_id_req(mnt_fd=fd, param=uapi.STATMOUNT_MNT_NS_ID),
                                 uapi.STATMOUNT_BY_FD)
            assert sm.size == SM_SIZE
            assert sm.mask == uapi.STATMOUNT_MNT_NS_ID
            assert sm.mnt_ns_id == mntns_id
            k.umount2(mnt, uapi.MNT_DETACH)
            sm = statmount_fixed(mnt_id_req(mnt_fd=fd, param=uapi.STATMOUNT_MNT_NS_ID),
                                 uapi.STATMOUNT_BY_FD)
            assert sm.size == SM_SIZE
            assert not sm.mask & uapi.STATMOUNT_MNT_NS_ID, "a detached mount is in no namespace"
    in_child(child)


def parent_of(mnt_id):
    return statmount(mnt_id, uapi.STATMOUNT_MNT_BASIC).mnt_parent_id


def own_and_foreign_view():
    """In a new user+mount namespace: the own listing (rooted at "/"), and the
    mounts a foreign listing of this namespace must show (see the test)."""
    setup_userns()
    own = listmount(uapi.LSMT_ROOT, nr=256)
    ns_root = k.mnt_id_unique("/")
    while parent_of(ns_root) != ns_root:
        ns_root = parent_of(ns_root)
    top = min(m for m in listmount(ns_root, nr=4096) if parent_of(m) == ns_root)
    return own, sorted([top] + listmount(top, nr=4096)), k.mnt_id_unique("/"), ns_root, top


@upstream(FILE, "test listmount ns id")
@pytest.mark.requires("listmount", "mnt_id_req_ns_id")
def test_listmount_of_foreign_ns_by_id():
    """listmount(LSMT_ROOT, mnt_ns_id) of another namespace lists the subtree
    of the lowest-id mount sitting directly on that namespace's root mount
    (fs/namespace.c grab_requested_root), whereas the namespace's own
    listing starts at the caller's "/". Upstream asserts both counts are
    equal, which holds only when "/" is that lowest-id mount. It is not when a
    rootfs stays between the namespace root and "/" (7.x nullfs root, booted
    through an initramfs that switched root with MS_MOVE): the foreign view
    then has the rootfs and anything under it as well. Each listed mount
    reports the namespace's id."""
    with reporting_child(own_and_foreign_view) as (pid, (own, expected, own_root, ns_root, top)):
        fd = open_ns("mnt", pid)
        try:
            child_ns = ns_id(fd)
        finally:
            os.close(fd)
        foreign = listmount(uapi.LSMT_ROOT, mnt_ns_id=child_ns, nr=256)
        assert foreign == expected, (f"own view {own} from {own_root}, namespace root {ns_root}, "
                                     f"lowest mount on it {top}")
        if own_root == top:
            assert foreign == own
        for mnt in foreign:
            sm = statmount(mnt, uapi.STATMOUNT_MNT_NS_ID, mnt_ns_id=child_ns)
            assert sm.mask == uapi.STATMOUNT_MNT_NS_ID
            assert sm.mnt_ns_id == child_ns
