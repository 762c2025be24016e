"""The `alone` marker: a case that can wedge the kernel it tests (leave a
lock held for good, so every later mount operation blocks) runs after every
other case of the run, and with no other case running beside it. On a
kernel it wedges, every other case has its verdict first; the wedge itself
is reported by harness/isolation.py (a test process stuck in the kernel).

    @pytest.mark.alone("a kernel with the defect leaves namespace_sem held")

Ordering alone is enough in one process. Under xdist another worker may
still hold cases queued when the alone case arrives, so each worker counts
the cases it finished in a file the controller made for the run, and an
alone case waits until the count covers every case before it in the
session's order (the other alone cases included, so they run one at a
time). That needs xdist's `load` or `worksteal` distribution, which hand
out cases in that order; under the scope-grouping ones (loadfile,
loadscope, loadgroup) a worker may hold cases queued behind the alone one,
so there only the ordering holds.
"""
import os
import shutil
import tempfile
import time

import pytest

_DIR = "mntns_alone_dir"
_KEY = pytest.StashKey[str]()  # the controller's shared directory
# A worker that makes no progress for this long is stuck or gone: the alone
# case runs anyway rather than wait for ever.
NO_PROGRESS_S = 600


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "alone(why): may wedge the kernel; runs after every other case, none beside it")


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node):
    """xdist controller -> worker: the run's shared directory, where the
    distribution hands out cases in the session's order (a worker sees "no")."""
    if node.config.getoption("dist", "load") not in ("load", "worksteal"):
        return
    if node.config.stash.get(_KEY, None) is None:
        node.config.stash[_KEY] = tempfile.mkdtemp(prefix="mntns-alone.")
    node.workerinput[_DIR] = node.config.stash[_KEY]


def pytest_unconfigure(config):
    path = config.stash.get(_KEY, None)
    if path and not hasattr(config, "workerinput"):
        shutil.rmtree(path, ignore_errors=True)


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items):
    # stable: the alone cases keep their order among themselves
    items.sort(key=lambda item: item.get_closest_marker("alone") is not None)


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_protocol(item, nextitem):
    shared = getattr(item.config, "workerinput", {}).get(_DIR)
    if shared is None:
        yield
        return
    done = os.path.join(shared, "done")
    if item.get_closest_marker("alone") is not None:
        _wait_for(done, item.session.items.index(item))
    yield
    with open(done, "ab") as f:  # one byte per finished case, O_APPEND
        f.write(b".")


def _size(path):
    try:
        return os.stat(path).st_size
    except FileNotFoundError:
        return 0


def _wait_for(done, count):
    """Until `count` cases have finished in all workers, or none finished
    for NO_PROGRESS_S (a worker stuck or gone: the case runs anyway)."""
    seen, since = _size(done), time.monotonic()
    while seen < count and time.monotonic() - since < NO_PROGRESS_S:
        time.sleep(0.1)
        now = _size(done)
        if now != seen:
            seen, since = now, time.monotonic()
