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

FILE = "filesystems/nsfs/pidns.c"


@contextmanager
def process_in_new_user_and_pid_ns():
    """Yields the pid of a process in a new pid namespace owned by a new user
    namespace; it is gone when the block ends."""
    pid_r, pid_w = os.pipe()
    done_r, done_w = os.pipe()
    child = os.fork()
    if child == 0:
        try:
            os.close(pid_r)
            os.close(done_w)
            k.unshare(uapi.CLONE_NEWUSER | uapi.CLONE_NEWPID)
            inner = os.fork()
            if inner == 0:
                os.read(done_r, 1)
                os._exit(0)
            os.write(pid_w, str(inner).encode())
            os.waitpid(inner, 0)
        finally:
            os._exit(0)
    os.close(pid_w)
    os.close(done_r)
    try:
        data = os.read(pid_r, 32)
        assert data, "child could not set up the namespaces"
        yield int(data)
    finally:
        os.close(done_w)
        os.close(pid_r)
        os.waitpid(child, 0)


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
