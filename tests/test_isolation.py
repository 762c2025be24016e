"""What happens in a test's forked process comes back to pytest exactly."""
import os
import pathlib

import pytest

pytest_plugins = ["pytester"]

INNER = """
import os, signal, time, pytest
from helpers import sys as k

def test_assertion():
    value = 3
    assert value == 4, "value must be four"

def test_skip():
    pytest.skip("the exact reason")

def test_signal():
    os.kill(os.getpid(), signal.SIGSEGV)

def test_exit():
    os._exit(7)

def test_namespace_change_stays_in_child():
    k.unshare(0x20000)
    k.mount("tmpfs", "/mnt", "tmpfs")

def test_after_namespace_change():
    with open("/proc/self/mountinfo") as f:
        assert " /mnt " not in f.read()

@pytest.mark.timeout(2)
def test_hang_with_grandchild():
    if os.fork() == 0:
        open("grandchild.pid", "w").write(str(os.getpid()))
        time.sleep(600)
    time.sleep(600)
"""


@pytest.fixture
def inner(pytester):
    pytester.makepyfile(test_inner=INNER)
    root = str(pytester.path)
    import pathlib
    repo = pathlib.Path(__file__).resolve().parent.parent
    pytester.makeconftest(f"import sys; sys.path.insert(0, {str(repo)!r})\n"
                          "pytest_plugins = ['harness.isolation', 'harness.features']\n")
    return pytester, root


def run(inner, *args):
    pytester, _ = inner
    return pytester.runpytest_subprocess("-p", "no:cacheprovider", "-rA", *args)


def test_assertion_failure_keeps_message_and_introspection(inner):
    out = run(inner, "-k", "assertion").stdout.str()
    assert "value must be four" in out and "assert 3 == 4" in out


def test_skip_keeps_its_reason(inner):
    assert "the exact reason" in run(inner, "-k", "test_skip").stdout.str()


def test_crash_by_signal_is_an_error(inner):
    result = run(inner, "-k", "test_signal")
    result.assert_outcomes(failed=1)
    assert "killed by signal SIGSEGV" in result.stdout.str()


def test_exit_without_result_is_an_error(inner):
    result = run(inner, "-k", "test_exit")
    result.assert_outcomes(failed=1)
    assert "exited with status 7" in result.stdout.str()


def test_namespace_changes_do_not_leak_to_next_test(inner):
    if __import__("os").geteuid() != 0:
        pytest.skip("needs root: unshare(CLONE_NEWNS) and mount")
    run(inner, "-k", "namespace_change or after_namespace", "-p", "no:randomly").assert_outcomes(passed=2)


def test_timeout_kills_the_whole_process_group(inner):
    import os
    pytester, root = inner
    result = run(inner, "-k", "test_hang_with_grandchild")
    result.assert_outcomes(failed=1)
    assert "Timeout" in result.stdout.str() and "process group" in result.stdout.str()
    grandchild = int((pytester.path / "grandchild.pid").read_text())
    assert not os.path.exists(f"/proc/{grandchild}"), "grandchild survived the timeout"


def test_runs_under_xdist(inner):
    result = run(inner, "-n", "2", "-k", "assertion or skip")
    result.assert_outcomes(failed=1, skipped=1)


FLAKY = """
import os

def test_flaky():
    # fails on the first attempt only: the attempt counter lives in a file,
    # since every attempt is a new forked process
    n = int(open("attempts").read()) if os.path.exists("attempts") else 0
    open("attempts", "w").write(str(n + 1))
    with open("pids", "a") as f:
        f.write(f"{os.getpid()}\\n")
    assert n >= 1, "first attempt fails"

def test_consistent():
    assert False, "always"
"""


def test_reruns_fork_every_attempt_and_mark_flaky_in_junit(pytester):
    """--rerun-failures: each attempt is forked
    like any test, and junit.xml records the attempts, which the VM
    runner's summary reads as FLAKY or a consistent FAIL."""
    from vm import report
    repo = pathlib.Path(__file__).resolve().parent.parent
    pytester.makepyfile(test_flaky=FLAKY)
    pytester.makeconftest(f"import sys; sys.path.insert(0, {str(repo)!r})\n"
                          "pytest_plugins = ['harness.isolation', 'harness.features']\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--rerun-failures", "2",
                                           "-o", "junit_family=xunit1", "--junitxml=j.xml")
    outcomes = result.parseoutcomes()
    assert (outcomes["passed"], outcomes["failed"], outcomes["rerun"]) == (1, 1, 3)
    pids = (pytester.path / "pids").read_text().split()
    assert len(pids) == 2 and len(set(pids)) == 2 and str(os.getpid()) not in pids
    details = report.parse_junit_details(pytester.path / "j.xml")
    assert details["test_flaky.py::test_flaky"] == {"status": "FLAKY", "time": pytest.approx(
        details["test_flaky.py::test_flaky"]["time"]), "message": "passed on attempt 2"}
    assert details["test_flaky.py::test_consistent"]["status"] == "FAIL"
    assert details["test_flaky.py::test_consistent"]["message"].endswith("(all 3 attempts)")


def test_an_unforked_item_leaves_nothing_set_up_for_the_next_module(pytester):
    """A no_fork item sets up its module in the pytest process; the forked
    item after it (same module) sets up nothing there; the next module's
    item must not find the first module still stacked."""
    repo = pathlib.Path(__file__).resolve().parent.parent
    pytester.makeconftest(f"import sys; sys.path.insert(0, {str(repo)!r})\n"
                          "pytest_plugins = ['harness.features', 'harness.isolation']\n")
    pytester.makepyfile(test_a="""
import pytest
torn = []
@pytest.fixture(scope="module")
def modfix():
    yield
    open("torn_down", "w").close()
@pytest.mark.no_fork
def test_a1(modfix):
    pass
def test_a2(modfix):
    pass
""", test_b="def test_b1():\n    pass\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "no:randomly")
    result.assert_outcomes(passed=3)
    assert (pytester.path / "torn_down").exists()  # in the pytest process, once


# SIGKILL cannot end a process stuck in the kernel (D state): simulated by a
# killpg that does nothing, so the grandchild left in the test's process
# group outlives the "kill" as a stuck task would.
STUCK = """
import os, time

def test_a_leaves_a_process_behind():
    if os.fork() == 0:
        open("stuck.pid", "w").write(str(os.getpid()))
        time.sleep(60)
        os._exit(0)

def test_b_after_it():
    pass
"""
UNKILLABLE = """
import os, types
import harness.isolation as iso
iso.EXIT_GRACE_S = 1
iso.os = types.SimpleNamespace(**{**vars(os), "killpg": lambda pgid, sig: None})
"""


def test_a_process_sigkill_cannot_end_errors_its_case_and_stops_the_run(pytester):
    import os
    import signal
    pytester.makepyfile(test_stuck=STUCK)
    repo = pathlib.Path(__file__).resolve().parent.parent
    pytester.makeconftest(f"import sys; sys.path.insert(0, {str(repo)!r})\n"
                          "pytest_plugins = ['harness.isolation', 'harness.features']\n" + UNKILLABLE)
    try:
        result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "no:randomly", "-rA")
    finally:
        pid = int((pytester.path / "stuck.pid").read_text())
        os.kill(pid, signal.SIGKILL)
    out = result.stdout.str()
    # test_a passed, then its teardown is the ERROR naming the stuck process;
    # test_b is an ERROR too: it was never run
    result.assert_outcomes(passed=1, errors=2)
    assert f"test process pid {pid} (state S, wchan " in out
    assert "did not exit 1 s after SIGKILL: stuck in the kernel" in out
    assert ("not run: the kernel is wedged: the process of "
            f"test_stuck.py::test_a_leaves_a_process_behind pid {pid} ") in out
