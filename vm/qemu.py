"""Boot one kernel under qemu with the host's / as a read-only virtiofs root
and a writable per-kernel results share; classify how it went."""
from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

QEMU = "qemu-system-x86_64"
VIRTIOFSD = "/usr/lib/qemu/virtiofsd"
ROFS = Path(__file__).with_name("rofs.py")

# The ONE place the guest CPU model is chosen (--vm-cpu overrides).  Under
# qemu 7.2 TCG: 7.x kernels need BMI2 (qemu64 lacks it), and 6.12 double-
# faults on plain "max"; "max,-cx16" boots 6.12 ... 7.3.
DEFAULT_CPU = {"kvm": "host", "tcg": "max,-cx16"}

# Console lines that make a kernel's run a harness ERROR, never a pass.
CONSOLE_ERROR_RE = re.compile(r"Kernel panic|\bOops\b|\bBUG:|kernel BUG at|\bWARNING:")
PYTEST_OK_STATUSES = {0, 1, 5}  # passed / some tests failed / none collected

# Set once a guest dies with "KVM internal error" so later kernels go
# straight to TCG instead of paying for the failure again.
_kvm_broken = threading.Event()


def cpu_model(accel: str, override: str | None = None) -> str:
    return override or DEFAULT_CPU[accel]


def kvm_usable() -> bool:
    if _kvm_broken.is_set():
        return False
    try:
        os.close(os.open("/dev/kvm", os.O_RDWR))
        return True
    except OSError:
        return False


def console_errors(text: str) -> list[str]:
    """Kernel-trouble lines on the console (our own init's lines excluded)."""
    return [l.strip() for l in text.splitlines()
            if CONSOLE_ERROR_RE.search(l) and "mntns-init:" not in l]


def ktap_progress(path: Path) -> tuple[int, int | None, bool]:
    """(results so far, planned total or None, saw a result line)."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return 0, None, False
    plan = re.search(r"^1\.\.(\d+)", text, re.M)
    n = len(re.findall(r"^(?:not )?ok \d+", text, re.M))  # top level only
    return n, int(plan.group(1)) if plan else None, n > 0


@dataclass
class VMOptions:
    memory_mb: int = 2048
    smp: int = 1
    accel: str = "auto"          # auto | kvm | tcg
    cpu: str | None = None
    timeout_s: float = 3600
    kernel_append: str = ""
    ktap: bool = True            # the suite knows --ktap


@dataclass
class VMResult:
    status: str = "error"        # ok | error (harness verdict only)
    reason: str = ""
    accel: str = ""
    boot_s: float | None = None
    wall_s: float = 0.0
    exit_status: int | None = None


@dataclass
class VM:
    kernel: "object"             # kernels.Kernel
    results: Path
    python: str
    cwd: str
    pytest_args: list[str]
    initrd: Path
    opts: VMOptions
    phase: str = "queued"
    progress: str = ""
    result: VMResult = field(default_factory=VMResult)

    def guest_script(self) -> str:
        r = self.results
        args = [self.python, "-m", "pytest", "-p", "no:cacheprovider", *self.pytest_args,
                # xunit1 keeps the file= attribute, so node ids can be rebuilt.
                "-o", "junit_family=xunit1", f"--junitxml={r}/junit.xml"]
        if self.opts.ktap:  # the suite's harness plugins are loaded
            args += [f"--ktap={r}/ktap.txt", f"--features-json={r}/features.json"]
        env = {"MNTNS_VM": "1", "MNTNS_BOOT_RECORD": f"{r}/boot.json", "HOME": "/tmp",
               "PYTHONDONTWRITEBYTECODE": "1", "LANG": "C.UTF-8"}
        if os.environ.get("PYTEST_ADDOPTS"):
            env["PYTEST_ADDOPTS"] = os.environ["PYTEST_ADDOPTS"]
        lines = [f"export {k}={shlex.quote(v)}" for k, v in env.items()]
        lines += [f"cd {shlex.quote(self.cwd)} || exit 3", "exec " + shlex.join(args)]
        return "\n".join(lines) + "\n"

    def run(self) -> VMResult:
        self.results.mkdir(parents=True, exist_ok=True)
        accel = self.opts.accel
        if accel == "auto":
            accel = "kvm" if kvm_usable() else "tcg"
        res = self._boot(accel)
        if res.reason == "kvm-internal-error" and self.opts.accel == "auto":
            _kvm_broken.set()
            res = self._boot("tcg")
        self.result = res
        self.phase = "done"
        self.progress = f"{res.status}" + (f": {res.reason}" if res.reason else "")
        return res

    def _clean_results(self):
        for name in ("boot.json", "exit_status", "exit_status.tmp", "junit.xml", "ktap.txt",
                     "console.log", "pytest.log", "qemu.log", "error.txt", "guest.sh", "features.json"):
            (self.results / name).unlink(missing_ok=True)

    def _boot(self, accel: str) -> VMResult:
        self._clean_results()
        (self.results / "guest.sh").write_text(self.guest_script())
        k, r, o = self.kernel, self.results, self.opts
        res = VMResult(accel=accel)
        tmp = Path(tempfile.mkdtemp(prefix="mntns-vm-"))
        procs: list[subprocess.Popen] = []
        t0 = time.monotonic()
        try:
            vlog = open(r / "virtiofsd.log", "wb")
            mods = ["--modules", f"{k.release}={k.modules}"] if k.modules else []
            fsd = [VIRTIOFSD, "-o", "sandbox=chroot"]  # the only sandbox that works here
            procs.append(subprocess.Popen(
                [sys.executable, str(ROFS), str(tmp / "root"), *mods, "--",
                 *fsd, f"--socket-path={tmp}/root.sock", "-o", f"source={tmp}/root",
                 "-o", "cache=always"],  # the root never changes under the guest
                stdout=vlog, stderr=vlog, start_new_session=True))
            procs.append(subprocess.Popen(
                [*fsd, f"--socket-path={tmp}/results.sock", "-o", f"source={r}", "-o", "cache=none"],
                stdout=vlog, stderr=vlog, start_new_session=True))
            deadline = time.monotonic() + 15
            while not all((tmp / s).exists() for s in ("root.sock", "results.sock")):
                if time.monotonic() > deadline or any(p.poll() is not None for p in procs):
                    res.reason = "virtiofsd did not start (see virtiofsd.log)"
                    return res
                time.sleep(0.1)

            mem = f"{o.memory_mb}M"
            append = (f"console=ttyS0 panic=-1 mntns.results={r} mntns.python={self.python} "
                      + o.kernel_append).strip()
            cmd = [QEMU, "-nodefaults", "-no-user-config", "-no-reboot", "-display", "none",
                   "-accel", accel, "-cpu", cpu_model(accel, o.cpu), "-smp", str(o.smp), "-m", mem,
                   # vhost-user (virtiofs) needs guest RAM shareable with virtiofsd
                   "-object", f"memory-backend-memfd,id=mem,size={mem},share=on",
                   "-numa", "node,memdev=mem",
                   "-chardev", f"socket,id=fsroot,path={tmp}/root.sock",
                   "-device", "vhost-user-fs-pci,chardev=fsroot,tag=root",
                   "-chardev", f"socket,id=fsres,path={tmp}/results.sock",
                   "-device", "vhost-user-fs-pci,chardev=fsres,tag=results",
                   "-serial", f"file:{r}/console.log",
                   "-kernel", str(k.vmlinuz), "-initrd", str(self.initrd), "-append", append]
            (r / "qemu.cmd").write_text(shlex.join(cmd) + "\n")
            qlog = open(r / "qemu.log", "wb")
            self.phase, self.progress = "booting", accel
            t0 = time.monotonic()
            qemu = subprocess.Popen(cmd, stdout=qlog, stderr=qlog, stdin=subprocess.DEVNULL,
                                    start_new_session=True)
            procs.append(qemu)
            timed_out, seen_boot = False, None
            while qemu.poll() is None:
                time.sleep(0.5)
                now = time.monotonic() - t0
                if accel == "kvm" and b"KVM internal error" in (r / "qemu.log").read_bytes():
                    qemu.kill()
                    qemu.wait()
                    res.reason = "kvm-internal-error"
                    return res
                if now > o.timeout_s:
                    timed_out = True
                    qemu.kill()
                    break
                n, total, started = ktap_progress(r / "ktap.txt")
                if started and res.boot_s is None:
                    res.boot_s = round(now, 1)
                if (r / "boot.json").exists():
                    seen_boot = seen_boot or now
                    self.phase = "testing"
                    self.progress = f"{n}/{total if total is not None else '?'}"
            qemu.wait()
            res.wall_s = round(time.monotonic() - t0, 1)
            if res.boot_s is None and seen_boot:  # no KTAP: time to the switch into the root
                res.boot_s = round(seen_boot, 1)
            self._classify(res, timed_out)
            return res
        finally:
            for p in procs:
                if p.poll() is None:
                    p.terminate()
                    try:
                        p.wait(5)
                    except subprocess.TimeoutExpired:
                        p.kill()
                        p.wait()
            # Only empty dirs/sockets remain (the ro tree lived in
            # virtiofsd's private mount namespace): never rmtree here.
            for name in ("root.sock", "results.sock"):
                (tmp / name).unlink(missing_ok=True)
            for d in (tmp / "root.ovl", tmp / "root", tmp):
                try:
                    d.rmdir()
                except OSError:
                    pass

    def _classify(self, res: VMResult, timed_out: bool) -> None:
        r = self.results
        console = (r / "console.log").read_text(errors="replace") if (r / "console.log").exists() else ""
        errs = console_errors(console)
        fatal = [l for l in console.splitlines() if "mntns-init: FATAL" in l]
        status_file = r / "exit_status"
        if status_file.exists():
            try:
                res.exit_status = int(status_file.read_text().strip())
            except ValueError:
                pass
        if timed_out:
            res.reason = f"guest hung: wall-clock limit {self.opts.timeout_s:.0f}s"
        elif errs:
            res.reason = f"console: {errs[0]}"
        elif fatal:
            res.reason = fatal[0].split("mntns-init: ", 1)[1]
        elif res.exit_status is None:
            res.reason = "no exit_status from the guest (init died or guest crashed)"
        elif res.exit_status not in PYTEST_OK_STATUSES:
            res.reason = f"guest pytest exited {res.exit_status} (see pytest.log)"
        elif not (r / "junit.xml").exists():
            res.reason = "guest wrote no junit.xml"
        else:
            res.status = "ok"
            return
        res.status = "error"
        (r / "error.txt").write_text(f"{res.reason}\n\n--- console excerpt ---\n"
                                     + console_excerpt(console, errs) + "\n")


def console_excerpt(console: str, errs: list[str], context: int = 30) -> str:
    lines = console.splitlines()
    if errs:
        i = next(i for i, l in enumerate(lines) if l.strip() == errs[0])
        return "\n".join(lines[max(0, i - 5):i + context])
    return "\n".join(lines[-context:])
