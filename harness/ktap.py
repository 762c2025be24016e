"""--ktap PATH: results in KTAP version 1, the kernel's own test output format
(Documentation/dev-tools/ktap.rst), nested as kselftest's runner nests its
test programs: a subtest per suite directory (suites/<dir>, else the test
file's directory), holding one result line per case.

    KTAP version 1
    1..2
      KTAP version 1
      # Subtest: suites/a
      1..3
      ok 1 suites/a/test_x.py::test_pass
      # suites/a/test_x.py::test_fail: call failed at suites/a/test_x.py:12
      # assert 3 == 4
      not ok 2 suites/a/test_x.py::test_fail
      ok 3 suites/a/test_x.py::test_skip # SKIP needs root
      # Totals: pass:1 fail:1 xfail:0 xpass:0 skip:1 error:0
    not ok 1 suites/a
      KTAP version 1
      # Subtest: suites/b
      1..3
      ok 1 suites/b/test_y.py::test_known_defect # XFAIL reason
      not ok 2 suites/b/test_y.py::test_hang # TIMEOUT 120 seconds
      not ok 3 suites/b/test_y.py::test_bad_fixture # ERROR setup failed: RuntimeError: boom
      # Totals: pass:0 fail:1 xfail:1 xpass:0 skip:0 error:1
    not ok 2 suites/b
    # Totals: pass:1 fail:2 xfail:1 xpass:0 skip:1 error:1

A suite fails if any of its cases does, and also if some of its cases did
not run (an interrupted run; "# ERROR n of m tests did not run"); a suite
whose every case skipped is "ok ... # SKIP".

While pytest runs, the file is a flat KTAP document instead, one top-level
result line per case as it finishes: under xdist the cases of all
directories finish interleaved, so a directory's block can only be written
once it is complete, and the VM runner's live progress (vm/qemu.py
ktap_progress) and a guest that dies mid-run need every result as it
comes. When pytest ends, the nested document replaces it in one rename: a
reader sees either, both valid KTAP.
"""
import collections
import os
import pathlib
import re
import textwrap

import pytest

# Failure text kept before a result line: enough to see why, not a traceback
# (that is in junit.xml and pytest's output).
MAX_DIAG_LINES = 10
MAX_DIAG_CHARS = 300

# pytest-timeout's message: "Timeout (>120.0s) from pytest-timeout." (2.x),
# "Timeout >120.0s" (1.x); harness/isolation.py appends "(test process group
# N killed)". Matched at the start of the crash message only, so a test's own
# text mentioning a timeout is not taken for one.
TIMEOUT_RE = re.compile(r"^(?:Failed: )?Timeout \(?>\s*([0-9.]+)\s*s")
# harness/isolation.py's reports of a test process that gave no result.
DIED_RE = re.compile(r"^(?:Failed: )?(?:test process .* without a result|harness error in the test process)")

WORKER_RE = re.compile(r"^\[gw\d+\] ")

# kselftest's counters (tools/testing/selftests/kselftest.h, ksft_print_cnts).
TOTALS = ("pass", "fail", "xfail", "xpass", "skip", "error")


def pytest_addoption(parser):
    parser.getgroup("mntns").addoption("--ktap", metavar="PATH", help="write KTAP results to PATH")


def pytest_configure(config):
    path = config.getoption("--ktap")
    if path and not hasattr(config, "workerinput"):  # xdist: the controller writes
        config.pluginmanager.register(KtapWriter(path, config.rootpath), "ktap-writer")


def _one_line(text) -> str:
    return " ".join(str(text).split())


def _text(report) -> str:
    """The failure as pytest prints it, less the '[gwN] linux -- Python ...'
    line that pytest puts first for a report from an xdist worker."""
    lines = report.longreprtext.splitlines()
    return "\n".join(lines[1:] if lines and WORKER_RE.match(lines[0]) else lines)


def _crash_message(report) -> str:
    """The exception's own message (pytest's reprcrash), else the report's
    first line: a pytest.fail(pytrace=False) report may carry no reprcrash."""
    crash = getattr(report.longrepr, "reprcrash", None)
    if crash is not None and crash.message:
        return crash.message
    return (_text(report).strip().splitlines() or [""])[0]


def _why(report) -> list[str]:
    """The failure text, short: the 'E' lines of pytest's long report (the
    exception and the assertion's introspection); a report made with
    pytest.fail(pytrace=False) (isolation's crash reports, strict XPASS)
    is that message alone."""
    text = _text(report)
    lines = [l[1:] for l in text.splitlines() if l.startswith("E ")] or text.splitlines()
    lines = _without_frames(textwrap.dedent("\n".join(lines)).splitlines())
    lines = [l.rstrip()[:MAX_DIAG_CHARS] for l in lines if l.strip()] or [_crash_message(report)]
    if len(lines) > MAX_DIAG_LINES:
        lines = lines[:MAX_DIAG_LINES] + [f"... {len(lines) - MAX_DIAG_LINES} more lines in pytest's output"]
    return lines


def _without_frames(lines: list[str]) -> list[str]:
    """An exception's text may carry a Python traceback of its own (a child
    process's, passed on by helpers/proc.py): keep its closing exception
    line, drop the "Traceback ..." header and the deeper-indented frames."""
    out, header_indent = [], None
    for line in lines:
        indent = len(line) - len(line.lstrip())
        if header_indent is not None and indent > header_indent:
            continue
        header_indent = None
        if line.strip() == "Traceback (most recent call last):":
            header_indent = indent
        else:
            out.append(line)
    return out


def _where(report, root) -> str:
    """' at file:line' of the raising line, relative to the rootdir; only
    for a report with a traceback (a crash report's reprcrash is the
    harness's own pytest.fail, which would mislead)."""
    crash = getattr(report.longrepr, "reprcrash", None)
    if crash is None or not crash.lineno or "\nE " not in "\n" + _text(report):
        return ""
    path = pathlib.Path(crash.path)
    if path.is_relative_to(root):
        path = path.relative_to(root)
    return f" at {path}:{crash.lineno}"


def _diagnostics(name: str, report, root) -> list[str]:
    """'# ' lines for the result line that follows (ktap.rst: diagnostic
    lines about a test come directly before its result line)."""
    lines = [f"{name}: {report.when} failed{_where(report, root)}", *_why(report)]
    # "# Subtest: X" is a (sub)test header to kunit_parser; keep it a comment.
    return ["#  " + l if l.startswith("Subtest:") else "# " + l for l in lines]


def _verdict(reports) -> tuple[str, object]:
    """(kind, report that decides it): a case's verdict from its phases.
    The first failing phase is the cause (a teardown failing after a
    failed call follows from it); a failure outside the call, or a test
    process that died without a result, is an error as in pytest's count."""
    failed = [r for r in reports if r.failed]
    if failed:
        r = failed[0]
        message = _crash_message(r)
        if TIMEOUT_RE.search(message):
            return "timeout", r
        if r.when != "call" or DIED_RE.search(message):
            return "error", r
        if _text(r).startswith("[XPASS(strict)]"):
            return "xpass_strict", r
        return "fail", r
    for r in reports:
        if r.skipped:
            return ("xfail" if hasattr(r, "wasxfail") else "skip"), r
    call = next((r for r in reports if r.when == "call"), None)
    if call is not None and hasattr(call, "wasxfail"):
        return "xpass", call
    # --rerun-failures (harness/isolation.py): an attempt that failed is
    # logged with outcome "rerun" before the one that passed
    reruns = [r for r in reports if r.outcome == "rerun"]
    if call is not None and reruns:
        return "flaky", reruns[0]
    return ("pass", call) if call is not None else ("none", None)


def _skip_reason(report) -> str:
    reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else _text(report)
    return _one_line(str(reason).removeprefix("Skipped: "))


def _directive(kind: str, report) -> str:
    """The result line's '# DIRECTIVE data' part, '' for a plain pass or fail.
    SKIP, XFAIL, TIMEOUT and ERROR are ktap.rst's; XPASS is kselftest's
    (ksft_test_result_code), FLAKY the project's (--rerun-failures), which a
    KTAP parser reads, as ktap.rst says of a directive it does not know, as
    the plain ok / not ok before it."""
    if kind == "skip":
        return f"SKIP {_skip_reason(report)}"
    if kind in ("xfail", "xpass"):
        return f"{kind.upper()} {_one_line(report.wasxfail)}"
    if kind == "xpass_strict":
        return "XPASS " + _one_line(_text(report).removeprefix("[XPASS(strict)]"))
    if kind == "timeout":
        return f"TIMEOUT {TIMEOUT_RE.search(_crash_message(report)).group(1)} seconds"
    if kind == "none":
        return "ERROR no result reported for this test"
    if kind == "flaky":
        return "FLAKY failed, then passed on a rerun"
    if kind == "error":
        first = _one_line(next(iter(_why(report)), ""))
        return f"ERROR {first}" if report.when == "call" else f"ERROR {report.when} failed: {first}"
    return ""


def _result(n: int, name: str, kind: str, report, root) -> list[str]:
    """The case's lines: its failure text, then '<ok|not ok> n name [# directive]'."""
    failed = report is not None and (report.failed or kind == "flaky")
    diag = _diagnostics(name, report, root) if failed else []
    if kind == "flaky":  # the failure of the first attempt
        diag[0] += " (first attempt)"
    directive = _directive(kind, report)
    line = f"{'not ok' if kind in NOT_OK else 'ok'} {n} {name}" + (f" # {directive}" if directive else "")
    return [*diag, line.rstrip()]


# Totals bucket per verdict: a timeout is a failure (pytest counts it so and
# kselftest's totals have no timeout counter); a strict XPASS is xpass (its
# result line still says "not ok"); a FLAKY case passed in the end (pytest
# and the runner's gate count it so), its directive and diagnostics say it
# failed first.
BUCKET = {"pass": "pass", "flaky": "pass", "fail": "fail", "timeout": "fail", "xfail": "xfail", "xpass": "xpass",
          "xpass_strict": "xpass", "skip": "skip", "error": "error", "none": "error"}
# What pytest counts as failed or error is "not ok" (ktap.rst: TIMEOUT and
# ERROR should be); SKIP, XFAIL and a non-strict XPASS are "ok", as kselftest
# writes them.
NOT_OK = {"fail", "timeout", "error", "none", "xpass_strict"}


def suite_of(nodeid: str) -> str:
    """The suite directory a case belongs to: suites/<dir> for the suite's
    own cases (their subdirectories included), else its file's directory."""
    parts = nodeid.split("::")[0].split("/")
    if len(parts) > 2 and parts[0] == "suites":
        return "/".join(parts[:2])
    return "/".join(parts[:-1]) or "."


def _suite_result(n: int, suite: str, kinds: list[str], planned: int) -> str:
    if any(k in NOT_OK for k in kinds):
        return f"not ok {n} {suite}"
    if len(kinds) < planned:
        return f"not ok {n} {suite} # ERROR {planned - len(kinds)} of {planned} tests did not run"
    if all(k == "skip" for k in kinds):
        return f"ok {n} {suite} # SKIP all {len(kinds)} tests skipped"
    return f"ok {n} {suite}"


def _totals(kinds) -> str:
    count = collections.Counter(BUCKET[k] for k in kinds)
    return "# Totals: " + " ".join(f"{k}:{count[k]}" for k in TOTALS)


class KtapWriter:
    def __init__(self, path, root):
        self.root = root
        self.path = pathlib.Path(path).resolve()  # the rename at the end, wherever the cwd is then
        self.file = open(self.path, "w", buffering=1)
        self.file.write("KTAP version 1\n")
        self.number = 0
        self.planned: list[str] | None = None
        self.reports = collections.defaultdict(list)
        self.done: dict[str, tuple[str, str, object]] = {}  # nodeid -> (name, kind, report)

    def _plan(self, nodeids):
        if self.planned is None:
            self.planned = list(nodeids)
            self.file.write(f"1..{len(self.planned)}\n")

    def pytest_collection_finish(self, session):
        if session.items:
            self._plan(item.nodeid for item in session.items)

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_node_collection_finished(self, node, ids):
        self._plan(ids)

    def pytest_runtest_logreport(self, report):
        self.reports[report.nodeid].append(report)

    def pytest_runtest_logfinish(self, nodeid):
        kind, report = _verdict(self.reports.pop(nodeid, []))
        self.number += 1
        name = _one_line(nodeid.replace("#", "_"))  # a description cannot hold "#"
        self.done[nodeid] = (name, kind, report)
        # One write: a watcher never sees a case's diagnostics without its result.
        self.file.write("".join(l + "\n" for l in _result(self.number, name, kind, report, self.root)))

    def nested(self) -> list[str]:
        """The whole run, a subtest per suite directory, cases in collection
        order; suites none of whose cases ran are left out (and the top
        level says so, as kselftest does)."""
        order = {nodeid: i for i, nodeid in enumerate(self.planned or [])}
        planned = collections.Counter(suite_of(n) for n in self.planned or [])
        suites = collections.defaultdict(list)
        for nodeid in sorted(self.done, key=lambda n: order.get(n, len(order))):
            suites[suite_of(nodeid)].append(self.done[nodeid])
        names = list(dict.fromkeys([*planned, *suites]))
        doc = ["KTAP version 1", f"1..{len(names)}"]
        ran = [s for s in names if suites[s]]
        for n, suite in enumerate(ran, 1):
            cases, want = suites[suite], max(planned[suite], len(suites[suite]))
            title = _one_line(suite.replace("#", "_"))  # as a case's name
            block = ["KTAP version 1", f"# Subtest: {title}", f"1..{want}"]
            for i, (name, kind, report) in enumerate(cases, 1):
                block += _result(i, name, kind, report, self.root)
            if want != len(cases):
                block.append(f"# Planned tests != run tests ({want} != {len(cases)})")
            block.append(_totals(kind for _, kind, _ in cases))
            doc += ["  " + l for l in block]
            doc.append(_suite_result(n, title, [kind for _, kind, _ in cases], want))
        if len(ran) != len(names):
            doc.append(f"# Planned tests != run tests ({len(names)} != {len(ran)})")
        doc.append(_totals(kind for _, kind, _ in self.done.values()))
        return doc

    def pytest_unconfigure(self):
        self.file.close()
        tmp = self.path.with_name(self.path.name + ".nested")
        tmp.write_text("".join(l + "\n" for l in self.nested()))
        os.replace(tmp, self.path)
