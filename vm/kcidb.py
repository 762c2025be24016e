"""A VM run's results as KCIDB I/O schema v5 JSON (the kernelci.org common
results database's submission format), validated with kcidb-io before it is
written.

    python -m vm kcidb RESULTS_DIR [-o FILE] [--origin NAME]

What the objects stand for:
- checkout: the kernel source that was tested, one per Debian source version
  (the linux-image/binary package version is the linux source's version);
  a kernel given as an image has no known source: a checkout of its own.
- build: one per kernel, x86_64, config_name the Debian flavour (cloud-amd64);
  status PASS, as the packaged build succeeded.
- tests: one per pytest case x kernel, and one per kernel for the suite's run
  on it (path "mntns_conformance"): DONE when the guest ran the suite to the
  end, ERROR when the kernel crashed or hung, MISS when the harness could not
  test it (infra, interrupted). A harness failure is never FAIL.
- issues and incidents: a known defect (an XFAIL, harness/defects.py) is a
  FAIL of the test -- the kernel does misbehave -- with an incident linking it
  to the defect's issue: KCIDB v5 has no "waived"; triage is an issue whose
  incidents mark the failures it explains. A FLAKY case (--rerun-failures)
  is its last attempt's PASS and a FAIL for each attempt before it: KCIDB
  keeps every run of a test. A fixed known defect (XPASS) is a
  PASS -- the kernel behaves -- with an incident saying the issue is absent
  (present=false): the expectation is out of date. A kernel complaint
  (WARN/BUG/oops, vm/crash.py) is an issue keyed by its fingerprint, with an
  incident on the run and on each test it is blamed on.

Ids are "<origin>:..." and stable: writing the same results dir again gives
the same ids, so a resubmission updates rather than duplicates. Checkout and
build ids name the package, so every run of a build files under it; test ids
carry the run (its start and a hash of summary.json's run record), the
kernel and the pytest node id, so two runs never collide.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import kcidb_io

from . import errors, report

ORIGIN = "mntns_conformance"
PATH_ROOT = "mntns_conformance"  # the suite's node in the test path tree
ARCH = "x86_64"
MAX_EXCERPT = 16384  # the schema's maxLength of log_excerpt

# Project status -> KCIDB status (XFAIL/XPASS also get an incident).
STATUS = {"PASS": "PASS", "FAIL": "FAIL", "ERROR": "ERROR", "SKIP": "SKIP", "XFAIL": "FAIL",
          "XPASS": "PASS", "FLAKY": "PASS"}
# The runner's per-kernel status -> the status of the test standing for the run.
RUN_STATUS = {"ok": "DONE", "error": "ERROR"}  # anything else (infra, interrupted): MISS

# harness/defects.py's xfail reason; pytest prefixes "[NOTRUN] " for run=false,
# and a strict XPASS's failure message is "[XPASS(strict)] <reason>".
KNOWN_RE = re.compile(r"known defect on (?P<kernel>\S+): (?P<reason>.*?)(?: \(ref: (?P<ref>.*?)\))?"
                      r"(?:; waived until (?P<expires>[0-9-]+))? \(evidence: (?P<evidence>.*)\)\s*$", re.S)
PREFIX_RE = re.compile(r"^\s*\[(?:NOTRUN|XPASS\(strict\))\]\s*")
FLAVOUR_RE = re.compile(r"^\d[^+@-]*(?:\+deb\d+(?:\.\d+)*|-\d+)-(?P<flavour>[a-z0-9-]+)(?:@.*)?$")


class Error(errors.UsageError):
    """Results that cannot be read (one line for the user)."""


# --- test paths -----------------------------------------------------------------

def escape(component: str) -> str:
    """A path component in the schema's alphabet ([A-Za-z0-9_-]+): a character
    outside it becomes "_x<hex>_", and so does a "_" followed by "x" (so no
    literal text reads as an escape); the empty string is "_x_". One-to-one,
    and a Python name or a plain parameter id keeps its spelling."""
    if not component:
        return "_x_"
    out = []
    for i, c in enumerate(component):
        literal = re.fullmatch(r"[A-Za-z0-9-]", c) or (c == "_" and component[i + 1:i + 2] != "x")
        out.append(c if literal else f"_x{ord(c):x}_")
    return "".join(out)


def split_nodeid(nodeid: str) -> list[str]:
    """pytest's node id as its parts: the file's directories, the module
    (".py" dropped), classes, the function, and the parameter id if any
    ("d/test_a.py::C::test_b[x-1]" -> d, test_a, C, test_b, x-1)."""
    base, param = nodeid, None
    bracket = nodeid.find("[")
    if nodeid.endswith("]") and bracket > nodeid.rfind("::", 0, bracket) >= 0:
        base, param = nodeid[:bracket], nodeid[bracket + 1:-1]
    file, *names = base.split("::")
    parts = file.split("/")
    parts[-1] = parts[-1].removesuffix(".py")
    return [*parts, *names, *([] if param is None else [param])]


def test_path(nodeid: str) -> str:
    return ".".join([PATH_ROOT, *map(escape, split_nodeid(nodeid))])


# --- reading a results dir --------------------------------------------------------

def read_summary(results_dir: Path) -> dict:
    path = results_dir / "summary.json"
    try:
        summary = json.loads(path.read_text())
    except FileNotFoundError:
        raise Error(f"{results_dir}: no summary.json (not a VM runner results directory)") from None
    except (OSError, ValueError) as e:
        raise Error(f"{path}: unreadable: {e}") from None
    if not isinstance(summary, dict) or not isinstance(summary.get("kernels"), dict):
        raise Error(f"{path}: not a VM runner summary (no 'kernels' table)")
    return summary


def read_junit(path: Path) -> tuple[dict[str, dict] | None, str | None]:
    """({nodeid: {"status", "time", "message", "text"}}, the session's start
    time); a node id reported twice (an error in teardown after a failure)
    keeps its worst status, as vm/report.py does. (None, None) if unreadable."""
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError):
        return None, None
    suite = root if root.tag == "testsuite" else root.find("testsuite")
    out: dict[str, dict] = {}
    for tc in root.iter("testcase"):
        nid, status = report.nodeid(tc), report.outcome(tc)
        el = next((e for e in (tc.find(t) for t in ("error", "failure", "skipped")) if e is not None), None)
        case = {"status": status, "time": float(tc.get("time") or 0), "attempts": report.attempts(tc),
                "message": None if el is None else (el.get("message") or "").strip(),
                "text": None if el is None else (el.text or "").strip()}
        prev = out.get(nid)
        if prev is not None:
            case["time"] += prev["time"]
            if report.RANK[status] < report.RANK[prev["status"]]:
                case = {**prev, "time": case["time"]}
        out[nid] = case
    return out, (suite.get("timestamp") if suite is not None else None)


def _hash(text: str, n: int = 12) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:n]


def run_key(summary: dict) -> str:
    """The run, for test ids: its start time and a hash of its record."""
    run = summary.get("run")
    if isinstance(run, dict):
        return f"{run.get('started', 'unknown')}/{_hash(json.dumps(run, sort_keys=True), 8)}"
    return _hash(json.dumps(summary, sort_keys=True), 8)


def flavour(kernel: str) -> str | None:
    """Debian's flavour of a release: 7.3.4+deb13-cloud-amd64 -> cloud-amd64
    (also the older 6.1.0-18-cloud-amd64 form)."""
    m = FLAVOUR_RE.match(kernel)
    return m.group("flavour") if m else None


def _excerpt(text: str | None) -> dict:
    text = (text or "").replace("\0", "")
    return {"log_excerpt": text[:MAX_EXCERPT]} if text else {}


# --- objects ----------------------------------------------------------------------

class Report:
    def __init__(self, summary: dict, results_dir: Path, origin: str):
        self.summary, self.dir, self.origin = summary, results_dir, origin
        self.run = run_key(summary)
        info = summary.get("run") if isinstance(summary.get("run"), dict) else {}
        self.suite = {k: info[k] for k in ("commit", "dirty", "started", "command") if k in info}
        self.checkouts: dict[str, dict] = {}
        self.builds: list[dict] = []
        self.tests: list[dict] = []
        self.issues: dict[str, dict] = {}
        self.incidents: list[dict] = []

    def id(self, *parts: str) -> str:
        return ":".join([self.origin, *parts])

    def data(self) -> dict:
        for kernel, info in self.summary["kernels"].items():
            self.kernel(kernel, info or {})
        return {"version": {"major": SCHEMA.major, "minor": SCHEMA.minor},
                "checkouts": list(self.checkouts.values()), "builds": self.builds,
                "tests": self.tests, "issues": list(self.issues.values()), "incidents": self.incidents}

    def checkout(self, kernel: str, package: str | None) -> str:
        if package:
            cid = self.id("debian", "linux", package)
            obj = {"tree_name": "debian", "valid": True, "comment": f"Debian source package linux {package}",
                   "misc": {"debian_source": "linux", "debian_version": package}}
        else:  # a kernel image given by path: its source is not known
            cid = self.id("kernel", kernel)
            obj = {"comment": f"kernel image {kernel} (not a Debian package: source unknown)"}
        self.checkouts.setdefault(cid, {"id": cid, "origin": self.origin, **obj})
        return cid

    def build(self, kernel: str, info: dict) -> str:
        package = info.get("package")
        bid = self.id(kernel, package) if package else self.id(kernel)
        build = {"id": bid, "origin": self.origin, "checkout_id": self.checkout(kernel, package),
                 "architecture": ARCH, "status": "PASS",
                 "comment": f"{kernel}" + (f" (Debian {package})" if package else ""),
                 "misc": {"kernel": kernel, **({"debian_version": package} if package else {})}}
        if flavour(kernel):
            build["config_name"] = flavour(kernel)
        self.builds.append(build)
        return bid

    def kernel(self, kernel: str, info: dict) -> None:
        bid = self.build(kernel, info)
        cases, started = read_junit(self.dir / kernel / "junit.xml")
        env = {"comment": f"qemu guest ({info.get('accel') or 'accel unknown'})",
               "misc": {k: v for k, v in (("accel", info.get("accel")), ("suite", self.suite or None)) if v}}
        status, reason = info.get("status") or "unknown", info.get("reason")
        if status == "ok" and cases is None:  # as vm/report.py's merged reports say it
            status, reason = "error", "no readable junit.xml from the guest"
        run_id = self.id(self.run, kernel)
        run = {"id": run_id, "build_id": bid, "origin": self.origin, "path": PATH_ROOT,
               "status": RUN_STATUS.get(status, "MISS"), "environment": env,
               "comment": f"the suite on {kernel}: {status}" + (f": {reason}" if reason else ""),
               "misc": {"kernel_status": status, **({"reason": reason} if reason else {}),
                        **{k: info[k] for k in ("boot_s", "wall_s", "init_s", "retried") if info.get(k) is not None}}}
        if started or self.suite.get("started"):
            run["start_time"] = started or self.suite["started"]
        if info.get("wall_s") is not None:
            run["duration"] = info["wall_s"]
        error_txt = self.dir / kernel / "error.txt"
        if error_txt.exists():
            run.update(_excerpt(error_txt.read_text(errors="replace")))
        self.tests.append(run)
        ids = {}
        for nodeid, case in (cases or {}).items():
            ids[nodeid] = self.case(run_id, bid, nodeid, case, env)
        self.crashes(info, run, bid, ids)

    def case(self, run_id: str, bid: str, nodeid: str, case: dict, env: dict) -> str:
        tid = f"{run_id}:{nodeid}"
        message = PREFIX_RE.sub("", case["message"] or "")
        test = {"id": tid, "build_id": bid, "origin": self.origin, "path": test_path(nodeid),
                "status": STATUS[case["status"]], "duration": case["time"], "environment": env,
                "misc": {"nodeid": nodeid, "outcome": case["status"], **({"message": message} if message else {})}}
        if case["status"] in ("FAIL", "ERROR"):
            test.update(_excerpt(case["text"] or message))
        if case["status"] == "XFAIL" and (case["message"] or "").lstrip().startswith("[NOTRUN]"):
            # run=false: the case would crash the kernel, so it did not run:
            # no verdict from this run, only the expectation.
            test["status"] = "SKIP"
            test["misc"]["not_run"] = True
        self.tests.append(test)
        if case["status"] in ("XFAIL", "XPASS") and message:
            self.known(tid, bid, test, message)
        if case["attempts"] > 1:
            self.reruns(test, case["attempts"])
        return tid

    def reruns(self, test: dict, attempts: int) -> None:
        """--rerun-failures: the attempts before the last one failed (a FLAKY
        case's), or ended as the last did (pytest reruns what it counts as
        failed). Each is a test run of its own on the same path and build:
        KCIDB keeps every run of a test, so a FLAKY case shows as a FAIL and a
        PASS, never as a pass alone. (junit.xml has the last attempt's text.)"""
        test["misc"]["attempts"] = attempts
        outcome = test["misc"]["outcome"]
        status, outcome = ("FAIL", "FAIL") if outcome == "FLAKY" else (test["status"], outcome)
        for n in range(1, attempts):
            self.tests.append({
                **{k: test[k] for k in ("build_id", "origin", "path", "environment")},
                "id": f"{test['id']}:attempt{n}", "status": status,
                "misc": {"nodeid": test["misc"]["nodeid"], "outcome": outcome, "attempt": n, "attempts": attempts,
                         "message": f"attempt {n} of {attempts} (its text is in pytest's output, "
                                    "not in junit.xml)"}})

    def known(self, tid: str, bid: str, test: dict, message: str) -> None:
        """The defect an XFAIL/XPASS names: an issue, and an incident that
        says whether this test shows it."""
        m = KNOWN_RE.search(message)
        reason = m.group("reason") if m else message
        ref = m.group("ref") if m else None
        iid = self.id("defect", _hash(f"{reason}\0{ref or ''}"))
        if iid not in self.issues:
            misc = {k: m.group(k) for k in ("ref", "evidence", "expires") if m and m.group(k)}
            self.issues[iid] = {"id": iid, "version": 1, "origin": self.origin, "comment": reason,
                                "culprit": {"code": True, "tool": False, "harness": False},
                                **({"report_url": ref} if ref and re.match(r"https?://\S+$", ref) else {}),
                                "misc": {"kind": "known defect", **misc}}
        test["misc"]["issue_id"] = iid
        present = {"XFAIL": True, "XPASS": False}[test["misc"]["outcome"]]
        incident = {"id": f"{tid}:{iid.split(':', 1)[1]}", "origin": self.origin, "issue_id": iid, "issue_version": 1,
                    "build_id": bid, "test_id": tid}
        if test.get("misc", {}).get("not_run"):
            incident["comment"] = "known defect: not run (it would crash or wedge the kernel)"
        elif present:
            incident.update(present=True, comment="known defect: failed the way the expectation says")
        else:
            incident.update(present=False, comment="known defect fixed: passed; the expectation is out of date")
        self.incidents.append(incident)

    def crashes(self, info: dict, run: dict, bid: str, ids: dict[str, str]) -> None:
        """Kernel complaints on the console (vm/crash.py, in summary.json as
        "crashes", or its first as "crash"): an issue per fingerprint, an
        incident on the run and on every test it is blamed on."""
        found = info.get("crashes") or ([info["crash"]] if info.get("crash") else [])
        for c in found:
            fp = c.get("fingerprint") or _hash(c.get("title") or json.dumps(c, sort_keys=True))
            iid = self.id("crash", fp)
            self.issues.setdefault(iid, {
                "id": iid, "version": 1, "origin": self.origin,
                "comment": c.get("signature") or c.get("title") or "kernel complaint",
                "culprit": {"code": True, "tool": False, "harness": False},
                "misc": {"kind": c.get("kind"), "fingerprint": fp, "title": c.get("title")}})
            blamed = [t for t in c.get("tests") or [] if t]
            run["misc"].setdefault("crashes", []).append(
                {k: c[k] for k in ("kind", "title", "fingerprint", "tests", "after") if c.get(k) is not None})
            for tid in [run["id"], *(ids[t] for t in blamed if t in ids)]:
                self.incidents.append({
                    "id": f"{tid}:{iid.split(':', 1)[1]}", "origin": self.origin, "issue_id": iid,
                    "issue_version": 1, "build_id": bid, "test_id": tid, "present": True,
                    "comment": ("kernel complaint during this test" if tid != run["id"] else
                                "kernel complaint during the run" + (f", blamed on {', '.join(blamed)}" if blamed else ""))})


def _latest_v5():
    """The newest v5 minor this kcidb-io knows (the format written is v5's)."""
    versions = [v for v in vars(kcidb_io.schema).values()
                if isinstance(v, type) and issubclass(v, kcidb_io.schema.VA) and v is not kcidb_io.schema.VA
                and v.major == 5]
    return max(versions, key=lambda v: v.minor)


SCHEMA = _latest_v5()


def build(results_dir: Path, origin: str = ORIGIN) -> dict:
    if not re.fullmatch(r"[a-z0-9_]+", origin):
        raise Error(f"origin {origin!r}: KCIDB allows lowercase letters, digits and '_' only")
    results_dir = Path(results_dir)
    data = Report(read_summary(results_dir), results_dir, origin).data()
    SCHEMA.validate_exactly(data)  # never write what kcidb would refuse
    return data


def write(results_dir: Path, out: Path | None = None, origin: str = ORIGIN) -> Path:
    """Write results_dir's KCIDB JSON to out (default results_dir/kcidb.json)."""
    data = build(results_dir, origin)
    out = Path(out) if out else Path(results_dir) / "kcidb.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=1) + "\n")
    os.replace(tmp, out)  # a reader never sees half a file
    return out


def _usage(parser, message):
    print(f"{parser.prog}: {message}", file=sys.stderr)
    sys.exit(errors.USAGE)


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m vm kcidb",
                                description="a VM run's results as KCIDB v5 JSON (validated with kcidb-io)")
    p.add_argument("results_dir", metavar="RESULTS_DIR", type=Path)
    p.add_argument("-o", "--output", metavar="FILE", type=Path, help="default: RESULTS_DIR/kcidb.json")
    p.add_argument("--origin", default=ORIGIN, help=f"the submitting CI system's name (default {ORIGIN})")
    p.error = lambda message: _usage(p, message)
    opts = p.parse_args(argv)
    try:
        out = write(opts.results_dir, opts.output, opts.origin)
    except errors.RunnerError as e:
        print(f"vm kcidb: {e}", file=sys.stderr)
        return e.exit_code
    print(f"vm kcidb: wrote {out}")
    return errors.OK
