"""The benchmark's report: a table for the terminal, the JSON document, and
a PNG plot of containers/s against the mount-table size."""
from __future__ import annotations

import json
from pathlib import Path

from bench.methods import FLOOR, METHODS


def ratios(rows: list[dict]) -> None:
    """ratio_to_classic of every row, against classic in the same (mounts, parallel)."""
    classic = {(r["mounts_target"], r["parallel"]): r["containers_per_s"]
               for r in rows if r["method"] == "classic"}
    for r in rows:
        base = classic.get((r["mounts_target"], r["parallel"]))
        r["ratio_to_classic"] = (round(r["containers_per_s"] / base, 2)
                                 if r["containers_per_s"] and base else None)


def _cell(r: dict) -> str:
    if r["status"] == "unavailable":
        return "unavailable"
    if r["status"] == "error":
        return "ERROR"
    cps = r["containers_per_s"]
    return f"{cps:.0f}" if cps >= 100 else f"{cps:.1f}"


def table(doc: dict) -> str:
    lines = [f"kernel {doc['kernel']}, accel {doc['accel']}, {doc['cpus']} CPU(s), "
             f"{doc['n']} containers per configuration, loop: {doc['loop']}",
             f"{'method':13} {'mounts':>6} {'P':>2} {'containers/s':>12} {'x classic':>9} "
             f"{'syscalls':>8}  end state"]
    for r in doc["results"]:
        ratio = f"{r['ratio_to_classic']:.2f}" if r["ratio_to_classic"] is not None else "-"
        sc = r["syscalls_per_container"]
        note = r["end_state"] if r["status"] == "ok" else (r["error"] or r["reason"] or "")
        lines.append(f"{r['method']:13} {r['mounts']:>6} {r['parallel']:>2} {_cell(r):>12} "
                     f"{ratio:>9} {sc if sc is not None else '-':>8}  {note}")
    return "\n".join(lines)


def write_json(doc: dict, path: str) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(doc, indent=2) + "\n")


def plot(doc: dict, path: str) -> str:
    """Write the PNG; returns the line to print (also when matplotlib is missing)."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return (f"bench: plot skipped: matplotlib is not installed "
                f"(pip install -e '.[bench]' adds it); {path} not written")
    except Exception as e:  # noqa: BLE001 - e.g. a guest CPU without numpy's baseline (x86-64-v2)
        why = " ".join(str(e).split())
        return (f"bench: plot skipped: matplotlib cannot be imported here ({why}); "
                f"plot the JSON elsewhere: python -m bench --from-json FILE --plot {path}")
    fig, ax = plt.subplots(figsize=(8, 5))
    styles = ["-", "--", ":", "-."]
    parallel = sorted({r["parallel"] for r in doc["results"]})
    for i, method in enumerate([FLOOR, *METHODS]):
        for j, p in enumerate(parallel):
            pts = sorted((r["mounts"], r["containers_per_s"]) for r in doc["results"]
                         if r["method"] == method.name and r["parallel"] == p and r["containers_per_s"])
            if pts:
                ax.plot(*zip(*pts), styles[j % len(styles)], marker="o", color=f"C{i}",
                        label=f"{method.name}, {p} creator{'s' * (p > 1)}")
    missing = sorted({r["method"] for r in doc["results"] if r["status"] == "unavailable"})
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("mounts in the creating namespace")
    ax.set_ylabel("containers / s")
    title = f"container mount set-up, kernel {doc['kernel']}, accel {doc['accel']}"
    if missing:
        title += f"\nunavailable on this kernel: {', '.join(missing)}"
    ax.set_title(title, fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return f"bench: wrote {path}"
