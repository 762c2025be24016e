"""What a person watching a run sees: one line per kernel (phase, results
done of planned, failures so far, elapsed, an estimate of what is left),
redrawn in place on a terminal, and as sparse plain lines in a CI log."""
from __future__ import annotations

import sys
import time

LOG_INTERVAL_S = 60  # a kernel's line in a log: on change of phase/failures, else this often


def eta(vm, now: float) -> str:
    p, res = vm.progress, vm.result
    if not (p.done and p.planned and vm.started is not None and res.init_s is not None):
        return ""
    spent = now - vm.started - res.init_s
    return f" ~{spent / p.done * (p.planned - p.done):.0f}s left"


def line(vm, now: float) -> str:
    p = vm.progress
    name = getattr(vm.kernel, "name", vm.kernel.release)
    if vm.phase == "done":
        r = vm.result
        state = r.status + (f": {r.reason.splitlines()[0]}" if r.reason else "")
        return f"{name:34} done  {p.done}/{p.planned or '?'} failed={p.failed} " \
               f"{r.wall_s:.0f}s {r.accel} {state}"
    elapsed = f" {now - vm.started:.0f}s" if vm.started is not None else ""
    counts = f" {p.done}/{p.planned or '?'} failed={p.failed}" if vm.phase == "testing" else ""
    return f"{name:34} {vm.phase}{counts}{elapsed}{eta(vm, now)}"


class Display:
    def __init__(self, stream=None):
        self.stream = stream or sys.stdout
        self.tty = self.stream.isatty()
        self.drawn = 0
        self.logged: dict[int, tuple] = {}  # id(vm) -> (key, when)

    def update(self, vms) -> None:
        now = time.monotonic()
        (self._redraw if self.tty else self._log)(vms, now)
        self.stream.flush()

    def _redraw(self, vms, now: float) -> None:
        if self.drawn:
            self.stream.write(f"\x1b[{self.drawn}F")  # back to the first line
        for vm in vms:
            self.stream.write(line(vm, now)[:200] + "\x1b[K\n")
        self.drawn = len(vms)

    def _log(self, vms, now: float) -> None:
        for vm in vms:
            key = (vm.phase, vm.progress.failed)
            seen = self.logged.get(id(vm))
            if seen is None or seen[0] != key or now - seen[1] >= LOG_INTERVAL_S:
                self.logged[id(vm)] = (key, now)
                self.stream.write(line(vm, now) + "\n")
