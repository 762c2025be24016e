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


def _creator(chan, loop, method: Method, rootfs: str, n: int, warmup: int, max_ns: int) -> dict:
    """One creator process: warm up, say so, wait for the start, run up to n
    containers (or until max_ns has passed)."""
    ctx, _keep = make_ctx(loop, rootfs)
    if warmup and loop.lib.bench_loop(method.index, warmup, max_ns // 10, ctx) < 0:
        chan.send("ready")
        return {"done": 0, "error": step_name(method, ctx.step, ctx.err)}
    chan.send("ready")
    chan.recv()
    if loop.lib.bench_loop(method.index, n, max_ns, ctx) < 0:
        return {"done": ctx.done, "error": step_name(method, ctx.step, ctx.err)}
    return {"done": ctx.done, "error": None}


def timed(loop, method: Method, rootfs: str, n: int, parallel: int, max_s: float | None = None) -> dict:
    """Up to n containers in total by `parallel` creator processes started
    together, each stopping after max_s: {"containers", "seconds",
    "containers_per_s", "error"}."""
    per = [n // parallel + (i < n % parallel) for i in range(parallel)]
    warmup = min(20, max(1, n // 20))
    max_ns = int(max_s * 1e9) if max_s else 0
    creators = [Partner(_creator, loop, method, rootfs, count, warmup, max_ns) for count in per]
    for c in creators:
        c.recv()
    t0 = time.monotonic()
    for c in creators:
        c.send("go")
    results = [c.join() for c in creators]
    seconds = time.monotonic() - t0
    done = sum(r["done"] for r in results)
    errors = [r["error"] for r in results if r["error"]]
    if errors:
        return {"containers": done, "seconds": None, "containers_per_s": None, "error": errors[0]}
    return {"containers": done, "seconds": round(seconds, 4), "containers_per_s": round(done / seconds, 1),
            "error": None}


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
