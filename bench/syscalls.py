"""Syscalls per container, counted in a pass of their own under strace.

`strace -f -c` attaches to bench.count (the same C loop) once it has
started, twice, for N1 and N2 containers; the difference of the counts over
N2 - N1 cancels the hand-shake and the Python exit and leaves what one
container costs, per syscall, the floor's clone/wait included. strace slows everything down, so this pass is
never timed.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time

N1, N2 = 10, 60
BENCH_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def strace_counts(method: str, rootfs: str, n: int) -> dict[str, int]:
    """{syscall: calls} of `python -m bench.count METHOD ROOTFS n`, strace -f -c
    attached once it has started (Python's start-up under ptrace takes
    minutes in a TCG guest and is not what is counted)."""
    with tempfile.TemporaryDirectory(prefix="mntns-bench-strace-") as d:
        out, log = os.path.join(d, "counts"), os.path.join(d, "strace.log")
        child = subprocess.Popen([sys.executable, "-m", "bench.count", method, rootfs, str(n)],
                                 cwd=BENCH_ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True)
        try:
            if child.stdout.readline().strip() != "ready":
                raise RuntimeError(f"bench.count {method}: {_last(child.communicate()[1])}")
            with open(log, "w") as err:
                tracer = subprocess.Popen(["strace", "-f", "-c", "-U", "calls,name", "-o", out,
                                           "-p", str(child.pid)], stderr=err)
            _wait_attached(log, tracer)
            _, stderr = child.communicate("go\n")
            tracer.wait()
        finally:
            child.kill()
            child.wait()
        if child.returncode != 0:
            raise RuntimeError(f"bench.count {method} exited {child.returncode}: {_last(stderr)}")
        return parse(open(out).read())


def _wait_attached(log: str, tracer: subprocess.Popen, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while "attached" not in open(log).read():
        if tracer.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"strace -p did not attach: {_last(open(log).read())}")
        time.sleep(0.05)


def _last(text: str) -> str:
    return (text.strip().splitlines() or ["(no output)"])[-1]


def parse(text: str) -> dict[str, int]:
    """strace -c -U calls,name output -> {name: calls} (the total line left out)."""
    counts = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0].isdigit() and parts[1] != "total":
            counts[parts[1]] = int(parts[0])
    return counts


def per_container(method: str, rootfs: str) -> dict:
    """{"total": float, "by_syscall": {name: float}} or {"error": why}."""
    if not shutil.which("strace"):
        return {"total": None, "by_syscall": None, "error": "strace not found: apt-get install strace"}
    try:
        a, b = strace_counts(method, rootfs, N1), strace_counts(method, rootfs, N2)
    except (RuntimeError, OSError) as e:
        return {"total": None, "by_syscall": None, "error": str(e)}
    diff = {name: (b.get(name, 0) - a.get(name, 0)) / (N2 - N1) for name in set(a) | set(b)}
    # to 0.1: the two runs' Python start-ups differ by a call or two (a munmap)
    by = {name: round(v, 1) for name, v in sorted(diff.items()) if round(v, 1)}
    return {"total": round(sum(by.values()), 1), "by_syscall": by, "error": None}
