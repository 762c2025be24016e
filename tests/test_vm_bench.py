"""`python -m vm bench` (vm/bench.py) on synthetic results directories: no
qemu; the runner is replaced by a fake that writes what the runner writes."""
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from vm import bench

REPO = Path(__file__).resolve().parents[1]
REL = "7.3.4+deb13-cloud-amd64"
# Pure computation and subprocesses: run in the pytest process.
pytestmark = pytest.mark.no_fork


def junit(cases) -> str:
    """xunit1 junit.xml; cases: [(time, harness_wall_s or None)]."""
    tcs = "".join(
        f'<testcase classname="bench.test_floor" name="test_floor[{i}]" file="bench/test_floor.py" '
        f'line="16" time="{t}">'
        + ("" if w is None else f'<properties><property name="harness_wall_s" value="{w}" /></properties>')
        + "</testcase>" for i, (t, w) in enumerate(cases))
    return (f'<?xml version="1.0" encoding="utf-8"?><testsuites name="pytest tests">'
            f'<testsuite name="pytest" tests="{len(cases)}">{tcs}</testsuite></testsuites>')


def make_kernel(run_dir: Path, rel: str, cases, timeline=None, summary=None, xdist_workers=None,
                guest_args=("-n", "auto", "--ktap=k.txt"), smp=2):
    """One kernel's results as the runner leaves them (summary.json merged)."""
    d = run_dir / rel
    d.mkdir(parents=True)
    (d / "junit.xml").write_text(junit(cases))
    if timeline is not None:
        (d / "timeline.json").write_text(json.dumps(timeline))
    if xdist_workers:
        (d / "pytest.log").write_text(f"created: {xdist_workers}/{xdist_workers} workers\n"
                                      f"{xdist_workers} workers [{len(cases)} items]\n")
    args = " ".join([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *guest_args])
    (d / "guest.sh").write_text(f"export MNTNS_VM=1\ncd {REPO} || exit 3\nexec {args}\n")
    (d / "qemu.cmd").write_text(f"qemu-system-x86_64 -accel tcg -smp {smp} -m 2048M\n")
    path = run_dir / "summary.json"
    s = json.loads(path.read_text()) if path.exists() else {"kernels": {}, "tests": {}}
    s["kernels"][rel] = summary or {"status": "ok", "boot_s": 99.0, "wall_s": 999.0, "accel": "kvm"}
    path.write_text(json.dumps(s))
    return d


# harness walls: median 3.5, nearest-rank p95 of 5 values = the 5th; bodies sum to 20
CASES = [(1, 1.5), (2, 2.5), (3, 3.5), (4, 4.5), (10, 11)]
TIMELINE = {"accel": "tcg", "init_s": 4.5, "first_result_s": 20.4, "wall_s": 50.0}


def table_rows(out: str) -> dict[str, list[str]]:
    return {line.split()[1]: line.split() for line in out.splitlines()
            if line.split()[:1] in (["floor"], ["suite"], ["old"])}


def test_p95_is_nearest_rank():
    assert bench.p95(list(range(1, 101))) == 95
    assert bench.p95(list(range(20, 0, -1))) == 19
    assert bench.p95([0.5]) == 0.5


def test_table_numbers_from_timeline_and_harness_wall(tmp_path, capsys):
    make_kernel(tmp_path, REL, CASES, timeline=TIMELINE, xdist_workers=2)
    assert bench.main(["--from-results", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert table_rows(out)[REL] == ["suite", REL, "tcg", "4.5", "20.4", "5", "3.500", "11.000",
                                    "20.0", "50.0", "2", "80%"]
    assert "median/p95 from harness_wall_s" in out
    assert "unavailable" not in out


def test_json_shape(tmp_path, capsys):
    make_kernel(tmp_path / "r", REL, CASES, timeline=TIMELINE, xdist_workers=2)
    out = tmp_path / "b.json"
    assert bench.main(["--from-results", str(tmp_path / "r"), "--runs", "floor", "--json", str(out)]) == 0
    data = json.loads(out.read_text())
    assert set(data) == {"schema", "created", "command", "commit", "commit_dirty", "suite_dir", "runs"}
    head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True)
    assert data["commit"] == head.stdout.strip() and data["suite_dir"] == str(REPO)
    assert data["command"][-4:] == ["--runs", "floor", "--json", str(out)]
    run = data["runs"]["floor"]
    assert set(run) == {"command", "results_dir", "exit_status", "elapsed_s", "error", "kernels"}
    k = run["kernels"][REL]
    assert {key: k[key] for key in (
        "release", "status", "accel", "init_s", "first_result_s", "wall_s", "tests", "per_test",
        "harness_wall_tests", "median_s", "p95_s", "per_test_sum_s", "body_sum_s", "workers",
        "overhead_share", "unavailable")} == {
        "release": REL, "status": "ok", "accel": "tcg", "init_s": 4.5, "first_result_s": 20.4,
        "wall_s": 50.0, "tests": 5, "per_test": "harness_wall_s", "harness_wall_tests": 5,
        "median_s": 3.5, "p95_s": 11.0,
        "per_test_sum_s": 23.0, "body_sum_s": 20.0, "workers": 2, "overhead_share": 0.8,
        "unavailable": {}}
    assert k["guest_args"][-2:] == ["auto", "--ktap=k.txt"]


def test_without_timeline_falls_back_to_summary_and_junit_time(tmp_path, capsys):
    """An old run: wall and boot_s from summary.json, per-test times from junit
    time, init unavailable; workers from -n auto = the guest's -smp."""
    make_kernel(tmp_path, REL, [(t, None) for t, _ in CASES],
                summary={"status": "ok", "boot_s": 31.1, "wall_s": 203.9, "accel": "tcg"}, smp=4)
    assert bench.main(["--from-results", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert table_rows(out)[REL] == ["suite", REL, "tcg", "-", "31.1", "5", "3.000", "10.000",
                                    "20.0", "203.9", "4", "98%"]
    assert "median/p95 from junit time" in out
    assert (f"suite/{REL}: unavailable: init_s (no timeline.json); "
            "harness_wall_s (no harness_wall_s in junit.xml)") in out


def test_without_timeline_or_ktap_boot_s_is_the_init_time(tmp_path):
    d = make_kernel(tmp_path, REL, CASES, guest_args=("tests/test_vm_guest.py",),
                    summary={"status": "ok", "boot_s": 5.0, "wall_s": 30.0, "accel": "tcg"})
    k = bench.analyse_kernel(d, json.loads((tmp_path / "summary.json").read_text())["kernels"][REL])
    assert (k["init_s"], k["first_result_s"], k["workers"]) == (5.0, None, 1)
    assert "first_result_s" in k["unavailable"]


def test_junit_time_stands_in_for_cases_without_harness_wall(tmp_path, capsys):
    """Cases that never forked (skipped on markers alone) carry no harness_wall_s."""
    make_kernel(tmp_path, REL, [(1, 2), (3, None), (0.5, 4)], timeline=TIMELINE)
    bench.main(["--from-results", str(tmp_path)])
    k = bench.analyse_kernel(tmp_path / REL, None)
    assert (k["per_test"], k["harness_wall_tests"], k["median_s"], k["per_test_sum_s"],
            k["body_sum_s"]) == ("mixed", 2, 3.0, 9.0, 4.5)
    note = f"suite/{REL}: harness_wall_s on 2 of 3 tests, junit time for the others"
    assert note in capsys.readouterr().out


@pytest.mark.parametrize("args,expected", [
    (["suites", "-n", "auto", "-k", "x"], ["-n", "auto"]),
    (["-n4", "--dist=loadfile"], ["-n", "4", "--dist", "loadfile"]),
    (["--numprocesses=3", "-m", "not vm"], ["-n", "3"]),
    (["-p", "no:xdist", "-p", "no:randomly"], ["-p", "no:xdist"]),
    (["suites"], []),
])
def test_floor_gets_the_suites_xdist_options(args, expected):
    assert bench.xdist_options(args) == expected


FAKE_RUNNER = textwrap.dedent("""
    import json, os, sys
    from pathlib import Path
    sys.path.insert(0, os.environ["BENCH_TESTS"])
    from test_vm_bench import CASES, TIMELINE, make_kernel
    args = sys.argv[1:]
    out = Path(next(a for a in args if a.startswith("--results-dir=")).split("=", 1)[1])
    Path(str(out) + ".argv").write_text(json.dumps(args))
    print("fake runner:", out.name)
    if out.name == os.environ.get("FAKE_FAIL"):
        print("vm: qemu-system-x86_64: not found")
        sys.exit(125)
    make_kernel(out, "7.3.4+deb13-cloud-amd64", CASES, timeline=TIMELINE, xdist_workers=2)
    sys.exit(1)  # a test failed: the numbers still count
""")


@pytest.fixture
def fake_runner(tmp_path, monkeypatch):
    script = tmp_path / "fake_runner.py"
    script.write_text(FAKE_RUNNER)
    monkeypatch.setenv("BENCH_TESTS", str(Path(__file__).parent))
    return [sys.executable, str(script)]


def test_bench_runs_floor_and_suite_through_the_runner(tmp_path, fake_runner, capsys):
    res = tmp_path / "res"
    stale = res / "suite" / "6.1.0-old" / "timeline.json"
    stale.parent.mkdir(parents=True)
    stale.write_text("{}")
    assert bench.main(["--kernel", "7.3", "--kernel", "6.18", "--results-dir", str(res), "--vm-accel", "tcg",
                       "--vm-jobs", "1", "--json", str(tmp_path / "b.json"), "--quiet",
                       "--", "suites/nullfs", "-n", "2"], runner=fake_runner) == 0
    runner_args = ["--kernel", "7.3", "--kernel", "6.18", "--vm-accel", "tcg", "--vm-jobs", "1"]
    floor = json.loads((res / "floor.argv").read_text())
    suite = json.loads((res / "suite.argv").read_text())
    assert floor == [*runner_args[:4], f"--results-dir={res / 'floor'}", *runner_args[4:],
                     "bench/test_floor.py", "-n", "2"]
    assert suite == [*runner_args[:4], f"--results-dir={res / 'suite'}", *runner_args[4:],
                     "suites/nullfs", "-n", "2"]
    out = capsys.readouterr().out
    rows = table_rows(out)
    assert "fake runner" not in out and "fake runner: floor" in (res / "floor.log").read_text()
    assert [l.split()[0] for l in out.splitlines() if REL in l.split()[1:2]] == ["floor", "suite"]
    assert rows[REL][2:] == ["tcg", "4.5", "20.4", "5", "3.500", "11.000", "20.0", "50.0", "2", "80%"]
    assert not stale.exists() and "6.1.0-old" not in out
    data = json.loads((tmp_path / "b.json").read_text())
    assert [(r["exit_status"], r["error"], list(r["kernels"])) for r in data["runs"].values()] == [
        (1, None, [REL]), (1, None, [REL])]
    assert data["runs"]["suite"]["command"] == [*fake_runner, *suite]


def test_bench_default_selection_and_a_run_without_numbers(tmp_path, fake_runner, capsys, monkeypatch):
    monkeypatch.setenv("FAKE_FAIL", "suite")
    res = tmp_path / "res"
    assert bench.main(["--kernel", "7.3", "--results-dir", str(res), "--quiet"], runner=fake_runner) == 1
    assert json.loads((res / "floor.argv").read_text())[-3:] == ["bench/test_floor.py", "-n", "auto"]
    assert json.loads((res / "suite.argv").read_text())[-3:] == ["suites", "-n", "auto"]
    out = capsys.readouterr().out
    why = "runner exit status 125: infrastructure failure (qemu, virtiofsd, busybox, apt or the network)"
    assert f"bench: suite: no numbers: {why}" in out and "vm: qemu-system-x86_64: not found" in out
    assert f"suite: no numbers: {why}" in out.split("overhead =")[1]
    assert list(table_rows(out)) == [REL]


def test_compare_prints_before_after_and_ratio(tmp_path, capsys):
    make_kernel(tmp_path / "old", REL, [(t, None) for t, _ in CASES],
                summary={"status": "ok", "boot_s": 31.1, "wall_s": 200.0, "accel": "tcg"})
    make_kernel(tmp_path / "new", "7.3.5+deb13-cloud-amd64", CASES, timeline=TIMELINE, xdist_workers=2)
    old = tmp_path / "old.json"
    bench.main(["--from-results", str(tmp_path / "old"), "--json", str(old)])
    capsys.readouterr()
    bench.main(["--from-results", str(tmp_path / "new"), "--compare", str(old)])
    out = capsys.readouterr().out.split("before: ")[1]
    lines = {l.split("  ")[1].strip(): l.split()[-3:] for l in out.splitlines() if l.startswith("  ")
             and not l.startswith("  median/p95")}
    assert f"suite  {REL} -> 7.3.5+deb13-cloud-amd64" in out
    assert lines["wall s"] == ["200.0", "50.0", "0.25"]
    assert lines["init s"] == ["-", "4.5", "-"]
    assert lines["median s"] == ["3.000", "3.500", "1.17"]
    assert "median/p95: before from time, after from harness_wall_s: not like for like" in out


def test_from_results_of_a_bench_directory_finds_both_runs(tmp_path, capsys):
    make_kernel(tmp_path / "floor", REL, CASES, timeline=TIMELINE)
    make_kernel(tmp_path / "suite", REL, CASES, timeline=TIMELINE)
    bench.main(["--from-results", str(tmp_path)])
    out = capsys.readouterr().out
    assert [l.split()[0] for l in out.splitlines() if REL in l.split()[1:2]] == ["floor", "suite"]


def pytest_in_repo(*args, **kw):
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args],
                          cwd=REPO, capture_output=True, text=True, timeout=300, **kw)


def test_floor_is_collected_only_when_named():
    named = pytest_in_repo("--collect-only", "-q", "bench/test_floor.py")
    assert "100 tests collected" in named.stdout, named.stdout + named.stderr
    for args in (["tests"], ["suites"], []):
        proc = pytest_in_repo("--collect-only", "-q", *args)
        assert proc.returncode == 0 and "tests collected" in proc.stdout, proc.stdout + proc.stderr
        assert "bench/" not in proc.stdout, args


def test_floor_runs_forked_under_the_repository_harness(tmp_path):
    """The root conftest's plugins apply to bench/: each case runs in a
    process of its own (what the floor measures), and all 100 pass."""
    (tmp_path / "forkcheck.py").write_text(textwrap.dedent("""
        import os
        PARENT = os.getpid()
        def pytest_runtest_call(item):
            with open(os.environ["FORKCHECK_OUT"], "a") as f:
                f.write(f"{int(os.getpid() != PARENT)}\\n")
    """))
    log = tmp_path / "forked.txt"
    env = {**os.environ, "PYTHONPATH": str(tmp_path), "FORKCHECK_OUT": str(log)}
    proc = pytest_in_repo("-q", "-p", "forkcheck", "bench/test_floor.py", env=env)
    assert proc.returncode == 0 and "100 passed" in proc.stdout, proc.stdout + proc.stderr
    assert log.read_text().split() == ["1"] * 100


def test_python_m_vm_bench_dispatches(tmp_path):
    make_kernel(tmp_path, REL, CASES, timeline=TIMELINE, xdist_workers=2)
    proc = subprocess.run([sys.executable, "-m", "vm", "bench", "--from-results", str(tmp_path)],
                          cwd=REPO, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and REL in proc.stdout, proc.stdout + proc.stderr
    usage = subprocess.run([sys.executable, "-m", "vm", "bench"], cwd=REPO, capture_output=True, text=True)
    assert usage.returncode == 2 and "--kernel is required" in usage.stderr
