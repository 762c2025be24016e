"""Twins of tools/testing/selftests/namespaces/listns_efault_test.c: listns(2)
with an id buffer the kernel cannot (fully) write.

kernel/nstree.c: SYSCALL listns() only checks access_ok() on the buffer; each
id is then put_user()'d after the namespace is pinned (legitimize_ns()), and
a failed put_user() drops that reference and returns EFAULT. The three
"cleanup" cases race that path against mount namespaces being destroyed
(the reference must be put outside the RCU read lock).

Upstream lets the iterator loop until SIGKILL and checks only that it was
killed (no deadlock). Here it stops when told, so it also reports what every
call returned: EFAULT, or at most as many ids as fit before the hole (a list
that ends before the hole is a success), and it made progress while the
namespaces died. A WARN during the block fails the test.
"""
import collections
import errno
import os
import select
from contextlib import ExitStack

import pytest

from harness.upstream import upstream
from helpers import sys as k
from helpers import uapi
from helpers.errors import raises_errno
from helpers.kmsg import no_new_warnings
from helpers.mounts import tmpfs
from helpers.ns import new_mntns, ns_id_req
from helpers.proc import Partner, waiting_child

FILE = "namespaces/listns_efault_test.c"

pytestmark = pytest.mark.requires("listns")


def iterate(chan, stop_r, slots, nr, ns_type):
    """listns(ns_type, buffer with `slots` ids before a hole, nr) until
    stop_r is readable; {outcome: calls}, outcome an errno name or a count."""
    ids = k.ffi.cast("uint64_t *", k.before_hole(slots * 8))
    req = ns_id_req(ns_type)
    seen = collections.Counter()
    chan.send("looping")
    while not select.select([stop_r], [], [], 0)[0]:
        try:
            seen[k.listns(req, ids, nr)] += 1
        except OSError as e:
            seen[errno.errorcode[e.errno]] += 1
    return dict(seen)


def mntns_with_two_tmpfs():
    """upstream's child: its own mount namespace with two tmpfs mounts (on a
    private tmpfs /tmp here, so nothing is created on the host's /tmp)."""
    new_mntns()
    tmpfs("/tmp")
    for name in ("test_mnt1", "test_mnt2"):
        os.mkdir(f"/tmp/{name}")
        tmpfs(f"/tmp/{name}")


@pytest.mark.parametrize("slots,nr,ns_type,children,first_batch", [
    pytest.param(1, 2, 0, 5, 5, id="partial",
                 marks=upstream(FILE, "global.listns_partial_fault_with_ns_cleanup")),
    pytest.param(5, 10, 0, 10, 5, id="late",
                 marks=upstream(FILE, "global.listns_late_fault_with_ns_cleanup")),
    pytest.param(3, 10, uapi.CLONE_NEWNS, 8, 8, id="mnt",
                 marks=upstream(FILE, "global.listns_mnt_ns_cleanup_on_fault")),
])
@pytest.mark.root
def test_fault_while_mount_namespaces_die(slots, nr, ns_type, children, first_batch):
    """An iterator loops listns() into a buffer with `slots` ids before an
    unmapped page while `children` processes, each in a new mount namespace
    with two tmpfs mounts, exit (`first_batch` of them first)."""
    stop_r, stop_w = os.pipe()
    with no_new_warnings():
        iterator = Partner(iterate, stop_r, slots, nr, ns_type)
        try:
            assert iterator.recv() == "looping"
            with ExitStack() as first, ExitStack() as rest:
                for i in range(children):
                    (first if i < first_batch else rest).enter_context(
                        waiting_child(mntns_with_two_tmpfs))
                first.close()
            os.write(stop_w, b"x")
            seen = iterator.join()
        finally:
            iterator.kill()
    assert sum(seen.values()) > 0
    assert set(seen) <= {"EFAULT"} | set(range(slots + 1)), seen
    assert "EFAULT" in seen, f"{nr} ids never reached the hole after {slots}: {seen}"


@upstream(FILE, "global.listns_complete_fault")
def test_buffer_at_unmapped_address_is_efault():
    """ns_ids = 0xdeadbeef: access_ok() passes, the first put_user() faults."""
    with raises_errno(errno.EFAULT):
        k.listns(ns_id_req(), k.ffi.cast("uint64_t *", 0xDEADBEEF), 10)


@upstream(FILE, "global.listns_null_buffer")
def test_null_buffer_with_nonzero_count_is_efault():
    with raises_errno(errno.EFAULT):
        k.listns(ns_id_req(), None, 10)
