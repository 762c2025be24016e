"""--ktap output: KTAP v1 as Documentation/dev-tools/ktap.rst states it,
checked against those rules and, where a kernel tree's kunit tool is at
hand, by the kernel's own parser (tools/testing/kunit/kunit_parser.py)."""
import glob
import json
import os
import pathlib
import re
import subprocess
import sys

import pytest

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
TOTALS = "# Totals: pass:1 fail:5 xfail:1 xpass:2 skip:1 error:3"

RESULT_RE = re.compile(r"^(ok|not ok) (\d+)(?: ([^#]*?))?(?: # (\S*)(?: (.*))?)?$")


def run_cases(where: pathlib.Path, *args) -> list[str]:
    """pytest on CASES in WHERE with the project's plugins; the KTAP lines.
    A plain subprocess rather than pytester, so one run serves a module."""
    (where / "conftest.py").write_text(
        f"import sys; sys.path.insert(0, {str(REPO)!r})\n"
        "pytest_plugins = ['harness.features', 'harness.isolation', 'harness.ktap']\n")
    (where / "pytest.ini").write_text("[pytest]\ntimeout_method = signal\nmarkers =\n    no_fork: in the pytest process\n")
    (where / "test_k.py").write_text(CASES)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "COV_"))}
    run = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "--ktap", "out.ktap", *args],
                         cwd=where, env=env, capture_output=True, text=True, timeout=300)
    assert (where / "out.ktap").exists(), run.stdout + run.stderr
    return (where / "out.ktap").read_text().splitlines()


@pytest.fixture(scope="module", params=[(), ("-n", "2")], ids=["serial", "xdist"])
def ktap(request, tmp_path_factory):
    return run_cases(tmp_path_factory.mktemp("ktap"), *request.param)


def results(lines) -> dict[str, tuple[str, str]]:
    """Test function -> (ok / not ok, ' # directive data') of its result line."""
    out = {}
    for line in lines:
        if m := RESULT_RE.match(line):
            out[m[3].split("::")[-1]] = (m[1], f" # {m[4]} {m[5] or ''}".rstrip() if m[4] else "")
    return out


def test_result_lines_and_directives(ktap):
    assert results(ktap) == {name: (ok, d) for name, (ok, d, _) in EXPECTED.items()}
    assert ktap[-1] == TOTALS


def test_follows_ktap_rst(ktap):
    """The rules of ktap.rst, read independently of the writer: a version
    line, the plan, results numbered 1..N at one level, a description
    without "#", a known directive, TIMEOUT and ERROR only on "not ok",
    every other line a "#" diagnostic."""
    assert ktap[:2] == ["KTAP version 1", f"1..{len(EXPECTED)}"]
    numbers = []
    for line in ktap[2:]:
        if m := RESULT_RE.match(line):
            numbers.append(int(m[2]))
            assert m[3] and m[4] in (None, "SKIP", "XFAIL", "TIMEOUT", "ERROR", "XPASS"), line
            assert m[4] not in ("TIMEOUT", "ERROR") or m[1] == "not ok", line
        else:
            assert line.startswith("# "), line
    assert numbers == list(range(1, len(EXPECTED) + 1))


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
    "test_fail": ["# test_k.py::test_fail: call failed at test_k.py:", "# AssertionError: value must be four",
                  "# assert 3 == 4"],
    # a traceback inside the exception's text: its exception line, not its frames
    "test_child_traceback": ["# test_k.py::test_child_traceback: call failed at test_k.py:",
                             "# AssertionError: child failed", "# ValueError: inner"],
    "test_setup_error": ["# test_k.py::test_setup_error: setup failed at test_k.py:", "# RuntimeError: fixture boom"],
    "test_timeout": ["# test_k.py::test_timeout: call failed",
                     "# Timeout (>1.0s) from pytest-timeout. (test process group"],
    "test_died": ["# test_k.py::test_died: call failed", "# test process exited with status 7 without a result"],
    "test_xpass_strict": ["# test_k.py::test_xpass_strict: call failed", "# [XPASS(strict)] fixed now"],
    # kunit_parser would take "# Subtest: ..." for a subtest's header
    "test_subtest_text": ["# test_k.py::test_subtest_text: call failed", "#  Subtest: not a header"],
}


def test_failure_text_before_the_result_line(ktap):
    for name, text in DIAGNOSTICS.items():
        block = _case_block(ktap, name)
        assert len(block) == len(text) and all(l.startswith(t) for l, t in zip(block, text)), block
    assert _case_block(ktap, "test_pass") == _case_block(ktap, "test_skip") == []


def test_short_of_plan_says_so(tmp_path):
    lines = run_cases(tmp_path, "--maxfail=1", "-k", "test_pass or test_fail or test_skip")
    assert lines[-2:] == ["# Planned tests != run tests (3 != 2)", "# Totals: pass:1 fail:1 xfail:0 xpass:0 skip:0 error:0"]


def test_runner_progress_counts_cases_and_failures(ktap, tmp_path):
    (tmp_path / "ktap.txt").write_text("\n".join(ktap) + "\n")
    not_ok = sum(ok == "not ok" for ok, _, _ in EXPECTED.values())
    assert qemu.ktap_progress(tmp_path / "ktap.txt") == qemu.Progress(len(EXPECTED), len(EXPECTED), not_ok)


# --- the kernel's parser --------------------------------------------------

def _kunit_dir() -> pathlib.Path | None:
    """tools/testing/kunit of a kernel tree: $MNTNS_KUNIT_DIR, else an
    unpacked tree under /usr/src."""
    candidates = [os.environ.get("MNTNS_KUNIT_DIR", ""), *sorted(glob.glob("/usr/src/linux*/tools/testing/kunit"))]
    return next((pathlib.Path(d) for d in candidates if d and os.path.isfile(f"{d}/kunit_parser.py")), None)


@pytest.fixture(scope="module")
def kunit_dir():
    found = _kunit_dir()
    if found is None:
        pytest.skip("the kernel's kunit_parser.py not found: set MNTNS_KUNIT_DIR to a kernel tree's "
                    "tools/testing/kunit (Debian: apt-get install linux-source-6.12, then "
                    "tar -C /usr/src -xJf /usr/src/linux-source-6.12.tar.xz "
                    "--wildcards 'linux-source-6.12/tools/testing/kunit/*.py')")
    return found


# Runs in its own interpreter, so the kernel's modules stay out of the pytest
# process; newer kernels' parse_run_tests also takes a Printer.
KUNIT_RUN = r"""
import inspect, io, json, sys
sys.path.insert(0, sys.argv[1])
import kunit_parser, kunit_printer
args = [open(sys.argv[2]).read().splitlines()]
if len(inspect.signature(kunit_parser.parse_run_tests).parameters) > 1:
    args.append(kunit_printer.Printer(io.StringIO()))
def tree(t):
    return {"name": t.name, "status": t.status.name, "counts": vars(t.counts), "subtests": [tree(s) for s in t.subtests]}
json.dump(tree(kunit_parser.parse_run_tests(*args)), open(sys.argv[3], "w"))
"""


def kunit_parse(kunit_dir, path: pathlib.Path) -> dict:
    out = path.with_suffix(".json")
    subprocess.run([sys.executable, "-c", KUNIT_RUN, str(kunit_dir), str(path), str(out)],
                   check=True, capture_output=True, timeout=60)
    return json.loads(out.read_text())


def test_kunit_parser_reads_it(ktap, kunit_dir, tmp_path):
    (tmp_path / "ktap.txt").write_text("\n".join(ktap) + "\n")
    parsed = kunit_parse(kunit_dir, tmp_path / "ktap.txt")
    assert {t["name"].split("::")[-1]: t["status"] for t in parsed["subtests"]} == {
        name: status for name, (_, _, status) in EXPECTED.items()}
    assert parsed["counts"] == {"passed": 3, "failed": 9, "crashed": 0, "skipped": 1, "errors": 0}


def test_kunit_parser_reads_the_merged_report(ktap, kunit_dir, tmp_path):
    """vm/report.py nests each kernel's file one level down: still valid."""
    for kernel in ("7.3.4", "6.18.9"):
        (tmp_path / kernel).mkdir()
        (tmp_path / kernel / "ktap.txt").write_text("\n".join(ktap) + "\n")
    report.merge_ktap({k: tmp_path / k for k in ("7.3.4", "6.18.9")},
                      {"7.3.4": ("ok", ""), "6.18.9": ("ok", "")}, tmp_path / "merged.txt")
    parsed = kunit_parse(kunit_dir, tmp_path / "merged.txt")
    assert [(t["name"], t["status"]) for t in parsed["subtests"]] == [("7.3.4", "FAILURE"), ("6.18.9", "FAILURE")]
    assert parsed["counts"] == {"passed": 6, "failed": 18, "crashed": 0, "skipped": 2, "errors": 0}
