"""Expectations: known kernel defects -> strict expected failures.

--known-defects FILE (TOML) lists cases that fail because a given kernel
really misbehaves, with the evidence and the failure it gives. On a matching
kernel they become xfail(strict=True): still visible, and a fixed kernel
shows up as XPASS(strict) -- "update the expectations", never green. The case
is an expected failure only if it fails the way the entry says: a different
failure (another errno, another assertion) is a FAIL. A plain `pytest` run,
as distro QA uses it, ignores the list and shows the FAILs.

    [[defect]]
    test = "suites/x/test_y.py::test_z"   # node id, its prefix before "[",
                                          # or a glob with * and ? ("suites/x/*::test_z*")
    kernels = ["6.18", "7.0.13", ">=7.1,<7.3"]   # series, point release, or a
                                          # range (comma = and; >= > <= < ==)
    reason = "what the kernel does wrong"
    failure = "expected EINVAL, but the call succeeded"   # regex, searched in
                       # the exception line ("AssertionError: ..."); required
    ref = "fs/namespace.c clone_mnt(); fixed by <commit> (7.2)"   # where in the
                       # kernel, or a link: required
    seen = ["6.18.15", "7.1.13"]          # point releases it was seen failing on
    evidence = "..."
    run = false        # optional: the case crashes or wedges the kernel (oops,
                       # deadlock): report it as an expected failure, NOTRUN
                       # (no `failure` then: it never runs)
    expires = 2027-03-31   # optional: a waiver, accepted until that date; after
                       # it the entry no longer applies and the run says so
"""
import datetime
import operator
import re
import tomllib

import pytest

from helpers import kernel

KEYS = {"test", "kernels", "reason", "failure", "evidence", "run", "ref", "seen", "expires"}
REQUIRED = {"test", "kernels", "reason", "evidence", "ref", "seen"}
_FAILURE = pytest.StashKey[re.Pattern]()
_EXPIRED = pytest.StashKey[list]()
_OPS = {">=": operator.ge, "<=": operator.le, ">": operator.gt, "<": operator.lt, "==": operator.eq}
_SPEC = re.compile(r"(>=|<=|>|<|==)?\s*(\d+\.\d+(?:\.\d+)?)$")


def pytest_addoption(parser):
    parser.getgroup("mntns").addoption(
        "--known-defects", metavar="FILE",
        help="TOML expectations: known kernel defects run as strict expected failures "
             "(harness/defects.py documents the format)")


def _conditions(spec):
    """"7.1" -> series; "7.1.13" -> point release; ">=7.1,<7.3" -> range.
    Returns [(op, version, n_components)]; ValueError if malformed."""
    out = []
    for part in spec.split(","):
        m = _SPEC.match(part.strip())
        if not m:
            raise ValueError(f"kernel {spec!r} is not a series, point release or range "
                             "(\"6.18\", \"6.18.15\", \">=6.19,<7.2\")")
        out.append((m.group(1), kernel.parse_version(m.group(2)), len(m.group(2).split("."))))
    return out


def matches_kernel(spec, version):
    for op, wanted, n in _conditions(spec):
        if op is None:  # a series or point release: the components given
            if version[:n] != wanted[:n]:
                return False
        elif not _OPS[op](tuple(version), wanted):
            return False
    return True


def matches_test(pattern, nodeid):
    if "*" in pattern or "?" in pattern:
        rx = re.escape(pattern).replace(r"\*", ".*").replace(r"\?", ".")
        return re.fullmatch(rx, nodeid) is not None
    return nodeid == pattern or nodeid.startswith(pattern + "[")


def _entry_lines(text):
    """Line number of each [[defect]] header, in order."""
    return [n for n, line in enumerate(text.splitlines(), 1)
            if re.match(r"\s*\[\[\s*defect\s*\]\]", line)]


def _check(entry):
    """The first problem with an entry, or None."""
    unknown = set(entry) - KEYS
    if unknown:
        return f"unknown key(s) {', '.join(sorted(unknown))} (known: {', '.join(sorted(KEYS))})"
    missing = REQUIRED - set(entry)
    if entry.get("run", True):
        missing |= {"failure"} - set(entry)
    if missing:
        return f"missing {', '.join(sorted(missing))}"
    if not isinstance(entry["kernels"], list) or not entry["kernels"]:
        return "kernels must be a non-empty list"
    for spec in entry["kernels"] + list(entry.get("seen", [])):
        try:
            _conditions(str(spec))
        except ValueError as e:
            return str(e)
    if "expires" in entry and not isinstance(entry["expires"], datetime.date):
        return "expires must be a TOML date (expires = 2027-03-31)"
    try:
        re.compile(entry.get("failure", ""))
    except re.error as e:
        return f"failure is not a regex: {e}"
    return None


def load_all(path):
    """Every entry, each with "_line"; a malformed file or entry is a
    pytest.UsageError naming the file and line."""
    try:
        text = open(path, encoding="utf-8").read()
    except OSError as e:
        raise pytest.UsageError(f"--known-defects: {e.strerror}: {path}") from None
    try:
        entries = tomllib.loads(text).get("defect", [])
    except tomllib.TOMLDecodeError as e:
        raise pytest.UsageError(f"{path}: {e}") from None
    lines = _entry_lines(text)
    for n, entry in enumerate(entries):
        line = lines[n] if n < len(lines) else "?"
        problem = _check(entry)
        if problem:
            raise pytest.UsageError(f"{path}:{line}: defect {n + 1} "
                                    f"({entry.get('test', '?')}): {problem}")
        entry["_line"] = line
    return entries


def for_kernel(path, version=None, today=None):
    """(in force, expired): this kernel's entries, split by their waiver's
    expiry (an entry without `expires` is always in force)."""
    version = version or kernel.version()
    today = today or datetime.date.today()
    mine = [e for e in load_all(path) if any(matches_kernel(str(k), version) for k in e["kernels"])]
    lapsed = [e for e in mine if "expires" in e and e["expires"] < today]
    return [e for e in mine if e not in lapsed], lapsed


def load(path, version=None, today=None):
    """The entries for this kernel that are in force (waivers not expired)."""
    return for_kernel(path, version, today)[0]


def expired(path, version=None, today=None):
    return for_kernel(path, version, today)[1]


def _marker(defect):
    waived = f"; waived until {defect['expires']}" if "expires" in defect else ""
    return pytest.mark.xfail(strict=True, run=defect.get("run", True),
                             reason=f"known defect on {kernel.release()}: {defect['reason']}"
                                    f" (ref: {defect['ref']}){waived} (evidence: {defect['evidence']})")


def pytest_collection_modifyitems(config, items):
    path = config.getoption("--known-defects")
    if not path:
        return
    in_force, config.stash[_EXPIRED] = for_kernel(path)
    for defect in in_force:
        marker = _marker(defect)
        for item in items:
            if matches_test(defect["test"], item.nodeid):
                item.add_marker(marker)
                if "failure" in defect:
                    item.stash[_FAILURE] = re.compile(defect["failure"])


def pytest_terminal_summary(terminalreporter, config):
    for e in config.stash.get(_EXPIRED, []):
        terminalreporter.write_line(
            f"known defects: waiver expired on {e['expires']} (line {e['_line']}): {e['test']} "
            "now counts as a failure", yellow=True)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    """Outermost, so it sees pytest's xfail verdict: a known defect's case
    that failed differently from the entry's `failure` is a FAIL."""
    report = yield
    expected = item.stash.get(_FAILURE, None)
    if expected and getattr(report, "wasxfail", None) is not None and call.excinfo is not None:
        got = call.excinfo.exconly()
        if not expected.search(got):
            report.outcome = "failed"
            del report.wasxfail
            report.sections.append(("known defect", f"expected a failure matching "
                                    f"{expected.pattern!r}; this is a different failure"))
    return report
