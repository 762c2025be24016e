"""Known defects: matching by kernel release, and by the failure they give
(the KTAP writer: tests/test_ktap.py)."""
import pathlib
import re

import pytest

from harness import defects
from helpers import kernel

pytest_plugins = ["pytester"]
REPO = pathlib.Path(__file__).resolve().parent.parent


def entry(test, kernels, failure='"expected EINVAL"', extra=""):
    return (f'[[defect]]\ntest = "{test}"\nkernels = {kernels}\nreason = "r"\n'
            f'failure = {failure}\nevidence = "e"\nref = "fs/x.c f()"\nseen = ["6.18.1"]\n{extra}')


def test_defect_matches_series_and_point_release(tmp_path):
    path = tmp_path / "d.toml"
    path.write_text(entry("t", '["6.18"]') + entry("u", '["7.0.4"]'))
    assert [d["test"] for d in defects.load(path, (6, 18, 44))] == ["t"]
    assert [d["test"] for d in defects.load(path, (7, 0, 4))] == ["u"]
    assert defects.load(path, (7, 0, 13)) == []
    assert defects.load(path, (6, 1, 0)) == []


@pytest.mark.parametrize("text, message", [
    (entry("t", '["6.18"]', failure=None).replace("failure = None\n", ""), "missing failure"),
    (entry("t", '["6.18"]', extra='kernel = "typo"\n'), "unknown key(s) kernel"),
    (entry("t", '["6.18"]').replace('ref = "fs/x.c f()"\n', ""), "missing ref"),
    (entry("t", '["6.18"]', failure='"(unclosed"'), "failure is not a regex"),
    (entry("t", '["6.18", "7.x"]'), "kernel '7.x' is not a series"),
    (entry("t", '["6.18"]').replace('["6.18.1"]', '["soon"]'), "kernel 'soon' is not a series"),
    (entry("t", '["6.18"]', extra='expires = "next year"\n'), "expires must be a TOML date"),
    ('[[defect]\n', "d.toml: "),
])
def test_bad_entries_are_a_usage_error_naming_the_entry(tmp_path, text, message):
    path = tmp_path / "d.toml"
    path.write_text(text)
    with pytest.raises(pytest.UsageError, match=re.escape(message)):
        defects.load(path, (6, 18, 44))


def test_an_error_names_the_line_of_its_entry(tmp_path):
    path = tmp_path / "d.toml"
    path.write_text("# header\n\n" + entry("t", '["6.18"]') + "\n" + entry("u", '["6.18"]', extra='tset = 1\n'))
    with pytest.raises(pytest.UsageError, match=re.escape(f"{path}:12: defect 2 (u): unknown key(s) tset")):
        defects.load(path, (6, 18, 44))


@pytest.mark.parametrize("spec, version, expected", [
    ("7.1", (7, 1, 13), True), ("7.1", (7, 10, 0), False),
    ("7.1.13", (7, 1, 13), True), ("7.1.13", (7, 1, 3), False),
    (">=6.19,<7.2", (6, 19, 14), True), (">=6.19,<7.2", (7, 1, 13), True),
    (">=6.19,<7.2", (7, 2, 0), False), (">=6.19,<7.2", (6, 18, 44), False),
    ("<=6.12.107", (6, 12, 107), True), ("<=6.12.107", (6, 12, 117), False),
    (">7.0", (7, 0, 13), True), ("==7.3.4", (7, 3, 4), True),
])
def test_kernel_ranges(spec, version, expected):
    assert defects.matches_kernel(spec, version) is expected


@pytest.mark.parametrize("pattern, nodeid, expected", [
    ("suites/a/test_b.py::test_c", "suites/a/test_b.py::test_c", True),
    ("suites/a/test_b.py::test_c", "suites/a/test_b.py::test_c[x-1]", True),
    ("suites/a/test_b.py::test_c", "suites/a/test_b.py::test_cd", False),
    ("suites/a/*::test_c*", "suites/a/test_b.py::test_cd[md0]", True),
    ("suites/*/test_b.py::test_?", "suites/a/test_b.py::test_c", True),
    ("suites/a/test_b.py::test_c[x-1]", "suites/a/test_b.py::test_c[x-1]", True),
    ("suites/a/*::test_c[x-1]", "suites/a/test_b.py::test_c[x-2]", False),
])
def test_test_patterns(pattern, nodeid, expected):
    assert defects.matches_test(pattern, nodeid) is expected


def test_a_waiver_applies_until_it_expires(tmp_path):
    import datetime
    path = tmp_path / "d.toml"
    path.write_text(entry("t", '["6.18"]', extra="expires = 2027-01-31\n"))
    assert defects.load(path, (6, 18, 44), today=datetime.date(2027, 1, 31))
    assert defects.load(path, (6, 18, 44), today=datetime.date(2027, 2, 1)) == []
    assert [e["test"] for e in defects.expired(path, (6, 18, 44), today=datetime.date(2027, 2, 1))] == ["t"]


def test_a_case_that_is_never_run_needs_no_failure(tmp_path):
    path = tmp_path / "d.toml"
    path.write_text(entry("t", '["6.18"]', failure=None, extra="run = false\n")
                    .replace("failure = None\n", ""))
    assert defects.load(path, (6, 18, 44))[0]["run"] is False


INNER = """
import errno

def test_einval():
    raise AssertionError("expected EINVAL, but the call succeeded")

def test_eperm():
    raise AssertionError("expected EINVAL, got EPERM: mount(...): [EPERM] Operation not permitted")

def test_fixed():
    pass
"""


def test_only_the_named_failure_is_expected(pytester):
    """An entry covers its own failure; the same case failing differently,
    or passing, is a FAIL."""
    pytester.makepyfile(test_inner=INNER)
    pytester.makeconftest(f"import sys; sys.path.insert(0, {str(REPO)!r})\n"
                          "pytest_plugins = ['harness.features', 'harness.isolation', 'harness.defects']\n")
    series = ".".join(map(str, kernel.version()[:2]))
    (pytester.path / "d.toml").write_text("".join(
        entry(f"test_inner.py::{name}", f'["{series}"]', failure='"^AssertionError: expected EINVAL, but"')
        for name in ("test_einval", "test_eperm", "test_fixed")))
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-rA", "--known-defects", "d.toml")
    result.assert_outcomes(xfailed=1, failed=2)
    out = result.stdout.str()
    assert "XFAIL test_inner.py::test_einval" in out
    assert "FAILED test_inner.py::test_eperm" in out
    assert "expected a failure matching '^AssertionError: expected EINVAL, but'; this is a different failure" in out
    assert "FAILED test_inner.py::test_fixed" in out and "XPASS(strict)" in out
