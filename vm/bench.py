"""python -m vm bench: the VM runner's speed, in numbers.

    python -m vm bench --kernel 7.3 [--kernel 6.18 ...] [--results-dir DIR]
                       [--json FILE] [--compare OLD.json] [--runs floor,suite]
                       [--quiet] [RUNNER OPTIONS...] [-- PYTEST SELECTION...]
    python -m vm bench --from-results DIR [--runs NAME] [--json FILE] [--compare OLD.json]

Runs the runner (`python -m pytest --kernel K ...`) once per run, in a
subprocess from the repository root, results in DIR/<run>/:

  floor  bench/test_floor.py: 100 cases that cost nothing, with the suite's
         xdist options (-n ...), so it measures the runner's and the harness's
         own cost (boot, pytest start-up, probes, fork + namespace copy per case);
  suite  the selection after `--` (default: suites -n auto).

Options this command does not know (before `--`), e.g. `--vm-accel tcg`,
`--vm-jobs 1`, go to the runner unchanged.  The runner's exit status 1 (some
test failed) still gives numbers; any other non-zero status leaves that run
without numbers.  --from-results reads an existing results directory (one
runner run, or a bench directory holding floor/ and suite/) and boots nothing.
"""
from __future__ import annotations

import argparse
import json
import math
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

from . import errors

REPO = Path(__file__).resolve().parent.parent
FLOOR = "bench/test_floor.py"
DEFAULT_SUITE = ["suites", "-n", "auto"]
RUNS = ("floor", "suite")
RUNNER_OK = {errors.OK, errors.TESTS_FAILED}  # failing tests still give timings
WHY = {
    errors.USAGE: "usage error (bad option, unknown kernel, not root, a path the guest cannot see)",
    errors.KERNEL_CRASHED: "a kernel crashed or hung",
    errors.INFRA: "infrastructure failure (qemu, virtiofsd, busybox, apt or the network)",
    errors.INTERRUPTED: "interrupted",
}
HARNESS_WALL = "harness_wall_s"


# ---------------------------------------------------------------- statistics

def p95(values: list[float]) -> float:
    """95th percentile by the nearest-rank method: the smallest value that at
    least 95 % of the values are <= to (always one of the values, defined for
    a single value too, unlike statistics.quantiles)."""
    s = sorted(values)
    return s[max(1, math.ceil(0.95 * len(s))) - 1]


# ---------------------------------------------------------------- reading one kernel's results

def _load_json(path: Path):
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def read_junit(path: Path) -> list[dict] | None:
    """One entry per test (junit may repeat a test, e.g. for a teardown error:
    the largest figures win): {"time": body s, "harness_wall_s": s | None}."""
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError):
        return None
    tests: dict[tuple, dict] = {}
    for tc in root.iter("testcase"):
        key = (tc.get("file"), tc.get("classname"), tc.get("name"))
        prop = tc.find(f"properties/property[@name='{HARNESS_WALL}']")
        new = {"time": float(tc.get("time") or 0),
               HARNESS_WALL: float(prop.get("value")) if prop is not None else None}
        old = tests.setdefault(key, new)
        if old is not new:
            old["time"] = max(old["time"], new["time"])
            if new[HARNESS_WALL] is not None:
                old[HARNESS_WALL] = max(old[HARNESS_WALL] or 0, new[HARNESS_WALL])
    return list(tests.values())


def guest_command(kdir: Path) -> tuple[str | None, list[str] | None]:
    """(directory, pytest arguments) of the guest's run, from guest.sh."""
    try:
        lines = (kdir / "guest.sh").read_text().splitlines()
    except OSError:
        return None, None
    cwd = args = None
    for line in lines:
        if line.startswith("cd "):
            cwd = shlex.split(line.split("||")[0])[1]
        elif line.startswith("exec "):
            words = shlex.split(line)[1:]
            args = words[words.index("pytest") + 1:] if "pytest" in words else words
    return cwd, args


def _option_values(args: list[str], short: str | None, long: str) -> list[str]:
    """Values of an option in its forms: -n 2, -n2, --numprocesses 2, --numprocesses=2."""
    out = []
    for i, a in enumerate(args):
        if a == long or (short and a == short):
            if i + 1 < len(args):
                out.append(args[i + 1])
        elif a.startswith(long + "="):
            out.append(a[len(long) + 1:])
        elif short and a.startswith(short) and not a.startswith("--") and len(a) > len(short):
            out.append(a[len(short):])
    return out


def xdist_options(args: list[str]) -> list[str]:
    """The arguments that decide xdist's workers, to give the floor the suite's."""
    out = []
    for v in _option_values(args, "-n", "--numprocesses"):
        out += ["-n", v]
    for v in _option_values(args, None, "--dist"):
        out += ["--dist", v]
    for v in _option_values(args, "-p", "-p"):
        if v == "no:xdist":
            out += ["-p", v]
    return out


def workers(kdir: Path, args: list[str] | None) -> int | None:
    """Parallel pytest workers of a guest's run: xdist's own "N workers [M
    items]" line in pytest.log, else the -n argument (auto/logical = the
    guest's vCPUs, qemu -smp), else 1 (no -n: one process); None if unknown."""
    try:
        log = (kdir / "pytest.log").read_text(errors="replace")
        m = re.search(r"^(\d+) workers? \[\d+ items?\]", log, re.M)
        if m:
            return int(m.group(1))
    except OSError:
        pass
    if args is None:
        return None
    n = _option_values(args, "-n", "--numprocesses")
    if "no:xdist" in _option_values(args, "-p", "-p") or not n or n[-1] == "0":
        return 1
    if n[-1].isdigit():
        return int(n[-1])
    try:
        m = re.search(r"(?:^|\s)-smp (\d+)", (kdir / "qemu.cmd").read_text())
    except OSError:
        m = None
    return int(m.group(1)) if m else None


def analyse_kernel(kdir: Path, summary: dict | None, fallback_args: list[str] | None = None) -> dict:
    """The numbers of one kernel's run; "unavailable" says which are missing and why."""
    summary = summary or {}
    unavailable: dict[str, str] = {}
    notes: list[str] = []
    cwd, args = guest_command(kdir)
    args = args if args is not None else fallback_args
    timeline = _load_json(kdir / "timeline.json")
    if timeline is not None:
        init_s, first_s, wall_s = (timeline.get(k) for k in ("init_s", "first_result_s", "wall_s"))
        accel = timeline.get("accel") or summary.get("accel")
        for k, v in (("init_s", init_s), ("first_result_s", first_s), ("wall_s", wall_s)):
            if v is None:
                unavailable[k] = "null in timeline.json"
    else:
        accel, init_s, first_s, wall_s = summary.get("accel"), None, None, summary.get("wall_s")
        # summary.json's boot_s: qemu start -> first KTAP result, or -> the
        # switch into the root when the guest ran without --ktap.
        ktap = args is None or any(a.startswith("--ktap") for a in args)
        if ktap:
            first_s = summary.get("boot_s")
            unavailable["init_s"] = "no timeline.json"
        else:
            init_s = summary.get("boot_s")
            unavailable["first_result_s"] = "no timeline.json and no KTAP"
        notes.append("no timeline.json: wall and boot_s from summary.json")
        for k, v in (("init_s", init_s), ("first_result_s", first_s), ("wall_s", wall_s)):
            if v is None and k not in unavailable:
                unavailable[k] = "not in timeline.json or summary.json"
    if accel is None:
        unavailable["accel"] = "not in timeline.json or summary.json"

    tests = read_junit(kdir / "junit.xml")
    out = {"release": kdir.name, "status": summary.get("status"), "accel": accel,
           "init_s": init_s, "first_result_s": first_s, "wall_s": wall_s,
           "tests": None, "per_test": None, "harness_wall_tests": None, "median_s": None, "p95_s": None,
           "per_test_sum_s": None, "body_sum_s": None,
           "workers": workers(kdir, args), "overhead_share": None,
           "guest_cwd": cwd, "guest_args": args}
    if tests is None:
        for k in ("tests", "median_s", "p95_s", "body_sum_s"):
            unavailable[k] = "no readable junit.xml"
    elif tests:
        # Per test: harness_wall_s where the worker recorded it, else junit
        # time (cases that never forked, e.g. skipped on markers alone, have
        # no harness_wall_s: their time is all there is).
        per_test = [t["time"] if t[HARNESS_WALL] is None else t[HARNESS_WALL] for t in tests]
        walls = sum(t[HARNESS_WALL] is not None for t in tests)
        source = HARNESS_WALL if walls == len(tests) else "time" if not walls else "mixed"
        if not walls:
            unavailable[HARNESS_WALL] = "no harness_wall_s in junit.xml"
        elif source == "mixed":
            notes.append(f"harness_wall_s on {walls} of {len(tests)} tests, junit time for the others")
        body = sum(t["time"] for t in tests)
        out.update(tests=len(tests), per_test=source, harness_wall_tests=walls,
                   median_s=round(statistics.median(per_test), 4),
                   p95_s=round(p95(per_test), 4), per_test_sum_s=round(sum(per_test), 3),
                   body_sum_s=round(body, 3))
    else:
        out["tests"] = 0
        for k in ("median_s", "p95_s"):
            unavailable[k] = "no test cases in junit.xml"
    if out["workers"] is None:
        unavailable["workers"] = "no xdist line in pytest.log and no pytest arguments"
    if out["body_sum_s"] is not None and wall_s and out["workers"]:
        out["overhead_share"] = round(1 - out["body_sum_s"] / (wall_s * out["workers"]), 4)
    else:
        unavailable.setdefault("overhead_share", "needs body sum, wall and workers")
    out["unavailable"], out["notes"] = unavailable, notes
    return out


def kernel_dirs(run_dir: Path) -> list[tuple[Path, dict | None]]:
    """(directory, summary.json entry) per kernel: summary.json's order first,
    then any other subdirectory holding a junit.xml or timeline.json."""
    summary = (_load_json(run_dir / "summary.json") or {}).get("kernels", {})
    out = [(run_dir / rel, entry) for rel, entry in summary.items()]
    if run_dir.is_dir():
        out += [(d, None) for d in sorted(run_dir.iterdir())
                if d.is_dir() and d.name not in summary
                and ((d / "junit.xml").exists() or (d / "timeline.json").exists())]
    return out


def analyse_run(run_dir: Path, fallback_args: list[str] | None = None) -> dict:
    return {d.name: analyse_kernel(d, entry, fallback_args) for d, entry in kernel_dirs(run_dir)}


# ---------------------------------------------------------------- output

COLUMNS = [  # (header, key, format)
    ("run", "run", "{}"), ("kernel", "release", "{}"), ("accel", "accel", "{}"),
    ("init s", "init_s", "{:.1f}"), ("1st result s", "first_result_s", "{:.1f}"),
    ("tests", "tests", "{}"), ("median s", "median_s", "{:.3f}"), ("p95 s", "p95_s", "{:.3f}"),
    ("body sum s", "body_sum_s", "{:.1f}"), ("wall s", "wall_s", "{:.1f}"),
    ("workers", "workers", "{}"), ("overhead", "overhead_share", "{:.0%}"),
]


def _cell(fmt: str, v) -> str:
    return "-" if v is None else fmt.format(v)


def _align(rows: list[list[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return ["  ".join(c.ljust(w) if i < 3 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))).rstrip()
            for r in rows]


def table(result: dict) -> str:
    rows = [[h for h, _, _ in COLUMNS]]
    footnotes = []
    for run, r in result["runs"].items():
        if r.get("error"):
            footnotes.append(f"{run}: no numbers: {r['error']}")
        for rel, k in r["kernels"].items():
            rows.append([_cell(f, run if key == "run" else k.get(key)) for _, key, f in COLUMNS])
            missing = [f"{what} ({why})" for what, why in k["unavailable"].items()]
            if missing:
                footnotes.append(f"{run}/{rel}: unavailable: " + "; ".join(missing))
            footnotes += [f"{run}/{rel}: {n}" for n in k["notes"]]
            if k.get("status") not in (None, "ok"):
                footnotes.append(f"{run}/{rel}: runner status {k['status']}")
        if not r["kernels"] and not r.get("error"):
            footnotes.append(f"{run}: no kernel results in {r.get('results_dir')}")
    sources = {k["per_test"] for r in result["runs"].values() for k in r["kernels"].values()} - {None}
    legend = {HARNESS_WALL: "median/p95 from harness_wall_s (the whole forked test as the worker saw it)",
              "time": "median/p95 from junit time (setup+call+teardown inside the forked test)",
              "mixed": "median/p95 from harness_wall_s, or junit time for the cases without it"}
    lines = _align(rows) if len(rows) > 1 else ["(no kernel results)"]
    lines += [""] + [legend[s] for s in sorted(sources)]
    lines += ["overhead = 1 - body sum / (wall x workers)"] + footnotes
    return "\n".join(lines)


COMPARED = [("init s", "init_s"), ("1st result s", "first_result_s"), ("tests", "tests"),
            ("median s", "median_s"), ("p95 s", "p95_s"), ("body sum s", "body_sum_s"),
            ("wall s", "wall_s"), ("overhead", "overhead_share")]


def _series(release: str) -> str:
    return ".".join(re.split(r"[.+~-]", release)[:2])


def _match(old_kernels: dict, release: str) -> tuple[str, dict] | None:
    if release in old_kernels:
        return release, old_kernels[release]
    same = [(r, k) for r, k in old_kernels.items() if _series(r) == _series(release)]
    return same[0] if len(same) == 1 else None


def compare(old: dict, new: dict, old_name: str = "before") -> str:
    """Before/after per run and kernel (matched by release, else by X.Y series)."""
    commit = lambda r: (r.get("commit") or "?")[:12] + ("+changes" if r.get("commit_dirty") else "")
    lines = [f"before: {old_name} (commit {commit(old)})   after: commit {commit(new)}"]
    for run, r in new["runs"].items():
        old_kernels = old.get("runs", {}).get(run, {}).get("kernels", {})
        for rel, k in r["kernels"].items():
            m = _match(old_kernels, rel)
            if m is None:
                lines += ["", f"{run}/{rel}: nothing to compare with in {old_name}"]
                continue
            old_rel, o = m
            lines += ["", f"{run}  {old_rel} -> {rel}" if old_rel != rel else f"{run}  {rel}"]
            rows = [["  metric", "before", "after", "after/before"]]
            for label, key in COMPARED:
                f = next(f for _, c, f in COLUMNS if c == key)
                a, b = o.get(key), k.get(key)
                ratio = f"{b / a:.2f}" if a and b is not None else "-"
                rows.append(["  " + label, _cell(f, a), _cell(f, b), ratio])
            widths = [max(len(row[i]) for row in rows) for i in range(4)]
            lines += [row[0].ljust(widths[0])
                      + "".join("  " + c.rjust(w) for c, w in zip(row[1:], widths[1:])) for row in rows]
            if o.get("per_test") != k.get("per_test"):
                lines.append(f"  median/p95: before from {o.get('per_test')}, after from "
                             f"{k.get('per_test')}: not like for like")
        for old_rel in old_kernels:
            if not any(_match({old_rel: None}, rel) for rel in r["kernels"]):
                lines += ["", f"{run}/{old_rel}: only in {old_name}"]
    return "\n".join(lines)


# ---------------------------------------------------------------- running

def git_commit(directory: Path | str | None) -> tuple[str | None, bool | None]:
    """(HEAD, uncommitted changes?) of the checkout the suite ran from."""
    if directory is None:
        return None, None
    try:
        head = subprocess.run(["git", "-C", str(directory), "rev-parse", "HEAD"],
                              capture_output=True, text=True, timeout=30)
        dirty = subprocess.run(["git", "-C", str(directory), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None, None
    if head.returncode != 0:
        return None, None
    return head.stdout.strip(), bool(dirty.stdout.strip()) if dirty.returncode == 0 else None


def why(status: int) -> str:
    if status < 0:
        return f"runner killed by signal {-status}"
    return f"runner exit status {status}" + (f": {WHY[status]}" if status in WHY else "")


def run_runner(cmd: list[str], log: Path, quiet: bool) -> int:
    """Run the runner, its output to log (and the terminal unless quiet)."""
    with open(log, "w") as f, subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE,
                                               stderr=subprocess.STDOUT, text=True,
                                               errors="replace") as p:
        interrupted = False
        while True:
            try:
                for line in p.stdout:
                    f.write(line)
                    if not quiet:
                        sys.stdout.write(line)
                        sys.stdout.flush()
                break
            except KeyboardInterrupt:
                # The runner got the Ctrl-C too: read on while it writes its
                # partial summary; a second Ctrl-C stops it.
                if interrupted:
                    p.kill()
                    raise
                interrupted = True
    return errors.INTERRUPTED if interrupted else p.returncode


def bench_run(name: str, selection: list[str], kernels: list[str], passthrough: list[str],
              results: Path, quiet: bool, runner: list[str]) -> dict:
    run_dir = results / name
    shutil.rmtree(run_dir, ignore_errors=True)  # no stale timeline.json from an earlier run
    run_dir.parent.mkdir(parents=True, exist_ok=True)
    kernel_args = [a for k in kernels for a in ("--kernel", k)]
    # "=": pytest would take a bare existing directory for a test path when
    # it looks for its configuration file.
    cmd = [*runner, *kernel_args, f"--results-dir={run_dir}", *passthrough, *selection]
    print(f"bench: {name}: {shlex.join(cmd)}", flush=True)
    t0 = time.monotonic()
    status = run_runner(cmd, results / f"{name}.log", quiet)
    out = {"command": cmd, "results_dir": str(run_dir), "exit_status": status,
           "elapsed_s": round(time.monotonic() - t0, 1), "error": None, "kernels": {}}
    if status in RUNNER_OK:
        out["kernels"] = analyse_run(run_dir, selection)
    else:
        tail = (results / f"{name}.log").read_text(errors="replace").splitlines()[-15:]
        out["error"] = why(status)
        print(f"bench: {name}: no numbers: {why(status)}; last lines of {results / f'{name}.log'}:",
              *("  " + l for l in tail), sep="\n", flush=True)
    return out


def from_results(directory: Path, name: str) -> dict:
    """Runs found in an existing directory: a runner's results directory (one
    run, called name) or a bench directory with floor/ and suite/ in it."""
    if not kernel_dirs(directory) and any(kernel_dirs(directory / r) for r in RUNS):
        runs = [(r, directory / r) for r in RUNS if kernel_dirs(directory / r)]
    else:
        runs = [(name, directory)]
    return {r: {"command": None, "results_dir": str(d), "exit_status": None, "elapsed_s": None,
                "error": None, "kernels": analyse_run(d)} for r, d in runs}


def parse_args(argv: list[str]):
    own, selection = (argv[:argv.index("--")], argv[argv.index("--") + 1:]) if "--" in argv else (argv, None)
    _, usage, description = __doc__.split("\n\n", 2)
    # allow_abbrev=False: an option this command does not know goes to the runner as written
    p = argparse.ArgumentParser(prog="python -m vm bench", usage=usage.strip(), description=description,
                                formatter_class=argparse.RawDescriptionHelpFormatter, allow_abbrev=False)
    p.add_argument("--kernel", action="append", default=[],
                   help="kernel to run (repeatable), as for the runner")
    p.add_argument("--results-dir", default="results/bench", metavar="DIR",
                   help="runs go to DIR/floor and DIR/suite, replacing what is there (default results/bench)")
    p.add_argument("--runs", default=None, metavar="LIST",
                   help="which runs, comma-separated (default floor,suite); with --from-results the "
                        "name of the run found there (default suite)")
    p.add_argument("--json", metavar="FILE", help="write the numbers as JSON")
    p.add_argument("--compare", metavar="OLD.json", help="print before (OLD.json) / after side by side")
    p.add_argument("--from-results", metavar="DIR",
                   help="analyse an existing results directory; boots nothing")
    p.add_argument("--quiet", action="store_true",
                   help="do not echo the runner's output (it is in DIR/<run>.log)")
    opts, passthrough = p.parse_known_args(own)
    opts.selection, opts.passthrough = selection, passthrough
    if opts.from_results:
        if opts.kernel or passthrough or selection is not None:
            p.error("--from-results reads what is there: no --kernel, runner options or selection")
        opts.runs = opts.runs or "suite"
        if "," in opts.runs:
            p.error("--from-results: --runs names the one run found there")
    else:
        if not opts.kernel:
            p.error("--kernel is required (or --from-results DIR)")
        opts.runs = [r for r in (opts.runs or ",".join(RUNS)).split(",") if r]
        if not opts.runs or set(opts.runs) - set(RUNS):
            p.error(f"--runs takes a comma-separated subset of {','.join(RUNS)}")
    if opts.compare and _load_json(Path(opts.compare)) is None:
        p.error(f"--compare: cannot read {opts.compare} as JSON")
    return opts


def main(argv: list[str], runner: list[str] | None = None) -> int:
    """runner: the runner's command before its arguments (tests substitute a fake)."""
    opts = parse_args(argv)
    result = {"schema": 1, "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
              "command": [sys.executable, "-m", "vm", "bench", *argv]}
    if opts.from_results:
        runs = from_results(Path(opts.from_results).resolve(), opts.runs)
        guest_cwds = [k["guest_cwd"] for r in runs.values() for k in r["kernels"].values() if k["guest_cwd"]]
        suite_dir = guest_cwds[0] if guest_cwds else None
    else:
        runner = runner or [sys.executable, "-m", "pytest"]
        results = Path(opts.results_dir).resolve()
        suite = opts.selection if opts.selection else DEFAULT_SUITE
        selections = {"floor": [FLOOR, *xdist_options(suite)], "suite": suite}
        runs = {}
        for name in opts.runs:
            runs[name] = bench_run(name, selections[name], opts.kernel, opts.passthrough, results,
                                   opts.quiet, runner)
            if runs[name]["exit_status"] == errors.INTERRUPTED:
                break
        suite_dir = REPO
    result["commit"], result["commit_dirty"] = git_commit(suite_dir)
    result["suite_dir"] = str(suite_dir) if suite_dir else None
    result["runs"] = runs
    print("\n" + table(result))
    if opts.compare:
        print("\n" + compare(_load_json(Path(opts.compare)), result, opts.compare))
    if opts.json:
        Path(opts.json).parent.mkdir(parents=True, exist_ok=True)
        Path(opts.json).write_text(json.dumps(result, indent=2) + "\n")
        print(f"\nbench: wrote {opts.json}")
    return 1 if any(r["error"] for r in runs.values()) else 0
