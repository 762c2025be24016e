"""keep_sources_readable(): lets pytest show source lines of a failure that
happens while the test process is chrooted away from the source tree (a
candidate for harness/ if other suites chroot too)."""
import linecache
import sys


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
