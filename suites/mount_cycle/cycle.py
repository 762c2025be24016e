"""Local helpers for the mount_cycle suite: upstream's fanotify_group()
(-1 when refused), inode comparison, the userfaultfd readdir hold of
mount_cover_test (upstream readdir_hold.h; its uffd constants are in
helpers.uapi), and small waiting utilities. The libc calls and the two-way
Partner child these tests use live in helpers.sys and helpers.proc."""
import ctypes
import mmap
import os
import struct
import threading
import time

from helpers import uapi
from helpers import sys as k
from helpers.errors import errno_of


def fanotify_group():
    """upstream: fanotify_init(FAN_CLASS_NOTIF|FAN_CLOEXEC, O_RDONLY), -1 when refused."""
    try:
        return k.fanotify_init(uapi.FAN_CLASS_NOTIF | uapi.FAN_CLOEXEC, os.O_RDONLY)
    except OSError:
        return -1


def same_inode(a, b):
    sa, sb = os.fstat(a), os.fstat(b)
    return (sa.st_dev, sa.st_ino) == (sb.st_dev, sb.st_ino)


def fd_path(fd):
    return f"/proc/self/fd/{fd}"


# --- userfaultfd: a getdents64 stuck in a page fault (upstream readdir_hold.h) --
class ReaddirHold:
    """readdir_hold_init(): the userfaultfd and one registered page, made before
    any user namespace is entered. check(fd) -> stalled (bool)."""

    def __init__(self):
        fd = None
        for flags in (os.O_CLOEXEC | os.O_NONBLOCK, os.O_CLOEXEC | os.O_NONBLOCK | uapi.UFFD_USER_MODE_ONLY):
            try:
                fd = k.syscall("userfaultfd", flags)
                break
            except OSError as e:
                last = e
        if fd is None:
            raise last
        self.uffd = fd
        api = struct.pack("QQQ", uapi.UFFD_API, 0, 0)
        buf = k.ffi.new("char[]", api)
        k.ioctl(fd, uapi.UFFDIO_API, buf)
        self.page = mmap.mmap(-1, mmap.PAGESIZE, mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
        self.addr = ctypes.addressof(ctypes.c_char.from_buffer(self.page))
        reg = k.ffi.new("char[]", struct.pack("QQQQ", self.addr, mmap.PAGESIZE,
                                             uapi.UFFDIO_REGISTER_MODE_MISSING, 0))
        k.ioctl(fd, uapi.UFFDIO_REGISTER, reg)

    def check(self, dfd, timeout=5.0):
        """Reader: getdents64(dfd) into the missing page (stalls in the fault).
        Then a creator mkdirat(dfd, "x") and a finder openat(dfd, "no_such_name").
        Returns True if the finder did not come back within `timeout`."""
        import select
        results = {}

        def reader():
            results["reader"] = errno_of(lambda: k.syscall("getdents64", dfd, self.addr, mmap.PAGESIZE))

        def creator():
            results["creator"] = errno_of(lambda: os.mkdir("x", dir_fd=dfd))

        def finder():
            results["finder"] = errno_of(lambda: os.open("no_such_name", os.O_RDONLY, dir_fd=dfd))

        tr = threading.Thread(target=reader, daemon=True)
        tr.start()
        poll = select.poll()
        poll.register(self.uffd, select.POLLIN)
        if not poll.poll(5000):
            raise AssertionError("getdents64 never faulted on the userfaultfd page")
        tc = threading.Thread(target=creator, daemon=True)
        tf = threading.Thread(target=finder, daemon=True)
        tc.start()
        time.sleep(0.1)
        tf.start()
        tf.join(timeout)
        stalled = tf.is_alive()
        zp = k.ffi.new("char[]", struct.pack("QQQq", self.addr, mmap.PAGESIZE, 0, 0))
        k.ioctl(self.uffd, uapi.UFFDIO_ZEROPAGE, zp)
        tr.join(5)
        tc.join(5)
        tf.join(5)
        return stalled


def wait_until(pred, tries, delay):
    for _ in range(tries):
        if pred():
            return True
        time.sleep(delay)
    return pred()
