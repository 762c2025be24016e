"""Boot one kernel under qemu with the host's / as a read-only virtiofs root
and a writable per-kernel results share; watch it; classify how it went.

A kernel's status is about the harness, never a test verdict:
  ok           booted, ran pytest to an exit status of 0/1/5, wrote junit.xml
  error        the kernel's fault: panic/oops/BUG/WARN on the console, no
               init within the boot deadline, a hang, init dying
  infra        could not be tested: qemu or virtiofsd failed, the guest's
               pytest could not run
  interrupted  stopped by the user (Ctrl-C)
"""
from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from . import crash, preflight, virtiofsd
from .preflight import GUEST_TMPFS_PREFIXES

QEMU = "qemu-system-x86_64"
ROFS = Path(__file__).with_name("rofs.py")

# The ONE place the guest CPU model is chosen (--vm-cpu overrides).  Under
# qemu 7.2 TCG: 7.x kernels need BMI2 (qemu64 lacks it), and 6.12 double-
# faults on plain "max"; "max,-cx16" boots 6.12 ... 7.3.
DEFAULT_CPU = {"kvm": "host", "tcg": "max,-cx16"}

PYTEST_OK_STATUSES = {0, 1, 5}  # passed / some tests failed / none collected

POLL_S = 0.25


class _KvmState:
    """Once qemu dies under KVM in this run, every later guest goes straight
    to TCG instead of paying for the failure again."""
    lock = threading.Lock()
    failure: str | None = None


def cpu_model(accel: str, override: str | None = None) -> str:
    return override or DEFAULT_CPU[accel]


def choose_accel(requested: str) -> tuple[str, str]:
    """(accel, why) for the next guest."""
    if requested != "auto":
        return requested, f"--vm-accel {requested}"
    if _KvmState.failure:
        return "tcg", f"KVM failed earlier in this run ({_KvmState.failure})"
    try:
        os.close(os.open("/dev/kvm", os.O_RDWR))
    except OSError as e:
        return "tcg", f"/dev/kvm unusable: {e.strerror}"
    return "kvm", "KVM"


def kvm_failed(reason: str) -> None:
    with _KvmState.lock:
        _KvmState.failure = _KvmState.failure or reason


def console_errors(text: str) -> list[str]:
    """Kernel-trouble lines on the console (our own init's lines excluded)."""
    return [l.strip() for l in text.splitlines() if crash.is_complaint(l)]


@dataclass
class Progress:
    done: int = 0
    planned: int | None = None
    failed: int = 0


def ktap_progress(path: Path) -> Progress:
    """Cases done so far, the plan, and how many are 'not ok', from the
    suite's --ktap file (harness/ktap.py): flat while pytest runs (a
    top-level result per case), nested when it has ended (a subtest per
    suite directory: the cases are one level down, and so are their plans)."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return Progress()
    indent = "  " if re.search(r"^  (?:not )?ok \d+", text, re.M) else ""
    plans = [int(p) for p in re.findall(rf"^{indent}1\.\.(\d+)", text, re.M)]
    return Progress(len(re.findall(rf"^{indent}(?:not )?ok \d+", text, re.M)),
                    (sum(plans) if indent else plans[0]) if plans else None,
                    len(re.findall(rf"^{indent}not ok \d+", text, re.M)))


def tail(path: Path, n: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return "(missing)"


def keep_paths(paths) -> list[str]:
    """The outermost of `paths` that lie under a dir the guest covers with
    its own tmpfs: init carries them over (mntns.keep=), so a clone in /tmp
    runs as one in /root does."""
    inside = sorted({os.path.abspath(p) for p in paths})
    inside = [p for p in inside if any(preflight.under(p, d) and p != d for d in GUEST_TMPFS_PREFIXES)]
    return [p for p in inside if not any(preflight.under(p, q) for q in inside if q != p)]


@dataclass
class VMOptions:
    memory_mb: int = 2048
    smp: int = 1
    accel: str = "auto"          # auto | kvm | tcg
    cpu: str | None = None
    timeout_s: float = 3600
    boot_timeout_s: float = 120  # qemu start -> init switched root
    kernel_append: str = ""
    ktap: bool = True            # the suite knows --ktap
    user: int | None = None      # uid (= gid) the guest's pytest runs as; None: root


@dataclass
class VMResult:
    status: str = "infra"        # ok | error | infra | interrupted
    reason: str = ""
    accel: str = ""
    accel_reason: str = ""
    init_s: float | None = None  # qemu start -> init switched root (boot.json)
    boot_s: float | None = None  # qemu start -> first test result
    wall_s: float = 0.0
    exit_status: int | None = None
    qemu_status: int | None = None
    retried: str = ""            # why the kernel was booted a second time


@dataclass
class VM:
    kernel: "object"             # kernels.Kernel
    results: Path
    python: str
    cwd: str
    pytest_args: list[str]
    initrd: Path
    opts: VMOptions
    fsd: virtiofsd.Virtiofsd | None = None  # found once per run; None: find it here
    stop: threading.Event = field(default_factory=threading.Event)
    phase: str = "queued"
    progress: Progress = field(default_factory=Progress)
    started: float | None = None  # monotonic time qemu started
    result: VMResult = field(default_factory=VMResult)

    def guest_command(self) -> list[str]:
        """What the guest runs as root in self.cwd (vm/exec.py: a user's command)."""
        r = self.results
        # pytest's cache per kernel, in its results dir (the guest sees the
        # project read-only): --lf/--ff rerun what failed on THAT kernel.
        args = [self.python, "-m", "pytest", "-o", f"cache_dir={r}/.pytest_cache", *self.pytest_args,
                # xunit1 keeps the file= attribute, so node ids can be rebuilt.
                "-o", "junit_family=xunit1", f"--junitxml={r}/junit.xml"]
        if self.opts.ktap:  # the suite's harness plugins are loaded
            args += [f"--ktap={r}/ktap.txt", f"--features-json={r}/features.json"]
        return args

    def as_user(self) -> list[str]:
        """--vm-user: the guest command runs as that uid, without
        capabilities, through vm/unpriv.py (which makes the project and the
        results directory reachable when they sit under a closed directory)."""
        u = self.opts.user
        if u is None:
            return []
        return [self.python, "-m", "vm.unpriv", "--uid", str(u), "--gid", str(u),
                "--keep", self.cwd, "--keep", str(self.results), "--"]

    def guest_script(self) -> str:
        r = self.results
        env = {"MNTNS_VM": "1", "MNTNS_BOOT_RECORD": f"{r}/boot.json", "HOME": "/tmp",
               "PYTHONDONTWRITEBYTECODE": "1", "LANG": "C.UTF-8"}
        if os.environ.get("PYTEST_ADDOPTS"):
            env["PYTEST_ADDOPTS"] = os.environ["PYTEST_ADDOPTS"]
        lines = [f"export {k}={shlex.quote(v)}" for k, v in env.items()]
        lines += [f"cd {shlex.quote(self.cwd)} || exit 3",
                  "exec " + shlex.join(self.as_user() + self.guest_command())]
        return "\n".join(lines) + "\n"

    def run(self) -> VMResult:
        self.results.mkdir(parents=True, exist_ok=True)
        if self.opts.user is not None:  # the guest's pytest writes its reports here
            os.chown(self.results, self.opts.user, self.opts.user)
        self._clean_results(*(f"{log}.{tag}.log" for log in ("qemu", "console")
                              for tag in ("kvm", "first-boot")))
        accel, why = choose_accel(self.opts.accel)
        res = self._boot(accel)
        if res.status == "kvm_failed" and self.opts.accel == "auto":
            kvm_failed(res.reason)
            self._set_aside("kvm")
            res = self._boot("tcg")
            why = f"qemu failed under KVM ({_KvmState.failure}); retried under TCG"
        if res.accel == "tcg" and res.status == "error" and res.init_s is None:
            # qemu's multi-threaded TCG sometimes runs a stale copy of kernel
            # text the kernel is patching (seen: "Oops: int3" in
            # sched_clock_cpu while static keys flip at boot, 7.3.4, about 1
            # boot in 5) or, on an oversubscribed host, stalls a boot after
            # SMP bring-up until the boot deadline. Before init no test has
            # run: boot once more; a kernel that really crashes or hangs at
            # boot does it again and is an ERROR.
            first = res.reason
            self._set_aside("first-boot")
            res = self._boot("tcg")
            res.retried = f"first boot failed before init under TCG, booted again ({first})"
        res.accel_reason = why
        self.result = res
        self.phase = "done"
        return res

    def _set_aside(self, tag: str) -> None:
        """Keep a failed attempt's logs as evidence: qemu.TAG.log, console.TAG.log."""
        for log in ("qemu", "console"):
            if (self.results / f"{log}.log").exists():
                (self.results / f"{log}.log").rename(self.results / f"{log}.{tag}.log")

    def _clean_results(self, *extra: str):
        for name in ("boot.json", "exit_status", "exit_status.tmp", "junit.xml", "ktap.txt",
                     "console.log", "pytest.log", "qemu.log", "error.txt", "guest.sh",
                     "features.json", "timeline.json", "virtiofsd.log", *extra):
            (self.results / name).unlink(missing_ok=True)

    def _boot(self, accel: str) -> VMResult:
        self._clean_results()
        (self.results / "guest.sh").write_text(self.guest_script())
        res = VMResult(accel=accel)
        if self.stop.is_set():
            res.status, res.reason = "interrupted", "stopped before boot"
            return res
        tmp = Path(tempfile.mkdtemp(prefix="mntns-vm-"))
        procs: list[subprocess.Popen] = []
        try:
            if not self._start_virtiofsd(tmp, procs):
                res.reason = "virtiofsd did not start:\n" + tail(self.results / "virtiofsd.log")
                return res
            qemu = self._start_qemu(accel, tmp)
            procs.append(qemu)
            outcome = self._watch(qemu, accel, res)
            res.qemu_status = qemu.wait()
            res.wall_s = round(time.monotonic() - self.started, 1)
            self._classify(res, outcome)
            self._write_timeline(res)
            return res
        finally:
            _stop_all(procs)
            _remove_tmp(tmp)

    def _start_virtiofsd(self, tmp: Path, procs: list) -> bool:
        k, r = self.kernel, self.results
        fsd = self.fsd or virtiofsd.find()
        vlog = open(r / "virtiofsd.log", "wb")
        mods = ["--modules", f"{k.release}={k.modules}"] if k.modules else []
        # The root never changes under the guest: cache it; results do.
        procs.append(subprocess.Popen(
            [sys.executable, str(ROFS), str(tmp / "root"), *mods, "--",
             *fsd.argv(f"{tmp}/root.sock", f"{tmp}/root", "always")],
            stdout=vlog, stderr=vlog, start_new_session=True))
        procs.append(subprocess.Popen(fsd.argv(f"{tmp}/results.sock", str(r), "none"),
                                      stdout=vlog, stderr=vlog, start_new_session=True))
        deadline = time.monotonic() + 15
        while not all((tmp / s).exists() for s in ("root.sock", "results.sock")):
            if time.monotonic() > deadline or any(p.poll() is not None for p in procs):
                return False
            time.sleep(0.05)
        return True

    def qemu_command(self, accel: str, tmp: Path) -> list[str]:
        k, r, o = self.kernel, self.results, self.opts
        keep = keep_paths(p for _, p in preflight.paths_to_share(self.cwd, self.python))
        append = " ".join(filter(None, [
            # printk.devkmsg=on: the per-test marks the suite writes to
            # /dev/kmsg (vm/crash.py) are not ratelimited away.
            "console=ttyS0 panic=-1 printk.devkmsg=on", f"mntns.results={r}", f"mntns.python={self.python}",
            f"mntns.keep={':'.join(keep)}" if keep else "", o.kernel_append]))
        mem = f"{o.memory_mb}M"
        return [QEMU, "-nodefaults", "-no-user-config", "-no-reboot", "-display", "none",
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

    def _start_qemu(self, accel: str, tmp: Path) -> subprocess.Popen:
        cmd = self.qemu_command(accel, tmp)
        (self.results / "qemu.cmd").write_text(shlex.join(cmd) + "\n")
        self.phase = f"booting ({accel})"
        self.started = time.monotonic()
        return subprocess.Popen(cmd, stdout=open(self.results / "qemu.log", "wb"),
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)

    def _watch(self, qemu: subprocess.Popen, accel: str, res: VMResult) -> str:
        """Follow the guest until qemu exits; kill it on a deadline, a stop
        request or a KVM failure. Returns what ended it."""
        r, o = self.results, self.opts
        while qemu.poll() is None:
            time.sleep(POLL_S)
            now = time.monotonic() - self.started
            if res.init_s is None and (r / "boot.json").exists():
                res.init_s, self.phase = round(now, 1), "testing"
            self.progress = ktap_progress(r / "ktap.txt")
            if res.boot_s is None and self.progress.done:
                res.boot_s = round(now, 1)
            ended = ("stopped" if self.stop.is_set()
                     else "kvm_failed" if accel == "kvm" and b"KVM internal error" in _read(r / "qemu.log")
                     else "boot_deadline" if res.init_s is None and now > o.boot_timeout_s
                     else "timeout" if now > o.timeout_s else None)
            if ended:
                qemu.kill()
                return ended
        if accel == "kvm" and not _read(r / "console.log").strip():
            return "kvm_failed"  # died before the guest's first console line
        return "exited"

    def _classify(self, res: VMResult, outcome: str) -> None:
        r = self.results
        console = _read(r / "console.log").decode(errors="replace")
        errs = console_errors(console)
        res.exit_status = _int_file(r / "exit_status")
        res.status, res.reason = self._verdict(res, outcome, console, errs)
        if res.status != "ok":
            (r / "error.txt").write_text(self._error_text(res, console, errs))

    def _verdict(self, res: VMResult, outcome: str, console: str, errs: list[str]):
        """(status, reason): the first cause that applies, kernel trouble first."""
        r, o, p = self.results, self.opts, self.progress
        last = (console.strip().splitlines() or ["(none)"])[-1].strip()
        fatal = [l.split("mntns-init: ", 1)[1] for l in console.splitlines()
                 if "mntns-init: FATAL" in l]
        if outcome == "kvm_failed":
            return "kvm_failed", f"qemu {_qemu_end(res)}: {last_line(r / 'qemu.log')}"
        if outcome == "stopped":
            return "interrupted", f"stopped by the user after {res.wall_s:.0f} s, {p.done} results"
        if errs:
            complaints = crash.complaints(console)
            return "error", f"console: {crash.describe(complaints[0]) if complaints else errs[0]}"
        if outcome == "boot_deadline":
            return "error", (f"kernel did not reach init within {o.boot_timeout_s:.0f} s "
                             f"(last console line: {last})")
        if outcome == "timeout":
            return "error", (f"guest hung: no power-off within {o.timeout_s:.0f} s, "
                             f"{p.done}/{p.planned or '?'} results{_in_tests(console)}")
        if not console.strip():
            return "infra", (f"qemu {_qemu_end(res)} before the guest printed anything: "
                             f"{last_line(r / 'qemu.log')}")
        if fatal:
            return "infra", fatal[0]
        if res.exit_status is None:
            return "error", ("guest stopped without an exit status (init died or the kernel "
                             f"crashed; last console line: {last}){_in_tests(console)}")
        return self._exit_verdict(res)

    def _exit_verdict(self, res: VMResult):
        """The guest's command exited: did pytest run? (vm/exec.py: any status is the command's)"""
        if res.exit_status not in PYTEST_OK_STATUSES:
            return "infra", f"guest pytest exited {res.exit_status}: {last_line(self.results / 'pytest.log')}"
        if not (self.results / "junit.xml").exists():
            return "infra", "guest wrote no junit.xml"
        return "ok", ""

    def _error_text(self, res: VMResult, console: str, errs: list[str]) -> str:
        r = self.results
        return "\n".join([
            res.reason, "",
            f"--- qemu: {_qemu_end(res)}; end of qemu.log ---", tail(r / "qemu.log"), "",
            "--- end of virtiofsd.log ---", tail(r / "virtiofsd.log", 8), "",
            "--- end of pytest.log ---", tail(r / "pytest.log"), "",
            "--- console excerpt ---", console_excerpt(console, errs), ""])

    def _write_timeline(self, res: VMResult) -> None:
        import json
        (self.results / "timeline.json").write_text(json.dumps({
            "accel": res.accel, "init_s": res.init_s, "first_result_s": res.boot_s,
            "wall_s": res.wall_s}) + "\n")


def _in_tests(console: str) -> str:
    """', in T1, T2': the tests started and never ended (vm/crash.py running())."""
    tests = crash.running(console)
    return f", in {', '.join(tests)}" if tests else ""


def _qemu_end(res: VMResult) -> str:
    s = res.qemu_status
    if s is None:
        return "did not exit"
    return f"died of {signal.Signals(-s).name}" if s < 0 else f"exited with status {s}"


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError:
        return b""


def last_line(path: Path) -> str:
    lines = _read(path).decode(errors="replace").strip().splitlines()
    return lines[-1].strip() if lines else "(empty)"


def _int_file(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def _stop_all(procs: list[subprocess.Popen]) -> None:
    for p in procs:
        if p.poll() is None:
            p.terminate()
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def _remove_tmp(tmp: Path) -> None:
    # Only empty dirs/sockets remain (the ro tree lived in virtiofsd's
    # private mount namespace): never rmtree here.
    for name in ("root.sock", "results.sock", "root.sock.pid", "results.sock.pid"):  # Rust: .pid
        (tmp / name).unlink(missing_ok=True)
    for d in (tmp / "root.ovl", tmp / "root", tmp):
        try:
            d.rmdir()
        except OSError:
            pass


def console_excerpt(console: str, errs: list[str], context: int = 30) -> str:
    lines = console.splitlines()
    if errs:
        i = next(i for i, l in enumerate(lines) if l.strip() == errs[0])
        return "\n".join(lines[max(0, i - 5):i + context])
    return "\n".join(lines[-context:])
