"""Asserting on errno, so a test reads as the syscall and its expected result:

    with raises_errno(errno.EINVAL):
        open_tree(AT_FDCWD, "/", AT_RECURSIVE)
"""
import errno as _errno
from contextlib import contextmanager


def name(err):
    return _errno.errorcode.get(err, str(err)) if err else "success"


@contextmanager
def raises_errno(*expected):
    """The block must fail with an OSError whose errno is one of `expected`."""
    try:
        yield
    except OSError as e:
        if e.errno not in expected:
            raise AssertionError(f"expected {'/'.join(map(name, expected))}, got {name(e.errno)}: {e}") from e
    else:
        raise AssertionError(f"expected {'/'.join(map(name, expected))}, but the call succeeded")


def errno_of(fn, *args, **kwargs):
    """0 if fn(*args) succeeds, else the errno of the OSError it raised."""
    try:
        fn(*args, **kwargs)
        return 0
    except OSError as e:
        return e.errno
