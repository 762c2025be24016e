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

A process that SIGKILL cannot end is stuck in the kernel (a task in D state
waiting for a lock that is never released, or looping in the kernel with it
held). The parent does not wait for it for ever: after EXIT_GRACE_S it says
so in the case's report (a case that passed gets an ERROR at teardown), writes
"mntns-test: stuck NODEID ..." to the kernel log, which the VM runner reports
as a hang of that kernel blamed on the case (vm/crash.py), and runs no more
cases: each later one is an ERROR "not run" naming the stuck case, so the
guest ends instead of waiting on every case for a lock the kernel lost.
"""
import ctypes
import gc
import linecache
import os
import pathlib
import pickle
import select
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
# A test process exits as soon as it has sent its reports, and SIGKILL ends
# any process that is not stuck in the kernel within milliseconds.
EXIT_GRACE_S = 15
_wedged = []  # why this pytest process runs no more cases (a stuck test process)


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


def _close_in_forks(fd):
    """Close fd in every process the test forks (once: a descendant's fd of
    that number is another file): a process the test leaves behind, stuck
    in the kernel or not, must not hold the reports' pipe open, or the
    parent never reads its end."""
    owned = [True]

    def close():
        if owned[0]:
            owned[0] = False
            os.close(fd)
    os.register_at_fork(after_in_child=close)


def _child(item, wfd):
    os.setpgid(0, 0)
    _close_in_forks(wfd)
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
    (they are reparented to us: we are a child subreaper). Returns the
    members still there after EXIT_GRACE_S: stuck in the kernel."""
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        return []
    end = time.monotonic() + EXIT_GRACE_S
    while True:
        try:
            if os.waitpid(-pgid, os.WNOHANG)[0]:
                continue
        except ChildProcessError:
            return []
        if time.monotonic() > end:
            return _group_members(pgid)
        time.sleep(0.01)


def _wait_exit(pid, seconds):
    """The exit status of pid once it has exited, waiting at most seconds
    (its pidfd becomes readable when it exits); None if it is still there."""
    fd = os.pidfd_open(pid)
    try:
        poller = select.poll()  # not select(): fd may be >= FD_SETSIZE
        poller.register(fd, select.POLLIN)
        if not poller.poll(seconds * 1000):
            return None
    finally:
        os.close(fd)
    return os.waitpid(pid, 0)[1]


def _group_members(pgid):
    """'pid N (state S, wchan W)' for each process of the group (/proc/N/stat
    fields 3 and 5; wchan is 0 for a task running in the kernel)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            if int(fields[2]) != pgid:
                continue
            with open(f"/proc/{entry}/wchan") as f:
                wchan = f.read().strip() or "0"
        except (OSError, IndexError, ValueError):
            continue
        found.append(f"pid {entry} (state {fields[0]}, wchan {wchan})")
    return found


def _stuck(item, members):
    """Record a test process group SIGKILL could not end: the kernel log mark
    the VM runner blames a hang on, and no more cases in this process."""
    what = f"{'; '.join(members)} did not exit {EXIT_GRACE_S} s after SIGKILL: stuck in the kernel"
    kmsg.mark_test("stuck", item.nodeid, what)
    _wedged.append(f"the kernel is wedged: the process of {item.nodeid} {what}")
    return f"test process {what}"


def _describe(status):
    if os.WIFSIGNALED(status):
        return f"killed by signal {signal.Signals(os.WTERMSIG(status)).name}"
    return f"exited with status {os.waitstatus_to_exitcode(status)}"


def _crash_report(item, message, when="call"):
    call = pytest.CallInfo.from_call(lambda: pytest.fail(message, pytrace=False), when)
    return pytest.TestReport.from_item_and_call(item, call)


def run_forked(item):
    """Run the item's protocol in a child; return its reports."""
    if _wedged:
        # an ERROR (the case could not run), not a FAIL of the case
        return [_crash_report(item, f"not run: {_wedged[0]}", when="setup")]
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
    interrupted, status = None, None
    try:
        raw = _read_all(rfd)
        # The reports are in: pytest-timeout's alarm (timeout_method =
        # signal) must not interrupt the bounded exit wait and reaping that
        # follow, which would drop them, or escape from the finally below.
        signal.setitimer(signal.ITIMER_REAL, 0)
        status = _wait_exit(pid, EXIT_GRACE_S)
    except BaseException as e:  # pytest-timeout's Failed, KeyboardInterrupt
        interrupted = e
    finally:
        os.close(rfd)
        stuck = _kill_and_reap_group(pid)
    if isinstance(interrupted, KeyboardInterrupt):
        raise interrupted
    note = _stuck(item, stuck) if stuck else None
    if interrupted is not None:
        return [_crash_report(item, f"{interrupted} (test process group {pid} killed"
                                    f"{'; ' + note if note else ''})")]
    if not raw and note:
        return [_crash_report(item, f"{note}, without a result")]
    reports = _decode(item, raw, signal.SIGKILL if status is None else status)
    if note and not any(r.failed or hasattr(r, "wasxfail") for r in reports):
        # The case passed, but a process of it never ended: an ERROR at
        # teardown. A failure, or a known defect's expected one, stands as
        # it is (the kernel log mark names the stuck process).
        reports[-1].outcome, reports[-1].longrepr = "failed", note
    return reports


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
