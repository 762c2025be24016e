"""test x kernel matrix from each kernel's junit.xml -> summary.json/.md."""
from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

# Merge order when one node id shows up more than once: worst wins.
RANK = {"PASS": 0, "XFAIL": 1, "SKIP": 2, "FAIL": 3, "ERROR": 4}


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
    if tc.find("failure") is not None:
        return "FAIL"
    sk = tc.find("skipped")
    if sk is not None:
        return "XFAIL" if sk.get("type") == "pytest.xfail" else "SKIP"
    return "PASS"


def parse_junit(path: Path) -> dict[str, str]:
    out: dict[str, str] = {}
    for tc in ET.parse(path).getroot().iter("testcase"):
        nid, o = nodeid(tc), outcome(tc)
        if RANK[o] >= RANK.get(out.get(nid, "PASS"), 0):
            out[nid] = o
    return out


def summarize(runs: dict[str, dict]) -> dict:
    """runs: {release: {"status","accel","boot_s","wall_s","dir"}} -> summary."""
    kernels, tests = {}, {}
    for rel, run in runs.items():
        d = Path(run["dir"]) if run.get("dir") else None
        results = {}
        if d and (d / "junit.xml").exists():
            try:
                results = parse_junit(d / "junit.xml")
            except ET.ParseError:
                results = {}
        boot = {}
        if d and (d / "boot.json").exists():
            try:
                boot = json.loads((d / "boot.json").read_text())
            except ValueError:
                pass
        count = lambda *o: sum(1 for v in results.values() if v in o)
        kernels[rel] = {
            "status": run["status"],
            "passed": count("PASS"), "failed": count("FAIL"),
            "skipped": count("SKIP", "XFAIL"), "errors": count("ERROR"),
            "boot_s": run.get("boot_s"), "wall_s": run.get("wall_s"),
            "accel": run.get("accel"), "nullfs_pivot_root": boot.get("nullfs_pivot_root"),
        }
        for nid, o in results.items():
            tests.setdefault(nid, {})[rel] = o
    return {"kernels": kernels, "tests": dict(sorted(tests.items()))}


def exit_code(summary: dict) -> int:
    bad = any(k["status"] != "ok" or k["failed"] or k["errors"] for k in summary["kernels"].values())
    return 1 if bad else 0


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    return out + ["| " + " | ".join(r) + " |" for r in rows]


def markdown(summary: dict, reasons: dict[str, str] | None = None) -> str:
    ks = summary["kernels"]
    rels = list(ks)
    fmt = lambda v: "-" if v is None else json.dumps(v) if isinstance(v, bool) else str(v)
    lines = ["# VM run summary", "", "## Kernels", ""]
    lines += _table(["kernel", "status", "passed", "failed", "skipped", "errors", "boot s",
                     "wall s", "accel", "nullfs pivot_root"],
                    [[r, ks[r]["status"], *(fmt(ks[r][f]) for f in (
                        "passed", "failed", "skipped", "errors", "boot_s", "wall_s", "accel",
                        "nullfs_pivot_root"))] for r in rels])
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
                   f"skip={k['skipped']} err={k['errors']} boot={k['boot_s']}s "
                   f"wall={k['wall_s']}s accel={k['accel']} nullfs_pivot_root={k['nullfs_pivot_root']}")
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
