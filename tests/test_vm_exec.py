"""python -m vm exec: bad input is one line and exit 4 before anything boots;
a command runs as root in the guest, in the invocation directory, with its
output streamed and kept and its exit status passed through."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

import vm_boot
from vm import errors

REPO = Path(__file__).resolve().parents[1]


def vm_exec(*args, **kw):
    return subprocess.run([sys.executable, "-m", "vm", "exec", *args], cwd=REPO,
                          capture_output=True, text=True, **kw)


@pytest.mark.parametrize("args,message", [
    ([], "no command"),
    (["--kernel", "7.3"], "no command"),
    (["--kernel", "7.3", "--"], "no command after '--'"),
    (["--", "true"], "the following arguments are required: --kernel"),
    (["--kernel", "7.3", "--bogus", "--", "true"], "unrecognized arguments: --bogus"),
    (["--kernel", "all", "--", "true"], "vm exec boots one kernel"),
    (["--kernel", "7.3", "--vm-accel", "xen", "--", "true"], "invalid choice: 'xen'"),
])
def test_usage_errors_are_one_line_and_exit_4(args, message):
    p = vm_exec(*args)
    assert p.returncode == errors.USAGE
    assert p.stdout == ""
    (line,) = p.stderr.splitlines()
    assert line.startswith("vm exec: ") and message in line


def test_command_runs_as_root_in_the_guest_with_its_exit_status(tmp_path):
    script = 'uname -r; id -u; pwd; echo "accel=$MNTNS_VM_ACCEL"; echo to-stderr >&2; exit 7'
    p = vm_exec("--kernel", "7.3", f"--results-dir={tmp_path}", "--", "sh", "-c", script, timeout=580)
    print(p.stdout, p.stderr)
    assert p.returncode == 7
    release, uid, cwd, accel = p.stdout.splitlines()
    assert release.startswith("7.3.") and uid == "0" and cwd == str(REPO)
    (kdir,) = tmp_path.iterdir()
    record = json.loads((kdir / "exec.json").read_text())
    assert record["status"] == "ok" and record["exit_status"] == 7
    assert accel == f"accel={record['accel']}" and record["accel"] in ("kvm", "tcg")
    assert (kdir / "stdout.txt").read_text() == p.stdout
    assert (kdir / "stderr.txt").read_text() == "to-stderr\n"
    assert "to-stderr" in p.stderr


for _mark in vm_boot.marks(600):  # boots 7.3: about 30 s under TCG
    test_command_runs_as_root_in_the_guest_with_its_exit_status = _mark(
        test_command_runs_as_root_in_the_guest_with_its_exit_status)
