"""The `defer` fixture: cleanup that reports (helpers/cleanup.py).

    def test_x(defer):
        n = loop.attach(image)
        defer(loop.detach, n)

Entries run at the test's teardown, newest first, every one of them; any
failure makes the test ERROR at teardown instead of being swallowed. It runs
in the test's forked process, whose teardown report the parent receives with
the setup and call reports (harness/isolation.py)."""
import pytest

from helpers.cleanup import DeferQueue


@pytest.fixture
def defer():
    queue = DeferQueue()
    yield queue
    queue.run()
