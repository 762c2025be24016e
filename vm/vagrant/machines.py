"""python-vagrant layer: this project's machines (one per kernel), their
state, and the selection run inside one of them over ssh.

A machine's status in the report is about the harness, as in vm/qemu.py:
  ok     ssh worked, the guest's pytest ended 0/1/5 and wrote junit.xml
  error  the kernel's fault: a panic/oops/BUG/WARN on its serial console
  infra  could not be tested: the machine is not running, ssh failed, the
         guest's pytest could not run
Never a pass without the guest's own junit.xml."""
from __future__ import annotations

import io
import os
import shlex
import shutil
import subprocess
import tarfile
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import vagrant  # python-vagrant

from .. import kernels, qemu
from . import config

GUEST_RESULTS = "/var/tmp/mntns-results"
RESULT_FILES = ("junit.xml", "ktap.txt", "features.json")
SSH_FAILED = 255  # ssh's own failure; the guest's pytest never exits 255
# A guest that stops answering is noticed in about two minutes, not never.
# One connection per machine and run: a key exchange costs the guest
# seconds of CPU under TCG.
SSH_OPTIONS = ["-o", "ConnectTimeout=60", "-o", "ServerAliveInterval=15",
               "-o", "ServerAliveCountMax=8", "-o", "BatchMode=yes", "-o", "LogLevel=ERROR",
               "-o", "ControlMaster=auto", "-o", "ControlPersist=60"]


def dotfile(root: Path) -> Path:
    """Vagrant's data directory of the project (VAGRANT_DOTFILE_PATH moves it)."""
    return Path(root, os.environ.get("VAGRANT_DOTFILE_PATH", ".vagrant"))


def live_console(root: Path, name: str) -> Path:
    """A machine's serial console log, as the Vagrantfile names it."""
    return dotfile(root) / "console" / f"{name}.log"


@dataclass
class Machine:
    name: str                    # the Vagrant machine = the kernel label, e.g. "7.3"
    state: str                   # vagrant status: running, shutoff, not_created...
    kernel: kernels.Kernel       # .name = results/<name>/ and the summary's key
    results: Path = Path()
    result: qemu.VMResult = field(default_factory=qemu.VMResult)


class Machines:
    """The project's Vagrantfile environment through python-vagrant."""

    def __init__(self, root: Path, log: Path | None = None):
        self.root = root
        err = vagrant.make_file_cm(str(log)) if log else vagrant.devnull_cm
        self.v = vagrant.Vagrant(root=str(root), err_cm=err)
        self.state = config.load() or {}

    def created(self) -> list[Machine]:
        """Every machine `vagrant status` shows as created (running or not)."""
        out = []
        for s in self.v.status():
            if s.state in (vagrant.Vagrant.NOT_CREATED, None):
                continue
            entry = self.state.get("machines", {}).get(s.name, {})
            k = kernels.Kernel(s.name, entry.get("release") or s.name, version=entry.get("version"))
            out.append(Machine(s.name, s.state, k))
        return out

    def ssh_config(self, m: Machine, where: Path) -> Path:
        """`vagrant ssh-config` in a file for plain ssh (its ProxyCommand
        enters the network namespace): one vagrant call, then ssh is fast."""
        path = where / f"ssh_config.{m.name}"
        path.write_text(self.v.ssh_config(vm_name=m.name))
        return path

    def rsync(self, m: Machine, cfg: Path, ssh_options: list[str]) -> subprocess.CompletedProcess:
        """The checkout as it is now, into the guest at the same path, as
        the Vagrantfile's rsync folder does at `vagrant up` (`vagrant rsync`
        takes minutes under TCG: every step is a new ssh connection)."""
        excludes = [f"--exclude={e}" for e in self.state.get("rsync_exclude", config.RSYNC_EXCLUDE)]
        ssh = shlex.join(["ssh", "-F", str(cfg), *ssh_options])
        return subprocess.run(["rsync", *self.state.get("rsync_args", config.RSYNC_ARGS), *excludes,
                               "--rsync-path=sudo rsync", "-e", ssh, f"{self.root}/",
                               f"{m.name}:{self.root}"], capture_output=True, text=True)


def guest_command(cwd: str, pytest_args: list[str], ktap: bool) -> str:
    """Run as root in the guest: the project's .venv at the host's path (the
    Vagrantfile puts the checkout there); results in GUEST_RESULTS."""
    r = GUEST_RESULTS
    args = [".venv/bin/python", "-m", "pytest", "-p", "no:cacheprovider", *pytest_args,
            "-o", "junit_family=xunit1", f"--junitxml={r}/junit.xml"]
    if ktap:
        args += [f"--ktap={r}/ktap.txt", f"--features-json={r}/features.json"]
    # MNTNS_VM=1: test marks go to the kernel log, so the console shows which
    # test ran when a WARN came, and the guest's own plugin stays inert.
    env = ["env", "MNTNS_VM=1", "HOME=/tmp", "LANG=C.UTF-8"]
    script = (f"rm -rf {r} && mkdir -p {r} && cd {shlex.quote(cwd)} && "
              f"exec {shlex.join(env + args)}")
    return f"sudo sh -c {shlex.quote(script)}"


class Runner:
    """Runs the selection in one machine and fills machine.result."""

    def __init__(self, ms: Machines, cwd: str, pytest_args: list[str], ktap: bool,
                 timeout_s: float):
        self.ms, self.cwd, self.args, self.ktap, self.timeout = ms, cwd, pytest_args, ktap, timeout_s
        self.accel = self.ms.state.get("accel")
        self.tmp = Path(tempfile.mkdtemp(prefix="mntns-vagrant-"))
        self.cfg: dict[str, Path] = {}  # machine -> its ssh config file
        self.ssh_options = [*SSH_OPTIONS, "-o", f"ControlPath={self.tmp}/%C"]

    def close(self) -> None:
        for name, cfg in self.cfg.items():  # the shared connections
            subprocess.run(["ssh", "-F", str(cfg), *self.ssh_options, "-O", "exit", name],
                           capture_output=True, timeout=30)
        shutil.rmtree(self.tmp, ignore_errors=True)

    def run(self, m: Machine, results_dir: Path) -> None:
        started = time.monotonic()
        boot = boot_offset(live_console(self.ms.root, m.name))
        res = m.result = qemu.VMResult(accel=self.accel or "", accel_reason="vagrant/setup")
        try:
            self._run(m, results_dir, res)
        except subprocess.CalledProcessError as e:
            res.status, res.reason = "infra", f"{shlex.join(map(str, e.cmd[:3]))} failed (exit {e.returncode})"
        except subprocess.TimeoutExpired:
            res.status, res.reason = "error", f"guest hung: no end of pytest within {self.timeout:.0f} s"
        res.wall_s = round(time.monotonic() - started, 1)
        self._console(m, res, boot)

    def _run(self, m: Machine, results_dir: Path, res: qemu.VMResult) -> None:
        if m.state != "running":
            m.results = self._dir(results_dir, m.kernel.name)
            res.status, res.reason = "infra", f"machine {m.name} is {m.state}, not running: vagrant up {m.name}"
            return
        cfg = self.cfg[m.name] = self.ms.ssh_config(m, self.tmp)
        release = self._ssh(cfg, m, "uname -r", timeout=120)
        if release.returncode:
            m.results = self._dir(results_dir, m.kernel.name)
            res.status, res.reason = "infra", _ssh_reason(m, release)
            return
        self._adopt_release(m, release.stdout.strip())
        m.results = self._dir(results_dir, m.kernel.name)
        sync = self.ms.rsync(m, cfg, self.ssh_options)
        if sync.returncode:
            res.status, res.reason = "infra", f"rsync of the checkout into {m.name} failed: " + (
                sync.stderr.strip().splitlines() or ["(no message)"])[-1]
            return
        with open(m.results / "pytest.log", "wb") as log:
            p = self._ssh(cfg, m, guest_command(self.cwd, self.args, self.ktap),
                          timeout=self.timeout, stdout=log, stderr=subprocess.STDOUT, text=False)
        res.exit_status = p.returncode
        if p.returncode == SSH_FAILED:
            res.status, res.reason = "infra", _ssh_reason(m, p, m.results / "pytest.log")
        elif p.returncode not in qemu.PYTEST_OK_STATUSES:
            res.status, res.reason = "infra", (f"guest pytest exited {p.returncode}: "
                                               f"{qemu.last_line(m.results / 'pytest.log')}")
        else:
            res.status, res.reason = self._fetch(cfg, m)

    def _adopt_release(self, m: Machine, release: str) -> None:
        """The guest's uname -r names its results; the package version
        holds only if it is the kernel vagrant/setup prepared."""
        if release and release != m.kernel.release:
            m.kernel = kernels.Kernel(m.name, release)

    @staticmethod
    def _dir(results_dir: Path, name: str) -> Path:
        d = results_dir / name
        d.mkdir(parents=True, exist_ok=True)
        for f in (*RESULT_FILES, "pytest.log", "console.log", "dmesg.txt", "error.txt"):
            (d / f).unlink(missing_ok=True)
        return d

    def _ssh(self, cfg: Path, m: Machine, command: str, timeout: float, **kw):
        kw.setdefault("capture_output", "stdout" not in kw)
        kw.setdefault("text", True)
        return subprocess.run(["ssh", "-F", str(cfg), *self.ssh_options, m.name, command],
                              timeout=timeout, stdin=subprocess.DEVNULL, **kw)

    def _fetch(self, cfg: Path, m: Machine) -> tuple[str, str]:
        p = self._ssh(cfg, m, f"sudo tar -C {GUEST_RESULTS} -cf - .", timeout=300, text=False)
        if p.returncode:
            return "infra", _ssh_reason(m, p)
        with tarfile.open(fileobj=io.BytesIO(p.stdout)) as tar:
            for name in RESULT_FILES:
                try:
                    member = tar.getmember(f"./{name}")
                except KeyError:
                    continue
                (m.results / name).write_bytes(tar.extractfile(member).read())
        if not (m.results / "junit.xml").exists():
            return "infra", "guest wrote no junit.xml"
        return "ok", ""

    def _console(self, m: Machine, res: qemu.VMResult, boot: int) -> None:
        """Kernel trouble on the serial console since the boot that was
        running when the run started (a panic mid-run and the reboot after
        it included) makes the kernel ERROR whatever the tests said
        (vm/qemu.py's scan). Without the console file (another libvirt
        host), the guest's own kernel log over ssh."""
        if m.results == Path():
            return
        live = live_console(self.ms.root, m.name)
        if live.exists():
            console = live.read_bytes()[boot:].decode(errors="replace")
            (m.results / "console.log").write_text(console)
        elif self.cfg.get(m.name) and res.status != "infra":
            p = self._ssh(self.cfg[m.name], m, "sudo dmesg", timeout=120)
            console = p.stdout if p.returncode == 0 else ""
            (m.results / "dmesg.txt").write_text(console)
            if p.returncode:
                res.status, res.reason = "infra", f"no console log ({live}) and {_ssh_reason(m, p)}"
        else:
            console = ""
        errs = qemu.console_errors(console)
        if errs:
            res.status, res.reason = "error", f"console since boot: {errs[0]}"
        if res.status != "ok":
            (m.results / "error.txt").write_text("\n".join([
                res.reason, "", "--- end of pytest.log ---", qemu.tail(m.results / "pytest.log"), "",
                "--- console excerpt ---", qemu.console_excerpt(console, errs), ""]))


def boot_offset(console: Path) -> int:
    """Where the last boot's kernel log starts in a console file that
    libvirt appends to across boots (its banner, 'Linux version ...')."""
    try:
        data = console.read_bytes()
    except OSError:
        return 0
    at = data.rfind(b"Linux version ")
    return data.rfind(b"\n", 0, at) + 1 if at >= 0 else 0


def _ssh_reason(m: Machine, p: subprocess.CompletedProcess, log: Path | None = None) -> str:
    text = log.read_text(errors="replace") if log else (p.stderr or b"")
    if isinstance(text, bytes):
        text = text.decode(errors="replace")
    last = (text.strip().splitlines() or ["(no message)"])[-1].strip()
    return f"ssh to machine {m.name} failed (exit {p.returncode}): {last}"
