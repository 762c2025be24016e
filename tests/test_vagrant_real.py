"""The real Vagrant path, as docs/vagrant.md runs it: `vagrant up` of 7.3,
`pytest --vagrant suites/nullfs` running inside it through the plugin,
`vagrant destroy -f` leaving no domain. Needs `vagrant/setup` (packages,
box, the project's libvirtd) and MNTNS_TEST_VAGRANT=1; a second set of
machines (own Vagrant data directory and domain prefix) beside any the user
has up. Minutes under TCG."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import vm_boot
from vm import report
from vm.vagrant import config, netns

REPO = Path(__file__).resolve().parents[1]
SERIES = "7.3"


def not_set_up():
    if os.environ.get("MNTNS_TEST_VAGRANT") != "1":
        return ("opt-in, MNTNS_TEST_VAGRANT=1: boots a Vagrant machine (2 min here on a quiet host, 16 "
                "on a busy one, under TCG); tests/test_vagrant.py covers the layer with a fake vagrant")
    state = config.load()
    if state is None:
        return "needs vagrant/setup (Vagrant, libvirt, the box): not run on this machine"
    if SERIES not in state["machines"]:
        return f"vagrant/setup did not prepare {SERIES}: MNTNS_KERNELS='{SERIES}' vagrant/setup"
    if state["netns"] and not netns.pid_of(netns.DAEMONS[1][1]):
        return "the project's libvirtd is stopped (vagrant/stop ran): vagrant/setup"
    return None


pytestmark = [*vm_boot.marks(2400), pytest.mark.skipif(not_set_up() is not None, reason=str(not_set_up()))]


def vagrant(env, *args, timeout=1500):
    return subprocess.run(["vagrant", *args], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=timeout)


def domains():
    p = subprocess.run(["virsh", "-c", "qemu:///system", "list", "--all", "--name"],
                       capture_output=True, text=True, check=True)
    return p.stdout.split()


def test_vagrant_up_runs_the_suite_inside_and_destroy_leaves_nothing(tmp_path):
    prefix = f"mntns-test-{os.getpid()}-"
    env = {**os.environ, "VAGRANT_DOTFILE_PATH": str(tmp_path / "vagrant-data"),
           "MNTNS_KERNELS": SERIES, "MNTNS_VAGRANT_PREFIX": prefix}
    try:
        up = vagrant(env, "up", SERIES)
        assert up.returncode == 0, up.stdout[-3000:] + up.stderr[-3000:]
        assert prefix + SERIES in domains()
        p = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--vagrant",
                            "suites/nullfs", f"--results-dir={tmp_path / 'results'}"],
                           cwd=REPO, env=env, capture_output=True, text=True, timeout=1500)
        print(p.stdout[-5000:], p.stderr[-2000:])
        summary = json.loads((tmp_path / "results/summary.json").read_text())
        (release, k), = summary["kernels"].items()
        assert release == config.load()["machines"][SERIES]["release"]
        assert k["status"] == "ok", k["reason"]
        # nullfs is in 7.0+: its cases run and pass on 7.3, not SKIP
        assert k["passed"] > 0 and k["failed"] == 0
        assert p.returncode == report.exit_code(summary)
        assert (tmp_path / "results" / release / "console.log").read_text().strip()
    finally:
        down = vagrant(env, "destroy", "-f", SERIES, timeout=600)
    assert down.returncode == 0, down.stderr[-2000:]
    assert not [d for d in domains() if d.startswith(prefix)]
