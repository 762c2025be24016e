"""Deferred cleanup whose failures are reported, never swallowed (the model is
the kernel's tools/testing/selftests/net/lib/py/ksft.py `defer`).

    def test_x(defer):
        path = tempfile.mkdtemp()
        defer(os.rmdir, path)          # runs at teardown, newest first

The `defer` fixture (harness/cleanup.py) runs the queue at teardown: every
entry runs even when an earlier one raised, and any exception makes the test
ERROR at teardown (each failure is listed). Each test runs in a forked child
(harness/isolation.py): the teardown report comes back with the others, so a
failed cleanup shows in the terminal, JUnit and KTAP like any other error.
"""
import errno
import os
import tempfile
from contextlib import contextmanager

from helpers import uapi
from helpers.sys import umount2


class Deferred:
    """One queued call; cancel() drops it, run_now() runs it at once (ksft
    Defer.cancel / Defer.exec)."""

    def __init__(self, queue, fn, args, kwargs):
        self.queue, self.fn, self.args, self.kwargs = queue, fn, args, kwargs

    def cancel(self):
        self.queue.entries.remove(self)

    def run_now(self):
        self.cancel()
        self.fn(*self.args, **self.kwargs)


class DeferQueue:
    """Calls to make at teardown, newest first."""

    def __init__(self):
        self.entries = []

    def __call__(self, fn, *args, **kwargs):
        entry = Deferred(self, fn, args, kwargs)
        self.entries.append(entry)
        return entry

    def run(self):
        """Run every entry, newest first; raise what failed (all of it)."""
        failures = []
        while self.entries:
            entry = self.entries.pop()
            try:
                entry.fn(*entry.args, **entry.kwargs)
            except Exception as e:  # noqa: BLE001 - collected and re-raised below
                e.add_note(f"in deferred cleanup {getattr(entry.fn, '__qualname__', entry.fn)}{entry.args}")
                failures.append(e)
        if len(failures) == 1:
            raise failures[0]
        if failures:
            raise ExceptionGroup(f"{len(failures)} deferred cleanups failed", failures)


def detach_all(path):
    """umount2(path, MNT_DETACH) until nothing is mounted there. EINVAL (not
    a mount point) ends it; EPERM too (see below); ENOENT too: the path is not visible from where
    the caller now is (no /proc after the test changed root), and rmdir
    then says whether a mount of the caller's namespace still sits there
    (EBUSY); mounts of namespaces the caller left go with the directory
    (lazily: fs/namespace.c detach_mounts(), since 3.18)."""
    while True:
        try:
            umount2(path, uapi.MNT_DETACH)
        except OSError as e:
            # EPERM: may_mount() refused before looking at the path -- the
            # caller has no CAP_SYS_ADMIN over its mount namespace, so it
            # cannot have mounted anything there (its children mounted in
            # namespaces of their own); rmdir says whether the path is free.
            if e.errno in (errno.EINVAL, errno.ENOENT, errno.EPERM):
                return
            raise


def scratch_dir(defer, prefix="mntns.", parent="/tmp"):
    """mkdtemp under `parent`; at teardown, mounts on it detached and the
    directory removed (through an fd of `parent`, so a test that changed root
    or namespace still removes the host's directory). A failure fails the test."""
    path = tempfile.mkdtemp(prefix=prefix, dir=parent)
    parent_fd = os.open(parent, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    defer(os.close, parent_fd)
    defer(_remove_scratch, path, parent_fd)
    return path


@contextmanager
def scratch_dir_here(prefix="mntns.", parent="/tmp"):
    """scratch_dir for code that runs outside the test's own process (an
    in_child body, where the test's defer queue cannot reach): removed when
    the block ends, a failure raised."""
    queue = DeferQueue()
    try:
        yield scratch_dir(queue, prefix, parent)
    finally:
        queue.run()


def _remove_scratch(path, parent_fd):
    # By path (the mounts of the namespace the caller is in now), then
    # through the parent's fd (a magic link, followed whatever the caller's
    # root now is), for a test that left the directory's root behind.
    name = os.path.basename(path)
    detach_all(path)
    detach_all(f"/proc/self/fd/{parent_fd}/{name}")
    os.rmdir(name, dir_fd=parent_fd)
