"""test x kernel matrix from each kernel's junit.xml -> summary.json/.md,
and the kernels' junit.xml / ktap.txt merged into one file each."""
from __future__ import annotations

import copy
import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

from . import crash, errors

# Merge order when one node id shows up more than once: worst wins.
# FLAKY: failed, then passed on a rerun (--rerun-failures N, harness/isolation.py).
RANK = {"PASS": 0, "XFAIL": 1, "SKIP": 2, "FLAKY": 3, "XPASS": 4, "FAIL": 5, "ERROR": 6}


def nodeid(tc: ET.Element) -> str:
    """Rebuild pytest's node id (xunit1 junit carries file=)."""
    cls, name, file = tc.get("classname", ""), tc.get("name", ""), tc.get("file")
    if file and file.endswith(".py"):
        mod = file[:-3].replace("/", ".")
        rest = cls[len(mod):].lstrip(".") if cls.startswith(mod) else ""
        return "::".join([file, *filter(None, rest.split(".")), name])
    return f"{cls.replace('.', '/')}.py::{name}" if cls else name


def outcome(tc: ET.Element) -> str:
    if tc.find("error") is not None:
        return "ERROR"
    failure = tc.find("failure")
    if failure is not None:
        # A strict expected failure that passed: the known defect is fixed
        # (update the expectations), not a regression -- but still not green.
        return "XPASS" if (failure.get("message") or "").startswith("[XPASS(strict)]") else "FAIL"
    sk = tc.find("skipped")
    if sk is not None:
        return "XFAIL" if sk.get("type") == "pytest.xfail" else "SKIP"
    return "FLAKY" if attempts(tc) > 1 else "PASS"


def attempts(tc: ET.Element) -> int:
    """How many times the test ran (harness/isolation.py records it when a
    rerun was needed)."""
    for p in tc.iter("property"):
        if p.get("name") == "attempts":
            return int(p.get("value") or 1)
    return 1


def message(tc: ET.Element) -> str | None:
    """The failure, error or skip/xfail reason of a testcase (its first line
    as pytest put it in message=), None for a pass."""
    for tag in ("error", "failure", "skipped"):
        el = tc.find(tag)
        if el is not None:
            text = (el.get("message") or (el.text or "").strip().split("\n")[0]) or tag
            return text + (f" (all {n} attempts)" if (n := attempts(tc)) > 1 else "")
    return f"passed on attempt {n}" if (n := attempts(tc)) > 1 else None


def parse_junit_details(path: Path) -> dict[str, dict]:
    """{nodeid: {"status", "time" (s), "message"}}; a node id reported more
    than once (an error in teardown after a failure) keeps its worst status
    and that one's message, and the sum of the times."""
    out: dict[str, dict] = {}
    for tc in ET.parse(path).getroot().iter("testcase"):
        nid, o = nodeid(tc), outcome(tc)
        t = float(tc.get("time") or 0)
        prev = out.get(nid)
        if prev is None or RANK[o] >= RANK[prev["status"]]:
            out[nid] = {"status": o, "time": round(t + (prev["time"] if prev else 0), 3),
                        "message": message(tc)}
        else:
            prev["time"] = round(prev["time"] + t, 3)
    return out


def parse_junit(path: Path) -> dict[str, str]:
    return {nid: d["status"] for nid, d in parse_junit_details(path).items()}


def _complaints(d: Path | None) -> list[dict]:
    try:
        return crash.complaints((d / "console.log").read_text(errors="replace"))
    except (OSError, TypeError):
        return []


def summarize(runs: dict[str, dict]) -> dict:
    """runs: {kernel: {"status", "reason", "accel", "accel_reason", "retried",
    "init_s", "boot_s", "wall_s", "dir"}} -> summary (missing keys: None)."""
    kernels, tests, per_test = {}, {}, {}
    for rel, run in runs.items():
        d = Path(run["dir"]) if run.get("dir") else None
        details = {}
        if d and (d / "junit.xml").exists():
            try:
                details = parse_junit_details(d / "junit.xml")
            except ET.ParseError:
                details = {}
        results = {nid: v["status"] for nid, v in details.items()}
        boot = {}
        if d and (d / "boot.json").exists():
            try:
                boot = json.loads((d / "boot.json").read_text())
            except ValueError:
                pass
        complaints = _complaints(d)
        count = lambda *o: sum(1 for v in results.values() if v in o)
        kernels[rel] = {
            "status": run["status"],
            "passed": count("PASS"), "failed": count("FAIL"),
            "skipped": count("SKIP", "XFAIL"), "errors": count("ERROR"), "xpassed": count("XPASS"),
            "flaky": count("FLAKY"),
            "boot_s": run.get("boot_s"), "wall_s": run.get("wall_s"),
            "accel": run.get("accel"), "nullfs_pivot_root": boot.get("nullfs_pivot_root"),
            "reason": run.get("reason") or None, "accel_reason": run.get("accel_reason"),
            "init_s": run.get("init_s"), "retried": run.get("retried"),
            "package": run.get("package"),
            # the first kernel complaint on the console and every distinct one
            # (vm/crash.py): kind, title, fingerprint, the tests it is blamed on
            "crash": complaints[0] if complaints else None,
            "crashes": complaints,
        }
        for nid, o in results.items():
            tests.setdefault(nid, {})[rel] = o
        per_test[rel] = {nid: {"time": v["time"], **({"message": v["message"]} if v["message"] else {})}
                         for nid, v in sorted(details.items())}
    # tests: {nodeid: {kernel: status}}; details: {kernel: {nodeid: {time,
    # message}}}, the message for every non-PASS (failure text, skip reason)
    return {"kernels": kernels, "tests": dict(sorted(tests.items())), "details": per_test}


def exit_code(summary: dict) -> int:
    """vm/errors.py's codes.  A crashed or hung kernel outranks failed tests
    (it is the stronger verdict on the kernel, and bisect must see it);
    failed tests outrank an untested kernel (infra), which is no verdict."""
    ks = summary["kernels"].values()
    if any(k["status"] == "error" for k in ks):
        return errors.KERNEL_CRASHED
    # Only a kernel that ran is judged by its tests: an untested (infra) or
    # interrupted one may hold a collection ERROR in its junit.xml, and
    # that is no verdict on the kernel (git bisect must see 125, not 1).
    if any(k.get("failed") or k.get("errors") or k.get("xpassed") for k in ks if k["status"] == "ok"):
        return errors.TESTS_FAILED
    if any(k["status"] == "infra" for k in ks):
        return errors.INFRA
    return errors.OK


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    return out + ["| " + " | ".join(r) + " |" for r in rows]


def markdown(summary: dict, reasons: dict[str, str] | None = None) -> str:
    ks = summary["kernels"]
    rels = list(ks)
    fmt = lambda v: "-" if v is None else json.dumps(v) if isinstance(v, bool) else str(v)
    lines = ["# VM run summary", "", "## Kernels", ""]
    lines += _table(["kernel", "status", "passed", "failed", "xpassed", "skipped", "errors",
                     "boot s", "wall s", "accel", "nullfs pivot_root"],
                    [[r, ks[r]["status"], *(fmt(ks[r].get(f)) for f in (
                        "passed", "failed", "xpassed", "skipped", "errors", "boot_s", "wall_s",
                        "accel", "nullfs_pivot_root"))] for r in rels])
    why = [f"- **{r}**: {w}" for r, w in (reasons or {}).items() if w]
    if why:
        lines += ["", *why]
    lines += ["", "## Tests", ""]
    lines += _table(["test", *rels], [[f"`{nid}`", *(res.get(r, "-") for r in rels)]
                                      for nid, res in summary["tests"].items()])
    return "\n".join(lines) + "\n"


def text(summary: dict) -> str:
    """Terminal version: per-kernel line + a plain matrix."""
    ks, tests = summary["kernels"], summary["tests"]
    rels = list(ks)
    out = []
    for r, k in ks.items():
        out.append(f"{r:34} {k['status']:5} pass={k['passed']} fail={k['failed']} "
                   f"xpass={k.get('xpassed', 0)} flaky={k.get('flaky', 0)} skip={k['skipped']} err={k['errors']} boot={k['boot_s']}s "
                   f"wall={k['wall_s']}s accel={k['accel']} nullfs_pivot_root={k['nullfs_pivot_root']}")
        for c in k.get("crashes") or []:
            out.append(f"{'':34} kernel complaint: {crash.describe(c)}")
    if tests:
        w = max(len(n) for n in tests)
        cols = [f"k{i}" for i in range(len(rels))]
        out += [""] + [f"  k{i} = {r}" for i, r in enumerate(rels)]
        out.append(f"{'test':{w}} " + " ".join(f"{c:6}" for c in cols))
        for nid, res in tests.items():
            out.append(f"{nid:{w}} " + " ".join(f"{res.get(r, '-'):6}" for r in rels))
    return "\n".join(out)


def feature_matrix(results_dir: Path, rels) -> dict[str, dict]:
    """{release: {feature: true|false|"unknown: ..."}} from each guest's
    features.json (the suite's probe results on that kernel)."""
    out = {}
    for rel in rels:
        path = results_dir / rel / "features.json"
        if path.exists():
            out[rel] = json.loads(path.read_text())["features"]
    return out


def features_markdown(matrix: dict[str, dict]) -> list[str]:
    if not matrix:
        return []
    rels = list(matrix)
    names = sorted({f for feats in matrix.values() for f in feats})
    show = lambda v: {True: "yes", False: "no"}.get(v, str(v))
    return ["", "## Features (probe results)", ""] + _table(
        ["feature", *rels], [[f, *(show(matrix[r].get(f, "-")) for r in rels)] for f in names])


def write(summary: dict, results_dir: Path, reasons: dict[str, str] | None = None) -> None:
    results_dir.mkdir(parents=True, exist_ok=True)
    (results_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    matrix = feature_matrix(results_dir, summary["kernels"])
    (results_dir / "features.json").write_text(json.dumps(matrix, indent=2) + "\n")
    md = markdown(summary, reasons).rstrip("\n").split("\n") + features_markdown(matrix)
    (results_dir / "summary.md").write_text("\n".join(md) + "\n")


# --- merged reports (--junitxml PATH / --ktap PATH with several kernels) ---

def class_prefix(kernel: str) -> str:
    """The kernel name as ONE classname component: CI tools read the dots of
    a classname as package levels (Jenkins: package = up to the last dot,
    others at every dot), so "7.3.4+deb13-cloud-amd64" becomes
    "7_3_4+deb13-cloud-amd64" and the release is not split into levels."""
    return re.sub(r"[^A-Za-z0-9_+@-]", "_", kernel)


def _kernel_case(kernel: str, status: str, reason: str) -> ET.Element:
    """A testcase standing for the kernel itself, failed with the reason."""
    tc = ET.Element("testcase", classname=class_prefix(kernel), name="kernel", time="0")
    kind = {"error": "kernel crashed or hung", "infra": "kernel could not be tested",
            "interrupted": "run interrupted"}.get(status, status)
    ET.SubElement(tc, "error", type=kind, message=reason).text = reason
    return tc


def _cases(results: Path | None) -> list[ET.Element] | None:
    """The testcases of a kernel's junit.xml; None if there is none to read."""
    try:
        return list(ET.parse(results / "junit.xml").getroot().iter("testcase"))
    except (OSError, TypeError, ET.ParseError):
        return None


def _suite(kernel: str, results: Path | None, status: str, reason: str) -> ET.Element:
    cases = _cases(results)
    if cases is None and status == "ok":  # the runner should have made this an error
        status, reason = "error", "no readable junit.xml from the guest"
    suite = ET.Element("testsuite", name=kernel)
    props = ET.SubElement(suite, "properties")
    ET.SubElement(props, "property", name="kernel.status", value=status)
    for tc in cases or []:
        tc = copy.deepcopy(tc)
        tc.set("classname", ".".join(filter(None, [class_prefix(kernel), tc.get("classname")])))
        suite.append(tc)
    if status != "ok":
        suite.append(_kernel_case(kernel, status, reason))
    tcs = suite.findall("testcase")
    count = lambda tag: str(sum(1 for tc in tcs if tc.find(tag) is not None))
    suite.attrib.update(tests=str(len(tcs)), failures=count("failure"), errors=count("error"),
                        skipped=count("skipped"),
                        time=f"{sum(float(tc.get('time') or 0) for tc in tcs):.3f}")
    return suite


def merge_junit(runs: dict[str, Path], statuses: dict[str, tuple[str, str]], out: Path) -> None:
    """One JUnit XML for all kernels: a <testsuite name=KERNEL> per kernel.

    Every testcase's classname is prefixed with the kernel as one component,
    class_prefix(kernel) + ".", e.g. "7_3_4+deb13-cloud-amd64.suites.nullfs.test_pivot":
    GitLab and Jenkins key a test by classname + name, so each kernel keeps
    its own verdict per test (unprefixed, the same test on two kernels would
    be one test with two results); the test's own package/class levels stay
    intact after the kernel, so a kernel's tests sort together.  A kernel whose status
    (statuses[kernel][0]) is not "ok" -- "error": crashed or hung, "infra":
    could not be tested -- also gets a testcase named "kernel" carrying the
    reason as an <error>, so the problem cannot pass for a green run (also
    for "interrupted", the runner's status of a kernel stopped by Ctrl-C)."""
    root = ET.Element("testsuites", name="mntns-conformance")
    for kernel in dict.fromkeys([*runs, *statuses]):
        status, reason = statuses.get(kernel, ("error", "no status recorded"))
        root.append(_suite(kernel, runs.get(kernel), status, reason))
    for attr in ("tests", "failures", "errors", "skipped"):
        root.set(attr, str(sum(int(s.get(attr)) for s in root)))
    out.parent.mkdir(parents=True, exist_ok=True)
    ET.ElementTree(root).write(out, encoding="utf-8", xml_declaration=True)


def _ktap_lines(results: Path | None) -> list[str] | None:
    try:
        return (results / "ktap.txt").read_text(errors="replace").splitlines()
    except (OSError, TypeError):
        return None


def _ktap_result(n: int, kernel: str, lines: list[str] | None, status: str, reason: str) -> str:
    """The kernel's own result line: it fails if any of its tests did (top
    level "not ok"); ERROR for a crashed/hung kernel, SKIP for one that
    could not be tested or whose run was interrupted (no verdict: git
    bisect's "skip"), both "not ok" so neither reads as a pass."""
    name = kernel.replace("#", "_")  # a description cannot hold "#"
    if status == "ok" and lines is None:
        status, reason = "error", "no ktap.txt from the guest"
    if status != "ok":
        directive = "ERROR" if status == "error" else "SKIP"
        return f"not ok {n} {name} # {directive} {' '.join(reason.split())}".rstrip()
    failed = any(l.startswith("not ok ") for l in lines)
    return f"{'not ok' if failed else 'ok'} {n} {name}"


def merge_ktap(runs: dict[str, Path], statuses: dict[str, tuple[str, str]], out: Path) -> None:
    """One KTAP v1 document (Documentation/dev-tools/ktap.rst): a subtest
    per kernel, holding that kernel's ktap.txt indented by two spaces (its
    own nesting goes deeper), then the kernel's result line."""
    kernels = list(dict.fromkeys([*runs, *statuses]))
    doc = ["KTAP version 1", f"1..{len(kernels)}"]
    for n, kernel in enumerate(kernels, 1):
        status, reason = statuses.get(kernel, ("error", "no status recorded"))
        lines = _ktap_lines(runs.get(kernel))
        doc += [f"  {l}" if l.strip() else "" for l in lines or []]
        doc.append(_ktap_result(n, kernel, lines, status, reason))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(doc) + "\n")
