"""The defer fixture (harness/cleanup.py): cleanups run newest first, all of
them, and a failing one reaches the report from the test's forked process."""
import pathlib

import pytest

pytest_plugins = ["pytester"]
REPO = pathlib.Path(__file__).resolve().parent.parent

INNER = """
import os, pytest
from helpers.cleanup import scratch_dir

def test_failing_cleanup(defer, tmp_path_factory):
    log = os.environ["DEFER_LOG"]
    defer(lambda: open(log, "a").write("first-registered\\n"))
    defer(os.rmdir, "/nonexistent.defer")
    defer(lambda: open(log, "a").write("last-registered\\n"))

def test_cancelled_cleanup(defer):
    defer(os.rmdir, "/nonexistent.defer").cancel()

def test_scratch_dir_removed(defer):
    path = scratch_dir(defer, prefix="defer-selftest.")
    open(os.environ["DEFER_LOG"], "a").write(path + "\\n")
    if os.geteuid() == 0:
        os.system(f"mount -t tmpfs none {path} && mount -t tmpfs none {path}")
"""


@pytest.fixture
def inner(pytester, tmp_path, monkeypatch):
    pytester.makepyfile(test_inner=INNER)
    pytester.makeconftest(f"import sys; sys.path.insert(0, {str(REPO)!r})\n"
                          "pytest_plugins = ['harness.features', 'harness.isolation', 'harness.cleanup']\n")
    log = tmp_path / "log"
    monkeypatch.setenv("DEFER_LOG", str(log))
    return pytester, log


def test_failing_cleanup_errors_the_test_and_the_rest_still_run(inner):
    pytester, log = inner
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-k", "failing_cleanup")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*ERROR at teardown of test_failing_cleanup*",
                                 "*No such file or directory*nonexistent.defer*",
                                 "*in deferred cleanup*rmdir*"])
    assert log.read_text().splitlines() == ["last-registered", "first-registered"]


def test_cancelled_cleanup_does_not_run(inner):
    pytester, _ = inner
    pytester.runpytest_subprocess("-p", "no:cacheprovider", "-k", "cancelled").assert_outcomes(passed=1)


def test_scratch_dir_is_detached_and_removed(inner):
    pytester, log = inner
    pytester.runpytest_subprocess("-p", "no:cacheprovider", "-k", "scratch").assert_outcomes(passed=1)
    path = log.read_text().strip()
    assert path.startswith("/tmp/defer-selftest.")
    assert not pathlib.Path(path).exists()
