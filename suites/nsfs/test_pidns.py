"""Twin of tools/testing/selftests/filesystems/nsfs/pidns.c (fs/nsfs.c):
NS_GET_PARENT of a child's pid and user namespaces is ours; one more step up
leaves our scope: EPERM.

Upstream clone()s the child with CLONE_NEWUSER|CLONE_NEWPID; here a child
unshares both and forks the process that lives in the new pid namespace
(same namespaces, same ownership; Python cannot clone into a new pid ns).
"""
import errno
import os
from contextlib import contextmanager

import pytest

from harness.upstream import upstream
from helpers import sys as k
from helpers import uapi
from helpers.errors import raises_errno
from helpers.proc import reporting_child

FILE = "filesystems/nsfs/pidns.c"


def _pid_ns_holder():
    """In a reporting_child: unshare(CLONE_NEWUSER|CLONE_NEWPID) and fork the
    new pid namespace's first process, which lives until this child exits
    (EOF on a pipe only this child holds the write end of). Returns its pid."""
    k.unshare(uapi.CLONE_NEWUSER | uapi.CLONE_NEWPID)
    r, w = os.pipe()
    inner = os.fork()
    if inner == 0:
        # Keep only r: an inherited end of reporting_child's pipes would
        # keep its parent waiting for EOF.
        os.closerange(3, r)
        os.closerange(r + 1, os.sysconf("SC_OPEN_MAX"))
        os.read(r, 1)
        os._exit(0)
    os.close(r)
    return inner


@contextmanager
def process_in_new_user_and_pid_ns():
    """Yields the pid of a process in a new pid namespace owned by a new user
    namespace; it is gone soon after the block ends."""
    with reporting_child(_pid_ns_holder) as (_, inner):
        yield inner


@upstream(FILE, "pidns")
@pytest.mark.userns
@pytest.mark.parametrize("kind", ["pid", "user"])
def test_ns_get_parent_is_ours_then_eperm(kind):
    with process_in_new_user_and_pid_ns() as pid:
        ns = os.open(f"/proc/{pid}/ns/{kind}", os.O_RDONLY)
        assert os.fstat(ns).st_ino != os.stat(f"/proc/self/ns/{kind}").st_ino
        parent = k.ioctl(ns, uapi.NS_GET_PARENT)
        assert os.fstat(parent).st_ino == os.stat(f"/proc/self/ns/{kind}").st_ino
        with raises_errno(errno.EPERM):
            k.ioctl(parent, uapi.NS_GET_PARENT)
