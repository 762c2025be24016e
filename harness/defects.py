"""Known kernel defects -> strict expected failures, for the project's own runs.

--known-defects FILE (TOML) lists cases that fail because a given kernel
really misbehaves, with the evidence and the failure it gives. On a matching
kernel they become xfail(strict=True): still visible, and a fixed kernel
shows up as XPASS(strict) = FAIL. The case is an expected failure only if it
fails the way the entry says: a different failure (another errno, another
assertion) is a FAIL. A plain `pytest` run, as distro QA uses it, ignores the
list and shows the FAILs.

    [[defect]]
    test = "suites/x/test_y.py::test_z"   # nodeid, or its prefix before "["
    kernels = ["6.18"]                    # series "6.18" or point release "6.18.44"
    reason = "..."
    failure = "expected EINVAL, but the call succeeded"   # regex, searched in
                       # the exception line ("AssertionError: ..."); required
    evidence = "..."
    run = false        # optional: the case crashes or wedges the kernel (oops,
                       # deadlock): report it as an expected failure, NOTRUN
                       # (no `failure` then: it never runs)
"""
import re
import tomllib

import pytest

from helpers import kernel

KEYS = {"test", "kernels", "reason", "failure", "evidence", "run"}
_FAILURE = pytest.StashKey[re.Pattern]()


def pytest_addoption(parser):
    parser.getgroup("mntns").addoption(
        "--known-defects", metavar="FILE",
        help="TOML list of known kernel defects to run as strict expected failures")


def _matches_kernel(spec, version):
    wanted = kernel.parse_version(spec)
    return version[:len(spec.split("."))] == wanted[:len(spec.split("."))]


def _check(path, n, entry):
    where = f"{path}: defect {n} ({entry.get('test', '?')})"
    unknown = set(entry) - KEYS
    if unknown:
        raise pytest.UsageError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
    missing = {"test", "kernels", "reason", "evidence"} - set(entry)
    if entry.get("run", True):
        missing |= {"failure"} - set(entry)
    if missing:
        raise pytest.UsageError(f"{where}: missing {', '.join(sorted(missing))}")
    try:
        re.compile(entry.get("failure", ""))
    except re.error as e:
        raise pytest.UsageError(f"{where}: failure is not a regex: {e}") from None


def load(path, version=None):
    version = version or kernel.version()
    with open(path, "rb") as f:
        try:
            entries = tomllib.load(f).get("defect", [])
        except tomllib.TOMLDecodeError as e:
            raise pytest.UsageError(f"{path}: {e}") from None
    for n, entry in enumerate(entries, 1):
        _check(path, n, entry)
    return [e for e in entries if any(_matches_kernel(k, version) for k in e["kernels"])]


def pytest_collection_modifyitems(config, items):
    path = config.getoption("--known-defects")
    if not path:
        return
    for defect in load(path):
        marker = pytest.mark.xfail(strict=True, run=defect.get("run", True), reason=f"known defect on {kernel.release()}: "
                                   f"{defect['reason']} (evidence: {defect['evidence']})")
        for item in items:
            if item.nodeid == defect["test"] or item.nodeid.startswith(defect["test"] + "["):
                item.add_marker(marker)
                if "failure" in defect:
                    item.stash[_FAILURE] = re.compile(defect["failure"])


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
