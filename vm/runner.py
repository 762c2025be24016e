"""Run a pytest selection in one VM per kernel, in parallel, and report."""
from __future__ import annotations

import os
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from . import initramfs, kernels, qemu, report
from .apt import PrivateApt

GUEST_OVERHEAD_MB = 512  # qemu + virtiofsd per guest, on top of guest RAM


@dataclass
class RunOptions:
    results_dir: Path = Path("results")
    mirror: str | None = None
    jobs: int | None = None  # None: from cores and memory
    kernel_append: list[str] = field(default_factory=list)  # "ARGS" or "K:ARGS"
    vm: qemu.VMOptions = field(default_factory=qemu.VMOptions)


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


MIN_VCPUS = 2


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


def list_kernels(mirror: str | None = None, out=print) -> int:
    avail = kernels.available(PrivateApt(mirror).kernel_packages())
    cached = {p.name for p in kernels.kernels_dir().glob("*") if (p / ".complete").exists()}
    series: dict[str, list] = {}
    for a in avail:
        series.setdefault(a.series, []).append(a)
    out("series  newest release (* = extracted in cache)       other point releases")
    for s, items in sorted(series.items(), key=lambda kv: kernels.version_key(kv[0])):
        items.sort(key=lambda a: a.key, reverse=True)
        mark = lambda a: a.upstream + ("*" if a.release in cached else "")
        default = " [all]" if s in kernels.DEFAULT_SERIES else ""
        out(f"{s + default:12} {items[0].release + ('*' if items[0].release in cached else ''):34} "
            + " ".join(mark(a) for a in items[1:]))
    return 0


def run(specs: list[str], pytest_args: list[str], cwd: str, opts: RunOptions,
        ktap: bool = True, out=print) -> int:
    results_dir = Path(cwd, opts.results_dir).resolve()
    apt = _Apt(opts.mirror)
    try:
        with apt.lock:
            # PrivateApt is only built (and the index only touched) when a
            # spec is not already extracted in the cache.
            ks = kernels.resolve(specs, _LazyApt(apt))
    except (LookupError, RuntimeError) as e:
        out(f"vm: {e}")
        return 4
    initrd = initramfs.build()
    jobs, smp = parallelism(len(ks), opts.jobs, opts.vm.memory_mb)
    vmopts = qemu.VMOptions(**{**opts.vm.__dict__, "smp": smp, "ktap": ktap})
    out(f"vm: {len(ks)} kernel(s), {jobs} at a time, {smp} vCPU(s) and {vmopts.memory_mb} MiB each; "
        f"results in {results_dir}")

    vms = [qemu.VM(k, results_dir / k.release, sys.executable, cwd, pytest_args, initrd,
                   qemu.VMOptions(**{**vmopts.__dict__, "kernel_append": append_for(k, opts.kernel_append)}))
           for k in ks]
    reasons: dict[str, str] = {}

    def one(vm: qemu.VM):
        try:
            if vm.kernel.packages is not None:
                vm.phase = "downloading"
                with apt.lock:
                    vm.kernel = kernels.fetch(vm.kernel, apt.get())
            if vm.kernel.modules is None:
                # e.g. Debian's 7.0.x/7.1.x cloud kernels: linux-modules-* not in the archive
                out(f"vm: {vm.kernel.release}: no modules available, modprobe will fail in the guest")
            vm.run()
        except Exception as e:  # one kernel's trouble must not stop the others
            vm.result = qemu.VMResult(status="error", reason=f"{type(e).__name__}: {e}")
            vm.phase, vm.progress = "done", f"error: {vm.result.reason}"

    shown: dict[str, str] = {}
    t0 = time.monotonic()
    with ThreadPoolExecutor(jobs) as pool:
        futures = [pool.submit(one, vm) for vm in vms]
        while True:
            finished = all(f.done() for f in futures)
            for vm in vms:
                line = f"{vm.phase} {vm.progress}".strip()
                if shown.get(vm.kernel.release) != line:
                    shown[vm.kernel.release] = line
                    out(f"[{time.monotonic() - t0:6.0f}s] {vm.kernel.release}: {line}")
            if finished:
                break
            time.sleep(1)

    runs = {}
    for vm in vms:
        r = vm.result
        runs[vm.kernel.release] = {"status": r.status, "accel": r.accel or None, "boot_s": r.boot_s,
                                   "wall_s": r.wall_s, "dir": vm.results}
        reasons[vm.kernel.release] = r.reason
        if r.status != "ok":
            err = vm.results / "error.txt"
            out(f"\n=== {vm.kernel.release}: ERROR: {r.reason}")
            if err.exists():
                out("\n".join(err.read_text(errors="replace").splitlines()[:40]))
    summary = report.summarize(runs)
    report.write(summary, results_dir, reasons)
    out("\n" + report.text(summary))
    out(f"\nvm: wrote {results_dir / 'summary.md'} and {results_dir / 'summary.json'}")
    return report.exit_code(summary)


class _LazyApt:
    """Looks like a PrivateApt to kernels.resolve() but creates it on first use."""
    def __init__(self, holder: _Apt):
        self._holder = holder

    def __getattr__(self, name):
        return getattr(self._holder.get(), name)
