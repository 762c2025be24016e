"""Twin of tools/testing/selftests/filesystems/nsfs/owner.c (fs/nsfs.c):
NS_GET_USERNS returns the owning user namespace, and EPERM once the owner is
outside the caller's user-namespace ancestry.

Beyond upstream: the owner of the child's user namespace must be our own
user namespace (upstream only checks that the call succeeds).
"""
import errno
import os

import pytest

from harness.upstream import upstream
from helpers import sys as k
from helpers import uapi
from helpers.errors import raises_errno
from helpers.ns import open_ns
from helpers.proc import waiting_child

FILE = "filesystems/nsfs/owner.c"


@upstream(FILE, "owner")
@pytest.mark.userns
def test_ns_get_userns_owner_and_scope():
    with waiting_child(lambda: k.unshare(uapi.CLONE_NEWUTS | uapi.CLONE_NEWUSER)) as pid:
        uts = open_ns("uts", pid)
        uns = k.ioctl(uts, uapi.NS_GET_USERNS)
        assert os.fstat(uns).st_ino == os.stat(f"/proc/{pid}/ns/user").st_ino
        init_uns = k.ioctl(uns, uapi.NS_GET_USERNS)
        assert os.fstat(init_uns).st_ino == os.stat("/proc/self/ns/user").st_ino
        with raises_errno(errno.EPERM):
            k.ioctl(init_uns, uapi.NS_GET_USERNS)  # the initial user ns has no owner

        k.unshare(uapi.CLONE_NEWUSER)  # now both are outside our ancestry
        with raises_errno(errno.EPERM):
            k.ioctl(uts, uapi.NS_GET_USERNS)
        with raises_errno(errno.EPERM):
            k.ioctl(init_uns, uapi.NS_GET_USERNS)
