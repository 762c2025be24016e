"""Timing one configuration (method x mount-table size x parallel creators)
and checking, once per configuration, the state a method leaves a container in."""
from __future__ import annotations

import os
import time

from bench.methods import Method, step_name
from helpers.mounts import mountinfo
from helpers.proc import Partner, reporting_child


class MethodFailed(Exception):
    """A method's syscall failed where the kernel should have it (one line)."""


def make_ctx(loop, rootfs: str):
    path = loop.ffi.new("char[]", os.fsencode(rootfs))
    ctx = loop.ffi.new("struct bench_ctx *", {"rootfs": path})
    return ctx, path  # the caller keeps `path` alive as long as ctx


def _creator(chan, loop, method: Method, rootfs: str, n: int, warmup: int) -> dict:
    """One creator process: warm up, say so, wait for the start, run n containers."""
    ctx, _keep = make_ctx(loop, rootfs)
    if warmup and loop.lib.bench_loop(method.index, warmup, ctx) < 0:
        chan.send("ready")
        return {"ns": None, "error": step_name(method, ctx.step, ctx.err)}
    chan.send("ready")
    chan.recv()
    ns = loop.lib.bench_loop(method.index, n, ctx)
    return {"ns": ns, "error": None} if ns >= 0 else {"ns": None, "error": step_name(method, ctx.step, ctx.err)}


def timed(loop, method: Method, rootfs: str, n: int, parallel: int) -> dict:
    """n containers in total by `parallel` creator processes started together:
    {"containers", "seconds", "containers_per_s", "error"}."""
    per = [n // parallel + (i < n % parallel) for i in range(parallel)]
    warmup = min(20, max(1, n // 20))
    creators = [Partner(_creator, loop, method, rootfs, count, warmup) for count in per]
    for c in creators:
        c.recv()
    t0 = time.monotonic()
    for c in creators:
        c.send("go")
    results = [c.join() for c in creators]
    seconds = time.monotonic() - t0
    errors = [r["error"] for r in results if r["error"]]
    if errors:
        return {"containers": n, "seconds": None, "containers_per_s": None, "error": errors[0]}
    return {"containers": n, "seconds": round(seconds, 4), "containers_per_s": round(n / seconds, 1),
            "error": None}


def repeated(loop, method: Method, rootfs: str, n: int, parallel: int, repeat: int) -> dict:
    """timed() `repeat` times: the median run's numbers, and every run's containers/s."""
    runs = []
    for _ in range(repeat):
        t = timed(loop, method, rootfs, n, parallel)
        if t["error"]:
            return {**t, "runs_per_s": [r["containers_per_s"] for r in runs]}
        runs.append(t)
    median = sorted(runs, key=lambda r: r["containers_per_s"])[len(runs) // 2]
    return {**median, "runs_per_s": [r["containers_per_s"] for r in runs]}


def end_state(loop, method: Method, stage) -> str | None:
    """Set up one container with `method` in a child that then waits, and
    look at it from here through /proc/PID: None if it is what every method
    must give (its own mount namespace holding one mount, at "/", whose
    root is the rootfs -- or for fsmount_ns a fresh empty tmpfs -- and
    nothing else of the host), else what is wrong."""
    ctx, _keep = make_ctx(loop, stage.rootfs)

    def set_up():
        if loop.lib.bench_one(method.index, ctx):
            return step_name(method, ctx.step, ctx.err)
        return None

    with reporting_child(set_up) as (pid, failed):
        if failed:
            return f"set-up failed: {failed}"
        return _inspect(pid, method, stage)


def _inspect(pid: int, method: Method, stage) -> str | None:
    if os.readlink(f"/proc/{pid}/ns/mnt") == os.readlink("/proc/self/ns/mnt"):
        return "still in the benchmark's mount namespace"
    mounts = mountinfo(f"/proc/{pid}/mountinfo")
    shown = [f"{m.mount_point} ({m.fstype})" for m in mounts]
    if len(mounts) != 1 or mounts[0].mount_point != "/" or mounts[0].root != "/":
        return f"mountinfo of the new namespace: {shown}, expected one mount at / only"
    if mounts[0].fstype != "tmpfs":
        return f"root is {mounts[0].fstype}, expected tmpfs"
    root = f"/proc/{pid}/root"
    entries, dev = sorted(os.listdir(root)), os.stat(root).st_dev
    want = stage.rootfs_entries if method.copies_rootfs else []
    if entries != want:
        return f"root holds {entries}, expected {want}"
    if (dev == stage.rootfs_dev) != method.copies_rootfs:
        return "root is " + ("not " if method.copies_rootfs else "") + "the rootfs's filesystem"
    return None
