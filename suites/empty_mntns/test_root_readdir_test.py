"""Twin of tools/testing/selftests/filesystems/empty_mntns/root_readdir_test.c
(with readdir_hold.h): a getdents64 stuck in a page fault while it fills the
caller's buffer must not block a mkdir or a lookup in the nullfs root.

The hold is the real one: the getdents64 buffer is an anonymous page
registered with userfaultfd (MISSING mode), so the reader thread stalls inside
the kernel's copy to user space. The test waits for the userfaultfd page-fault
event (proof the reader is inside getdents64) before it starts the creator
(mkdirat) and the finder (openat of a missing name); both must come back
within 5 s. The page is then filled (uapi.UFFDIO_ZEROPAGE) and the reader must
complete with "." and "..".
"""
import ctypes
import errno
import os
import select
import struct
import threading

import pytest

from harness.upstream import upstream
from helpers import sys as k
from helpers import uapi
from helpers.sys import SyscallError, ffi

FILE = "filesystems/empty_mntns/root_readdir_test.c"

PAGE = os.sysconf("SC_PAGE_SIZE")
STALL_LIMIT = 5.0

_libc = ctypes.CDLL(None, use_errno=True)
_libc.mmap.restype = ctypes.c_void_p
_libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int,
                       ctypes.c_int, ctypes.c_long]
PROT_READ, PROT_WRITE, MAP_PRIVATE, MAP_ANONYMOUS = 1, 2, 0x02, 0x20


def uffd_page():
    """An untouched anonymous page registered with a new userfaultfd.
    Returns (uffd, address)."""
    uffd = k.syscall("userfaultfd", os.O_CLOEXEC | os.O_NONBLOCK)
    api = ffi.new("uint64_t[3]", [uapi.UFFD_API, 0, 0])
    k.ioctl(uffd, uapi.UFFDIO_API, api)
    addr = _libc.mmap(None, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
    assert addr not in (None, ctypes.c_void_p(-1).value), "mmap of the hold page failed"
    reg = ffi.new("uint64_t[4]", [addr, PAGE, uapi.UFFDIO_REGISTER_MODE_MISSING, 0])
    k.ioctl(uffd, uapi.UFFDIO_REGISTER, reg)
    return uffd, addr


def wait_pagefault(uffd, addr, timeout):
    """Read one uffd_msg; it must be a page fault inside the hold page."""
    poller = select.poll()
    poller.register(uffd, select.POLLIN)
    assert poller.poll(timeout * 1000), "getdents64 never faulted on the userfaultfd page"
    msg = os.read(uffd, uapi.UFFD_MSG_SIZE)
    event = msg[0]
    # struct uffd_msg: u8 event, 7 bytes reserved, then pagefault {u64 flags; u64 address; ...}
    fault_addr = struct.unpack_from("<Q", msg, 16)[0]
    assert event == uapi.UFFD_EVENT_PAGEFAULT
    assert addr <= fault_addr < addr + PAGE


def dirent_names(buf, length):
    names, off = [], 0
    while off < length:
        reclen = struct.unpack_from("<H", buf, off + 16)[0]
        names.append(buf[off + 19:off + reclen].split(b"\0", 1)[0].decode())
        off += reclen
    return names


class Worker(threading.Thread):
    """Runs fn; keeps its return value or its errno."""

    def __init__(self, fn):
        super().__init__(daemon=True)
        self.fn, self.result, self.err = fn, None, None

    def run(self):
        try:
            self.result = self.fn()
        except OSError as e:
            self.err = e.errno


@pytest.mark.root
@pytest.mark.requires("unshare_empty_mntns")
@pytest.mark.timeout(60)
@upstream(FILE, "global.readdir_blocks_nobody")
def test_readdir_blocks_nobody():
    """While a getdents64 on the nullfs root is stalled in a userfaultfd page
    fault, mkdirat(root, "x") and openat(root, "no_such_name") return within
    5 s (both ENOENT: lookups in nullfs fail before anything else)."""
    # readdir_hold_init() before anything else: as root (CAP_SYS_PTRACE in
    # the initial user ns) kernel-mode faults may be handled by userfaultfd.
    uffd, addr = uffd_page()
    k.unshare(uapi.UNSHARE_EMPTY_MNTNS)
    dfd = os.open("/", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)

    # cffi ABI calls release the GIL, so the other threads run while this one
    # sits in the kernel.
    reader = Worker(lambda: k.syscall("getdents64", dfd, ffi.cast("void *", addr), PAGE))
    reader.start()
    try:
        wait_pagefault(uffd, addr, STALL_LIMIT)
        creator = Worker(lambda: os.mkdir("x", dir_fd=dfd))
        finder = Worker(lambda: os.open("no_such_name", os.O_RDONLY, dir_fd=dfd))
        creator.start()
        finder.start()
        finder.join(STALL_LIMIT)
        creator.join(STALL_LIMIT)
        stalled = [t for t, w in (("openat", finder), ("mkdirat", creator)) if w.is_alive()]
    finally:
        zero = ffi.new("uint64_t[4]", [addr, PAGE, 0, 0])
        try:
            k.ioctl(uffd, uapi.UFFDIO_ZEROPAGE, zero)
        except SyscallError as e:
            if e.errno != errno.EEXIST:
                raise
        reader.join(STALL_LIMIT)
    assert not stalled, f"{' and '.join(stalled)} blocked behind a stalled getdents64"
    assert finder.err == errno.ENOENT
    assert creator.err == errno.ENOENT
    assert not reader.is_alive() and reader.err is None
    data = ctypes.string_at(addr, reader.result)
    assert sorted(dirent_names(data, reader.result)) == [".", ".."]
