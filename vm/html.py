"""The test x kernel matrix of a VM run as one self-contained HTML page
(results/matrix.html): kernels as columns, tests grouped by suite directory,
a coloured cell per result, a status filter also settable from the URL
(matrix.html#status=FAIL,ERROR), and a cell's failure text, skip reason,
duration and attributed crash on click (matrix.html#kernel=K&test=NODEID).

Everything the page shows comes from the results directory: summary.json,
each kernel's junit.xml (failure text, durations) and, for a kernel that is
not "ok", the console excerpt of its error.txt (else the end of console.log).
The page loads nothing: CSS and JS are inlined, so it works from file://."""
from __future__ import annotations

import argparse
import html
import json
import re
import sys
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

from . import errors, report

HERE = Path(__file__).parent
# Column order of the statuses; any other status a summary carries (a
# newer runner's) is shown after these with a neutral colour.
ORDER = ["FAIL", "ERROR", "XPASS", "FLAKY", "PASS", "XFAIL", "SKIP", "missing"]
MISSING = "missing"
CONSOLE_LINES = 60


def write(results_dir: Path, out: Path | None = None) -> Path:
    """Write the matrix of results_dir (default results_dir/matrix.html)."""
    results_dir = Path(results_dir)
    summary = load(results_dir)
    out = Path(out) if out else results_dir / "matrix.html"
    page = render(summary, results_dir)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(page, encoding="utf-8")
    tmp.replace(out)  # a reader never sees half a page
    return out


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # a usage error is exit 4 here, as for the runner
        raise errors.UsageError(message)


def main(argv: list[str]) -> int:
    """python -m vm html RESULTS_DIR [-o FILE]"""
    p = _Parser(prog="python -m vm html", description="Write a VM run's test x kernel matrix as one HTML page.")
    p.add_argument("results_dir", type=Path, help="a VM runner results directory (holds summary.json)")
    p.add_argument("-o", "--output", type=Path, metavar="FILE",
                   help="the page to write (default RESULTS_DIR/matrix.html)")
    try:
        opts = p.parse_args(argv)
        out = write(opts.results_dir, opts.output)
    except errors.RunnerError as e:
        print(f"vm html: {e}", file=sys.stderr)
        return e.exit_code
    print(f"vm: wrote {out}")
    return errors.OK


def load(results_dir: Path) -> dict:
    path = results_dir / "summary.json"
    if not results_dir.is_dir():
        raise errors.UsageError(f"{results_dir}: no such results directory")
    try:
        summary = json.loads(path.read_text())
        summary["kernels"], summary["tests"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise errors.UsageError(f"{path}: not a VM runner summary ({e})") from None
    return summary


def junit_details(path: Path) -> dict[str, dict]:
    """{nodeid: {"status", "message", "text", "time", "wall"}}; when a node
    id has several testcases (a teardown error after a failure) the worst
    is kept, as report.parse_junit does."""
    try:
        cases = ET.parse(path).getroot().iter("testcase")
    except (OSError, ET.ParseError):
        return {}
    out: dict[str, dict] = {}
    for tc in cases:
        nid, status = report.nodeid(tc), report.outcome(tc)
        if nid in out and report.RANK[status] < report.RANK[out[nid]["status"]]:
            continue
        el = next((e for e in tc if e.tag in ("failure", "error", "skipped")), None)
        wall = tc.find("properties/property[@name='harness_wall_s']")
        out[nid] = {"status": status,
                    "message": el.get("message", "") if el is not None else "",
                    "text": (el.text or "").strip() if el is not None else "",
                    "time": tc.get("time"), "wall": wall.get("value") if wall is not None else None}
    return out


def console_excerpt(kernel_dir: Path) -> str:
    """The runner's console excerpt (error.txt) or the end of console.log."""
    try:
        err = (kernel_dir / "error.txt").read_text(errors="replace")
        if "--- console excerpt ---" in err:
            return err.split("--- console excerpt ---", 1)[1].strip("\n")
    except OSError:
        pass
    try:
        lines = (kernel_dir / "console.log").read_text(errors="replace").splitlines()
    except OSError:
        return ""
    return "\n".join(lines[-CONSOLE_LINES:])


def complaints(k: dict) -> list[dict]:
    """A kernel's crashes: summary.json's "crashes", else its one "crash"."""
    return k.get("crashes") or ([k["crash"]] if k.get("crash") else [])


def blamed(k: dict) -> set[str]:
    """The tests a crash is attributed to: running when it began, or the one
    it came after when none was (vm/crash.py)."""
    return {nid for c in complaints(k) for nid in [*(c.get("tests") or []), c.get("after")] if nid}


def group_of(nid: str) -> str:
    """The suite directory of a node id ("suites/nullfs")."""
    path = nid.split("::", 1)[0]
    return path.rsplit("/", 1)[0] if "/" in path else "(top level)"


def statuses_in(tests: dict[str, dict], kernels: list[str]) -> list[str]:
    seen = {res.get(k, MISSING) for res in tests.values() for k in kernels}
    return [s for s in ORDER if s in seen] + sorted(seen - set(ORDER))


def _e(value) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _counts(counter: Counter, statuses: list[str]) -> str:
    return "".join(f'<span class="n s-{_e(s)}" title="{counter[s]} {_e(s)}">{counter[s]}</span>'
                   for s in statuses if counter[s])


def _kernel_th(i: int, name: str, k: dict, counts: str) -> str:
    status = k.get("status") or "?"
    # "7.3.4" large, "+deb13-cloud-amd64" (or "@<image hash>") small beneath
    version, flavour = re.match(r"([^+@]*)(.*)", name).groups()
    lines = [f'<div class="kname">{_e(version)}</div><div class="meta">{_e(flavour)}</div>',
             f'<div><span class="kst k-{_e(status)}">{_e(status)}</span> {counts}</div>',
             f'<div class="meta">{" · ".join(_e(k[f]) for f in ("package", "accel") if k.get(f))}</div>']
    if status != "ok":
        lines.append(f'<div class="reason" title="{_e(k.get("reason"))}">{_e(k.get("reason"))}</div>')
    for c in complaints(k):
        lines.append(f'<div class="crash" title="{_e(c.get("title"))}">⚡ {_e(c.get("signature") or c.get("title"))}</div>')
    cls = "k" if status == "ok" else "k bad"
    return f'<th class="{cls}" data-k="{i}" tabindex="0">{"".join(lines)}</th>'


def _group(name: str, rows: list[tuple[int, str]], tests: dict, kernels: list[str],
           blamed_on: list[set], statuses: list[str]) -> str:
    per_kernel = [Counter(tests[nid].get(k, MISSING) for _, nid in rows) for k in kernels]
    head = (f'<tr class="g"><th class="t"><button class="tog" aria-expanded="true">{_e(name)}</button>'
            f' <span class="gn">{len(rows)}</span></th>'
            + "".join(f"<td>{_counts(c, statuses)}</td>" for c in per_kernel) + "</tr>")
    body, file = [], None
    for i, nid in rows:
        short = nid[len(name) + 1:] if nid.startswith(name + "/") else nid
        if short.split("::", 1)[0] != file:  # a row naming the file, then its tests by name
            file = short.split("::", 1)[0]
            body.append(f'<tr class="f"><th class="t">{_e(file)}</th><td colspan="{len(kernels)}"></td></tr>')
        short = short.split("::", 1)[-1]
        cells = []
        for j, k in enumerate(kernels):
            s = tests[nid].get(k, MISSING)
            x = " x" if nid in blamed_on[j] else ""
            cells.append(f'<td class="c s-{_e(s)}{x}">{"–" if s == MISSING else _e(s)}</td>')
        body.append(f'<tr data-t="{i}"><th class="t" title="{_e(nid)}">{_e(short)}</th>{"".join(cells)}</tr>')
    return f'<tbody class="grp">{head}{"".join(body)}</tbody>'


def _json(data) -> str:
    """JSON inside <script>: no "</script>", "<!--" or "&" can appear."""
    return (json.dumps(data, separators=(",", ":"))
            .replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026"))


def _data(summary: dict, results_dir: Path, kernels: list[str], nids: list[str]) -> dict:
    """What a click shows: per cell its junit details (strings kept once,
    skip reasons repeat hundreds of times), per kernel its reason, crash
    and console excerpt."""
    strings: dict[str, int] = {}
    ref = lambda s: strings.setdefault(s or "", len(strings))
    cells = {}
    for j, k in enumerate(kernels):
        # summary.json's time and message where junit.xml has no such test
        details = {**(summary.get("details") or {}).get(k, {}),
                   **junit_details(results_dir / k / "junit.xml")}
        for i, nid in enumerate(nids):
            d = details.get(nid)
            if d:
                cells[f"{i},{j}"] = [ref(d.get("message")), ref(d.get("text")), d.get("time"),
                                     d.get("wall")]
    info = []
    for k in kernels:
        kd = summary["kernels"][k]
        bad = kd.get("status") != "ok" or complaints(kd)
        info.append({"name": k, "summary": kd, "crashes": complaints(kd),
                     "console": console_excerpt(results_dir / k) if bad else ""})
    return {"tests": nids, "kernels": info, "cells": cells, "strings": list(strings)}


def _run_line(run: dict) -> str:
    if not run:
        return ""
    commit = (run.get("commit") or "?")[:12] + (" (local changes)" if run.get("dirty") else "")
    cmd = " ".join(run.get("command") or [])
    return (f'<p class="run">{_e(run.get("started"))} · {_e(run.get("wall_s"))} s · commit {_e(commit)}'
            f' · <code>{_e(cmd)}</code></p>')


def render(summary: dict, results_dir: Path) -> str:
    kernels = list(summary["kernels"])
    tests = {nid: dict(res) for nid, res in summary["tests"].items()}
    blamed_on = [blamed(summary["kernels"][k]) for k in kernels]
    for nid in set().union(*blamed_on) - set(tests):
        tests[nid] = {}  # crashed before it reported: still the row to blame
    nids = sorted(tests, key=lambda n: (group_of(n), n))
    statuses = statuses_in(tests, kernels)
    groups: dict[str, list[tuple[int, str]]] = {}
    for i, nid in enumerate(nids):
        groups.setdefault(group_of(nid), []).append((i, nid))
    totals = [Counter(res.get(k, MISSING) for res in tests.values()) for k in kernels]
    ths = "".join(_kernel_th(j, k, summary["kernels"][k], _counts(totals[j], statuses))
                  for j, k in enumerate(kernels))
    boxes = "".join(f'<label class="s-{_e(s)}"><input type="checkbox" value="{_e(s)}" checked> {_e(s)}</label>'
                    for s in statuses)
    if any(blamed_on):
        boxes += '<label class="x"><input type="checkbox" value="crash" checked> ⚡ crash</label>'
    body = "".join(_group(g, rows, tests, kernels, blamed_on, statuses) for g, rows in groups.items())
    size = f"{len(nids)} test{'s' * (len(nids) != 1)} × {len(kernels)} kernel{'s' * (len(kernels) != 1)}"
    css = (HERE / "matrix.css").read_text()
    js = (HERE / "matrix.js").read_text()
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>mntns-conformance: {size}</title>
<style>{css}</style></head><body>
<header><h1>mntns-conformance: {size}</h1>{_run_line(summary.get("run") or {})}
<form id="filter">show rows with: {boxes}
<button type="button" data-preset="problems">problems only</button>
<button type="button" data-preset="all">all</button>
<input type="search" id="q" placeholder="test id contains…">
<button type="button" id="collapse">collapse all</button> <span id="shown"></span></form></header>
<table id="m"><thead><tr><th class="t">test \\ kernel</th>{ths}</tr></thead>{body}</table>
<aside id="detail" hidden><button type="button" id="close" title="close">×</button><div id="dbody"></div></aside>
<script type="application/json" id="data">{_json(_data(summary, results_dir, kernels, nids))}</script>
<script>{js}</script>
</body></html>
"""
