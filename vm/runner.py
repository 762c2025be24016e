"""Run a pytest selection in one VM per kernel, in parallel, and report."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from . import diff, errors, html, initramfs, kcidb, kernels, preflight, qemu, report
from .apt import PrivateApt
from .log import setup as log_setup
from .progress import Display

GUEST_OVERHEAD_MB = 512  # qemu + virtiofsd per guest, on top of guest RAM
MIN_VCPUS = 2


@dataclass
class RunOptions:
    results_dir: Path = Path("results")
    mirror: str | None = None
    jobs: int | None = None  # None: from cores and memory
    kernel_append: list[str] = field(default_factory=list)  # "ARGS" or "K:ARGS"
    vm: qemu.VMOptions = field(default_factory=qemu.VMOptions)
    junitxml: str | None = None  # merged JUnit of all kernels
    ktap: str | None = None      # merged KTAP of all kernels
    features_json: str | None = None  # the feature matrix of all kernels
    baseline: str | None = None  # summary.json (or its dir) to diff against: the gate


def append_for(k: kernels.Kernel, entries: list[str]) -> str:
    """Kernel command line extras for k: "ARGS" is for every kernel, "K:ARGS"
    only for the kernel asked for as K (or whose release starts with K) --
    so one kernel can be broken on purpose while the others run."""
    out = []
    for e in entries:
        sel, colon, rest = e.partition(":")
        if colon and sel and "=" not in sel and " " not in sel:
            if sel == k.label or k.release.startswith(sel):
                out.append(rest)
        else:
            out.append(e)
    return " ".join(out)


def mem_available_mb() -> int:
    try:
        for line in open("/proc/meminfo"):
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) // 1024
    except OSError:
        pass
    return 4096


def parallelism(n_kernels: int, jobs: int | None, memory_mb: int) -> tuple[int, int]:
    """(VMs at once, vCPUs each): one core per VM at least, RAM permitting;
    spare cores go to the guests (TCG runs one host thread per vCPU). Every
    guest gets at least MIN_VCPUS, even if that oversubscribes the host: some
    kernel behaviour (per-CPU id batches, cross-CPU races) only shows on SMP."""
    cpus = os.cpu_count() or 1
    if not jobs:
        jobs = min(cpus, mem_available_mb() // (memory_mb + GUEST_OVERHEAD_MB), n_kernels)
    jobs = max(1, min(jobs, n_kernels))
    return jobs, max(MIN_VCPUS, min(4, cpus // jobs))


class _Apt:
    """One PrivateApt shared by threads; apt's own locks don't like concurrency."""
    def __init__(self, mirror):
        self.mirror, self.lock, self._apt = mirror, threading.Lock(), None

    def get(self) -> PrivateApt:
        if self._apt is None:
            self._apt = PrivateApt(self.mirror)
        return self._apt


class _LazyApt:
    """Looks like a PrivateApt to kernels.resolve() but creates it on first use."""
    def __init__(self, holder: _Apt):
        self._holder = holder

    def __getattr__(self, name):
        return getattr(self._holder.get(), name)


def list_kernels(mirror: str | None = None, out=print) -> int:
    try:
        avail = kernels.available(PrivateApt(mirror).kernel_packages())
    except RuntimeError as e:
        out(f"vm: {str(e).splitlines()[0]}")
        return errors.INFRA
    cached = {(c.release, c.version) for c in kernels.cached_available()}
    series: dict[str, list] = {}
    for a in avail:
        series.setdefault(a.series, []).append(a)
    out("series  newest release (* = extracted in cache)       other point releases")
    for s, items in sorted(series.items(), key=lambda kv: kernels.version_key(kv[0])):
        items.sort(key=lambda a: a.key, reverse=True)
        star = lambda a: "*" if (a.release, a.version) in cached else ""
        mark = lambda a: a.upstream + star(a)
        default = " [all]" if s in kernels.DEFAULT_SERIES else ""
        out(f"{s + default:12} {items[0].release + star(items[0]):34} "
            + " ".join(mark(a) for a in items[1:]))
    return 0


def warm_caches(cwd: str, pytest_args: list[str]) -> None:
    """Collect the selection once on the host, writing bytecode and pytest's
    assertion-rewrite caches next to the sources: the guest sees them
    read-only and with PYTHONDONTWRITEBYTECODE, so without this every guest
    process compiles the whole suite again (seconds each under TCG). Also
    catches bad pytest arguments before any kernel boots."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    with tempfile.TemporaryDirectory() as cache:  # --lf/--ff must parse; the guests decide
        p = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q",
                            "-o", f"cache_dir={cache}", *pytest_args],
                           cwd=cwd, env=env, capture_output=True, text=True)
    if p.returncode not in (0, 5):
        lines = [l for l in (p.stderr + p.stdout).splitlines() if l.strip()]
        why = next((l for l in lines if l.startswith(("ERROR", "E "))), lines[-1] if lines else "")
        raise errors.UsageError(f"pytest cannot collect the selection (exit {p.returncode}): "
                                f"{why.strip()}")


def run(specs: list[str], pytest_args: list[str], cwd: str, opts: RunOptions,
        ktap: bool = True, out=print) -> int:
    log_setup()
    try:
        return _run(specs, pytest_args, cwd, opts, ktap, out)
    except errors.RunnerError as e:
        out(f"vm: {e}")
        return e.exit_code


def _resolve(specs: list[str], apt: _Apt) -> list[kernels.Kernel]:
    try:
        with apt.lock:
            return kernels.resolve(specs, _LazyApt(apt))
    except LookupError as e:
        raise errors.UsageError(str(e)) from None
    except RuntimeError as e:  # apt, the mirror or the network
        raise errors.InfraError(str(e).replace("\n", " ")) from None


def _run(specs, pytest_args, cwd, opts: RunOptions, ktap: bool, out) -> int:
    results_dir = Path(cwd, opts.results_dir).resolve()
    baseline = diff.load(Path(cwd, opts.baseline)) if opts.baseline else None  # before any boot
    fsd = preflight.check(cwd=cwd, results_dir=results_dir, python=sys.executable,
                    need_apt=any(not kernels.is_path(s) for s in specs), mirror=opts.mirror)
    apt = _Apt(opts.mirror)
    ks = _resolve(specs, apt)
    warm_caches(cwd, pytest_args)
    initrd = build_initrd()
    jobs, smp = parallelism(len(ks), opts.jobs, opts.vm.memory_mb)
    out(f"vm: {len(ks)} kernel(s), {jobs} at a time, {smp} vCPU(s) and {opts.vm.memory_mb} MiB "
        f"each; results in {results_dir}")
    base = {**opts.vm.__dict__, "smp": smp, "ktap": ktap}
    vms = [qemu.VM(k, results_dir / k.name, sys.executable, cwd, pytest_args, initrd,
                   qemu.VMOptions(**{**base, "kernel_append": append_for(k, opts.kernel_append)}),
                   fsd)
           for k in ks]
    started = time.time()
    interrupted = _drive(vms, jobs, apt, out)
    return report_runs(vms, results_dir, opts, out, interrupted, started, baseline)


def build_initrd() -> Path:
    try:
        return initramfs.build()
    except (RuntimeError, OSError, subprocess.CalledProcessError) as e:
        raise errors.InfraError(f"building the initramfs failed: {e}") from None


def _one(vm: qemu.VM, apt: _Apt, out) -> None:
    try:
        if vm.kernel.packages is not None:
            vm.phase = "downloading"
            with apt.lock:
                vm.kernel = kernels.fetch(vm.kernel, apt.get())
        if vm.kernel.modules is None:
            # e.g. Debian's 7.0.x/7.1.x cloud kernels: linux-modules-* not in the archive
            out(f"vm: {vm.kernel.name}: no modules available, modprobe will fail in the guest")
        vm.run()
    except Exception as e:  # one kernel's trouble must not stop the others
        vm.result = qemu.VMResult(status="infra", reason=f"{type(e).__name__}: {e}")
        vm.phase = "done"


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def _drive(vms: list[qemu.VM], jobs: int, apt: _Apt, out) -> bool:
    """Run the VMs, `jobs` at a time, showing progress. Ctrl-C, or SIGTERM
    (how CI systems cancel a job), stops every guest (queued ones never
    start) and returns True: qemu runs in its own session, so nothing else
    would stop it."""
    display = Display()
    pool = ThreadPoolExecutor(jobs)
    futures = [pool.submit(_one, vm, apt, out) for vm in vms]
    old_term = signal.signal(signal.SIGTERM, _interrupt)
    try:
        while not all(f.done() for f in futures):
            display.update(vms)
            time.sleep(0.5)
        return False
    except KeyboardInterrupt:
        out("\nvm: interrupted: stopping every guest, writing a partial summary")
        for vm in vms:
            vm.stop.set()
        return True
    finally:
        signal.signal(signal.SIGTERM, old_term)
        pool.shutdown(wait=True, cancel_futures=True)
        for vm in vms:
            if vm.phase == "queued":
                vm.result = qemu.VMResult(status="interrupted", reason="not started")
                vm.phase = "done"
        display.update(vms)


def _run_record(started: float) -> dict:
    """What ran, for whoever reads summary.json later: the command line, the
    suite's commit (and whether the checkout had local changes), when."""
    def git(*args):
        p = subprocess.run(["git", *args], capture_output=True, text=True,
                           cwd=Path(__file__).resolve().parents[1])
        return p.stdout.strip() if p.returncode == 0 else None
    return {"command": sys.argv, "commit": git("rev-parse", "HEAD"),
            "dirty": bool(git("status", "--porcelain", "--untracked-files=no")),
            "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
            "wall_s": round(time.time() - started, 1)}


def report_runs(vms: list, results_dir: Path, opts: RunOptions, out, interrupted: bool,
                started: float, baseline: dict | None = None) -> int:
    """Summary, merged reports, matrix.html, kcidb.json and the exit code for
    finished runs: each entry has .kernel, .result (a qemu.VMResult) and
    .results (its directory) -- a qemu.VM, or another way of running the
    suite on a kernel (vm/vagrant/run.py)."""
    runs = {vm.kernel.name: {"status": vm.result.status, "reason": vm.result.reason,
                             "accel": vm.result.accel or None,
                             "accel_reason": vm.result.accel_reason or None,
                             "retried": vm.result.retried or None,
                             "package": getattr(vm.kernel, "version", None),
                             "init_s": vm.result.init_s, "boot_s": vm.result.boot_s,
                             "wall_s": vm.result.wall_s, "dir": vm.results} for vm in vms}
    for name, r in runs.items():
        if r["status"] != "ok":
            out(f"\n=== {name}: {r['status'].upper()}: {r['reason']}")
            err = r["dir"] / "error.txt"
            if err.exists():
                out("\n".join(err.read_text(errors="replace").splitlines()[:60]))
    summary = {**report.summarize(runs), "run": _run_record(started)}
    report.write(summary, results_dir, {n: r["reason"] for n, r in runs.items()})
    html.write(results_dir)  # matrix.html: the same matrix for a person (vm/html.py)
    kcidb.write(results_dir)  # kcidb.json: KCIDB v5, for a CI dashboard (vm/kcidb.py)
    statuses = {n: (r["status"], r["reason"]) for n, r in runs.items()}
    dirs = {n: r["dir"] for n, r in runs.items()}
    if opts.junitxml:
        report.merge_junit(dirs, statuses, Path(opts.junitxml))
    if opts.ktap:
        report.merge_ktap(dirs, statuses, Path(opts.ktap))
    if opts.features_json:
        shutil.copyfile(results_dir / "features.json", opts.features_json)
    out("\n" + report.text(summary))
    out(f"\nvm: wrote {results_dir / 'summary.md'}, {results_dir / 'summary.json'}, "
        f"{results_dir / 'matrix.html'} and {results_dir / 'kcidb.json'}")
    if interrupted:
        return errors.INTERRUPTED
    if baseline is None:
        return report.exit_code(summary)
    # Gating against a baseline: what still fails as before does not fail
    # the gate; a regression does.
    d = diff.compare(baseline, summary)
    (results_dir / "diff.json").write_text(json.dumps(d, indent=2) + "\n")
    out(f"\nvm: against the baseline {opts.baseline}:\n{diff.text(d)}")
    return diff.exit_code(d)
