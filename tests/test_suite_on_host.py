"""The whole suite on the running kernel, as the README's main command runs it.

Known kernel defects (known-defects.toml) run as strict expected failures, so
this passes only if every other case passes or skips with a reason, and a
fixed kernel is noticed (XPASS strict = FAIL).
"""
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET

import pytest

import as_nobody

REPO = pathlib.Path(__file__).resolve().parent.parent
NOBODY = as_nobody.NOBODY


def run_suite(tmp_path, *prefix):
    # A directory of its own under /tmp: tmp_path's parents are private to
    # root, and the unprivileged run must be able to write its report.
    out = pathlib.Path(tempfile.mkdtemp(dir="/tmp", prefix="mntns-suite."))
    out.chmod(0o777)
    junit = out / "junit.xml"
    cmd = [*prefix, sys.executable, "-m", "pytest", "suites", "-n", "auto", "-q",
           "--known-defects", "known-defects.toml", f"--junitxml={junit}"]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=3000)
    print(proc.stdout[-6000:], proc.stderr[-3000:])
    try:
        return proc, ET.parse(junit).getroot()
    finally:
        shutil.rmtree(out)


def skip_messages(root):
    return [(case.get("name"), skip.get("message") or "")
            for case in root.iter("testcase") for skip in case.findall("skipped")]


def counts(root):
    suite = root.find("testsuite")
    return {k: int(suite.get(k)) for k in ("tests", "failures", "errors", "skipped")}


# The whole suite in a subprocess: its own -n auto run takes a minute or more
# on a loaded 2-core machine, past the 120 s per-test default.
@pytest.mark.timeout(1800)
@pytest.mark.host_mntns
def test_suite_as_root_leaves_host_mount_table_identical(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("needs root: runs the suite as root")
    before = pathlib.Path("/proc/self/mountinfo").read_text()
    proc, root = run_suite(tmp_path)
    after = pathlib.Path("/proc/self/mountinfo").read_text()
    assert before == after, "the suite changed the host's mount table"
    assert proc.returncode == 0, f"suite failed: {counts(root)}"
    assert all(msg.strip() for _, msg in skip_messages(root)), skip_messages(root)
    print("root:", counts(root))


@pytest.mark.timeout(1800)
def test_suite_as_unprivileged_user_skips_root_cases_with_reason(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("needs root: switches to uid 65534 with setpriv")
    proc, root = run_suite(tmp_path, *as_nobody.prefix(REPO))
    assert proc.returncode == 0, f"suite failed as uid {NOBODY}: {counts(root)}"
    messages = skip_messages(root)
    assert all(msg.strip() for _, msg in messages), messages
    assert any("needs root" in msg for _, msg in messages), "no root-only case was skipped"
    print("non-root:", counts(root))
