"""The alone marker (harness/alone.py): the case runs after every other
case of the run, with none running beside it (another alone case
included), with and without xdist."""
import pathlib

import pytest

pytest_plugins = ["pytester"]
REPO = pathlib.Path(__file__).resolve().parent.parent

# Each case appends "start NAME" and "end NAME" to a log; the normal cases
# take a while, so under xdist the alone one (first in the file) would
# otherwise start while the other worker is still busy.
INNER = """
import os, time
import pytest

LOG = os.path.join(os.path.dirname(__file__), "log")

def log(what):
    with open(LOG, "a") as f:
        f.write(what + "\\n")

@pytest.mark.alone("wedges the kernel")
@pytest.mark.parametrize("n", range(2))
def test_wedger(n):
    log(f"start wedger{n}")
    time.sleep(0.3)
    log(f"end wedger{n}")

@pytest.mark.parametrize("n", range(8))
def test_normal(n):
    log(f"start {n}")
    time.sleep(0.3)
    log(f"end {n}")
"""


@pytest.fixture
def inner(pytester):
    pytester.makepyfile(test_inner=INNER)
    pytester.makeconftest(f"import sys; sys.path.insert(0, {str(REPO)!r})\n"
                          "pytest_plugins = ['harness.features', 'harness.isolation', 'harness.alone']\n")
    return pytester


@pytest.mark.parametrize("xdist", [(), ("-n", "2")], ids=["one_process", "xdist"])
def test_alone_case_runs_last_with_nothing_beside_it(inner, xdist):
    inner.runpytest_subprocess("-p", "no:cacheprovider", *xdist).assert_outcomes(passed=10)
    log = (inner.path / "log").read_text().splitlines()
    assert log[-4:] == ["start wedger0", "end wedger0", "start wedger1", "end wedger1"]
    assert sorted(log[:-4]) == sorted(f"{e} {n}" for n in range(8) for e in ("start", "end"))


def test_shared_directory_is_removed_after_the_run(inner, tmp_path, monkeypatch):
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    inner.runpytest_subprocess("-p", "no:cacheprovider", "-n", "2").assert_outcomes(passed=10)
    assert not list(tmp_path.glob("mntns-alone.*"))
