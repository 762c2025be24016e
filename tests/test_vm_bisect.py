"""python -m vm bisect without booting: the search against a fake oracle (a
verdict per candidate, counted boots), the runner's exit codes as verdicts,
the candidate list, and the Debian changelog between two releases from a
fabricated changelog and .deb."""
import gzip
import json
import re
import shutil
import subprocess

import pytest

from vm import bisect, errors, kernels


def cands(*upstreams, source="archive"):
    return [bisect.Candidate(f"{u}+deb13-cloud-amd64", u, f"{u}-1", source,
                             (f"linux-image-{u}+deb13-cloud-amd64",)) for u in upstreams]


SERIES = cands("6.12.117", "6.16.3", "6.16.12", "6.17.8", "6.17.13", "6.18.5", "6.18.9",
               "6.18.12", "6.18.15")


class Oracle:
    """verdicts: {upstream: good|bad|skip}; records what was booted, by call."""
    def __init__(self, verdicts):
        self.verdicts, self.calls = verdicts, []

    def __call__(self, cs):
        self.calls.append([c.upstream for c in cs])
        return {c.release: bisect.Probe(c.release, self.verdicts[c.upstream],
                                        {"good": 0, "bad": 1, "skip": 125}[self.verdicts[c.upstream]],
                                        f"/r/{c.release}") for c in cs}

    @property
    def boots(self):
        return sum(len(c) for c in self.calls)


def first_bad_at(boundary, series=SERIES, bad="bad", good="good"):
    ups = [c.upstream for c in series]
    return {u: (bad if i >= ups.index(boundary) else good) for i, u in enumerate(ups)}


@pytest.mark.parametrize("boundary", [c.upstream for c in SERIES[1:]])
def test_regression_found_at_every_position_in_log2_boots(boundary):
    o = Oracle(first_bad_at(boundary))
    b, probes = bisect.search(SERIES, o, say=lambda *_: None)
    assert b.first_new.upstream == boundary
    assert SERIES[SERIES.index(b.first_new) - 1] == b.last_old and b.untested == []
    assert o.calls[0] == ["6.12.117", "6.18.15"]  # both endpoints first, in one run
    assert o.boots == len(probes) <= 2 + 3     # 7 inner candidates: 3 halvings


@pytest.mark.parametrize("boundary", ["7.2.6", "7.2.12", "7.3.4"])
def test_fix_direction_finds_the_first_good(boundary):
    series = cands("7.1.3", "7.1.13", "7.2.6", "7.2.9", "7.2.12", "7.2.13", "7.3.4")
    o = Oracle(first_bad_at(boundary, series, bad="good", good="bad"))
    b, _ = bisect.search(series, o, fixed=True, say=lambda *_: None)
    assert (b.last_old.upstream, b.first_new.upstream) == (
        series[[c.upstream for c in series].index(boundary) - 1].upstream, boundary)


def test_regression_terms_refuse_a_fix_window():
    o = Oracle(first_bad_at("6.17.8", bad="good", good="bad"))
    with pytest.raises(bisect.BisectError, match=r"^6\.12\.117\+deb13-cloud-amd64 was to be good but is bad"):
        bisect.search(SERIES, o, say=lambda *_: None)
    assert o.boots == 2


def test_bad_endpoint_that_passes_is_a_one_line_error():
    v = {c.upstream: "good" for c in SERIES}
    with pytest.raises(bisect.BisectError) as e:
        bisect.search(SERIES, Oracle(v), say=lambda *_: None)
    assert "6.18.15+deb13-cloud-amd64 was to be bad but is good" in str(e.value)
    assert "\n" not in str(e.value) and e.value.exit_code == errors.USAGE


def test_untestable_endpoint_is_infra():
    v = first_bad_at("6.17.8") | {"6.18.15": "skip"}
    with pytest.raises(errors.InfraError, match="6.18.15.* could not be tested"):
        bisect.search(SERIES, Oracle(v), say=lambda *_: None)


def test_skipped_middle_is_passed_over_for_its_neighbour():
    v = first_bad_at("6.18.9") | {"6.17.13": "skip"}  # the first middle
    o = Oracle(v)
    b, probes = bisect.search(SERIES, o, say=lambda *_: None)
    assert b.first_new.upstream == "6.18.9" and b.last_old.upstream == "6.18.5"
    assert b.untested == []
    assert o.calls[1:3] == [["6.17.13"], ["6.17.8"]]
    assert [p.verdict for p in probes].count("skip") == 1


def test_skips_next_to_the_boundary_widen_it():
    v = first_bad_at("6.18.5") | {"6.17.8": "skip", "6.17.13": "skip"}
    b, _ = bisect.search(SERIES, Oracle(v), say=lambda *_: None)
    assert b.last_old.upstream == "6.16.12" and b.first_new.upstream == "6.18.5"
    assert [c.upstream for c in b.untested] == ["6.17.8", "6.17.13"]


def test_adjacent_endpoints_need_no_more_boots():
    o = Oracle({"7.2.13": "good", "7.3.4": "bad"})
    b, _ = bisect.search(cands("7.2.13", "7.3.4"), o, say=lambda *_: None)
    assert b.first_new.upstream == "7.3.4" and o.boots == 2


@pytest.mark.parametrize("code, crashed, want", [
    (0, "bad", "good"), (1, "bad", "bad"), (6, "bad", "bad"), (6, "skip", "skip"),
    (6, "good", "good"), (125, "bad", "skip"), (4, "bad", None), (130, "bad", None),
    (5, "bad", None)])
def test_runner_exit_codes_as_verdicts(code, crashed, want):
    assert bisect.verdict(code, crashed) == want


def test_two_kernel_run_gives_each_kernel_its_own_verdict(tmp_path, monkeypatch):
    """The endpoints boot in one runner call, whose exit code is the worst of
    both: each kernel's verdict comes from its line of summary.json."""
    good, bad = cands("6.12.117", "6.18.15")
    summary = {"kernels": {
        good.release: {"status": "ok", "passed": 3, "failed": 0, "errors": 0, "xpassed": 0, "skipped": 0},
        bad.release: {"status": "error", "reason": "WARNING: at fs/namespace.c", "passed": 1,
                      "failed": 1, "errors": 0, "xpassed": 0, "skipped": 0}},
        "tests": {"suites/a.py::t1": {good.release: "PASS", bad.release: "PASS"},
                  "suites/a.py::t2": {good.release: "PASS", bad.release: "FAIL"}}}

    def fake_run(self, cs, run_dir):
        run_dir.mkdir(parents=True)
        (run_dir / "summary.json").write_text(json.dumps(summary))
        return errors.KERNEL_CRASHED
    monkeypatch.setattr(bisect.RunnerProbe, "_run", fake_run)
    got = bisect.RunnerProbe([], tmp_path, say=lambda *_: None)([good, bad])
    assert (got[good.release].verdict, got[good.release].exit) == ("good", 0)
    assert (got[bad.release].verdict, got[bad.release].exit) == ("bad", 6)
    assert got[bad.release].reason.startswith("WARNING") and got[good.release].counts["passed"] == 3
    assert got[bad.release].failures == ["suites/a.py::t2"] and got[good.release].failures == []


def test_a_kernel_the_runner_could_not_test_is_skipped_not_bad(tmp_path, monkeypatch):
    """A guest whose pytest cannot collect (status infra) leaves an ERROR in
    junit.xml and the runner exits 1; that is no verdict on the kernel."""
    k = cands("6.17.13")[0]
    summary = {"kernels": {k.release: {"status": "infra", "reason": "guest pytest exited 2: 1 error",
                                       "passed": 0, "failed": 0, "errors": 1, "xpassed": 0, "skipped": 0}}}

    def fake_run(self, cs, run_dir):
        run_dir.mkdir(parents=True)
        (run_dir / "summary.json").write_text(json.dumps(summary))
        return errors.TESTS_FAILED
    monkeypatch.setattr(bisect.RunnerProbe, "_run", fake_run)
    got = bisect.RunnerProbe([], tmp_path, say=lambda *_: None)([k])[k.release]
    assert (got.verdict, got.exit) == ("skip", errors.INFRA)


def test_runner_usage_error_stops_with_its_code(tmp_path, monkeypatch):
    def fake_run(self, cs, run_dir):
        run_dir.mkdir(parents=True)
        (run_dir / "runner.log").write_text("vm: pytest cannot collect the selection (exit 4): "
                                            "ERROR: file or directory not found: nope\nvm: wrote x\n")
        return errors.USAGE
    monkeypatch.setattr(bisect.RunnerProbe, "_run", fake_run)
    with pytest.raises(errors.RunnerError, match=r"^the runner stopped with exit 4: vm: pytest cannot collect the selection .*nope \[") as e:
        bisect.RunnerProbe([], tmp_path, say=lambda *_: None)(cands("7.3.4"))
    assert e.value.exit_code == errors.USAGE


@pytest.mark.skipif(not shutil.which("qemu-system-x86_64"),
                    reason="needs qemu-system-x86_64 for the runner's pre-flight: run ./setup.sh")
def test_probe_runs_the_real_runner_and_stops_on_its_usage_error(tmp_path):
    """The probe's command line goes through pytest's VM plugin: a kernel
    the runner refuses (no such image) stops the bisection with the
    runner's exit code and one-line message, before anything boots."""
    c = bisect.Candidate("no-such-dir/vmlinuz", "7.3.4", "7.3.4-1", "archive")
    probe = bisect.RunnerProbe(["suites/nullfs", "-k", "fspick"], tmp_path, say=lambda *_: None)
    with pytest.raises(errors.RunnerError) as e:
        probe([c])
    assert e.value.exit_code == errors.USAGE and (tmp_path / "no-such-dir_vmlinuz/runner.log").exists()
    assert re.search(r"exit 4: vm: (no-such-dir/vmlinuz: no such kernel image|.*sudo)", str(e.value))


# --- candidates and options --------------------------------------------------

def avail(upstream, abi_suffix="+deb13", version=None):
    return kernels.Available(f"{upstream}{abi_suffix}-cloud-amd64", upstream, version or f"{upstream}-1",
                             (f"linux-image-{upstream}{abi_suffix}-cloud-amd64",), (version or f"{upstream}-1",))


def test_candidates_merge_archive_and_cache_in_version_order():
    index = [avail("6.18.15"), avail("6.12.117"), avail("6.16.3")]
    cached = [avail("6.12.117"), avail("6.12.107"), avail("6.18.15", version="6.18.15-0")]
    got = bisect.candidates(index, cached)
    assert [(c.upstream, c.source) for c in got] == [
        ("6.12.107", "cache"), ("6.12.117", "archive+cache"), ("6.16.3", "archive"), ("6.18.15", "archive")]
    assert got[-1].version == "6.18.15-1"  # the archive's respin is what --kernel boots
    assert bisect.pick("6.12", got).upstream == "6.12.117"
    assert bisect.pick("6.12.107", got).source == "cache"
    with pytest.raises(errors.UsageError, match="'6.13' is not packaged"):
        bisect.pick("6.13", got)


@pytest.fixture
def offline(monkeypatch):
    index = [avail(u) for u in ("6.12.117", "6.16.3", "6.18.15")]
    monkeypatch.setattr(bisect, "_index", lambda mirror, say: index)
    monkeypatch.setattr(kernels, "cached_available", lambda: [])


@pytest.mark.parametrize("argv, message", [
    (["--good", "6.18", "--bad", "6.12", "x"], r"--good 6\.18\.15\S+ is not older than --bad 6\.12\.117\S+ \(to find where it was fixed, add --fixed\)"),
    (["--good", "6.12", "--bad", "6.18", "--fixed", "x"], r"--bad 6\.18\.15\S+ is not older than --good 6\.12\.117\S+ \(to find where it broke, drop --fixed\)"),
    (["--good", "6.12", "--bad", "6.18", "--kernel", "7.3"], "--kernel is chosen by the bisection"),
    (["--good", "6.12", "x"], "required: --bad"),
    (["--good", "6.12", "--bad", "6.18", "--crashed", "maybe"], "invalid choice: 'maybe'"),
])
def test_bad_options_are_one_line_usage_errors(offline, tmp_path, argv, message):
    said = []
    assert bisect.main([*argv, f"--results-dir={tmp_path}/r"], said.append) == errors.USAGE
    assert len(said) == 1 and re.search(message, said[0]), said
    assert not (tmp_path / "r").exists()  # nothing half-done


def test_endpoint_failure_is_recorded_and_one_line(offline, tmp_path, monkeypatch):
    monkeypatch.setattr(bisect, "RunnerProbe", lambda *a, **k: Oracle(
        {"6.12.117": "bad", "6.16.3": "bad", "6.18.15": "bad"}))
    said = []
    rc = bisect.main(["--good", "6.12", "--bad", "6.18", f"--results-dir={tmp_path}", "suites/x"], said.append)
    assert rc == errors.USAGE and said[-1].startswith("vm: 6.12.117+deb13-cloud-amd64 was to be good but is bad")
    rec = json.loads((tmp_path / "bisect.json").read_text())
    assert [p["verdict"] for p in rec["probes"]] == ["bad", "bad"] and "boundary" not in rec
    assert [c["upstream"] for c in rec["candidates"]] == ["6.12.117", "6.16.3", "6.18.15"]


# --- the Debian changelog ------------------------------------------------------

ENTRY = """{pkg} ({ver}) {dist}; urgency=medium

  * {text}

 -- Debian Kernel Team <debian-kernel@lists.debian.org>  Mon, 0{day} Nov 2026 10:00:00 +0100

"""


def changelog(path, entries):
    with gzip.open(path, "wt") as f:
        for day, (pkg, ver, text) in enumerate(entries, 1):
            f.write(ENTRY.format(pkg=pkg, ver=ver, dist="unstable", text=text, day=day))
    return path


needs_dpkg_dev = pytest.mark.skipif(not shutil.which("dpkg-parsechangelog"),
                                    reason="needs dpkg-parsechangelog: run ./setup.sh (apt-get install dpkg-dev)")


@needs_dpkg_dev
def test_changes_since_the_older_release(tmp_path):
    f = changelog(tmp_path / "c.gz", [
        ("linux", "7.2.6-1", "New upstream stable update: 7.2.6; fs: nullfs: refuse reconfigure"),
        ("linux", "7.2.3-1~exp1", "New upstream stable update: 7.2.3"),
        ("linux", "7.1.3-1", "New upstream stable update: 7.1.3"),
        ("linux", "7.1.2-1~exp1", "New upstream stable update: 7.1.2")])
    text, note = bisect.changes_since(f, "7.1.3-1")
    assert note is None
    assert text.splitlines()[0] == "linux (7.2.6-1) unstable; urgency=medium"
    assert "nullfs: refuse reconfigure" in text and "7.2.3-1~exp1" in text
    assert "7.1.3" not in text.replace("7.1.3-1", "") and "(7.1.3-1)" not in text


@needs_dpkg_dev
def test_a_backport_not_in_the_changelog_counts_from_the_newest_earlier_entry(tmp_path):
    f = changelog(tmp_path / "c.gz", [("linux", "7.2.6-1", "seven two six"),
                                      ("linux", "7.1.3-1", "seven one three")])
    text, note = bisect.changes_since(f, "7.1.13-1~bpo13+1")
    assert "seven two six" in text and "seven one three" not in text
    assert note == "7.1.13-1~bpo13+1 has no entry in this changelog: the entries after 7.1.3-1, the newest older one"


@needs_dpkg_dev
def test_changelog_from_the_package_the_doc_symlink_names(tmp_path, monkeypatch):
    """7.x linux-binary-* makes usr/share/doc/<itself> a symlink to
    linux-base-<release>; that package is fetched and its changelog read."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    old, new = cands("7.1.13", "7.2.6")
    doc = kernels.deb_dir(new.release, new.version) / "usr/share/doc"
    doc.mkdir(parents=True)
    (doc / new.packages[0]).symlink_to(f"linux-base-{new.release}")
    base = tmp_path / "base"
    (base / "DEBIAN").mkdir(parents=True)
    (base / "DEBIAN/control").write_text(
        f"Package: linux-base-{new.release}\nVersion: {new.version}\nArchitecture: amd64\n"
        "Maintainer: x <x@example.org>\nDescription: base files\n")
    pkgdoc = base / "usr/share/doc" / f"linux-base-{new.release}"
    pkgdoc.mkdir(parents=True)
    changelog(pkgdoc / "changelog.Debian.gz", [("linux", "7.2.6-1", "the fix"),
                                               ("linux", "7.1.13-1", "the old one")])
    deb = tmp_path / "base.deb"
    subprocess.run(["dpkg-deb", "--root-owner-group", "-b", str(base), str(deb)], check=True,
                   capture_output=True)

    class Apt:
        asked = []
        def download(self, pins):
            self.asked.extend(pins)
            return [deb]
    apt = Apt()
    b = bisect.Boundary(old, new, [])
    cl = bisect.changelog_between(b, tmp_path, apt)
    assert apt.asked == [f"linux-base-{new.release}={new.version}"]
    assert cl["package"] == f"linux-base-{new.release}={new.version}" and cl["entries"] == 1
    assert "the fix" in (tmp_path / "changelog.txt").read_text()
    assert "the old one" not in (tmp_path / "changelog.txt").read_text()


def test_changelog_package_missing_from_the_archive_is_said(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    old, new = cands("7.1.8", "7.1.13")

    class Apt:
        def download(self, pins):
            raise RuntimeError("apt-get download failed:\nE: Version '7.1.13-1' for 'linux-base-...' was not found")
    cl = bisect.changelog_between(bisect.Boundary(old, new, []), tmp_path, Apt())
    assert cl["package"] == f"linux-base-{new.release}"
    assert cl["error"].startswith(f"linux-base-{new.release}=7.1.13-1 cannot be fetched (E: Version")
