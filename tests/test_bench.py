"""python -m bench on this kernel, small: the JSON it writes, methods the
kernel lacks reported as unavailable (never as 0), the syscall counts of
each method's C sequence, and the host's mount table left as it was.
Speed itself is never asserted."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench.methods import FLOOR, METHODS, availability

REPO = Path(__file__).resolve().parents[1]
SIZES, PARALLEL, N = [30, 60], [1, 2], 40

# strace -c counts of bench/loop.c per container: clone + wait4 in the
# creator, then the method's own calls (exit_group never returns, so strace
# does not count it).
SYSCALLS = {"floor": 2, "classic": 9, "open_tree_ns": 5, "fsmount_ns": 8, "empty_mntns": 8}


@pytest.fixture(scope="module")
def bench_run(tmp_path_factory):
    if os.geteuid() != 0:
        pytest.skip("python -m bench needs root (mount namespaces, pivot_root)")
    out = tmp_path_factory.mktemp("bench")
    p = subprocess.run([sys.executable, "-m", "bench", "-n", str(N), "--repeat", "1",
                        "--sizes", ",".join(map(str, SIZES)), "--parallel", ",".join(map(str, PARALLEL)),
                        "--json", str(out / "bench.json"), "--plot", str(out / "bench.png")],
                       cwd=REPO, capture_output=True, text=True, timeout=600)
    print(p.stdout, p.stderr[-3000:])
    return p, json.loads((out / "bench.json").read_text()), out


# no_fork: the module's one bench run (a subprocess in its own private mount
# namespace) is shared by its tests, not run again in every forked test.
pytestmark = [pytest.mark.no_fork, pytest.mark.timeout(700)]


def test_exit_status_and_table(bench_run):
    p, doc, _ = bench_run
    assert p.returncode == 0
    assert p.stdout.splitlines()[0].startswith(f"kernel {os.uname().release}, accel none")


def test_json_has_every_method_size_and_parallelism(bench_run):
    _, doc, _ = bench_run
    assert doc["kernel"] == os.uname().release and doc["n"] == N
    rows = {(r["method"], r["mounts_target"], r["parallel"]) for r in doc["results"]}
    assert rows == {(m.name, s, p) for m in [FLOOR, *METHODS] for s in SIZES for p in PARALLEL}
    for r in doc["results"]:
        assert r["mounts"] >= r["mounts_target"]


@pytest.mark.parametrize("method", [FLOOR, *METHODS], ids=lambda m: m.name)
def test_each_method_runs_or_is_unavailable_never_zero(bench_run, method):
    _, doc, _ = bench_run
    present, _ = availability(method)
    rows = [r for r in doc["results"] if r["method"] == method.name]
    assert doc["methods"][method.name]["available"] == present
    for r in rows:
        if present:
            assert r["status"] == "ok", r
            assert r["containers_per_s"] > 0 and r["containers"] == N
            assert r["end_state"] == ("n/a (no set-up)" if method is FLOOR else "ok")
            assert r["ratio_to_classic"] > 0
            assert r["syscalls_per_container"] == SYSCALLS[method.name]
        else:
            assert r["status"] == "unavailable" and "absent" in r["reason"]
            assert r["containers_per_s"] is None and r["ratio_to_classic"] is None
            assert r["syscalls_per_container"] is None


def test_from_json_prints_the_same_table(bench_run):
    p, _, out = bench_run
    again = subprocess.run([sys.executable, "-m", "bench", "--from-json", str(out / "bench.json")],
                           cwd=REPO, capture_output=True, text=True)
    assert again.returncode == 0 and again.stdout == p.stdout


def test_plot_written_or_skipped_saying_so(bench_run):
    p, _, out = bench_run
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        assert "bench: plot skipped: matplotlib is not installed" in p.stderr
        return
    assert (out / "bench.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_host_mount_table_untouched(bench_run):
    # Not "equal to before": other jobs on the host (another bench, too) may
    # mount meanwhile. None of this run's mounts, all under its scratch
    # directory, is in the host's table, and the directory is gone.
    _, doc, _ = bench_run
    scratch = doc["scratch"]
    assert scratch.startswith("/tmp/mntns-bench-")
    assert scratch not in Path("/proc/1/mountinfo").read_text()
    assert not os.path.exists(scratch)


@pytest.mark.parametrize("args,message", [
    (["--sizes", "30,x"], "not a comma-separated list"),
    (["--methods", "classic,bogus"], "unknown method 'bogus'"),
    (["-n", "1", "--parallel", "2"], "fewer containers than creators"),
    (["--from-json", "/nonexistent.json"], "not a bench JSON"),
])
def test_bad_options_are_one_line_usage_errors(args, message):
    p = subprocess.run([sys.executable, "-m", "bench", *args], cwd=REPO, capture_output=True, text=True)
    assert p.returncode == 4
    (line,) = p.stderr.splitlines()
    assert line.startswith("bench: ") and message in line
