"""Fast tests of how the runner watches and judges a guest (no qemu):
acceleration choice, the verdict from what a guest left behind, the paths
init carries over the guest's tmpfs, progress lines, argument validation."""
import io
import subprocess
import sys
from pathlib import Path

import pytest

from vm import errors, qemu, runner
from vm.plugin import strip_vm_args
from vm.progress import Display, line

REPO = Path(__file__).resolve().parents[1]


def make_vm(tmp_path, **opts):
    k = type("K", (), {"release": "7.3.4+deb13-cloud-amd64", "name": "7.3.4+deb13-cloud-amd64"})()
    vm = qemu.VM(k, tmp_path, "/usr/bin/python3", str(REPO), [], tmp_path / "initrd",
                 qemu.VMOptions(**opts))
    vm.started = 0.0
    return vm


def verdict(vm, outcome="exited", qemu_status=0, **files):
    for name, text in files.items():
        (vm.results / name.replace("_", ".")).write_text(text)
    res = qemu.VMResult(accel="tcg", qemu_status=qemu_status)
    vm._classify(res, outcome)
    return res.status, res.reason


BOOTED = "[ 2.1] Run /init as init process\nmntns-init: running tests\n"


def test_clean_run_is_ok(tmp_path):
    vm = make_vm(tmp_path)
    (tmp_path / "exit_status").write_text("1\n")
    assert verdict(vm, console_log=BOOTED, junit_xml="<testsuites/>") == ("ok", "")


@pytest.mark.parametrize("status", [0, 1, 5])
def test_pytest_verdict_statuses_are_ok(tmp_path, status):
    vm = make_vm(tmp_path)
    (tmp_path / "exit_status").write_text(f"{status}\n")
    assert verdict(vm, console_log=BOOTED, junit_xml="<testsuites/>")[0] == "ok"


def test_console_oops_is_a_kernel_error_even_with_results(tmp_path):
    vm = make_vm(tmp_path)
    (tmp_path / "exit_status").write_text("0\n")
    status, reason = verdict(vm, console_log=BOOTED + "[ 9.1] Oops: int3: 0000 [#1] SMP\n",
                             junit_xml="<testsuites/>")
    assert status == "error" and reason.startswith("console: Oops: int3: 0000 [#1] SMP [fingerprint ")
    assert reason.endswith("] before any test started")
    assert "Oops" in (tmp_path / "error.txt").read_text()


def test_boot_deadline_names_the_last_console_line(tmp_path):
    vm = make_vm(tmp_path, boot_timeout_s=120)
    status, reason = verdict(vm, "boot_deadline", None, console_log="[ 1.0] Booting\n[ 1.5] stuck here\n")
    assert status == "error"
    assert reason == "kernel did not reach init within 120 s (last console line: [ 1.5] stuck here)"


def test_hang_is_a_kernel_error(tmp_path):
    vm = make_vm(tmp_path, timeout_s=60)
    vm.progress = qemu.Progress(3, 10, 0)
    assert verdict(vm, "timeout", None, console_log=BOOTED) == (
        "error", "guest hung: no power-off within 60 s, 3/10 results")


RUNNING = ("[ 5.0] mntns-test: start suites/a.py::test_done pid=9\n"
           "[ 5.1] mntns-test: start suites/a.py::test_wedged pid=10\n"
           "[ 5.2] mntns-test: end suites/a.py::test_done pid=9\n")


def test_hang_names_the_tests_that_never_ended(tmp_path):
    vm = make_vm(tmp_path, timeout_s=60)
    vm.progress = qemu.Progress(3, 10, 0)
    assert verdict(vm, "timeout", None, console_log=BOOTED + RUNNING) == (
        "error", "guest hung: no power-off within 60 s, 3/10 results, in suites/a.py::test_wedged")


def test_a_test_process_stuck_in_the_kernel_is_a_kernel_error_blamed_on_it(tmp_path):
    vm = make_vm(tmp_path)
    (tmp_path / "exit_status").write_text("1\n")
    stuck = ("[ 9.0] mntns-test: stuck suites/a.py::test_wedged pid 12 (state D, wchan "
             "copy_mnt_ns) did not exit 10 s after SIGKILL: stuck in the kernel\n")
    status, reason = verdict(vm, console_log=BOOTED + RUNNING + stuck, junit_xml="<testsuites/>")
    assert status == "error"
    assert reason.startswith("console: test process stuck in the kernel: pid 12 (state D, wchan copy_mnt_ns)")
    assert reason.endswith("during suites/a.py::test_wedged")


def test_guest_killed_mid_run_is_a_kernel_error(tmp_path):
    vm = make_vm(tmp_path)
    status, reason = verdict(vm, "exited", -9, console_log=BOOTED)
    assert status == "error" and reason.startswith("guest stopped without an exit status")


def test_qemu_dying_before_any_console_output_is_infrastructure(tmp_path):
    vm = make_vm(tmp_path)
    status, reason = verdict(vm, "exited", 1, console_log="",
                             qemu_log="qemu-system-x86_64: -cpu foo: unable to find CPU model 'foo'\n")
    assert status == "infra"
    assert reason == ("qemu exited with status 1 before the guest printed anything: "
                      "qemu-system-x86_64: -cpu foo: unable to find CPU model 'foo'")


def test_kvm_failure_is_retried_not_judged(tmp_path):
    vm = make_vm(tmp_path)
    status, reason = verdict(vm, "kvm_failed", -6, console_log="",
                             qemu_log="qemu-system-x86_64: error: failed to set MSR 0x10a to 0x69\n")
    assert (status, reason) == ("kvm_failed", "qemu died of SIGABRT: "
                                "qemu-system-x86_64: error: failed to set MSR 0x10a to 0x69")


def test_guest_pytest_that_cannot_start_is_infrastructure(tmp_path):
    vm = make_vm(tmp_path)
    (tmp_path / "exit_status").write_text("127\n")
    assert verdict(vm, console_log=BOOTED, pytest_log="guest.sh: python3: not found\n") == (
        "infra", "guest pytest exited 127: guest.sh: python3: not found")


def test_init_fatal_is_infrastructure(tmp_path):
    vm = make_vm(tmp_path)
    status, reason = verdict(vm, console_log="mntns-init: FATAL: virtiofs mount of the root share failed\n")
    assert (status, reason) == ("infra", "FATAL: virtiofs mount of the root share failed")


def test_stop_request_is_interrupted(tmp_path):
    vm = make_vm(tmp_path)
    assert verdict(vm, "stopped", -9, console_log=BOOTED)[0] == "interrupted"


def test_explicit_accel_is_used_as_asked(monkeypatch):
    assert qemu.choose_accel("tcg") == ("tcg", "--vm-accel tcg")


def test_auto_goes_to_tcg_after_a_kvm_failure(monkeypatch):
    monkeypatch.setattr(qemu._KvmState, "failure", "qemu exited with status 134: boom")
    assert qemu.choose_accel("auto") == ("tcg", "KVM failed earlier in this run "
                                                "(qemu exited with status 134: boom)")


def test_auto_without_usable_dev_kvm_is_tcg(monkeypatch):
    monkeypatch.setattr(qemu._KvmState, "failure", None)
    def refuse(path, flags):
        raise FileNotFoundError(2, "No such file or directory")
    monkeypatch.setattr(qemu.os, "open", refuse)
    assert qemu.choose_accel("auto") == ("tcg", "/dev/kvm unusable: No such file or directory")


def test_paths_under_guest_tmpfs_are_carried_over_outermost_first():
    assert qemu.keep_paths(["/tmp/clone", "/tmp/clone/.venv", "/root/x", "/run/a/b", "/tmpx/y"]) \
        == ["/run/a/b", "/tmp/clone"]


def test_kernel_command_line_carries_kept_paths(tmp_path):
    vm = make_vm(tmp_path)
    vm.cwd, vm.python = "/tmp/clone", "/tmp/clone/.venv/bin/python"
    vm.kernel.vmlinuz = tmp_path / "vmlinuz"
    append = vm.qemu_command("tcg", tmp_path)[-1]
    assert "mntns.keep=/tmp/clone " in append + " "


def test_progress_line_shows_counts_failures_and_estimate(tmp_path):
    vm = make_vm(tmp_path)
    vm.phase, vm.progress = "testing", qemu.Progress(50, 200, 2)
    vm.result.init_s = 10.0
    assert line(vm, 110.0) == ("7.3.4+deb13-cloud-amd64            testing 50/200 failed=2 110s "
                               "~300s left")


def test_log_progress_is_sparse():
    out = io.StringIO()
    vm = type("V", (), {})()
    vm.kernel = type("K", (), {"name": "k", "release": "k"})()
    vm.phase, vm.progress, vm.started, vm.result = "testing", qemu.Progress(1, 9, 0), 0.0, qemu.VMResult()
    d = Display(out)
    d.update([vm])
    vm.progress = qemu.Progress(2, 9, 0)
    d.update([vm])               # same phase, same failures: not logged again yet
    vm.progress = qemu.Progress(3, 9, 1)
    d.update([vm])               # a new failure: logged at once
    assert len(out.getvalue().splitlines()) == 2


def test_reports_with_kernel_are_not_passed_to_guests():
    assert strip_vm_args(["--kernel", "7.3", "--junitxml", "a.xml", "--ktap=b.ktap", "-x"]) == ["-x"]


def test_bad_pytest_arguments_are_a_usage_error_before_any_boot():
    with pytest.raises(errors.UsageError, match=r"pytest cannot collect the selection \(exit 4\)"):
        runner.warm_caches(str(REPO), ["--no-such-option"])
