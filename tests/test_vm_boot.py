"""One real boot through the runner (slow: ~40 s under TCG).  Opt in with
MNTNS_VM_BOOT_TEST=1; needs root, qemu-system-x86, busybox-static, network or
a cached 7.3 kernel."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.vm
@pytest.mark.skipif(os.environ.get("MNTNS_VM_BOOT_TEST") != "1", reason="set MNTNS_VM_BOOT_TEST=1")
@pytest.mark.skipif(os.environ.get("MNTNS_VM") == "1", reason="no nested VMs")
@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("qemu-system-x86_64"),
                    reason="needs root and qemu")
def test_boot_7_3_runs_guest_checks(tmp_path):
    r = subprocess.run([sys.executable, "-m", "pytest", "-p", "vm.plugin", "--kernel", "7.3",
                        "--vm-timeout", "600", "--results-dir", str(tmp_path),
                        "tests/test_vm_guest.py"], cwd=REPO, capture_output=True, text=True)
    summary = json.loads((tmp_path / "summary.json").read_text())
    (rel, k), = summary["kernels"].items()
    assert k["status"] == "ok", r.stdout[-3000:]
    assert k["nullfs_pivot_root"] is True
    assert k["failed"] == k["errors"] == 0 and k["passed"] >= 3
    assert r.returncode == 0
