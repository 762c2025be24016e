"""Reading directories raw: getdents64 decoded, and upstream's readdir_hold.h
(a getdents64 stalled inside the kernel's copy to a userfaultfd page, to show
that a directory read in progress blocks no mkdir and no lookup)."""
import ctypes
import errno
import mmap
import os
import select
import struct
import threading
import time

from helpers import uapi
from helpers import sys as k


def parse_dirents(data):
    """[(d_ino, d_type, name)] from the bytes getdents64 filled
    (struct linux_dirent64: u64 ino, s64 off, u16 reclen, u8 type, name)."""
    out, off = [], 0
    while off < len(data):
        ino, _, reclen, dtype = struct.unpack_from("<QqHB", data, off)
        out.append((ino, dtype, data[off + 19:off + reclen].split(b"\0", 1)[0].decode()))
        off += reclen
    return out


def getdents(path):
    """[(d_ino, d_type, name)] from raw getdents64 on path."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        out, buf = [], k.ffi.new("char[]", 4096)
        while (n := k.syscall("getdents64", fd, buf, 4096)) > 0:
            out += parse_dirents(k.ffi.buffer(buf, n)[:])
        return out
    finally:
        os.close(fd)


class _Worker(threading.Thread):
    """Runs fn; keeps its return value or its errno. cffi ABI calls release
    the GIL, so other threads run while this one sits in the kernel."""

    def __init__(self, fn):
        super().__init__(daemon=True)
        self.fn, self.result, self.err = fn, None, None

    def run(self):
        try:
            self.result = self.fn()
        except OSError as e:
            self.err = e.errno


class ReaddirHold:
    """readdir_hold_init(): a userfaultfd and one registered anonymous page.
    Make it before entering a user namespace: handling kernel-mode faults
    needs CAP_SYS_PTRACE in the initial user namespace (or
    vm.unprivileged_userfaultfd; fs/userfaultfd.c new_userfaultfd())."""

    def __init__(self):
        # No UFFD_USER_MODE_ONLY fallback: such a userfaultfd never sees the
        # fault of getdents64's copy_to_user(), so the hold could not hold
        # (upstream readdir_hold.h asks for kernel-mode faults only, and its
        # callers SKIP when it is refused: EPERM).
        fd = k.syscall("userfaultfd", os.O_CLOEXEC | os.O_NONBLOCK)
        self.uffd = fd
        k.ioctl(fd, uapi.UFFDIO_API, k.ffi.new("uint64_t[3]", [uapi.UFFD_API, 0, 0]))
        self.page = mmap.mmap(-1, mmap.PAGESIZE, mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
        self.addr = ctypes.addressof(ctypes.c_char.from_buffer(self.page))
        k.ioctl(fd, uapi.UFFDIO_REGISTER, k.ffi.new(
            "uint64_t[4]", [self.addr, mmap.PAGESIZE, uapi.UFFDIO_REGISTER_MODE_MISSING, 0]))

    def _wait_fault(self, timeout):
        """One uffd_msg: a page fault inside the hold page (the reader is
        inside getdents64)."""
        poller = select.poll()
        poller.register(self.uffd, select.POLLIN)
        if not poller.poll(timeout * 1000):
            raise AssertionError("getdents64 never faulted on the userfaultfd page")
        msg = os.read(self.uffd, uapi.UFFD_MSG_SIZE)
        # struct uffd_msg: u8 event, 7 bytes reserved, pagefault {u64 flags; u64 address}
        fault_addr = struct.unpack_from("<Q", msg, 16)[0]
        assert msg[0] == uapi.UFFD_EVENT_PAGEFAULT, f"uffd event {msg[0]:#x}, not a page fault"
        assert self.addr <= fault_addr < self.addr + mmap.PAGESIZE

    def _release(self):
        try:
            k.ioctl(self.uffd, uapi.UFFDIO_ZEROPAGE,
                    k.ffi.new("uint64_t[4]", [self.addr, mmap.PAGESIZE, 0, 0]))
        except OSError as e:
            if e.errno != errno.EEXIST:
                raise

    def run(self, dfd, timeout=5.0):
        """Reader: getdents64(dfd) into the missing page (stalls in the fault).
        Then a creator mkdirat(dfd, "x") and a finder openat(dfd,
        "no_such_name"); then the page is filled and the reader completes.
        Returns {"stalled": [calls still blocked after `timeout`],
        "mkdirat"/"openat": errno (0: success), "entries": what the reader
        read, or its errno}."""
        reader = _Worker(lambda: k.syscall("getdents64", dfd, self.addr, mmap.PAGESIZE))
        reader.start()
        try:
            self._wait_fault(timeout)
            creator = _Worker(lambda: os.mkdir("x", dir_fd=dfd))
            finder = _Worker(lambda: os.close(os.open("no_such_name", os.O_RDONLY, dir_fd=dfd)))
            creator.start()
            time.sleep(0.1)
            finder.start()
            finder.join(timeout)
            creator.join(timeout)
            stalled = [name for name, w in (("openat", finder), ("mkdirat", creator)) if w.is_alive()]
        finally:
            self._release()
            reader.join(timeout)
        entries = reader.err if reader.is_alive() or reader.err else \
            parse_dirents(ctypes.string_at(self.addr, reader.result))
        return {"stalled": stalled, "mkdirat": creator.err or 0, "openat": finder.err or 0,
                "entries": entries, "reader_done": not reader.is_alive()}
