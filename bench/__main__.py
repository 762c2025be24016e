"""python -m bench: container root set-up by the classic and the new
mount-namespace methods, in containers per second (issue 11).

    python -m bench [-n N] [--max-seconds S] [--repeat R] [--sizes 30,300,3000]
                    [--parallel 1,2] [--methods LIST] [--json FILE] [--plot FILE.png]
                    [--no-syscalls]
    python -m bench --from-json FILE [--plot FILE.png]
    python -m bench --build

As root, on the running kernel (in a VM: python -m vm exec --kernel K --
.venv/bin/python -m bench ...). For each mount-table size (the benchmark's
private mount namespace is filled up with bind mounts to that many; the
host's is never touched) and each number of parallel creators, N containers
are set up and torn down with each method, in C (bench/loop.c), and the
harness floor (the same loop doing nothing) is measured beside them. Every
method's end state is checked once per configuration before it is timed.
A method the kernel lacks (helpers/probes.py) is "unavailable", never 0.
Syscalls per container come from a separate strace pass.

Exit status: 0 every available method ran and left the right state; 1 one
failed or left a wrong state; 4 usage error (bad option, not root); 125 the
C loop could not be built.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from bench import cloop, measure, report, syscalls
from bench.methods import BY_NAME, FLOOR, METHODS, availability
from bench.stage import Stage

USAGE, INFRA = 4, 125


class UsageError(Exception):
    pass


class Parser(argparse.ArgumentParser):
    def error(self, message):
        raise UsageError(message)


def _ints(text: str) -> list[int]:
    try:
        values = sorted({int(v) for v in text.split(",") if v})
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a comma-separated list of numbers: {text!r}") from None
    if not values or values[0] < 1:
        raise argparse.ArgumentTypeError(f"needs numbers >= 1: {text!r}")
    return values


def _methods(text: str) -> list:
    names = [v for v in text.split(",") if v]
    unknown = [n for n in names if n not in BY_NAME or n == FLOOR.name]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"unknown method {', '.join(unknown) or text!r}; "
                                         f"known: {', '.join(m.name for m in METHODS)}")
    return [m for m in METHODS if m.name in names]


def parse_args(argv: list[str]) -> argparse.Namespace:
    _, usage, description = __doc__.split("\n\n", 2)
    p = Parser(prog="python -m bench", usage=usage.strip(), description=description,
               formatter_class=argparse.RawDescriptionHelpFormatter, allow_abbrev=False)
    p.add_argument("-n", type=int, default=2000, metavar="N",
                   help="containers per method and configuration (default 2000)")
    p.add_argument("--sizes", type=_ints, default=[30, 300, 3000], metavar="LIST",
                   help="mount-table sizes of the creating namespace (default 30,300,3000)")
    p.add_argument("--parallel", type=_ints, default=[1, 2], metavar="LIST",
                   help="numbers of creator processes at once (default 1,2)")
    p.add_argument("--methods", type=_methods, default=METHODS, metavar="LIST",
                   help=f"default: {','.join(m.name for m in METHODS)}")
    p.add_argument("--max-seconds", type=float, default=None, metavar="S",
                   help="stop each timing after S seconds, whatever N (slow guests); "
                        "containers/s is then over the containers made")
    p.add_argument("--repeat", type=int, default=3, metavar="R",
                   help="time each configuration R times and report the median (default 3)")
    p.add_argument("--json", metavar="FILE", help="write the results as JSON")
    p.add_argument("--plot", metavar="FILE.png", help="plot containers/s against mount-table size")
    p.add_argument("--no-syscalls", action="store_true", help="skip the strace pass")
    p.add_argument("--build", action="store_true",
                   help="only build the C loop (before a VM run: the guest sees the tree read-only)")
    p.add_argument("--from-json", metavar="FILE",
                   help="measure nothing: the table (and --plot) of an earlier run's JSON, e.g. from a guest")
    opts = p.parse_args(argv)
    if opts.n < 1 or opts.repeat < 1 or (opts.max_seconds is not None and opts.max_seconds <= 0):
        p.error("-n and --repeat need a number >= 1, --max-seconds one > 0")
    if opts.n < max(opts.parallel):
        p.error(f"-n {opts.n} is fewer containers than creators ({max(opts.parallel)})")
    return opts


def accel() -> str:
    """What the kernel runs on: the VM runner's guest says (vm/exec.py)."""
    return os.environ.get("MNTNS_VM_ACCEL") or ("vm" if os.environ.get("MNTNS_VM") else "none")


def say(line: str) -> None:
    print(f"bench: {line}", file=sys.stderr, flush=True)


def main(argv: list[str]) -> int:
    try:
        opts = parse_args(argv)
        if opts.from_json:
            return report_only(opts)
        if opts.build:
            return build_only()
        if os.geteuid() != 0:
            raise UsageError("needs root (mount namespaces, pivot_root): run it with sudo")
    except UsageError as e:
        print(f"bench: {e}", file=sys.stderr)
        return USAGE
    try:
        loop = cloop.load()
    except cloop.BuildError as e:
        say(str(e))
        return INFRA
    doc = run(opts, loop)
    print(report.table(doc))
    if opts.json:
        report.write_json(doc, opts.json)
        say(f"wrote {opts.json}")
    if opts.plot:
        print(report.plot(doc, opts.plot), file=sys.stderr)
    return 1 if any(r["status"] == "error" for r in doc["results"]) else 0


def build_only() -> int:
    try:
        say(f"C loop: {cloop.load().__file__}")
        return 0
    except cloop.BuildError as e:
        say(str(e))
        return INFRA


def report_only(opts) -> int:
    try:
        doc = json.loads(Path(opts.from_json).read_text())
        doc["results"], doc["kernel"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise UsageError(f"--from-json {opts.from_json}: not a bench JSON ({e})") from None
    print(report.table(doc))
    if opts.plot:
        print(report.plot(doc, opts.plot), file=sys.stderr)
    return 1 if any(r["status"] == "error" for r in doc["results"]) else 0


def run(opts, loop) -> dict:
    avail = {m.name: availability(m) for m in opts.methods}
    doc = {"schema": 1, "kernel": os.uname().release, "machine": os.uname().machine, "accel": accel(),
           "cpus": os.cpu_count(), "n": opts.n, "max_seconds": opts.max_seconds, "repeat": opts.repeat,
           "sizes": opts.sizes, "parallel": opts.parallel,
           "loop": "C via cffi API mode (bench/loop.c), clone(CLONE_VM|CLONE_VFORK) per container",
           "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
           "methods": {m.name: {"summary": m.summary, "available": avail.get(m.name, (True, None))[0],
                                "reason": avail.get(m.name, (True, None))[1]}
                       for m in [FLOOR, *opts.methods]},
           "results": []}
    stage = Stage()
    doc["scratch"] = stage.scratch  # gone after the run, with every mount below it
    try:
        for i, size in enumerate(opts.sizes):
            mounts = stage.inflate(size)
            doc["results"] += one_size(opts, loop, stage, size, mounts, avail)
            if i == 0 and not opts.no_syscalls:
                count_syscalls(doc, opts, stage)
    finally:
        stage.close()
    sc = {name: info.get("syscalls_per_container") for name, info in doc["methods"].items()}
    for r in doc["results"]:
        r["syscalls_per_container"] = sc.get(r["method"]) if r["status"] != "unavailable" else None
    report.ratios(doc["results"])
    return doc


def one_size(opts, loop, stage, size: int, mounts: int, avail: dict) -> list[dict]:
    """Rows for every method and P at one mount-table size. The timings are
    interleaved (repeat > P > method), so a change in the machine's load
    during the run hits every method alike, not the ones timed last."""
    rows = {}
    for m in [FLOOR, *opts.methods]:
        runs, why = avail.get(m.name) or (True, None)
        wrong = measure.end_state(loop, m, stage) if runs and m is not FLOOR else None
        for p in opts.parallel:
            rows[m.name, p] = r = {
                "method": m.name, "mounts_target": size, "mounts": mounts, "parallel": p,
                "status": "ok" if runs else "unavailable", "containers": None, "seconds": None,
                "containers_per_s": None, "runs_per_s": [], "reason": why, "error": None,
                "end_state": None if not runs else "n/a (no set-up)" if m is FLOOR else "ok"}
            if wrong:  # a fast wrong method cannot win: it is not timed
                r.update(status="error", end_state=wrong, error=f"end state: {wrong}")
        say(f"{m.name}: unavailable: {why}" if not runs else
            f"{m.name}: WRONG END STATE: {wrong}" if wrong else f"{m.name}: end state ok, mounts={mounts}")
    for _ in range(opts.repeat):
        for p in opts.parallel:
            for m in [FLOOR, *opts.methods]:
                r = rows[m.name, p]
                if r["status"] == "ok":
                    timing(r, measure.timed(loop, m, stage.rootfs, opts.n, p, opts.max_seconds))
    for r in rows.values():
        if r["runs_per_s"] and r["status"] == "ok":  # the median run's numbers
            r.update(sorted(r.pop("_runs"), key=lambda t: t["containers_per_s"])[len(r["runs_per_s"]) // 2])
        r.pop("_runs", None)
    return list(rows.values())


def timing(r: dict, t: dict) -> None:
    if t["error"]:
        r.update(status="error", error=t["error"])
    else:
        r.setdefault("_runs", []).append(t)
        r["runs_per_s"].append(t["containers_per_s"])
    say(f"{r['method']:13} mounts={r['mounts']:<5} P={r['parallel']}: "
        + (f"{t['containers_per_s']:.0f}/s" if t["containers_per_s"] else t["error"]))


def count_syscalls(doc: dict, opts, stage) -> None:
    for m in [FLOOR, *opts.methods]:
        info = doc["methods"][m.name]
        if not info["available"]:
            info.update(syscalls_per_container=None, syscalls=None)
            continue
        got = syscalls.per_container(m.name, stage.rootfs)
        info.update(syscalls_per_container=got["total"], syscalls=got["by_syscall"],
                    syscalls_error=got["error"])
        say(f"{m.name}: {got['total']} syscalls per container" if got["total"] is not None
            else f"{m.name}: syscalls not counted: {got['error']}")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
