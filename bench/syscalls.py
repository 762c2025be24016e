"""Syscalls per container, counted in a pass of their own under strace.

`strace -f -c` runs bench.count (the same C loop) twice, for N1 and N2
containers; the difference of the counts over N2 - N1 cancels the Python
start-up and leaves what one container costs, per syscall, the floor's
clone/exit/wait included. strace slows everything down, so this pass is
never timed.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile

N1, N2 = 10, 60
BENCH_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def strace_counts(method: str, rootfs: str, n: int) -> dict[str, int]:
    """{syscall: calls} of `python -m bench.count METHOD ROOTFS n` under strace -f -c."""
    with tempfile.TemporaryDirectory(prefix="mntns-bench-strace-") as d:
        out = os.path.join(d, "counts")
        p = subprocess.run(["strace", "-f", "-c", "-U", "calls,name", "-o", out,
                            sys.executable, "-m", "bench.count", method, rootfs, str(n)],
                           cwd=BENCH_ROOT, capture_output=True, text=True)
        if p.returncode != 0:
            raise RuntimeError(f"bench.count {method} under strace exited {p.returncode}: "
                               f"{(p.stderr.strip().splitlines() or ['(no output)'])[-1]}")
        return parse(open(out).read())


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
    by = {name: round(v, 2) for name, v in sorted(diff.items()) if round(v, 2)}
    return {"total": round(sum(by.values()), 1), "by_syscall": by, "error": None}
