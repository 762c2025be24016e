"""Shared pieces of the nullfs suite: entering an empty mount namespace from
the initial user namespace (real root) or from a user namespace, and reading
the raw directory and mount-stack facts the tests compare."""
import os
import struct

import pytest

from helpers import sys as k
from helpers import uapi
from helpers.ns import enter_userns
from helpers.sys import ffi

# Where the caller's CAP_SYS_ADMIN comes from when it enters the empty mntns.
ROOT = pytest.param("init_userns", marks=pytest.mark.root, id="init_userns")
USERNS = pytest.param("userns", marks=pytest.mark.userns, id="userns")
CONTEXTS = [ROOT, USERNS]

SB_AND_TYPE = uapi.STATMOUNT_SB_BASIC | uapi.STATMOUNT_MNT_BASIC | uapi.STATMOUNT_FS_TYPE


def enter_empty(context="init_userns"):
    """unshare(UNSHARE_EMPTY_MNTNS), as real root or after enter_userns()."""
    if context == "userns":
        enter_userns()
    elif context != "init_userns":
        raise ValueError(context)
    k.unshare(uapi.UNSHARE_EMPTY_MNTNS)


def getdents(path):
    """[(d_ino, d_type, name)] from raw getdents64 on path."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        out, buf = [], ffi.new("char[]", 4096)
        while (n := k.syscall("getdents64", fd, buf, 4096)) > 0:
            data, off = ffi.buffer(buf, n)[:], 0
            while off < n:
                ino, _, reclen, dtype = struct.unpack_from("<QqHB", data, off)
                out.append((ino, dtype, data[off + 19:off + reclen].split(b"\0", 1)[0].decode()))
                off += reclen
        return out
    finally:
        os.close(fd)
