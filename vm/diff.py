"""What changed between two runs: regressions, fixes, new and lost tests.

    python -m vm diff BASELINE NEW [--json FILE]
    pytest --kernel ... --baseline BASELINE      (the runner diffs itself)

BASELINE and NEW are summary.json files or the results directories holding
them. A kernel of NEW is compared with the baseline kernel of the same name,
else with the baseline's only kernel of the same series and flavour (a point
release moved: 7.3.4 -> 7.3.5 is what a gate compares).

A regression is a test that was fine and no longer is: PASS -> FAIL, ERROR,
SKIP (a probe that now says "absent" hides a whole directory) or gone;
XFAIL or SKIP -> FAIL or ERROR; and a kernel that ran before and now crashes
(error) or cannot be tested (infra). Fixed: FAIL/ERROR -> PASS, and XPASS (a
known defect no longer fails: update the expectations). A test new in NEW
that FAILs is reported as a new failure, a regression too: the gate must not
pass a red test because nobody ran it before.
"""
from __future__ import annotations

import json
import re
import sys
from pathlib import Path

from . import errors

FINE = {"PASS", "XFAIL", "SKIP"}
BROKEN = {"FAIL", "ERROR"}


def load(path: str | Path) -> dict:
    p = Path(path)
    if p.is_dir():
        p = p / "summary.json"
    try:
        s = json.loads(p.read_text())
        s["kernels"], s["tests"]  # noqa: B018 -- the two keys every summary has
        return s
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise errors.UsageError(f"{path}: not a summary.json of the VM runner ({e})") from None


def _series(release: str) -> str:
    m = re.match(r"(\d+\.\d+)(?:\.\d+)?(.*?)-?([a-z][\w-]*)?$", release)
    return f"{m.group(1)}-{m.group(3) or ''}" if m else release


def pair_kernels(old: dict, new: dict) -> dict[str, str | None]:
    """{new kernel: its baseline kernel, or None}."""
    out = {}
    for k in new:
        if k in old:
            out[k] = k
            continue
        same = [o for o in old if _series(o) == _series(k)]
        out[k] = same[0] if len(same) == 1 else None
    return out


def _change(before: str | None, after: str | None) -> str | None:
    if before == after:
        return None
    if before is None:
        return "new failure" if after in BROKEN else "new"
    if after is None:
        return "regression" if before in FINE - {"SKIP"} else "gone"
    if after == "FLAKY":
        return "flaky"  # passed on a rerun: said, not a regression
    if after == "XPASS" or (before in BROKEN and after == "PASS"):
        return "fixed"
    if before == "PASS" and after in BROKEN | {"SKIP"}:
        return "regression"
    if before in FINE and after in BROKEN:
        return "regression"
    return "changed"


def compare(old: dict, new: dict) -> dict:
    pairs = pair_kernels(old["kernels"], new["kernels"])
    kernels, tests = [], []
    for k, base in pairs.items():
        now = new["kernels"][k]["status"]
        was = old["kernels"][base]["status"] if base else None
        if base and was == "ok" and now != "ok":
            kernels.append({"kernel": k, "baseline": base, "before": was, "after": now,
                            "change": "regression", "reason": new["kernels"][k].get("reason")})
        elif base is None:
            kernels.append({"kernel": k, "baseline": None, "before": None, "after": now,
                            "change": "no baseline"})
        if not base or now != "ok":
            continue  # a kernel that did not run says nothing about its tests
        for nid in sorted(set(old["tests"]) | set(new["tests"])):
            before = old["tests"].get(nid, {}).get(base)
            after = new["tests"].get(nid, {}).get(k)
            change = _change(before, after)
            if change and change not in ("new", "changed"):
                tests.append({"test": nid, "kernel": k, "baseline": base,
                              "before": before, "after": after, "change": change})
    regressions = [c for c in kernels + tests if c["change"] in ("regression", "new failure")]
    return {"kernels": kernels, "tests": tests, "regressions": len(regressions),
            "fixed": sum(1 for c in tests if c["change"] == "fixed")}


def exit_code(d: dict) -> int:
    """A kernel newly crashing is 6, newly untestable 125, any other
    regression 1; no regression is 0 whatever still fails as before."""
    ks = [c for c in d["kernels"] if c["change"] == "regression"]
    if any(c["after"] == "error" for c in ks):
        return errors.KERNEL_CRASHED
    if any(c["change"] in ("regression", "new failure") for c in d["tests"]):
        return errors.TESTS_FAILED
    if ks:
        return errors.INFRA
    return errors.OK


def text(d: dict) -> str:
    out = []
    for c in d["kernels"]:
        if c["change"] == "no baseline":
            out.append(f"NO BASELINE  {c['kernel']} (nothing to compare with)")
        else:
            out.append(f"REGRESSION   {c['kernel']}: kernel {c['before']} -> {c['after']}: {c['reason']}")
    for c in d["tests"]:
        label = {"regression": "REGRESSION", "new failure": "NEW FAILURE", "fixed": "FIXED",
                 "gone": "GONE", "flaky": "FLAKY"}[c["change"]]
        out.append(f"{label:12} {c['test']} on {c['kernel']}: {c['before'] or '-'} -> {c['after'] or '-'}")
    out.append(f"diff: {d['regressions']} regression(s), {d['fixed']} fixed")
    return "\n".join(out)


def main(argv: list[str]) -> int:
    import argparse
    ap = argparse.ArgumentParser(prog="python -m vm diff", description=__doc__.split("\n\n")[0])
    ap.add_argument("baseline")
    ap.add_argument("new")
    ap.add_argument("--json", metavar="FILE", help="write the differences as JSON")
    a = ap.parse_args(argv)
    try:
        d = compare(load(a.baseline), load(a.new))
    except errors.RunnerError as e:
        print(f"vm diff: {e}", file=sys.stderr)
        return e.exit_code
    print(text(d))
    if a.json:
        Path(a.json).write_text(json.dumps(d, indent=2) + "\n")
    return exit_code(d)
