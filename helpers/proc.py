"""Child processes whose results come back exactly: a return value, or the
exception (assertion, skip, OSError...) raised in the child, re-raised here.

Tests already run in their own forked process (harness/isolation.py); these are
for the *extra* processes a case needs: "a child enters a user namespace and
tries X", a process left waiting inside a namespace, clone3 with new flags.
"""
import ctypes
import os
import pickle
import select
import signal
import time
import traceback
from contextlib import contextmanager

import pytest

from helpers import sys as ksys
from helpers import uapi
from helpers.sys import ffi


class ChildError(AssertionError):
    """An exception from a child that could not be sent back as itself."""


def _encode(exc):
    if isinstance(exc, pytest.skip.Exception):
        return ("skip", exc.msg)
    tb = "".join(traceback.format_exception(exc))
    try:
        data = pickle.dumps(exc)
        pickle.loads(data)
        return ("raise", data, tb)
    except Exception:
        return ("text", tb)


def _child_main(wfd, fn, args, kwargs):
    code = 0
    try:
        result = ("return", pickle.dumps(fn(*args, **kwargs)))
    except SystemExit as e:
        result, code = ("exit", e.code), 0
    except BaseException as e:  # noqa: BLE001 - everything goes back to the parent
        result = _encode(e)
    try:
        os.write(wfd, pickle.dumps(result))
    finally:
        os._exit(code)


def _collect(pid, rfd):
    chunks = []
    while chunk := os.read(rfd, 65536):
        chunks.append(chunk)
    os.close(rfd)
    _, status = os.waitpid(pid, 0)
    if not chunks:
        if os.WIFSIGNALED(status):
            raise ChildError(f"child {pid} killed by signal {signal.Signals(os.WTERMSIG(status)).name}")
        raise ChildError(f"child {pid} exited with status {os.waitstatus_to_exitcode(status)} and no result")
    return _decode(pickle.loads(b"".join(chunks)))


def _decode(result):
    kind = result[0]
    if kind == "return":
        return pickle.loads(result[1])
    if kind == "exit":
        # A child's verdict is its return value or its exception; an exit
        # status the caller never looks at would let a failed step pass.
        raise ChildError(f"child called sys.exit({result[1]!r}) instead of returning or raising")
    if kind == "skip":
        pytest.skip(result[1])
    if kind == "raise":
        exc = pickle.loads(result[1])
        exc.add_note(f"raised in a child process:\n{result[2]}")
        raise exc
    raise ChildError(f"child failed:\n{result[1]}")


def in_child(fn, *args, **kwargs):
    """Run fn(*args, **kwargs) in a forked child; return its value or re-raise."""
    rfd, wfd = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(rfd)
        _child_main(wfd, fn, args, kwargs)
    os.close(wfd)
    return _collect(pid, rfd)


# clone3 must run like os.fork(): with the GIL held across the syscall and the
# interpreter's fork hooks around it. cffi's ABI calls release the GIL, so
# these few calls go through ctypes.PyDLL, which keeps it.
_PY = ctypes.PyDLL(None, use_errno=True)
_PY.syscall.restype = ctypes.c_long
_PY.syscall.argtypes = [ctypes.c_long, ctypes.c_void_p, ctypes.c_size_t]


def _clone3_holding_gil(args):
    _PY.PyOS_BeforeFork()
    pid = _PY.syscall(uapi.NR["clone3"], int(ffi.cast("uintptr_t", args)), ffi.sizeof(args[0]))
    err = ctypes.get_errno() if pid == -1 else 0
    if pid == 0:
        _PY.PyOS_AfterFork_Child()
    else:
        _PY.PyOS_AfterFork_Parent()
    if pid == -1:
        raise ksys.SyscallError(err, f"clone3(flags={args.flags:#x})")
    return pid


def clone3(fn, flags, exit_signal=signal.SIGCHLD, pidfd=False, **fields):
    """clone3(flags) and run fn() in the new child; returns (value, pidfd or None)."""
    pidfd_buf = ffi.new("int *", -1) if pidfd else None
    flags |= uapi.CLONE_PIDFD if pidfd else 0
    args = ksys.clone_args(flags, exit_signal, pidfd_buf, **fields)
    rfd, wfd = os.pipe()
    try:
        pid = _clone3_holding_gil(args)
    except OSError:
        os.close(rfd)
        os.close(wfd)
        raise
    if pid == 0:
        os.close(rfd)
        _child_main(wfd, fn, (), {})
    os.close(wfd)
    return _collect(pid, rfd), (pidfd_buf[0] if pidfd else None)


def usable_cpus():
    """The CPUs this process may be moved to (sched_setaffinity tried in a
    child, so our own affinity is left alone)."""
    def ok(cpu):
        try:
            in_child(os.sched_setaffinity, 0, {cpu})
            return True
        except OSError:
            return False
    return [cpu for cpu in range(os.cpu_count() or 1) if ok(cpu)]


def clone3_nowait(fn, flags, exit_signal=signal.SIGCHLD, pidfd=False, **fields):
    """clone3(flags), run fn() in the child and _exit(0) (1 if it raised);
    returns the child's pid at once, unreaped: for cases about a child's
    lifetime as its parent sees it (the caller waits for it). pidfd=True:
    returns (pid, pidfd), the pidfd made by clone3 itself (CLONE_PIDFD)."""
    pidfd_buf = ffi.new("int *", -1) if pidfd else None
    flags |= uapi.CLONE_PIDFD if pidfd else 0
    args = ksys.clone_args(flags, exit_signal, pidfd_buf, **fields)
    pid = _clone3_holding_gil(args)
    if pid == 0:
        code = 1
        try:
            fn()
            code = 0
        finally:
            os._exit(code)
    return (pid, pidfd_buf[0]) if pidfd else pid


# Write ends whose closing tells a reporting_child to exit. No other process
# may hold a copy, or that child never sees EOF: a child forked later (by
# anything in this process) would keep an earlier one waiting, and blocks
# that end first-in first-out (A exits, then B) would hang. So every fork
# closes them in the new child.
_RELEASES = set()


def _close_releases():
    for fd in _RELEASES:
        try:
            os.close(fd)
        except OSError:
            pass
    _RELEASES.clear()


os.register_at_fork(after_in_child=_close_releases)


@contextmanager
def reporting_child(fn):
    """waiting_child that also hands back fn()'s value: a forked child runs
    fn(), sends back its return value (or re-raises its exception here), then
    waits until the block ends. Yields (pid, value)."""
    val_r, val_w = os.pipe()
    done_r, done_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(val_r)
            os.close(done_w)
            try:
                result = ("return", pickle.dumps(fn()))
            except BaseException as e:  # noqa: BLE001 - goes back to the parent
                result = _encode(e)
            os.write(val_w, pickle.dumps(result))
            os.close(val_w)
            os.read(done_r, 1)
        finally:
            os._exit(0)
    os.close(val_w)
    os.close(done_r)
    _RELEASES.add(done_w)
    try:
        chunks = []
        while chunk := os.read(val_r, 65536):
            chunks.append(chunk)
        if not chunks:
            raise ChildError(f"child {pid} died before reporting")
        yield pid, _decode(pickle.loads(b"".join(chunks)))
    finally:
        _RELEASES.discard(done_w)
        os.close(done_w)
        os.close(val_r)
        os.waitpid(pid, 0)


@contextmanager
def waiting_child(fn=None):
    """A child that runs fn() (e.g. enters namespaces), then waits until the
    block ends; yields its pid so /proc/<pid>/ns/* can be opened. An
    exception in fn() is re-raised here."""
    with reporting_child(fn or (lambda: None)) as (pid, _):
        yield pid


def fd_from_child(fn):
    """fn() runs in a forked child and returns one of its fds; a copy of it
    comes back here (pidfd_getfd), taken while the child still waits. For an
    fd only a process inside another namespace can make, e.g. a mount
    namespace owned by a user namespace the child entered."""
    with reporting_child(fn) as (pid, fd):
        pidfd = ksys.pidfd_open(pid)
        try:
            return ksys.pidfd_getfd(pidfd, fd)
        finally:
            os.close(pidfd)


# --- two processes taking turns -------------------------------------------------
def _send_msg(fd, obj):
    data = pickle.dumps(obj)
    os.write(fd, len(data).to_bytes(8, "little") + data)


def _recv_msg(fd):
    """The next message, or EOFError when the other side closed the channel."""
    size = int.from_bytes(_read_exact(fd, 8), "little")
    return pickle.loads(_read_exact(fd, size))


def _read_exact(fd, n):
    buf = b""
    while len(buf) < n:
        chunk = os.read(fd, n - len(buf))
        if not chunk:
            raise EOFError("the other process went away")
        buf += chunk
    return buf


class Partner:
    """A forked child running fn(chan, *args) for upstream tests whose child
    and parent take turns: chan.send(obj)/chan.recv() talk to the parent,
    which uses the same methods on the Partner. join() returns fn's value or
    re-raises its exception (assertions and skips included), as in_child."""

    def __init__(self, fn, *args):
        p2c_r, p2c_w = os.pipe()
        c2p_r, c2p_w = os.pipe()
        res_r, res_w = os.pipe()
        self.pid = os.fork()
        if self.pid == 0:
            os.close(p2c_w), os.close(c2p_r), os.close(res_r)
            self._in, self._out, self._child = p2c_r, c2p_w, True
            _child_main(res_w, fn, (self, *args), {})
        os.close(p2c_r), os.close(c2p_w), os.close(res_w)
        self._in, self._out, self._child = c2p_r, p2c_w, False
        self._res = res_r
        self._joined = False

    def send(self, obj=None):
        _send_msg(self._out, obj)

    def recv(self):
        try:
            return _recv_msg(self._in)
        except EOFError:
            if self._child:
                raise
            self.join()  # the other side died: surface its exception
            raise AssertionError("partner closed the channel") from None

    def join(self):
        if self._joined:
            return None
        self._joined = True
        os.close(self._out)  # the read end stays open: a last unread message must not EPIPE
        return _collect(self.pid, self._res)

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


def _serve(chan):
    """Peer's child: run each (fn, args) the parent sends until it sends None."""
    while (msg := chan.recv()) is not None:
        fn, args = msg
        try:
            out = ("return", pickle.dumps(fn(*args)))
        except BaseException as e:  # noqa: BLE001 - sent back to the test
            out = _encode(e)
        chan.send(out)


class Peer:
    """A forked peer process driven step by step (upstream's pipe handshakes
    between two processes in different namespaces):

        with Peer() as p:
            p.run(fn, *args)    # runs fn in the peer; its value, or its exception re-raised

    State carries over between steps (it is one process); fn and args are
    pickled, so fn must be a module-level function."""

    def __init__(self):
        self._partner = Partner(_serve)
        self.pid = self._partner.pid

    def run(self, fn, *args):
        self._partner.send((fn, args))
        return _decode(self._partner.recv())

    def close(self):
        if self.pid:
            try:
                self._partner.send(None)
            except OSError:
                pass
            try:
                self._partner.join()
            except BaseException:  # noqa: BLE001 - a peer that died has said so in run()
                pass
            self.pid = 0

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


# --- steps that may never return ------------------------------------------------
def blocked_step(steps, deadline_s):
    """Run steps, a list of (name, fn), one after the other in a forked child
    and wait at most deadline_s seconds in all. Returns None when every step
    returned, else (name, seconds) of the step still running at the
    deadline: a task stuck in the kernel (D state, or looping with a lock
    held) is left behind instead of wedging the test. It stays in the test's
    process group, where the harness finds it when the test has ended and
    reports the case's process group as stuck in the kernel
    (harness/isolation.py). An exception in a step is re-raised here."""
    rfd, wfd = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(rfd)
        try:
            for name, fn in steps:
                _send_msg(wfd, ("start", name))
                fn()
            _send_msg(wfd, ("done", None))
        except BaseException as e:  # noqa: BLE001 - goes back to the parent
            _send_msg(wfd, ("raise", _encode(e)))
        finally:
            os._exit(0)
    os.close(wfd)
    end = time.monotonic() + deadline_s
    # before the first step's start arrives, the fork itself is what blocks
    current, since = "starting the child", time.monotonic()
    poller = select.poll()  # not select(): rfd may be >= FD_SETSIZE
    poller.register(rfd, select.POLLIN)
    try:
        while True:
            left = end - time.monotonic()
            if left <= 0 or not poller.poll(left * 1000):
                return current, round(time.monotonic() - since, 1)
            try:
                event, value = _recv_msg(rfd)
            except EOFError:
                os.waitpid(pid, 0)
                raise ChildError(f"step {current!r} ended its process without a result") from None
            if event == "start":
                current, since = value, time.monotonic()
                continue
            os.waitpid(pid, 0)
            if event == "raise":
                _decode(value)
            return None
    finally:
        os.close(rfd)
