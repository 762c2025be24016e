"""Run a command as uid/gid 65534 without capabilities, where that user can
read the project: a clone under /root (mode 0700) is out of its reach, so the
command runs in a private mount namespace in which the closed directory is
replaced by a tmpfs holding only the project, bind-mounted back at the same
path (the venv's absolute paths keep working). The host's mount table is not
touched."""
import os
from pathlib import Path

NOBODY = 65534
SETPRIV = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", "--inh-caps=-all"]

# $1 the closed directory, $2 the project inside it; then the command.
OPEN_UP = """set -e
keep=$(mktemp -d)
mount --bind "$2" "$keep"
mount -t tmpfs -o mode=0755 tmpfs "$1"
mkdir -p "$2"
mount --move "$keep" "$2"
shift 2
exec "$@"
"""


def closed_ancestor(path: Path) -> Path | None:
    """The outermost directory above `path` that others may not enter."""
    for parent in reversed(path.resolve().parents):
        if not os.stat(parent).st_mode & 0o001:
            return parent
    return None


def prefix(repo: Path) -> list[str]:
    closed = closed_ancestor(repo)
    if closed is None:
        return SETPRIV
    return ["unshare", "--mount", "--propagation", "private", "sh", "-c", OPEN_UP, "sh",
            str(closed), str(repo.resolve()), *SETPRIV]
