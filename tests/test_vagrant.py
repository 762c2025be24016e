"""The python-vagrant layer (vm/vagrant/) against a fake `vagrant` and a
fake `ssh` on PATH (tests/fake_vagrant/): machine status, a machine that is
down, ssh that fails, a WARN on the console -- never a pass -- and the pytest
plugin end to end. No VM: fast, in CI. The real Vagrant path:
tests/test_vagrant_real.py."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from vm import errors, report
from vm.vagrant import config, plugin
from vm.vagrant.machines import Machines, Runner
from vm.vagrant.run import guest_args

FAKES = Path(__file__).with_name("fake_vagrant")
PROJECT = Path(__file__).resolve().parents[1]
REL = "7.3.4+deb13-cloud-amd64"
STATE = {"accel": "tcg", "machines": {
    "7.3": {"release": REL, "version": "7.3.4-1~bpo13+1"},
    "6.18": {"release": "6.18.15+deb13-cloud-amd64", "version": "6.18.15-1~bpo13+1"}}}
JUNIT_PASS = """<?xml version="1.0"?><testsuites><testsuite name="pytest" tests="1">
<testcase classname="suites.nullfs.test_x" name="test_ok" file="suites/nullfs/test_x.py" time="0.1"/>
</testsuite></testsuites>"""
WARN = ("[   88.120000] WARNING: CPU: 1 PID: 4242 at fs/namespace.c:1402 "
        "mntput_no_expire+0x1c0/0x1d0\n")

pytestmark = pytest.mark.no_fork  # the fakes go on this process's PATH


@pytest.fixture
def fake(tmp_path, monkeypatch):
    """fake(machine=state, ...) -> Machines of a project in tmp_path."""
    monkeypatch.setenv("PATH", f"{FAKES}:{os.environ['PATH']}")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("FAKE_VAGRANT", str(tmp_path / "vagrant.json"))
    monkeypatch.setenv("FAKE_GUEST", str(tmp_path / "guest"))
    monkeypatch.setenv("FAKE_RELEASE", REL)
    monkeypatch.setenv("FAKE_JUNIT", str(tmp_path / "junit.xml"))
    (tmp_path / "junit.xml").write_text(JUNIT_PASS)
    config.save(STATE)
    root = tmp_path / "project"
    root.mkdir()

    def machines(**states):
        (tmp_path / "vagrant.json").write_text(json.dumps({"machines": states}))
        return Machines(root)
    return machines


def run_one(ms, name, tmp_path):
    m = next(m for m in ms.created() if m.name == name)
    r = Runner(ms, str(PROJECT), ["suites/nullfs"], ktap=True, timeout_s=60)
    try:
        r.run(m, tmp_path / "results")
    finally:
        r.close()
    runs = {m.kernel.name: {"status": m.result.status, "reason": m.result.reason, "dir": m.results}}
    return m, report.summarize(runs)


def ms_root(tmp_path):
    return tmp_path / "project"


def calls(tmp_path):
    return (tmp_path / "vagrant.json.calls").read_text().splitlines()


def test_status_lists_created_machines_with_their_kernel(fake, tmp_path):
    ms = fake(**{"6.18": "running", "7.3": "shutoff", "7.2": "not_created"})
    got = {m.name: (m.state, m.kernel.name, m.kernel.version) for m in ms.created()}
    # vagrant-libvirt's "shutoff" is python-vagrant's "poweroff"; not_created is no machine
    assert got == {"6.18": ("running", "6.18.15+deb13-cloud-amd64", "6.18.15-1~bpo13+1"),
                   "7.3": ("poweroff", REL, "7.3.4-1~bpo13+1")}
    assert calls(tmp_path) == ["status --machine-readable"]


def test_machine_that_is_down_is_an_error_for_its_kernel_never_a_pass(fake, tmp_path, monkeypatch):
    monkeypatch.setenv("FAKE_SSH", "canned")  # would pass, if it were asked
    m, summary = run_one(fake(**{"7.3": "shutoff"}), "7.3", tmp_path)
    assert (m.result.status, m.result.reason) == (
        "infra", "machine 7.3 is poweroff, not running: vagrant up 7.3")
    assert summary["kernels"][REL]["passed"] == 0 and summary["tests"] == {}
    assert report.exit_code(summary) == errors.INFRA
    assert "ssh-config" not in " ".join(calls(tmp_path))


def test_ssh_failure_is_an_error_for_its_kernel_with_ssh_message(fake, tmp_path, monkeypatch):
    monkeypatch.setenv("FAKE_SSH", "fail")
    m, summary = run_one(fake(**{"7.3": "running"}), "7.3", tmp_path)
    assert m.result.status == "infra"
    assert m.result.reason == ("ssh to machine 7.3 failed (exit 255): ssh: connect to host "
                               "192.168.121.10 port 22: No route to host")
    assert report.exit_code(summary) == errors.INFRA


def test_run_in_a_machine_collects_its_results(fake, tmp_path, monkeypatch):
    monkeypatch.setenv("FAKE_SSH", "canned")
    m, summary = run_one(fake(**{"7.3": "running"}), "7.3", tmp_path)
    assert (m.result.status, m.result.exit_status) == ("ok", 0)
    assert m.results == tmp_path / "results" / REL
    assert summary["tests"] == {"suites/nullfs/test_x.py::test_ok": {REL: "PASS"}}
    assert report.exit_code(summary) == errors.OK
    # the checkout as it is now, at its own path, through the machine's ssh
    rsync, = [c.split() for c in calls(tmp_path) if c.startswith("rsync ")]
    assert rsync[1:5] == ["--archive", "--delete", "--exclude=.git/", "--exclude=.vagrant/"]
    assert rsync[-2:] == [f"{ms_root(tmp_path)}/", f"7.3:{ms_root(tmp_path)}"]


def test_warning_on_the_console_makes_the_kernel_error_whatever_the_tests_said(
        fake, tmp_path, monkeypatch):
    monkeypatch.setenv("FAKE_SSH", "canned")
    ms = fake(**{"7.3": "running"})
    live = ms.root / ".vagrant/console/7.3.log"
    live.parent.mkdir(parents=True)
    live.write_text("[    1.0] Linux version 7.3.4\n" + WARN)
    m, summary = run_one(ms, "7.3", tmp_path)
    assert (m.result.status, m.result.reason) == ("error", "console since boot: " + WARN.strip())
    assert summary["tests"]["suites/nullfs/test_x.py::test_ok"] == {REL: "PASS"}
    assert report.exit_code(summary) == errors.KERNEL_CRASHED
    assert (m.results / "console.log").read_text() == live.read_text()
    assert WARN.strip() in (m.results / "error.txt").read_text()


def test_only_the_boot_running_at_the_start_of_the_run_counts(fake, tmp_path, monkeypatch):
    # libvirt appends to the console file across boots and machines
    monkeypatch.setenv("FAKE_SSH", "canned")
    ms = fake(**{"7.3": "running"})
    live = ms.root / ".vagrant/console/7.3.log"
    live.parent.mkdir(parents=True)
    live.write_text("[    0.0] Linux version 7.3.4 (boot 1)\n" + WARN + "[    0.0] Linux version 7.3.4 (boot 2)\n")
    m, summary = run_one(ms, "7.3", tmp_path)
    assert (m.result.status, report.exit_code(summary)) == ("ok", errors.OK)
    assert (m.results / "console.log").read_text() == "[    0.0] Linux version 7.3.4 (boot 2)\n"


def test_without_a_console_file_the_guest_kernel_log_is_read(fake, tmp_path, monkeypatch):
    monkeypatch.setenv("FAKE_SSH", "canned")
    (tmp_path / "dmesg").write_text(WARN)
    monkeypatch.setenv("FAKE_DMESG", str(tmp_path / "dmesg"))
    m, summary = run_one(fake(**{"7.3": "running"}), "7.3", tmp_path)
    assert (m.result.status, m.result.reason) == ("error", "console since boot: " + WARN.strip())
    assert (m.results / "dmesg.txt").read_text() == WARN


def test_rsync_failure_is_an_error_for_its_kernel(fake, tmp_path, monkeypatch):
    monkeypatch.setenv("FAKE_SSH", "canned")
    monkeypatch.setenv("FAKE_RSYNC_EXIT", "12")
    m, summary = run_one(fake(**{"7.3": "running"}), "7.3", tmp_path)
    assert (m.result.status, m.result.reason) == (
        "infra", "rsync of the checkout into 7.3 failed: rsync: connection unexpectedly closed")
    assert summary["tests"] == {} and report.exit_code(summary) == errors.INFRA


def test_guest_args_drop_the_host_side_options():
    assert guest_args(["--vagrant", "-n", "auto", "--results-dir=r", "--vagrant-timeout", "9",
                       "--junitxml", "a.xml", "--ktap=k.txt", "--live", "-k", "pivot",
                       "suites/nullfs"]) == ["-n", "auto", "-k", "pivot", "suites/nullfs"]


def test_only_machines_vagrant_created_make_the_plugin_look(tmp_path):
    assert plugin.created_on_disk(tmp_path) == []
    (tmp_path / ".vagrant/machines/7.3/libvirt").mkdir(parents=True)
    assert plugin.created_on_disk(tmp_path) == []  # defined, never created
    (tmp_path / ".vagrant/machines/7.3/libvirt/id").write_text("5b1c")
    assert plugin.created_on_disk(tmp_path) == ["7.3"]


def pytest_run(tmp_path, *args, ssh="local", machines=None):
    (tmp_path / "vagrant.json").write_text(json.dumps({"machines": machines or {"7.3": "running"}}))
    state = tmp_path / "cache/mntns-conformance/vagrant/machines.json"
    state.parent.mkdir(parents=True)
    state.write_text(json.dumps(STATE))
    env = {**os.environ, "PATH": f"{FAKES}:{os.environ['PATH']}", "FAKE_SSH": ssh,
           "VAGRANT_DOTFILE_PATH": str(tmp_path / "dot-vagrant"),
           "FAKE_VAGRANT": str(tmp_path / "vagrant.json"), "FAKE_GUEST": str(tmp_path / "guest"),
           "XDG_CACHE_HOME": str(tmp_path / "cache")}
    env.pop("MNTNS_VM", None)
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args,
                           f"--results-dir={tmp_path / 'results'}"],
                          cwd=PROJECT, env=env, capture_output=True, text=True, timeout=300)


SELECTION = "suites/nullfs/test_no_userspace_mount.py"


def test_plugin_runs_the_selection_inside_the_machine_and_reports_like_the_runner(tmp_path):
    # The fake ssh runs the "guest" command here: the host kernel is the guest's.
    p = pytest_run(tmp_path, "--vagrant", SELECTION)
    out = p.stdout + p.stderr
    assert "inside this project's Vagrant machines 7.3 over ssh" in out, out
    release = os.uname().release
    summary = json.loads((tmp_path / "results/summary.json").read_text())
    assert summary["kernels"][release]["status"] == "ok", out
    verdicts = {t: v[release] for t, v in summary["tests"].items()}
    assert verdicts and all(t.startswith(SELECTION) for t in verdicts)
    assert p.returncode == report.exit_code(summary), out
    for f in ("junit.xml", "ktap.txt", "pytest.log"):
        assert (tmp_path / "results" / release / f).exists(), f
    # a disposable VM, like the runner's guests: the disruptive cases run
    run, = [c for c in calls(tmp_path) if c.startswith("ssh ") and "-m pytest" in c]
    assert f"{SELECTION} --disruptive -o junit_family=xunit1" in run


def test_plugin_machine_down_exits_infra_with_the_reason(tmp_path):
    p = pytest_run(tmp_path, "--vagrant", SELECTION, machines={"7.3": "shutoff"})
    summary = json.loads((tmp_path / "results/summary.json").read_text())
    assert summary["kernels"][REL]["status"] == "infra"
    assert summary["kernels"][REL]["reason"] == "machine 7.3 is poweroff, not running: vagrant up 7.3"
    assert p.returncode == errors.INFRA, p.stdout + p.stderr


@pytest.mark.parametrize("args", [["--vagrant", "--no-vagrant"], ["--vagrant", "tests/test_ktap.py"]])
def test_plugin_vagrant_with_what_cannot_run_in_machines_is_a_usage_error(tmp_path, args):
    p = pytest_run(tmp_path, *args)
    assert p.returncode == errors.USAGE
    assert "--vagrant runs suites/ inside the machines" in p.stderr


def test_qemu_conf_gets_root_once(tmp_path):
    from vm.vagrant import netns
    conf = tmp_path / "qemu.conf"
    conf.write_text('#user = "libvirt-qemu"\n')
    assert netns.configure_qemu(conf) is True
    assert netns.configure_qemu(conf) is False  # vagrant/setup again: no second block
    assert conf.read_text().count('user = "root"') == 1
    assert conf.read_text().startswith('#user = "libvirt-qemu"\n')
