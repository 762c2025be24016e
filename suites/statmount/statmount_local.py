"""Small pieces the statmount twins need that helpers/ does not have (yet).

Each is a candidate for helpers/ (see the suite's report):
- reporting_child(): helpers.proc.waiting_child that also hands back fn()'s
  return value, so the parent can compare its view with the child's.
- keep_sources_readable(): lets pytest show source lines of a failure that
  happens while the test process is chrooted away from the source tree.
"""
import linecache
import os
import pickle
import sys
from contextlib import contextmanager

from helpers.proc import ChildError, _encode, _decode

@contextmanager
def reporting_child(fn):
    """Fork a child that runs fn(), sends back its return value (or its
    exception), then waits until the block ends. Yields (pid, value)."""
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
    try:
        chunks = []
        while chunk := os.read(val_r, 65536):
            chunks.append(chunk)
        if not chunks:
            raise ChildError(f"child {pid} died before reporting")
        yield pid, _decode(pickle.loads(b"".join(chunks)))
    finally:
        os.close(done_w)
        os.close(val_r)
        os.waitpid(pid, 0)


def keep_sources_readable(*modules):
    """Pin the source lines of these modules in linecache with mtime None, so
    linecache.checkcache() keeps them when the files become unreachable
    (after chroot) and pytest can still show the failing line."""
    import difflib  # noqa: F401 - pytest imports these lazily to explain failures
    import pprint  # noqa: F401
    for mod in modules:
        path = getattr(sys.modules.get(mod, mod), "__file__", mod)
        lines = linecache.getlines(path)
        if lines:
            linecache.cache[path] = (sum(map(len, lines)), None, lines, path)
