"""Which test made a guest kernel complain, and a fingerprint that groups the
same complaint across kernels.

In a guest the suite writes "mntns-test: start|end NODEID" into the kernel
log around every test (helpers/kmsg.py mark_test); printk keeps those
records in order with the kernel's own WARNING/BUG/Oops/panic lines on the
serial console. The tests started and not yet ended when a complaint begins
are the ones running at that moment (one per xdist worker); if none is
running, the complaint came after a test (an RCU callback, a workqueue) and
the test that ended last is named as the one it followed.

A test process that SIGKILL could not end is stuck in the kernel; the
suite then writes "mntns-test: stuck NODEID <how>" (harness/isolation.py),
a complaint of kind "hang" blamed on that test. When a guest hangs as a
whole, the tests started and never ended are the ones it hung in
(running()).

The fingerprint is a hash of the complaint's kind, its message without
numbers, addresses, CPUs, PIDs or task names, and the kernel function it
names (the "at FILE:LINE FUNC+0x.." of a WARNING, else the RIP, else the
first frame of the call trace that is not reporting machinery), but not
the line number: the same defect keeps its fingerprint across point
releases whose line numbers move.
"""
from __future__ import annotations

import hashlib
import re

ERROR_RE = re.compile(r"Kernel panic|\bOops\b|\bBUG:|kernel BUG at|\bWARNING:")
MARK_RE = re.compile(r"mntns-test: (start|end|stuck) (\S+)")
STUCK_RE = re.compile(r"mntns-test: stuck (\S+) (.*)")
_TIME = re.compile(r"^\s*\[\s*\d+\.\d+\]\s?")
_FUNC = re.compile(r"([A-Za-z_][\w.]*)\+0x[0-9a-f]+/0x[0-9a-f]+")
_FILE = re.compile(r"\b((?:[\w-]+/)+[\w-]+\.[ch]):\d+")
_END = re.compile(r"---\[ end (?:trace|Kernel panic)")
# Frames that report a problem rather than cause it.
_MACHINERY = {
    "dump_stack", "dump_stack_lvl", "show_stack", "__warn", "warn_slowpath_fmt", "report_bug",
    "handle_bug", "exc_invalid_op", "asm_exc_invalid_op", "__schedule_bug", "schedule_debug",
    "__schedule", "schedule", "panic", "__might_resched", "__might_sleep", "__might_fault",
    "do_error_trap", "do_trap", "exc_int3", "asm_exc_int3", "page_fault_oops",
    "kernelmode_fixup_or_oops", "__bad_area_nosemaphore", "do_user_addr_fault",
    "exc_page_fault", "asm_exc_page_fault", "die", "oops_end", "__die", "do_exit",
    "make_task_dead", "rewind_stack_and_make_dead",
}


def is_complaint(line: str) -> bool:
    """A console line that makes the kernel's run an ERROR (our init's and
    the suite's marks excluded, but for a test stuck in the kernel)."""
    if STUCK_RE.search(line):
        return True
    return bool(ERROR_RE.search(line)) and "mntns-init:" not in line and "mntns-test:" not in line


def running(console: str) -> list[str]:
    """The tests started and not ended by the end of a console log."""
    started: dict[str, None] = {}
    for line in console.splitlines():
        mark = MARK_RE.search(line)
        if mark and mark.group(1) == "start":
            started[mark.group(2)] = None
        elif mark and mark.group(1) == "end":
            started.pop(mark.group(2), None)
    return list(started)


def _hang(t: str) -> dict:
    """The complaint for a "stuck" mark: kind hang, blamed on its test. Its
    fingerprint is the same for every stuck mark: once a task holds a lock
    for good, the tests that stick after the first are its consequences,
    not distinct complaints (their marks stay on the console)."""
    nodeid, how = STUCK_RE.search(t).groups()
    signature = "hang: test process stuck in the kernel"
    return {"kind": "hang", "title": f"test process stuck in the kernel: {how}",
            "signature": signature, "fingerprint": hashlib.sha1(signature.encode()).hexdigest()[:12],
            "tests": [nodeid], "after": None, "excerpt": t}


def text_of(line: str) -> str:
    """A console line without its printk timestamp."""
    return _TIME.sub("", line).strip()


def _kind(title: str) -> str:
    for kind in ("Kernel panic", "kernel BUG at", "BUG:", "Oops", "WARNING:"):
        if kind in title:
            return {"kernel BUG at": "BUG", "BUG:": "BUG", "WARNING:": "WARNING"}.get(kind, kind)
    return "error"


def _normal(text: str) -> str:
    text = re.sub(r"0x[0-9a-f]+|\b[0-9a-f]{8,}\b", "ADDR", text)
    return " ".join(re.sub(r"\b\d+\b", "N", text).split())


def _message(kind: str, title: str) -> str:
    """What the complaint says, without what changes from run to run. A
    WARNING says nothing beyond its place (its line format changed over
    releases: "CPU: 1 PID: 2 at F:L FUNC" and "F:L at FUNC, CPU#1: comm/2"),
    so its message is empty; a BUG or Oops keeps its first clause ("kernel
    NULL pointer dereference", "scheduling while atomic"); a panic its reason."""
    if kind == "WARNING":
        return ""
    if kind == "Kernel panic":
        return _normal(title.split("not syncing:", 1)[-1].split(" exitcode=")[0])
    after = title.split("BUG:", 1)[1] if "BUG:" in title else title.split(kind, 1)[-1]
    if "kernel BUG at" in title:
        return ""
    return _normal(re.split(r"[:,\[]", after.lstrip(": "), maxsplit=1)[0])


def _function(title: str, block: list[str]) -> str:
    m = _FUNC.search(title)
    if m:
        return m.group(1)
    for line in block:
        if line.startswith("RIP:"):
            m = _FUNC.search(line)
            if m:
                return m.group(1)
    for line in block:
        if " ? " in line or line.startswith("? "):
            continue  # unreliable frames
        m = _FUNC.match(line)
        if m and m.group(1) not in _MACHINERY:
            return m.group(1)
    return ""


def _block(lines: list[str], i: int, limit: int = 80) -> list[str]:
    out = []
    for n, line in enumerate(lines[i:i + limit]):
        t = text_of(line)
        if n and ERROR_RE.search(t):
            break  # the next complaint
        out.append(t)
        if _END.search(t):
            break
    return out


def complaints(console: str) -> list[dict]:
    """Every distinct kernel complaint on a console log, in order, with the
    tests it is attributed to. Each: kind, title, signature, fingerprint,
    tests (running when it began), after (the test that ended last, when
    none was running), excerpt."""
    lines = console.splitlines()
    running: dict[str, None] = {}
    last_ended = None
    found: dict[str, dict] = {}
    for i, line in enumerate(lines):
        t = text_of(line)
        mark = MARK_RE.search(t)
        if mark and mark.group(1) == "stuck":
            c = _hang(t)
            found.setdefault(c["fingerprint"], c)
            continue
        if mark:
            event, nodeid = mark.groups()
            if event == "start":
                running[nodeid] = None
            else:
                running.pop(nodeid, None)
                last_ended = nodeid
            continue
        if not ERROR_RE.search(t) or "mntns-init:" in t:
            continue
        block = _block(lines, i)
        kind, func = _kind(t), _function(t, block[1:])
        file = _FILE.search(t)
        signature = " ".join(filter(None, [kind + ":", _message(kind, t),
                                           f"in {func}" if func else "",
                                           f"({file.group(1)})" if file else ""]))
        fp = hashlib.sha1(signature.encode()).hexdigest()[:12]
        if fp in found:
            continue
        found[fp] = {"kind": kind, "title": t, "signature": signature, "fingerprint": fp,
                     "tests": list(running), "after": None if running else last_ended,
                     "excerpt": "\n".join(block[:40])}
    return list(found.values())


def describe(c: dict) -> str:
    """One line: the complaint, its fingerprint, and who it is blamed on."""
    who = (f"during {', '.join(c['tests'])}" if c["tests"]
           else f"after {c['after']}" if c["after"] else "before any test started")
    return f"{c['title']} [fingerprint {c['fingerprint']}] {who}"
