"""Local helpers for the mount_cycle suite.

Everything here is a candidate for helpers/ (see the suite report): libc calls
the project's helpers do not wrap yet (fstatfs, faccessat, inotify, flock-style
locks, name_to_handle_at/open_by_handle_at, userfaultfd), and a two-way
"partner" child for the upstream tests whose child and parent take turns.
They go through libc by symbol name (ctypes), so they are the same on every
architecture and need no syscall numbers.
"""
import ctypes
import errno
import mmap
import os
import pickle
import signal
import struct
import threading
import time
import traceback

import pytest

from helpers import uapi
from helpers import sys as k

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


# --- a child that takes turns with the parent --------------------------------
class Partner:
    """A forked child running fn(chan); chan.send(obj)/chan.recv() talk to the
    parent, which uses the same methods. join() returns fn's value or re-raises
    its exception (assertions and skips included)."""

    def __init__(self, fn, *args):
        p2c_r, p2c_w = os.pipe()
        c2p_r, c2p_w = os.pipe()
        res_r, res_w = os.pipe()
        self.pid = os.fork()
        if self.pid == 0:
            os.close(p2c_w), os.close(c2p_r), os.close(res_r)
            self._in, self._out = os.fdopen(p2c_r, "rb", 0), os.fdopen(c2p_w, "wb", 0)
            code = 0
            try:
                result = ("return", fn(self, *args))
            except pytest.skip.Exception as e:
                result = ("skip", e.msg)
            except BaseException as e:  # noqa: BLE001 - sent to the parent
                result = ("raise", e, "".join(traceback.format_exception(e)))
            try:
                try:
                    data = pickle.dumps(result)
                except Exception:  # noqa: BLE001
                    data = pickle.dumps(("text", result[-1]))
                os.write(res_w, data)
            finally:
                os._exit(code)
        os.close(p2c_r), os.close(c2p_w), os.close(res_w)
        self._in, self._out = os.fdopen(c2p_r, "rb", 0), os.fdopen(p2c_w, "wb", 0)
        self._res = res_r
        self._joined = False

    def send(self, obj=None):
        data = pickle.dumps(obj)
        self._out.write(struct.pack("I", len(data)) + data)

    def recv(self):
        head = self._in.read(4)
        if len(head) < 4:
            self.join()  # the other side died: surface its exception
            raise AssertionError("partner closed the channel")
        (n,) = struct.unpack("I", head)
        return pickle.loads(self._in.read(n))

    def join(self):
        if self._joined:
            return None
        self._joined = True
        self._out.close()
        chunks = []
        while chunk := os.read(self._res, 65536):
            chunks.append(chunk)
        os.close(self._res)
        _, status = os.waitpid(self.pid, 0)
        if not chunks:
            raise AssertionError(f"partner {self.pid} died ({status:#x}) without a result")
        kind, *rest = pickle.loads(b"".join(chunks))
        if kind == "return":
            return rest[0]
        if kind == "skip":
            pytest.skip(rest[0])
        if kind == "raise":
            rest[0].add_note(f"raised in the partner process:\n{rest[1]}")
            raise rest[0]
        raise AssertionError(f"partner failed:\n{rest[0]}")

    def kill(self):
        if not self._joined:
            try:
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            try:
                self.join()
            except BaseException:  # noqa: BLE001 - killed on purpose
                pass


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
            results["reader"] = _errno_call(lambda: k.syscall("getdents64", dfd, self.addr, mmap.PAGESIZE))

        def creator():
            results["creator"] = _errno_call(lambda: os.mkdir("x", dir_fd=dfd))

        def finder():
            results["finder"] = _errno_call(lambda: os.open("no_such_name", os.O_RDONLY, dir_fd=dfd))

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


def _errno_call(fn):
    try:
        fn()
        return 0
    except OSError as e:
        return e.errno


def wait_until(pred, tries, delay):
    for _ in range(tries):
        if pred():
            return True
        time.sleep(delay)
    return pred()


ENOENT = errno.ENOENT
