"""python -m vm.unpriv [--uid N] [--gid N] [--keep PATH]... -- CMD...

Run CMD as an unprivileged user (default nobody, 65534) without
capabilities, where that user can reach the paths it needs (--keep: the
project, the results directory). A path under a directory other users may
not enter (a clone under /root, mode 0700; pytest's /tmp/pytest-of-root) is
made reachable in a private mount namespace: the closed directory is covered
by a tmpfs that holds only the kept paths, bind-mounted back at the same
place (absolute paths, the venv's included, keep working). The caller's
mount table is not touched. Used by the VM runner's --vm-user and by the
project's own unprivileged runs (tests/as_nobody.py).
"""
from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

from helpers import uapi
from helpers.mounts import bind, make_rprivate
from helpers.sys import mount, unshare

NOBODY = 65534


def closed_ancestor(path: Path) -> Path | None:
    """The outermost directory above `path` that others may not enter."""
    for parent in reversed(Path(path).resolve().parents):
        if not os.stat(parent).st_mode & 0o001:
            return parent
    return None


def open_up(keep: list[Path]) -> None:
    """In a new private mount namespace, cover each closed ancestor of the
    kept paths with a tmpfs holding only those paths."""
    closed: dict[Path, list[Path]] = {}
    for p in keep:
        c = closed_ancestor(p)
        if c is not None:
            closed.setdefault(c, []).append(Path(p).resolve())
    if not closed:
        return
    unshare(uapi.CLONE_NEWNS)
    make_rprivate("/")
    for c, paths in closed.items():
        held = []
        for p in paths:
            aside = tempfile.mkdtemp(prefix="mntns-unpriv-")
            bind(str(p), aside, recursive=True)
            held.append((aside, p))
        mount("tmpfs", str(c), "tmpfs", 0, "mode=0755")
        for aside, p in held:
            os.makedirs(p, exist_ok=True)
            mount(aside, str(p), None, uapi.MS_MOVE)
            os.rmdir(aside)


def drop(uid: int, gid: int) -> None:
    """setuid away from 0 clears the permitted, effective and ambient
    capability sets (no SECBIT_KEEP_CAPS): the process is an ordinary user."""
    os.setgroups([])
    os.setresgid(gid, gid, gid)
    os.setresuid(uid, uid, uid)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m vm.unpriv", description=__doc__.split("\n\n")[0])
    ap.add_argument("--uid", type=int, default=NOBODY)
    ap.add_argument("--gid", type=int, default=NOBODY)
    ap.add_argument("--keep", action="append", default=[], type=Path, metavar="PATH")
    ap.add_argument("cmd", nargs=argparse.REMAINDER)
    a = ap.parse_args(argv)
    cmd = a.cmd[1:] if a.cmd[:1] == ["--"] else a.cmd
    if not cmd:
        ap.error("no command given")
    if os.geteuid() != 0:
        ap.error("must start as root (it drops to --uid/--gid)")
    open_up(a.keep)
    drop(a.uid, a.gid)
    os.execvp(cmd[0], cmd)


if __name__ == "__main__":
    raise SystemExit(main())
