"""python -m vm bisect: the first packaged point release at which a pytest
selection's verdict changes, in as few boots as the candidates allow.

The candidates are the cloud-amd64 kernels the private apt index offers plus
the extracted ones in the cache that the archive has dropped, ordered by
version (kernels.version_key).  Both endpoints are booted first (together,
in one runner call) and must give the verdicts stated; then a binary search
boots one kernel per step through the same runner `pytest --kernel K` uses,
and reads its exit code (vm/errors.py) as git bisect run would: 0 good, 1
bad, 6 (crash/hang) bad unless --crashed says otherwise, 125 skip that
candidate, 4 and 130 stop.  Between the two adjacent releases found, the
newer package's Debian changelog (dpkg-parsechangelog --since the older's
version) says what changed."""
from __future__ import annotations

import argparse
import gzip
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tarfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

from . import errors, kernels, report
from .apt import PrivateApt

CHANGELOG_NAMES = ("changelog.Debian.gz", "changelog.gz")  # linux-base-*, linux-image-* (6.x)
EXIT_VERDICT = {errors.OK: "good", errors.TESTS_FAILED: "bad", errors.INFRA: "skip"}


@dataclass
class Candidate:
    release: str    # uname -r, what --kernel is given
    upstream: str
    version: str    # Debian package version
    source: str     # "archive", "cache" (dropped from the archive) or "archive+cache"
    packages: tuple[str, ...] = ()

    @property
    def key(self):
        return kernels.version_key(self.upstream, self.version)


@dataclass
class Probe:
    release: str
    verdict: str    # good | bad | skip
    exit: int
    results: str | None = None  # the kernel's results directory
    counts: dict = field(default_factory=dict)
    reason: str | None = None
    failures: list[str] = field(default_factory=list)  # FAIL/ERROR/XPASS test ids


@dataclass
class Boundary:
    last_old: Candidate
    first_new: Candidate
    untested: list[Candidate]  # skipped candidates between them: the change is in one of these too


class BisectError(errors.RunnerError):
    """An endpoint without the verdict it was given (the search would be meaningless)."""
    exit_code = errors.USAGE


# --- candidates ---------------------------------------------------------------

def candidates(index: list[kernels.Available], cached: list[kernels.Available]) -> list[Candidate]:
    """Archive and cache, one candidate per release, oldest first.  A release
    in both is the archive's version (what --kernel RELEASE boots)."""
    out = {a.release: Candidate(a.release, a.upstream, a.version, "archive", a.packages)
           for a in index}
    for a in cached:
        c = out.get(a.release)
        if c is None:
            out[a.release] = Candidate(a.release, a.upstream, a.version, "cache")
        elif c.version == a.version:
            c.source = "archive+cache"
    return sorted(out.values(), key=lambda c: c.key)


def pick(spec: str, cands: list[Candidate]) -> Candidate:
    """'X.Y' = newest X.Y.z, else an exact point release or release name."""
    avail = [kernels.Available(c.release, c.upstream, c.version, c.packages) for c in cands]
    try:
        a = kernels.resolve_versions(spec, avail)[0]
    except LookupError as e:
        raise errors.UsageError(str(e)) from None
    return next(c for c in cands if c.release == a.release)


def window(cands: list[Candidate], old: Candidate, new: Candidate) -> list[Candidate]:
    return cands[cands.index(old):cands.index(new) + 1]


# --- the search ---------------------------------------------------------------

def terms(fixed: bool) -> tuple[str, str]:
    """(verdict of the older endpoint, of the newer one), git bisect's
    --term-old/--term-new: a regression goes good -> bad, a fix bad -> good."""
    return ("bad", "good") if fixed else ("good", "bad")


def search(cands: list[Candidate], probe: Callable[[list[Candidate]], dict[str, Probe]],
           fixed: bool = False, say=print) -> tuple[Boundary, list[Probe]]:
    """Binary search for the first candidate with the newer endpoint's verdict.
    probe(cs) boots each of cs and returns {release: Probe}.  A skipped
    candidate is passed over for the one nearest the middle (git bisect
    skip); if only skipped ones are left, the boundary spans them."""
    old_term, new_term = terms(fixed)
    ends = probe([cands[0], cands[-1]])
    done = [ends[cands[0].release], ends[cands[-1].release]]
    for c, p, want in ((cands[0], done[0], old_term), (cands[-1], done[1], new_term)):
        if p.verdict == "skip":
            raise errors.InfraError(f"{c.release} could not be tested (exit {p.exit}"
                                    f"{': ' + p.reason if p.reason else ''}): see {p.results}")
        if p.verdict != want:
            raise BisectError(f"{c.release} was to be {want} but is {p.verdict} "
                              f"(exit {p.exit}, {fmt_counts(p.counts)}): see {p.results}")
    lo, hi, skipped = 0, len(cands) - 1, set()
    while inner := [i for i in range(lo + 1, hi) if i not in skipped]:
        mid = (lo + hi) / 2
        i = min(inner, key=lambda i: (abs(i - mid), i))
        say(f"bisect: {len(inner)} candidate(s) left, about {steps(len(inner))} more boot(s)")
        p = probe([cands[i]])[cands[i].release]
        done.append(p)
        if p.verdict == "skip":
            skipped.add(i)
        elif p.verdict == old_term:
            lo = i
        else:
            hi = i
    untested = [cands[i] for i in sorted(skipped) if lo < i < hi]
    return Boundary(cands[lo], cands[hi], untested), done


def steps(n: int) -> int:
    """Boots a binary search needs for n untested candidates between two known ends."""
    return (n).bit_length()


def verdict(code: int, crashed: str) -> str | None:
    """The runner's exit code as a bisect verdict; None: stop bisecting."""
    if code == errors.KERNEL_CRASHED:
        return crashed
    return EXIT_VERDICT.get(code)


def fmt_counts(c: dict) -> str:
    return " ".join(f"{k}={c[k]}" for k in ("passed", "failed", "errors", "xpassed", "skipped")
                    if k in c) or "no results"


# --- a probe: the VM runner as a subprocess -----------------------------------

class RunnerProbe:
    """Boots candidates through `pytest -p vm.plugin --kernel RELEASE ...`, one
    run directory per call under results_dir, the runner's output in its
    runner.log."""

    def __init__(self, pytest_args: list[str], results_dir: Path, crashed: str = "bad",
                 mirror: str | None = None, say=print):
        self.args, self.dir, self.crashed, self.mirror, self.say = (
            pytest_args, results_dir, crashed, mirror, say)

    def __call__(self, cs: list[Candidate]) -> dict[str, Probe]:
        run_dir = self.dir / ("endpoints" if len(cs) > 1 else cs[0].release.replace("/", "_"))
        self.say(f"bisect: booting {', '.join(c.release for c in cs)} (runner output: "
                 f"{run_dir / 'runner.log'})")
        code = self._run(cs, run_dir)
        if code in (errors.USAGE, errors.INTERRUPTED):
            raise _stop(code, run_dir)
        summary = _read_json(run_dir / "summary.json") or {"kernels": {}}
        out = {}
        for c in cs:
            k = summary["kernels"].get(c.release)
            kc = kernel_exit(c.release, k) if k else code
            v = verdict(kc, self.crashed)
            if v is None:
                raise _stop(kc, run_dir)
            counts = {f: k[f] for f in ("passed", "failed", "errors", "xpassed", "skipped")} if k else {}
            reason = k.get("reason") if k else None
            bad = [t for t, by in summary.get("tests", {}).items()
                   if by.get(c.release) in ("FAIL", "ERROR", "XPASS")]
            out[c.release] = Probe(c.release, v, kc, str(run_dir / c.release), counts, reason, bad)
            self.say(f"bisect: {c.release} ({c.version}): {v} -- exit {kc}, {fmt_counts(counts)}"
                     + (f", {reason}" if reason else ""))
        return out

    def _run(self, cs: list[Candidate], run_dir: Path) -> int:
        run_dir.mkdir(parents=True, exist_ok=True)
        cmd = [sys.executable, "-m", "pytest", "-p", "vm.plugin",
               *(a for c in cs for a in ("--kernel", c.release)),
               f"--results-dir={run_dir}", *(["--mirror", self.mirror] if self.mirror else []),
               *self.args]
        with open(run_dir / "runner.log", "w") as log:
            proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
            return _wait(proc)


def _wait(proc: subprocess.Popen) -> int:
    """Wait for the runner however we are interrupted: Ctrl-C reaches it too
    (same process group) and it stops its guests; SIGTERM (a cancelled CI
    job) is passed on.  Killing it instead would leave qemu running."""
    old = signal.signal(signal.SIGTERM, lambda *_: proc.send_signal(signal.SIGTERM))
    try:
        while True:
            try:
                return proc.wait()
            except KeyboardInterrupt:
                continue
    finally:
        signal.signal(signal.SIGTERM, old)


def kernel_exit(name: str, k: dict) -> int:
    """One kernel's exit code, from its line of summary.json (a run of two
    kernels exits with the worse of both).  As report.exit_code, except that
    a kernel the runner could not test (status infra, e.g. the guest's
    pytest could not collect the selection) is no verdict even where that
    left an ERROR in its junit.xml."""
    if k["status"] == "infra":
        return errors.INFRA
    if k["status"] == "interrupted":
        return errors.INTERRUPTED
    return report.exit_code({"kernels": {name: k}})


def _stop(code: int, run_dir: Path) -> errors.RunnerError:
    """The runner said stop (usage error, interrupted, an exit code that is
    no verdict): the same exit code, and the runner's own one-line message."""
    log = run_dir / "runner.log"
    lines = log.read_text(errors="replace").splitlines() if log.exists() else []
    said = [l.strip() for l in lines if l.startswith("vm: ") and not l.startswith("vm: wrote ")]
    what = "interrupted" if code == errors.INTERRUPTED else said[-1] if said else "no message"
    e = errors.RunnerError(f"the runner stopped with exit {code}: {what} [{log}]")
    e.exit_code = code
    return e


def _read_json(path: Path):
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


# --- the Debian changelog between two releases --------------------------------

def changelog_source(c: Candidate) -> tuple[str, Path | None]:
    """(package, its extracted doc directory or None) that carries c's Debian
    changelog.  6.x linux-image-* packages ship it in their own doc
    directory; linux-binary-*/linux-image-* of newer ones make that directory
    a symlink to linux-base-<release>, whose package carries it."""
    root = kernels.deb_dir(c.release, c.version)
    for pkg in [*c.packages, f"linux-image-{c.release}", f"linux-binary-{c.release}"]:
        doc = root / "usr/share/doc" / pkg
        if doc.is_symlink():
            target = os.readlink(doc)
            return target, (root / "usr/share/doc" / target) if (root / "usr/share/doc" / target).is_dir() else None
        if doc.is_dir():
            return pkg, doc
    return f"linux-base-{c.release}", None


def changelog_file(c: Candidate, dest: Path, apt: PrivateApt | None) -> Path:
    """c's changelog, copied to dest: from the extracted kernel, else from the
    carrying package's .deb (downloaded with the private apt)."""
    pkg, doc = changelog_source(c)
    for name in CHANGELOG_NAMES if doc else ():
        if (doc / name).is_file():
            shutil.copyfile(doc / name, dest)
            return dest
    if apt is None:
        raise LookupError(f"{pkg}={c.version} is not extracted and there is no Debian archive to fetch it from")
    try:
        deb = apt.download([f"{pkg}={c.version}"])[0]
        return extract_changelog(deb, pkg, dest)
    except (RuntimeError, OSError, tarfile.TarError) as e:
        raise LookupError(f"{pkg}={c.version} cannot be fetched ({str(e).splitlines()[-1].strip()})") from None


def extract_changelog(deb: Path, pkg: str, dest: Path) -> Path:
    """usr/share/doc/<pkg>/changelog(.Debian).gz out of a .deb, via dpkg-deb's
    data tarball (the .deb's compression is dpkg-deb's business)."""
    want = {f"./usr/share/doc/{pkg}/{n}" for n in CHANGELOG_NAMES}
    proc = subprocess.Popen(["dpkg-deb", "--fsys-tarfile", str(deb)], stdout=subprocess.PIPE)
    try:
        with tarfile.open(fileobj=proc.stdout, mode="r|") as tar:
            for m in tar:
                if m.name in want and m.isfile():
                    dest.write_bytes(tar.extractfile(m).read())
                    return dest
    finally:
        proc.stdout.close()
        proc.wait()
    raise LookupError(f"{deb.name} has no usr/share/doc/{pkg}/changelog.Debian.gz")


def changes_since(changelog: Path, old_version: str) -> tuple[str, str | None]:
    """(the entries of changelog newer than old_version, as changelog text;
    dpkg-parsechangelog's warning when old_version has no entry of its own,
    e.g. a backport's version in a sid changelog)."""
    if not shutil.which("dpkg-parsechangelog"):
        raise LookupError("dpkg-parsechangelog not found (apt-get install dpkg-dev)")
    p = _parsechangelog(changelog, "--since", old_version, "--format", "dpkg")
    text = changes_text(p.stdout)
    if "non-existing version" not in p.stderr:
        return text, None
    # dpkg-parsechangelog counted from the newest entry older than
    # old_version: name it (the entry after the ones printed)
    n = sum(1 for l in text.splitlines() if is_entry_header(l))
    since = _parsechangelog(changelog, "--offset", str(n), "--count", "1", "-S", "Version").stdout.strip()
    return text, f"{old_version} has no entry in this changelog: the entries after {since}, the newest older one"


def _parsechangelog(changelog: Path, *args: str) -> subprocess.CompletedProcess:
    p = subprocess.run(["dpkg-parsechangelog", "-l", str(changelog), *args],
                       capture_output=True, text=True)
    if p.returncode:
        raise LookupError(f"dpkg-parsechangelog failed: {' '.join(p.stderr.split())[:300]}")
    return p


def is_entry_header(line: str) -> bool:
    """'source (version) distribution; urgency=...' (deb-changelog(5))."""
    return bool(re.match(r"[a-z0-9][a-z0-9+.-]* \([^ ]+\) [^;]+;", line))


def changes_text(stanza: str) -> str:
    """The Changes field of a deb822 stanza, un-indented ('.' lines are blank)."""
    out, inside = [], False
    for line in stanza.splitlines():
        if line.startswith("Changes:"):
            inside = True
        elif inside and line.startswith(" "):
            out.append("" if line.strip() == "." else line[1:])
        elif inside:
            break
    return "\n".join(out).strip("\n") + "\n"


def changelog_between(b: Boundary, results_dir: Path, apt: PrivateApt | None) -> dict:
    """What Debian changed from last_old to first_new: {package, file, entries,
    note} or {error}; the text goes to results_dir/changelog.txt."""
    new, old = b.first_new, b.last_old
    pkg = changelog_source(new)[0]
    try:
        src = changelog_file(new, results_dir / f"changelog-{new.release}.gz", apt)
        text, note = changes_since(src, old.version)
    except LookupError as e:
        return {"package": pkg, "error": str(e)}
    (results_dir / "changelog.txt").write_text(text)
    with gzip.open(src, "rt", errors="replace") as f:
        head = f.readline().strip()
    return {"package": f"{pkg}={new.version}", "file": str(results_dir / "changelog.txt"),
            "entries": sum(1 for l in text.splitlines() if is_entry_header(l)),
            "newest": head, "note": note}


# --- the command ----------------------------------------------------------------

class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise errors.UsageError(f"bisect: {message}")


def parse(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    ap = _Parser(prog="python -m vm bisect", allow_abbrev=False,
                 description="first packaged point release where a selection's verdict changes; "
                             "other arguments are the pytest selection")
    ap.add_argument("--good", required=True, metavar="K", help="a release where the selection passes")
    ap.add_argument("--bad", required=True, metavar="K", help="a release where it fails")
    ap.add_argument("--fixed", action="store_true",
                    help="find where it was fixed: --bad is the older release (default: --good is)")
    ap.add_argument("--crashed", choices=["bad", "good", "skip"], default="bad",
                    help="verdict for a kernel that crashes or hangs (exit 6; default bad)")
    ap.add_argument("--results-dir", default="results/bisect", metavar="D")
    ap.add_argument("--mirror", default=None, metavar="URL")
    ap.add_argument("--changelog-lines", type=int, default=60, metavar="N",
                    help="changelog lines printed (all in D/changelog.txt)")
    opts, rest = ap.parse_known_args(argv)
    if any(a == "--kernel" or a.startswith("--kernel=") for a in rest):
        raise errors.UsageError("bisect: --kernel is chosen by the bisection; give --good/--bad")
    return opts, rest


def main(argv: list[str], say=print) -> int:
    try:
        return _main(argv, say)
    except errors.RunnerError as e:
        say(f"vm: {e}")
        return e.exit_code
    except KeyboardInterrupt:  # outside a probe (a probe's runner stops its guests itself)
        say("vm: bisect: interrupted")
        return errors.INTERRUPTED


def _apt(mirror: str | None) -> PrivateApt | None:
    try:
        return PrivateApt(mirror)
    except RuntimeError:  # no Debian archive in the apt sources and no --mirror
        return None


def _index(mirror: str | None, say) -> list[kernels.Available]:
    try:
        return kernels.available(PrivateApt(mirror).kernel_packages())
    except RuntimeError as e:
        say(f"vm: warning: cannot read the kernel index ({str(e).splitlines()[0]}); "
            "bisecting the extracted kernels only")
        return []


def _main(argv: list[str], say) -> int:
    opts, args = parse(argv)
    cands = candidates(_index(opts.mirror, say), kernels.cached_available())
    good, bad = pick(opts.good, cands), pick(opts.bad, cands)
    old, new = (bad, good) if opts.fixed else (good, bad)
    if old.key >= new.key:
        o, n = terms(opts.fixed)
        hint = "to find where it broke, drop --fixed" if opts.fixed else "to find where it was fixed, add --fixed"
        raise errors.UsageError(f"bisect: --{o} {old.release} is not older than --{n} {new.release} ({hint})")
    win = window(cands, old, new)
    say(f"bisect: {len(win)} candidate(s) from {old.upstream} to {new.upstream} "
        f"(* = only in the cache, no longer in the archive): "
        + " ".join(c.upstream + ("*" if c.source == "cache" else "") for c in win))
    say(f"bisect: 2 endpoint boots, then about {steps(len(win) - 2)} more")
    rdir = Path(opts.results_dir).resolve()
    rdir.mkdir(parents=True, exist_ok=True)
    record = {"selection": args, "fixed": opts.fixed, "good": opts.good, "bad": opts.bad,
              "terms": dict(zip(("old", "new"), terms(opts.fixed))), "crashed": opts.crashed,
              "candidates": [asdict(c) for c in win]}
    probe = RunnerProbe(args, rdir, opts.crashed, opts.mirror, say)
    try:
        b, probes = search(win, _recording(probe, record, rdir), opts.fixed, say)
    except errors.RunnerError as e:
        record["error"] = str(e)
        _write(record, rdir)
        raise
    record["boundary"] = {"last_old": asdict(b.last_old), "first_new": asdict(b.first_new),
                          "untested": [asdict(c) for c in b.untested]}
    record["changelog"] = changelog_between(b, rdir, _apt(opts.mirror))
    _write(record, rdir)
    _print_boundary(b, record, opts, say)
    return errors.OK


def _recording(probe, record: dict, rdir: Path):
    """probe, with every result appended to bisect.json as it comes."""
    def run(cs):
        got = probe(cs)
        record.setdefault("probes", []).extend(asdict(p) for p in got.values())
        _write(record, rdir)
        return got
    return run


def _write(record: dict, rdir: Path) -> None:
    (rdir / "bisect.json").write_text(json.dumps(record, indent=1) + "\n")


def _print_boundary(b: Boundary, record: dict, opts, say) -> None:
    old_term, new_term = terms(opts.fixed)
    boots = len(record.get("probes", []))
    say(f"\nbisect: {boots} boot(s) for {len(record['candidates'])} candidates")
    say(f"bisect: last {old_term}:  {b.last_old.release} ({b.last_old.version})")
    say(f"bisect: first {new_term}: {b.first_new.release} ({b.first_new.version})")
    if b.untested:
        say("bisect: could not test, so the change may be at any of: "
            + " ".join(c.upstream for c in b.untested) + f" or {b.first_new.upstream}")
    cl = record["changelog"]
    if "error" in cl:
        say(f"bisect: no Debian changelog: {cl['error']}")
    else:
        say(f"bisect: Debian changelog of {cl['package']} since {b.last_old.version}: "
            f"{cl['entries']} entr{'y' if cl['entries'] == 1 else 'ies'}"
            + (f" ({cl['note']})" if cl["note"] else ""))
        lines = Path(cl["file"]).read_text().splitlines()
        for line in lines[:opts.changelog_lines]:
            say("  " + line)
        if len(lines) > opts.changelog_lines:
            say(f"  ... {len(lines) - opts.changelog_lines} more lines in {cl['file']}")
    say(f"bisect: wrote {Path(opts.results_dir).resolve() / 'bisect.json'}")
