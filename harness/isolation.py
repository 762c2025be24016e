"""Every test runs in its own forked process, in its own process group.

The child runs the item's whole protocol (fixture setup, call, teardown), so a
test or fixture may unshare, setns, chroot, pivot_root or change ids freely;
the pytest process never changes namespace. As root the child first enters a
private copy of the mount namespace, so nothing a test mounts reaches the host.
The child is pinned to one CPU: kernels number namespaces from per-CPU batches
(suites/mount_cycle/test_mntns_id_order.py pins that down), and rules that
compare namespace ids ("newer than mine") must not give a verdict that
depends on where the scheduler put a process.

Reports come back through pytest's own serialization hooks (the ones xdist
uses, pickled over a pipe), so failures keep their assertion introspection and traceback, skips
their reason. A child that dies or sends nothing is reported as an error with
its signal or exit status.

pytest-forked does the fork but not the process group: when pytest-timeout
fires in the parent it leaves the child running. Here the alarm (timeout_method
= signal) interrupts the parent's wait, and the child's whole group is killed.
"""
import ctypes
import gc
import linecache
import os
import pathlib
import pickle
import signal
import sys
import time

import pytest
from _pytest.runner import runtestprotocol

from harness.features import skip_reason
from helpers import kmsg, uapi
from helpers.mounts import make_rprivate
from helpers.sys import unshare


PR_SET_CHILD_SUBREAPER = 36
item_root = pathlib.Path(__file__).resolve().parent.parent


def pytest_configure(config):
    config.addinivalue_line("markers", "host_mntns: run in the host's mount namespace (no private copy)")
    _prctl(PR_SET_CHILD_SUBREAPER, 1)


def pytest_addoption(parser):
    parser.getgroup("mntns").addoption(
        "--rerun-failures", type=int, default=0, metavar="N",
        help="run a failing test up to N more times, each in a new forked process: passed "
             "on a later attempt = FLAKY (junit property 'attempts'), failed on all = FAIL")


def forked_protocol(item):
    """runtestprotocol(), run in a forked child: one attempt of a test."""
    kmsg.mark_test("start", item.nodeid)
    reports = run_forked(item)
    kmsg.mark_test("end", item.nodeid)
    return reports


def _attempts(item):
    """Run the item's forked protocol until it does not fail, at most
    1 + --rerun-failures times. Failed attempts before the last are logged
    with outcome "rerun" (shown as R, not counted as failures, not in
    junit); the last attempt's reports are the verdict, carrying the number
    of attempts (junit property "attempts") when there was more than one.
    pytest-rerunfailures does this for unforked tests, but keeps each
    attempt's state on the item inside the process that ran it, which here
    is a child that is gone."""
    left = item.config.getoption("rerun_failures", 0)
    n = 0
    while True:
        n += 1
        reports = forked_protocol(item)
        if not left or not any(r.failed for r in reports):
            break
        left -= 1
        for r in reports:
            if r.failed:
                r.outcome = "rerun"
            item.ihook.pytest_runtest_logreport(report=r)
    if n > 1:
        reports[-1].user_properties.append(("attempts", n))
    return reports


def pytest_report_teststatus(report):
    if report.outcome == "rerun":
        return "rerun", "R", ("RERUN", {"yellow": True})


def _prctl(option, value):
    ctypes.CDLL(None, use_errno=True).prctl(option, value, 0, 0, 0)


def _pin_sources():
    """Keep tracebacks readable after a test chroots or pivots away from the
    source tree: load the project's source lines now, as entries linecache
    never re-stats (mtime None). Done in the pytest process before each fork,
    so each file is read once per process and the children inherit it."""
    root = str(item_root)
    for module in list(sys.modules.values()):
        path = getattr(module, "__file__", None) or ""
        if path.startswith(root) and path.endswith(".py") and path not in linecache.cache:
            try:
                with open(path) as f:
                    lines = f.readlines()
            except OSError:
                continue
            linecache.cache[path] = (len("".join(lines)), None, lines, path)


def _pin_cpu():
    allowed = sorted(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {allowed[os.getpid() % len(allowed)]})


def _child(item, wfd):
    os.setpgid(0, 0)
    try:
        _pin_cpu()
        if os.geteuid() == 0 and not item.get_closest_marker("host_mntns"):
            unshare(uapi.CLONE_NEWNS)
            make_rprivate("/")
        reports = runtestprotocol(item, log=False, nextitem=None)
        hook = item.config.hook
        data = [hook.pytest_report_to_serializable(config=item.config, report=r) for r in reports]
        payload = pickle.dumps(data)
    except BaseException as e:  # noqa: BLE001 - becomes the child's crash report
        payload = pickle.dumps({"harness_error": f"{type(e).__name__}: {e}"})
    try:
        view = memoryview(payload)
        while view:
            view = view[os.write(wfd, view):]
    finally:
        os._exit(0)


def _read_all(fd):
    chunks = []
    while chunk := os.read(fd, 1 << 16):
        chunks.append(chunk)
    return b"".join(chunks)


def _kill_and_reap_group(pgid):
    """SIGKILL whatever is left of the test's process group and reap it: the
    test process if it is still running, and grandchildren it left behind
    (they are reparented to us: we are a child subreaper)."""
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        return
    while True:
        try:
            os.waitpid(-pgid, 0)
        except ChildProcessError:
            return


def _describe(status):
    if os.WIFSIGNALED(status):
        return f"killed by signal {signal.Signals(os.WTERMSIG(status)).name}"
    return f"exited with status {os.waitstatus_to_exitcode(status)}"


def _crash_report(item, message):
    call = pytest.CallInfo.from_call(lambda: pytest.fail(message, pytrace=False), "call")
    return pytest.TestReport.from_item_and_call(item, call)


def run_forked(item):
    """Run the item's protocol in a child; return its reports."""
    _pin_sources()
    # Objects that exist now are never collected in the child: its garbage
    # collector would otherwise write to every one of them and copy most of
    # the parent's memory on write (CPython's gc.freeze() advice for fork).
    gc.freeze()
    rfd, wfd = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(rfd)
        _child(item, wfd)
    os.close(wfd)
    # The child may not have called setpgid yet when a kill is needed.
    try:
        os.setpgid(pid, pid)
    except OSError:
        pass
    interrupted = None
    try:
        raw = _read_all(rfd)
        _, status = os.waitpid(pid, 0)
    except BaseException as e:  # pytest-timeout's Failed, KeyboardInterrupt
        interrupted = e
    finally:
        os.close(rfd)
        _kill_and_reap_group(pid)
    if isinstance(interrupted, KeyboardInterrupt):
        raise interrupted
    if interrupted is not None:
        return [_crash_report(item, f"{interrupted} (test process group {pid} killed)")]
    return _decode(item, raw, status)


def _decode(item, raw, status):
    if not raw:
        return [_crash_report(item, f"test process {_describe(status)} without a result")]
    data = pickle.loads(raw)
    if isinstance(data, dict):
        return [_crash_report(item, f"harness error in the test process: {data['harness_error']}")]
    hook = item.config.hook
    return [hook.pytest_report_from_serializable(config=item.config, data=d) for d in data]


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_protocol(item, nextitem):
    # A case that SKIPs on markers and probes alone runs pytest's own protocol
    # here: the setup hook raises the skip before any fixture or test code
    # runs, so there is nothing to isolate, and no fork or namespace copy.
    if item.get_closest_marker("no_fork") or skip_reason(item):
        return None
    ihook = item.ihook
    ihook.pytest_runtest_logstart(nodeid=item.nodeid, location=item.location)
    start = time.monotonic()
    reports = _attempts(item)
    # The whole forked case as this process saw it (fork, namespace copy,
    # report transfer): junit's time= only covers the phases in the child.
    reports[-1].user_properties.append(("harness_wall_s", round(time.monotonic() - start, 4)))
    for report in reports:
        ihook.pytest_runtest_logreport(report=report)
    # Collectors set up in this process by an earlier unforked item (no_fork,
    # e.g. a module-scoped fixture) stay on its SetupState until an item
    # that does not need them: the forked item set up nothing here, so tear
    # down now what the next item does not share, as pytest's own protocol
    # would; a child forked with them still stacked fails its setup
    # ("previous item was not torn down properly").
    item.session._setupstate.teardown_exact(nextitem)
    ihook.pytest_runtest_logfinish(nodeid=item.nodeid, location=item.location)
    return True
