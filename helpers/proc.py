"""Child processes whose results come back exactly: a return value, or the
exception (assertion, skip, OSError...) raised in the child, re-raised here.

Tests already run in their own forked process (harness/isolation.py); these are
for the *extra* processes a case needs: "a child enters a user namespace and
tries X", a process left waiting inside a namespace, clone3 with new flags.
"""
import ctypes
import os
import pickle
import signal
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
        return result[1]
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


@contextmanager
def waiting_child(fn=None):
    """A child that runs fn() (e.g. enters namespaces), then waits until the
    block ends; yields its pid so /proc/<pid>/ns/* can be opened."""
    ready_r, ready_w = os.pipe()
    done_r, done_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(ready_r)
            os.close(done_w)
            if fn:
                fn()
            os.write(ready_w, b"1")
            os.read(done_r, 1)
        finally:
            os._exit(0)
    os.close(ready_w)
    os.close(done_r)
    try:
        if os.read(ready_r, 1) != b"1":
            raise ChildError("waiting child failed before it was ready")
        yield pid
    finally:
        os.close(done_w)
        os.close(ready_r)
        os.waitpid(pid, 0)
