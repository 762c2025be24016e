"""Did the kernel WARN (or BUG, or oops) during a block of a test?

The TAINT_WARN bit is sticky: once any earlier WARN set it, it proves nothing.
So the watcher reads the kernel log records written during the block from
/dev/kmsg, opened (and positioned at the end) before the block starts, which
also works after the block enters a user namespace. Only where /dev/kmsg
cannot be read does it fall back to the taint bit, and only while that bit is
still clear; otherwise the check cannot be made and the test SKIPs saying so.
"""
import errno
import os
from contextlib import contextmanager

import pytest

TAINT_WARN = 1 << 9
MARKERS = ("WARNING:", "------------[ cut here ]", "BUG:", "Oops:", "general protection fault")


# In a VM runner guest, each test's start and end go into the kernel log
# (and so onto the serial console, in order with any WARN or oops), so the
# runner can name the tests that were running when the kernel complained
# (vm/crash.py). Not on a host: a QA machine's log is not ours to fill.
MARK_PREFIX = "mntns-test:"
_MARK_FD = []


def mark_test(event, nodeid, detail=None):
    """event: start, end, or stuck (its process could not be ended: detail says how)."""
    if os.environ.get("MNTNS_VM") != "1":
        return
    if not _MARK_FD:
        try:
            _MARK_FD.append(os.open("/dev/kmsg", os.O_WRONLY | os.O_CLOEXEC))
        except OSError:
            _MARK_FD.append(None)
    if _MARK_FD[0] is not None:
        # <5> (notice): above the default console level's cut-off, so it
        # reaches the console, but not a warning. One write = one record.
        line = f"<5>{MARK_PREFIX} {event} {nodeid} {detail or f'pid={os.getpid()}'}\n"
        try:
            os.write(_MARK_FD[0], line.encode(errors="replace")[:1000])
        except OSError:
            pass  # ratelimited or full: attribution is best effort, verdicts are not


def tainted():
    with open("/proc/sys/kernel/tainted") as f:
        return int(f.read())


def _records(fd):
    out = []
    while True:
        try:
            out.append(os.read(fd, 8192).decode(errors="replace"))
        except OSError as e:
            if e.errno == errno.EAGAIN:
                return out
            if e.errno == errno.EPIPE:  # records overwritten while we read: keep going
                continue
            raise


@contextmanager
def no_new_warnings():
    try:
        fd = os.open("/dev/kmsg", os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        fd = None
    taint_before = tainted() & TAINT_WARN
    if fd is not None:
        os.lseek(fd, 0, os.SEEK_END)
    try:
        yield
    finally:
        if fd is not None:
            lines = _records(fd)
            os.close(fd)
    if fd is not None:
        bad = [line.split(";", 1)[-1].strip() for line in lines if any(m in line for m in MARKERS)]
        assert not bad, "the kernel logged during the test:\n" + "\n".join(bad)
    elif taint_before:
        pytest.skip("cannot observe new kernel WARNs: /dev/kmsg is unreadable for this user "
                    "and TAINT_WARN was already set")
    else:
        assert not tainted() & TAINT_WARN, "TAINT_WARN newly set: the kernel WARNed"
