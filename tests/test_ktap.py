"""--ktap output: KTAP v1 as Documentation/dev-tools/ktap.rst states it, a
subtest per suite directory, checked against those rules and by the
kernel's own parser (tools/testing/kunit/kunit_parser.py of Debian's
linux-source-7.3: tests/kunit_tool.py fetches it once)."""
import os
import pathlib
import re
import subprocess
import sys

import pytest

import kunit_tool
from vm import qemu, report

# In the pytest process: the module-scoped runs below are then made once,
# not again in each case's forked process (harness/isolation.py).
pytestmark = pytest.mark.no_fork

REPO = pathlib.Path(__file__).resolve().parent.parent

# One case per verdict the writer knows, run under harness/isolation.py as
# the suite is (a forked process per case) plus one in-process timeout, so
# both of pytest-timeout's report shapes are seen.
CASES = """
import os, time, pytest

@pytest.fixture
def broken():
    raise RuntimeError("fixture boom")

@pytest.fixture
def bad_teardown():
    yield
    raise RuntimeError("teardown boom")

def test_pass(): pass

def test_fail():
    value = 3
    assert value == 4, "value must be four"

def test_child_traceback():
    raise AssertionError("child failed\\nTraceback (most recent call last):\\n"
                         '  File "child.py", line 1, in f\\n    g()\\nValueError: inner')

def test_subtest_text():
    pytest.fail("Subtest: not a header", pytrace=False)

def test_skip(): pytest.skip("needs a thing")

@pytest.mark.xfail(reason="known defect", strict=True)
def test_xfail(): assert 0

@pytest.mark.xfail(reason="fixed now", strict=True)
def test_xpass_strict(): pass

@pytest.mark.xfail(reason="maybe fixed", strict=False)
def test_xpass(): pass

def test_setup_error(broken): pass

def test_teardown_error(bad_teardown): pass

@pytest.mark.timeout(1)
def test_timeout(): time.sleep(60)

@pytest.mark.no_fork
@pytest.mark.timeout(1)
def test_timeout_in_process(): time.sleep(60)

def test_died(): os._exit(7)
"""

# Two more suite directories: one that passes (a case in a subdirectory of
# suites/b), one whose cases all skip (not under suites/: its own directory).
OTHERS = {
    "suites/b/sub/test_m.py": "import pytest\ndef test_one(): pass\ndef test_two(): pytest.skip('no b')\n",
    "other/test_o.py": "import pytest\ndef test_s1(): pytest.skip('no o')\ndef test_s2(): pytest.skip('no o')\n",
}
SUITE = "suites/k"  # where CASES are (after suites/b: its in-process timeout upsets what follows)
# suite -> its result line after the number
SUITES = {"other": "other # SKIP all 2 tests skipped", "suites/b": "suites/b", "suites/k": "suites/k"}
SUITE_OK = {"other": "ok", "suites/b": "ok", "suites/k": "not ok"}

# test function -> (ok / not ok, the directive part of its result line,
# kunit_parser's status: it knows SKIP only and reads the rest as ok / not ok)
EXPECTED = {
    "test_pass": ("ok", "", "SUCCESS"),
    "test_fail": ("not ok", "", "FAILURE"),
    "test_child_traceback": ("not ok", "", "FAILURE"),
    "test_subtest_text": ("not ok", "", "FAILURE"),
    "test_skip": ("ok", " # SKIP needs a thing", "SKIPPED"),
    "test_xfail": ("ok", " # XFAIL known defect", "SUCCESS"),
    "test_xpass_strict": ("not ok", " # XPASS fixed now", "FAILURE"),
    "test_xpass": ("ok", " # XPASS maybe fixed", "SUCCESS"),
    "test_setup_error": ("not ok", " # ERROR setup failed: RuntimeError: fixture boom", "FAILURE"),
    "test_teardown_error": ("not ok", " # ERROR teardown failed: RuntimeError: teardown boom", "FAILURE"),
    "test_timeout": ("not ok", " # TIMEOUT 1.0 seconds", "FAILURE"),
    "test_timeout_in_process": ("not ok", " # TIMEOUT 1.0 seconds", "FAILURE"),
    "test_died": ("not ok", " # ERROR test process exited with status 7 without a result", "FAILURE"),
}
TOTALS = "# Totals: pass:1 fail:5 xfail:1 xpass:2 skip:1 error:3"  # of suites/k
ALL_TOTALS = "# Totals: pass:2 fail:5 xfail:1 xpass:2 skip:4 error:3"

RESULT_RE = re.compile(r"^(ok|not ok) (\d+)(?: ([^#]*?))?(?: # (\S*)(?: (.*))?)?$")


def run_cases(where: pathlib.Path, *args, extra: dict[str, str] | None = None) -> list[str]:
    """pytest on CASES (in suites/k/) and OTHERS in WHERE with the project's
    plugins; the KTAP lines. A plain subprocess rather than pytester, so
    one run serves a module."""
    (where / "conftest.py").write_text(
        f"import sys; sys.path.insert(0, {str(REPO)!r})\n"
        "pytest_plugins = ['harness.features', 'harness.isolation', 'harness.ktap']\n")
    (where / "pytest.ini").write_text("[pytest]\ntimeout_method = signal\nmarkers =\n    no_fork: in the pytest process\n")
    for name, text in {f"{SUITE}/test_k.py": CASES, **OTHERS, **(extra or {})}.items():
        (where / name).parent.mkdir(parents=True, exist_ok=True)
        (where / name).write_text(text)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "COV_"))}
    run = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "--ktap", "out.ktap", *args],
                         cwd=where, env=env, capture_output=True, text=True, timeout=300)
    assert (where / "out.ktap").exists(), run.stdout + run.stderr
    return (where / "out.ktap").read_text().splitlines()


@pytest.fixture(scope="module", params=[(), ("-n", "2")], ids=["serial", "xdist"])
def ktap(request, tmp_path_factory):
    return run_cases(tmp_path_factory.mktemp("ktap"), *request.param)


def suites(lines) -> dict[str, tuple[str, list[str]]]:
    """Suite -> (its top-level result line, its block's lines un-indented):
    read from the indentation alone, independently of the writer."""
    out, block = {}, []
    for line in lines[2:]:
        if line.startswith("  "):
            block.append(line[2:])
        elif m := RESULT_RE.match(line):
            out[m[3]] = (line, block)
            block = []
    return out


def results(lines) -> dict[str, tuple[str, str]]:
    """Test function -> (ok / not ok, ' # directive data') of its result line."""
    out = {}
    for line in lines:
        if m := RESULT_RE.match(line):
            out[m[3].split("::")[-1]] = (m[1], f" # {m[4]} {m[5] or ''}".rstrip() if m[4] else "")
    return out


def test_result_lines_and_directives(ktap):
    _, block = suites(ktap)[SUITE]
    assert results(block) == {name: (ok, d) for name, (ok, d, _) in EXPECTED.items()}
    assert block[-1] == TOTALS
    assert ktap[-1] == ALL_TOTALS


def test_a_subtest_per_suite_directory(ktap):
    """Suites in collection order; a suite fails if one of its cases does;
    one whose cases all skipped is a SKIP."""
    assert ktap[:2] == ["KTAP version 1", f"1..{len(SUITES)}"]
    found = suites(ktap)
    assert list(found) == list(SUITES)
    assert [line for line, _ in found.values()] == [
        f"{SUITE_OK[s]} {n} {SUITES[s]}" for n, s in enumerate(SUITES, 1)]
    assert [l for l in found["suites/b"][1] if RESULT_RE.match(l)] == [
        "ok 1 suites/b/sub/test_m.py::test_one", "ok 2 suites/b/sub/test_m.py::test_two # SKIP no b"]


def test_follows_ktap_rst(ktap):
    """The rules of ktap.rst, read independently of the writer: a version
    line and the plan at each level; a subtest's header, its results
    numbered 1..N, then its result line one level up; a description
    without "#", a known directive, TIMEOUT and ERROR only on "not ok",
    every other line a "#" diagnostic."""
    assert ktap[:2] == ["KTAP version 1", f"1..{len(SUITES)}"]
    assert all(l.startswith(("  ", "ok ", "not ok ", "# ")) for l in ktap[2:])
    for n, (suite, (line, block)) in enumerate(suites(ktap).items(), 1):
        assert RESULT_RE.match(line)[2] == str(n)
        assert block[:2] == ["KTAP version 1", f"# Subtest: {suite}"]
        plan = re.fullmatch(r"1\.\.(\d+)", block[2])
        numbers = []
        for line in block[3:]:
            if m := RESULT_RE.match(line):
                numbers.append(int(m[2]))
                assert m[3] and m[4] in (None, "SKIP", "XFAIL", "TIMEOUT", "ERROR", "XPASS"), line
                assert m[4] not in ("TIMEOUT", "ERROR") or m[1] == "not ok", line
            else:
                assert line.startswith("# "), line
        assert numbers == list(range(1, int(plan[1]) + 1))


def _case_block(lines, name) -> list[str]:
    """The diagnostic lines directly before NAME's result line."""
    end = next(i for i, l in enumerate(lines) if RESULT_RE.match(l) and l.split(" # ")[0].endswith("::" + name))
    start = end
    while start > 0 and lines[start - 1].startswith("# "):
        start -= 1
    return lines[start:end]


# The "# " lines directly before a case's result line: where it failed and
# its exception lines, no traceback.
DIAGNOSTICS = {
    "test_fail": ["# suites/k/test_k.py::test_fail: call failed at suites/k/test_k.py:", "# AssertionError: value must be four",
                  "# assert 3 == 4"],
    # a traceback inside the exception's text: its exception line, not its frames
    "test_child_traceback": ["# suites/k/test_k.py::test_child_traceback: call failed at suites/k/test_k.py:",
                             "# AssertionError: child failed", "# ValueError: inner"],
    "test_setup_error": ["# suites/k/test_k.py::test_setup_error: setup failed at suites/k/test_k.py:", "# RuntimeError: fixture boom"],
    "test_timeout": ["# suites/k/test_k.py::test_timeout: call failed",
                     "# Timeout (>1.0s) from pytest-timeout. (test process group"],
    "test_died": ["# suites/k/test_k.py::test_died: call failed", "# test process exited with status 7 without a result"],
    "test_xpass_strict": ["# suites/k/test_k.py::test_xpass_strict: call failed", "# [XPASS(strict)] fixed now"],
    # kunit_parser would take "# Subtest: ..." for a subtest's header
    "test_subtest_text": ["# suites/k/test_k.py::test_subtest_text: call failed", "#  Subtest: not a header"],
}


def test_failure_text_before_the_result_line(ktap):
    _, lines = suites(ktap)[SUITE]
    for name, text in DIAGNOSTICS.items():
        block = _case_block(lines, name)
        assert len(block) == len(text) and all(l.startswith(t) for l, t in zip(block, text)), block
    assert _case_block(lines, "test_pass") == _case_block(lines, "test_skip") == []


def test_short_of_plan_says_so(tmp_path):
    """-x stops in suites/k: its block says how many of its cases ran, and
    the top level that suites/z never started."""
    lines = run_cases(tmp_path, "--maxfail=1", "-k", "test_pass or test_fail or test_skip or test_zed",
                      extra={"suites/z/test_z.py": "def test_zed(): pass\n"})
    assert lines[:2] == ["KTAP version 1", "1..2"]
    line, block = suites(lines)[SUITE]
    assert (line, block[2], block[-2:]) == ("not ok 1 suites/k", "1..3", [
        "# Planned tests != run tests (3 != 2)", "# Totals: pass:1 fail:1 xfail:0 xpass:0 skip:0 error:0"])
    assert lines[-2:] == ["# Planned tests != run tests (2 != 1)", "# Totals: pass:1 fail:1 xfail:0 xpass:0 skip:0 error:0"]


def test_runner_progress_counts_cases_and_failures(ktap, tmp_path):
    (tmp_path / "ktap.txt").write_text("\n".join(ktap) + "\n")
    cases = len(EXPECTED) + 4  # and suites/b's two, other's two
    not_ok = sum(ok == "not ok" for ok, _, _ in EXPECTED.values())
    assert qemu.ktap_progress(tmp_path / "ktap.txt") == qemu.Progress(cases, cases, not_ok)


DIES = {"suites/z/test_die.py": "import os, pytest\n@pytest.mark.no_fork\ndef test_zz_dies(): os._exit(3)\n"}


def test_while_running_a_flat_document_with_every_result_so_far(tmp_path):
    """pytest killed mid-run (a guest that panics) leaves the live flat
    document: valid KTAP, every result so far, the progress the runner reads."""
    lines = run_cases(tmp_path, "-k", "test_pass or test_one or test_zz_dies", extra=DIES)
    assert lines == ["KTAP version 1", "1..3", "ok 1 suites/b/sub/test_m.py::test_one",
                     "ok 2 suites/k/test_k.py::test_pass"]
    assert qemu.ktap_progress(tmp_path / "out.ktap") == qemu.Progress(2, 3, 0)


FLAKY = {"suites/f/test_f.py": """import pathlib
def test_flaky():
    tried = pathlib.Path(__file__).with_name("tried")
    if not tried.exists():
        tried.write_text("once")
        assert False, "the first attempt fails"
"""}


def test_flaky_is_said(tmp_path):
    """--rerun-failures: a case that failed, then passed is ok (as the gate
    counts it) with a FLAKY directive and its first failure's text."""
    lines = run_cases(tmp_path, "--rerun-failures=1", "-k", "test_flaky", extra=FLAKY)
    _, block = suites(lines)["suites/f"]
    assert block[3:] == [
        "# suites/f/test_f.py::test_flaky: call failed at suites/f/test_f.py:6 (first attempt)",
        "# AssertionError: the first attempt fails", "# assert False",
        "ok 1 suites/f/test_f.py::test_flaky # FLAKY failed, then passed on a rerun",
        "# Totals: pass:1 fail:0 xfail:0 xpass:0 skip:0 error:0"]


# --- the kernel's parser --------------------------------------------------

@pytest.fixture(scope="module")
def kunit_dir():
    return kunit_tool.kunit_dir()


KUNIT_STATUS = {"SKIP": "SKIPPED", "PASS": "SUCCESS", "XFAIL": "SUCCESS"}  # else FAILURE


def test_kunit_parser_reads_it(ktap, kunit_dir, tmp_path):
    (tmp_path / "ktap.txt").write_text("\n".join(ktap) + "\n")
    parsed = kunit_tool.parse(kunit_dir, tmp_path / "ktap.txt")
    assert [(t["name"], t["status"]) for t in parsed["subtests"]] == [
        ("other", "SKIPPED"), ("suites/b", "SUCCESS"), ("suites/k", "FAILURE")]
    assert {t["name"].split("::")[-1]: t["status"] for t in parsed["subtests"][2]["subtests"]} == {
        name: status for name, (_, _, status) in EXPECTED.items()}
    assert parsed["subtests"][2]["counts"] == {"passed": 3, "failed": 9, "crashed": 0, "skipped": 1, "errors": 0}
    assert parsed["counts"] == {"passed": 4, "failed": 9, "crashed": 0, "skipped": 4, "errors": 0}


def test_kunit_parser_reads_the_merged_report(ktap, kunit_dir, tmp_path):
    """vm/report.py nests each kernel's file one level down: still valid."""
    for kernel in ("7.3.4", "6.18.9"):
        (tmp_path / kernel).mkdir()
        (tmp_path / kernel / "ktap.txt").write_text("\n".join(ktap) + "\n")
    report.merge_ktap({k: tmp_path / k for k in ("7.3.4", "6.18.9")},
                      {"7.3.4": ("ok", ""), "6.18.9": ("ok", "")}, tmp_path / "merged.txt")
    parsed = kunit_tool.parse(kunit_dir, tmp_path / "merged.txt")
    assert [(t["name"], t["status"]) for t in parsed["subtests"]] == [("7.3.4", "FAILURE"), ("6.18.9", "FAILURE")]
    assert [s["name"] for s in parsed["subtests"][0]["subtests"]] == list(SUITES)
    assert parsed["counts"] == {"passed": 8, "failed": 18, "crashed": 0, "skipped": 8, "errors": 0}


def test_kunit_parser_reads_a_real_run_of_the_suite(kunit_dir, tmp_path):
    """Two of the project's suite directories on this host (cases that pass,
    skip, and are known defects here), with --ktap and --junitxml: the
    kernel's parser finds in the KTAP what pytest's JUnit says."""
    run = subprocess.run([sys.executable, "-m", "pytest", "suites/nullfs", "suites/mntns_unbindable", "-q",
                          "-p", "no:cacheprovider", "--known-defects=known-defects.toml",
                          f"--ktap={tmp_path}/k.txt", f"--junitxml={tmp_path}/j.xml"],
                         cwd=REPO, capture_output=True, text=True, timeout=100)
    assert (tmp_path / "k.txt").exists(), run.stdout + run.stderr
    junit = report.parse_junit(tmp_path / "j.xml")
    parsed = kunit_tool.parse(kunit_dir, tmp_path / "k.txt")
    got = {case["name"]: case["status"] for suite in parsed["subtests"] for case in suite["subtests"]}
    assert got == {nid: KUNIT_STATUS.get(status, "FAILURE") for nid, status in junit.items()}
    assert [s["name"] for s in parsed["subtests"]] == ["suites/nullfs", "suites/mntns_unbindable"]
    for suite in parsed["subtests"]:
        mine = [KUNIT_STATUS.get(s, "FAILURE") for n, s in junit.items() if n.startswith(suite["name"] + "/")]
        assert suite["counts"] == {"passed": mine.count("SUCCESS"), "failed": mine.count("FAILURE"), "crashed": 0,
                                   "skipped": mine.count("SKIPPED"), "errors": 0}, suite["name"]
