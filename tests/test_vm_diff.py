"""Baseline diff (vm/diff.py): only what got worse fails the gate."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

from vm import diff

REPO = Path(__file__).resolve().parent.parent
K73, K735 = "7.3.4+deb13-cloud-amd64", "7.3.5+deb13-cloud-amd64"


def summary(tests, status="ok", kernel=K73):
    return {"kernels": {kernel: {"status": status, "reason": "console: BUG: x" if status != "ok" else None}},
            "tests": {nid: {kernel: o} for nid, o in tests.items()}}


@pytest.mark.parametrize("before, after, change", [
    ("PASS", "FAIL", "regression"), ("PASS", "ERROR", "regression"),
    ("PASS", "SKIP", "regression"),  # a probe that now says "absent" hides tests
    ("XFAIL", "FAIL", "regression"), ("SKIP", "FAIL", "regression"),
    ("FAIL", "PASS", "fixed"), ("XFAIL", "XPASS", "fixed"),
    ("PASS", None, "regression"), ("SKIP", None, "gone"),
    (None, "FAIL", "new failure"),
])
def test_changes(before, after, change):
    old = summary({"t": before} if before else {})
    new = summary({"t": after} if after else {})
    (c,) = diff.compare(old, new)["tests"]
    assert c["change"] == change


@pytest.mark.parametrize("before, after", [("PASS", "PASS"), ("FAIL", "FAIL"), ("XFAIL", "XFAIL"),
                                           ("SKIP", "SKIP"), (None, "PASS")])
def test_what_did_not_get_worse_passes_the_gate(before, after):
    d = diff.compare(summary({"t": before} if before else {}), summary({"t": after}))
    assert d["regressions"] == 0 and diff.exit_code(d) == 0


def test_a_moved_point_release_is_compared_with_its_series():
    d = diff.compare(summary({"t": "PASS"}), summary({"t": "FAIL"}, kernel=K735))
    (c,) = d["tests"]
    assert (c["kernel"], c["baseline"], c["change"]) == (K735, K73, "regression")
    assert diff.exit_code(d) == 1


def test_a_kernel_that_now_crashes_is_exit_6():
    d = diff.compare(summary({"t": "PASS"}), summary({}, status="error"))
    assert d["kernels"][0]["change"] == "regression" and diff.exit_code(d) == 6
    assert "kernel ok -> error: console: BUG: x" in diff.text(d)


def test_a_kernel_without_baseline_is_said_not_hidden():
    d = diff.compare(summary({"t": "PASS"}), summary({"t": "PASS"}, kernel="6.18.15+deb13-cloud-amd64"))
    assert d["kernels"][0]["change"] == "no baseline"
    assert "NO BASELINE" in diff.text(d)


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "vm", "diff", *map(str, args)], cwd=REPO,
                          capture_output=True, text=True)


def test_cli_edited_summary_is_a_regression(tmp_path):
    """The gate's own check: a baseline edited to PASS where the new run FAILs."""
    (tmp_path / "old").mkdir(), (tmp_path / "new").mkdir()
    (tmp_path / "old/summary.json").write_text(json.dumps(summary({"a": "PASS", "b": "FAIL"})))
    (tmp_path / "new/summary.json").write_text(json.dumps(summary({"a": "FAIL", "b": "FAIL"})))
    p = run_cli(tmp_path / "old", tmp_path / "new", "--json", tmp_path / "d.json")
    assert p.returncode == 1, p.stdout + p.stderr
    assert f"REGRESSION   a on {K73}: PASS -> FAIL" in p.stdout
    assert "diff: 1 regression(s), 0 fixed" in p.stdout
    assert json.loads((tmp_path / "d.json").read_text())["regressions"] == 1
    p = run_cli(tmp_path / "new", tmp_path / "new")
    assert (p.returncode, p.stdout.strip()) == (0, "diff: 0 regression(s), 0 fixed")


def test_cli_bad_input_is_one_line(tmp_path):
    p = run_cli(tmp_path / "nothing", tmp_path)
    assert p.returncode == 4
    assert p.stderr.count("\n") == 1 and "not a summary.json of the VM runner" in p.stderr
