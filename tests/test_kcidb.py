"""vm/kcidb.py: a VM results directory as KCIDB v5 JSON, checked with
kcidb-io's schema validation (the package kernelci.org's tools use).

The results directory is made as the runner makes it: each kernel's
junit.xml from a real pytest run (xunit1, the project's known-defects
plugin turning listed cases into strict expected failures), summary.json
from vm/report.summarize, plus a crashed kernel, an infra kernel and a
kernel given as an image."""
import json
import os
import pathlib
import shutil
import subprocess
import sys

import kcidb_io
import pytest

from helpers import kernel
from vm import kcidb, report

pytestmark = pytest.mark.no_fork  # the module-scoped pytest run is made once

REPO = pathlib.Path(__file__).resolve().parent.parent

CASES = """
import pathlib, pytest

@pytest.fixture
def broken():
    raise RuntimeError("fixture boom")

def test_pass(): pass
def test_fail(): assert 3 == 4, "value must be four"
def test_error(broken): pass
def test_skip(): pytest.skip("needs a thing")
def test_known(): raise OSError(22, "Invalid argument")
def test_fixed(): pass
def test_wedges(): pass
def test_flaky():
    tried = pathlib.Path(__file__).with_name("tried")
    if not tried.exists():
        tried.write_text("once")
        assert False, "the first attempt fails"
@pytest.mark.parametrize("flag", [1 << 3, "a.b", "x-y", ""], ids=lambda v: f"1<<3" if v == 8 else v)
def test_param(flag): pass
"""

DEFECTS = """
[[defect]]
test = "test_k.py::test_known"
kernels = ["{series}"]
reason = "copying drops MNT_UNBINDABLE (clone_mnt)"
failure = "Invalid argument"
ref = "fs/namespace.c clone_mnt()"
seen = ["7.1.13"]
evidence = "7.1.13 in the VM runner: OSError EINVAL"

[[defect]]
test = "test_k.py::test_fixed"
kernels = ["{series}"]
reason = "was broken before 7.2"
failure = "EPERM"
ref = "fixed by 'mount: a fix' (7.2)"
seen = ["7.1.13"]
evidence = "7.1.13 in the VM runner"

[[defect]]
test = "test_k.py::test_wedges"
kernels = ["{series}"]
reason = "oopses in umount_tree"
run = false
ref = "fs/namespace.c umount_tree()"
seen = ["7.1.13"]
evidence = "7.1.13 console: BUG"
"""

OK, CRASHED, INFRA, IMAGE = ("7.3.4+deb13-cloud-amd64", "7.2.13+deb13-cloud-amd64",
                             "7.0.13+deb13-cloud-amd64", "7.3.4-dirty@0123456789ab")
CRASH = {"kind": "WARNING", "title": "WARNING: CPU: 0 PID: 1 at fs/namespace.c:1 umount_tree+0x1/0x2",
         "signature": "WARNING: in umount_tree (fs/namespace.c)", "fingerprint": "0f1e2d3c4b5a",
         "tests": ["test_k.py::test_pass"], "after": None}
# a second complaint, when no test was running (summary.json's "crashes" lists all, "crash" is the first)
LATER = {"kind": "BUG", "title": "BUG: kernel NULL pointer dereference, address: 0000000000000098",
         "signature": "BUG: kernel NULL pointer dereference in down_write", "fingerprint": "a1b2c3d4e5f6",
         "tests": [], "after": "test_k.py::test_pass"}
RUN = {"command": ["pytest", "--kernel", "7.3"], "commit": "0" * 40, "dirty": False,
       "started": "2026-12-02T17:00:00Z", "wall_s": 300.0}


@pytest.fixture(scope="module")
def junit(tmp_path_factory) -> pathlib.Path:
    """junit.xml of CASES as the guest writes it (xunit1, each case in a
    forked process), known defects on, a failing case rerun once."""
    where = tmp_path_factory.mktemp("pytest")
    (where / "conftest.py").write_text(f"import sys; sys.path.insert(0, {str(REPO)!r})\n"
                                       "pytest_plugins = ['harness.features', 'harness.isolation', "
                                       "'harness.defects']\n")
    (where / "pytest.ini").write_text("[pytest]\n")
    (where / "test_k.py").write_text(CASES)
    (where / "defects.toml").write_text(DEFECTS.format(series="%d.%d" % kernel.version()[:2]))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "COV_"))}
    run = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-o", "junit_family=xunit1",
                          "--junitxml=junit.xml", "--known-defects=defects.toml",
                          "--rerun-failures=1"],
                         cwd=where, env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 1 and (where / "junit.xml").exists(), run.stdout + run.stderr  # 1: failed tests
    return where / "junit.xml"


def results(root: pathlib.Path, junit: pathlib.Path, run=RUN) -> pathlib.Path:
    """A results dir as vm/runner.py leaves it."""
    runs = {}
    for name, status, reason, package in [
            (OK, "ok", None, "7.3.4-1~bpo13+1"),
            (CRASHED, "error", "console: WARNING: CPU: 0 PID: 1 at fs/namespace.c:1 umount_tree", "7.2.13-1~bpo13+1"),
            (INFRA, "infra", "apt-get download failed:\nE: no network", "7.0.13-1~bpo13+1"),
            (IMAGE, "ok", None, None)]:
        d = root / name
        d.mkdir(parents=True)
        if status != "infra":
            shutil.copy(junit, d / "junit.xml")
        if status != "ok":
            (d / "error.txt").write_text(f"{reason}\n--- console ---\n[ 1.0] {CRASH['title']}\n")
        runs[name] = {"status": status, "reason": reason, "package": package, "accel": "tcg", "wall_s": 120.5,
                      "dir": d}
    summary = {**report.summarize(runs), "run": run}
    summary["kernels"][CRASHED].update(crash=CRASH, crashes=[CRASH, LATER])
    (root / "summary.json").write_text(json.dumps(summary, indent=2))
    return root


@pytest.fixture(scope="module")
def written(junit, tmp_path_factory) -> dict:
    out = kcidb.write(results(tmp_path_factory.mktemp("results"), junit))
    return json.loads(out.read_text())


def by_test(data, kernel_):
    """{test function or param: (status, test)} of one kernel's cases."""
    run = next(t for t in data["tests"] if t["path"] == kcidb.PATH_ROOT and t["misc"].get("kernel_status")
               and t["id"].endswith(":" + kernel_))
    return {t["misc"]["nodeid"].split("::")[-1]: (t["status"], t) for t in data["tests"]
            if t["build_id"] == run["build_id"] and t is not run and "attempt" not in t["misc"]}


def test_valid_against_the_latest_v5_schema(written):
    latest = max((v for v in vars(kcidb_io.schema).values() if isinstance(v, type)
                  and issubclass(v, kcidb_io.schema.VA) and v.major == 5), key=lambda v: v.minor)
    assert written["version"] == {"major": 5, "minor": latest.minor}
    latest.validate_exactly(written)
    kcidb_io.schema.LATEST.validate(written)  # also what the newest kcidb-io accepts


def test_every_status(written):
    statuses = {name: status for name, (status, _) in by_test(written, OK).items()}
    assert statuses == {
        "test_pass": "PASS", "test_fail": "FAIL", "test_error": "ERROR", "test_skip": "SKIP",
        "test_known": "FAIL",     # XFAIL: the kernel does misbehave; its incident names the defect
        "test_fixed": "PASS",     # XPASS: the kernel behaves; the expectation is out of date
        "test_wedges": "SKIP",    # known defect with run = false: no verdict from this run
        "test_flaky": "PASS",     # FLAKY: passed on its second attempt; the first is a FAIL of its own
        "test_param[1<<3]": "PASS", "test_param[a.b]": "PASS", "test_param[x-y]": "PASS", "test_param[]": "PASS"}
    outcomes = {name: t["misc"]["outcome"] for name, (_, t) in by_test(written, OK).items()}
    assert [outcomes[n] for n in ("test_known", "test_fixed", "test_wedges", "test_flaky")] == [
        "XFAIL", "XPASS", "XFAIL", "FLAKY"]


def test_a_rerun_case_reports_every_attempt(written):
    """--rerun-failures=1: the attempt before the last is a test run of its own."""
    attempts = {t["misc"]["nodeid"].split("::")[-1]: (t["status"], t["path"]) for t in written["tests"]
                if t["misc"].get("attempt") == 1 and t["build_id"].split(":")[1] == OK}
    cases = by_test(written, OK)
    assert attempts == {"test_flaky": ("FAIL", cases["test_flaky"][1]["path"]),
                        "test_fail": ("FAIL", cases["test_fail"][1]["path"]),
                        "test_error": ("ERROR", cases["test_error"][1]["path"]),
                        "test_fixed": ("PASS", cases["test_fixed"][1]["path"])}
    assert cases["test_flaky"][1]["misc"]["attempts"] == 2


def test_failures_carry_their_text(written):
    cases = by_test(written, OK)
    fail = cases["test_fail"][1]
    assert fail["misc"]["message"].startswith("AssertionError: value must be four")
    assert "assert 3 == 4" in fail["log_excerpt"] and fail["duration"] >= 0
    assert cases["test_error"][1]["misc"]["message"].startswith("failed on setup")
    assert cases["test_skip"][1]["misc"]["message"] == "needs a thing"


def test_runs_of_kernels_harness_failures_are_never_fail(written):
    runs = {t["id"].rsplit(":", 1)[-1]: t for t in written["tests"] if t["path"] == kcidb.PATH_ROOT}
    assert {k: t["status"] for k, t in runs.items()} == {OK: "DONE", CRASHED: "ERROR", INFRA: "MISS", IMAGE: "DONE"}
    assert runs[INFRA]["misc"]["reason"].startswith("apt-get download failed")
    assert "umount_tree" in runs[CRASHED]["log_excerpt"]  # error.txt
    assert by_test(written, INFRA) == {}
    assert by_test(written, CRASHED)["test_fail"][0] == "FAIL"  # its results before the crash are kept


def test_known_defects_are_issues_with_incidents(written):
    issues = {i["comment"]: i for i in written["issues"]}
    known = issues["copying drops MNT_UNBINDABLE (clone_mnt)"]
    assert known["misc"]["ref"] == "fs/namespace.c clone_mnt()"
    assert known["misc"]["evidence"] == "7.1.13 in the VM runner: OSError EINVAL"
    assert known["culprit"] == {"code": True, "tool": False, "harness": False}
    incidents = {(i["test_id"], i["issue_id"]): i for i in written["incidents"]}
    for name, present in (("test_known", True), ("test_fixed", False), ("test_wedges", None)):
        test = by_test(written, OK)[name][1]
        incident = incidents[(test["id"], test["misc"]["issue_id"])]
        assert incident.get("present") is present and incident["build_id"] == test["build_id"]
    # one issue per defect, however many kernels show it
    assert sum(i["comment"] == known["comment"] for i in written["issues"]) == 1


def test_a_crash_is_an_issue_on_the_run_and_the_blamed_test(written):
    [issue] = [i for i in written["issues"] if i["id"] == "mntns_conformance:crash:" + CRASH["fingerprint"]]
    assert issue["comment"] == CRASH["signature"]
    run = next(t for t in written["tests"] if t["id"].endswith(":" + CRASHED))
    blamed = by_test(written, CRASHED)["test_pass"][1]
    assert {i["test_id"] for i in written["incidents"] if i["issue_id"] == issue["id"]} == {run["id"], blamed["id"]}
    assert run["misc"]["crashes"][0]["tests"] == CRASH["tests"]
    later = "mntns_conformance:crash:" + LATER["fingerprint"]
    assert [i["test_id"] for i in written["incidents"] if i["issue_id"] == later] == [run["id"]]
    assert run["misc"]["crashes"][1]["after"] == LATER["after"]


def test_checkouts_and_builds(written):
    builds = {b["misc"]["kernel"]: b for b in written["builds"]}
    assert list(builds) == [OK, CRASHED, INFRA, IMAGE]
    assert {b["architecture"] for b in builds.values()} == {"x86_64"}
    assert builds[OK]["config_name"] == "cloud-amd64" and "config_name" not in builds[IMAGE]
    checkouts = {c["id"]: c for c in written["checkouts"]}
    assert checkouts[builds[OK]["checkout_id"]]["misc"] == {"debian_source": "linux", "debian_version": "7.3.4-1~bpo13+1"}
    assert "misc" not in checkouts[builds[IMAGE]["checkout_id"]]  # no Debian source for an image


def test_ids_unique_linked_and_stable(written, junit, tmp_path):
    for kind in ("checkouts", "builds", "tests", "issues", "incidents"):
        ids = [o["id"] for o in written[kind]]
        assert len(ids) == len(set(ids)) and all(i.startswith("mntns_conformance:") for i in ids), kind
    ids = {kind: {o["id"] for o in written[kind]} for kind in written if kind != "version"}
    assert {b["checkout_id"] for b in written["builds"]} <= ids["checkouts"]
    assert {t["build_id"] for t in written["tests"]} <= ids["builds"]
    assert {i["test_id"] for i in written["incidents"]} <= ids["tests"]
    assert {i["issue_id"] for i in written["incidents"]} <= ids["issues"]
    # the same results again: the same ids; another run: new test ids, same builds
    again = kcidb.build(results(tmp_path / "same", junit))
    assert {t["id"] for t in again["tests"]} == ids["tests"]
    later = kcidb.build(results(tmp_path / "later", junit, {**RUN, "started": "2026-12-03T08:00:00Z"}))
    assert not {t["id"] for t in later["tests"]} & ids["tests"]
    assert {b["id"] for b in later["builds"]} == ids["builds"]


PATHS = ["suites/nullfs/test_a.py::test_b", "suites/nullfs/test_a.py::TestC::test_b",
         "suites/nullfs/test_a.py::test_b[x-1]", "suites/nullfs/test_a.py::test_b[x.1]",
         "suites/nullfs/test_a.py::test_b[x_2e_1]", "suites/nullfs/test_a.py::test_b[x_x2e_1]",
         "suites/nullfs/test_a.py::test_b[]", "suites/nullfs/test_a.py::test_b[_x_]",
         "suites/nullfs/test_a.py::test_b[1<<3]", "suites/nullfs/test_a.py::test_b[a::b]",
         "suites/nullfs/test_a.py::test_b[é]", "suites/null.fs/test_a.py::test_b"]


def test_paths_keep_node_ids_apart_in_the_schema_alphabet():
    paths = [kcidb.test_path(n) for n in PATHS]
    assert paths[:3] == ["mntns_conformance.suites.nullfs.test_a.test_b",
                         "mntns_conformance.suites.nullfs.test_a.TestC.test_b",
                         "mntns_conformance.suites.nullfs.test_a.test_b.x-1"]
    assert paths[3] == "mntns_conformance.suites.nullfs.test_a.test_b.x_x2e_1"
    assert paths[8] == "mntns_conformance.suites.nullfs.test_a.test_b.1_x3c__x3c_3"
    assert len(set(paths)) == len(paths)  # one-to-one
    assert all(kcidb.SCHEMA.path_re.fullmatch(p) for p in paths)


@pytest.mark.parametrize("kernel_, flavour", [("7.3.4+deb13-cloud-amd64", "cloud-amd64"),
                                              ("6.1.0-18-cloud-amd64", "cloud-amd64"),
                                              ("7.3~rc7+deb13-rt-amd64", "rt-amd64"),
                                              ("7.3.4-dirty@0123456789ab", None)])
def test_flavour(kernel_, flavour):
    assert kcidb.flavour(kernel_) == flavour


def cli(*args):
    return subprocess.run([sys.executable, "-m", "vm", "kcidb", *map(str, args)], cwd=REPO,
                          capture_output=True, text=True, timeout=60)


def test_cli_writes_the_file(junit, tmp_path):
    r = cli(results(tmp_path / "r", junit), "-o", tmp_path / "out.json", "--origin", "qa_lab")
    assert (r.returncode, r.stdout.strip()) == (0, f"vm kcidb: wrote {tmp_path / 'out.json'}"), r.stderr
    assert {b["origin"] for b in json.loads((tmp_path / "out.json").read_text())["builds"]} == {"qa_lab"}


@pytest.mark.parametrize("bad", ["missing", "not_json", "no_kernels", "origin"])
def test_cli_bad_input_is_one_line_exit_4(bad, tmp_path):
    d = tmp_path / "r"
    if bad != "missing":
        d.mkdir()
        (d / "summary.json").write_text({"not_json": "{", "no_kernels": "{}"}.get(bad, '{"kernels": {}}'))
    r = cli(d, *(["--origin", "Bad-Name"] if bad == "origin" else []))
    assert r.returncode == 4 and len(r.stderr.strip().splitlines()) == 1 and r.stderr.startswith("vm kcidb: ")
    assert not (d / "kcidb.json").exists()
