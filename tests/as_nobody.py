"""Run a command as uid/gid 65534 without capabilities, where that user can
read the project (vm/unpriv.py: a clone under /root, mode 0700, is made
reachable in a private mount namespace; the host's mount table is not
touched)."""
import sys
from pathlib import Path

from vm.unpriv import NOBODY  # noqa: F401 -- the tests name the uid


def prefix(repo: Path, *keep: Path) -> list[str]:
    args = [a for p in (repo, *keep) for a in ("--keep", str(Path(p).resolve()))]
    return [sys.executable, "-m", "vm.unpriv", *args, "--"]
