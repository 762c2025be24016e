"""Build (once, cached by content) the busybox initramfs holding vm/init.sh."""
from __future__ import annotations

import hashlib
import shutil
import subprocess
import tempfile
from pathlib import Path

from .apt import cache_root

BUSYBOX = Path("/bin/busybox")  # from Debian's busybox-static: no shared libs
INIT = Path(__file__).with_name("init.sh")


def build() -> Path:
    if not BUSYBOX.is_file():
        raise RuntimeError("/bin/busybox missing: apt-get install busybox-static")
    h = hashlib.sha256(INIT.read_bytes() + BUSYBOX.read_bytes()).hexdigest()[:16]
    out = cache_root() / f"initramfs-{h}.cpio"
    if out.exists():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as d:
        root = Path(d)
        write_cpio(root, busybox_root(root, INIT), out)
    return out


def busybox_root(root: Path, init: Path) -> list[str]:
    """bin/busybox and `init` as /init under root; the paths written."""
    (root / "bin").mkdir()
    shutil.copy2(BUSYBOX, root / "bin/busybox")
    shutil.copy2(init, root / "init")
    (root / "init").chmod(0o755)
    return ["bin", "bin/busybox", "init"]


def write_cpio(root: Path, files: list[str], out: Path) -> None:
    """newc archive of files (relative to root), owned by root, written atomically."""
    tmp = out.with_suffix(".tmp")
    with open(tmp, "wb") as f:
        subprocess.run(["cpio", "-o", "-H", "newc", "--quiet", "-R", "0:0"],
                       input=("\n".join(files) + "\n").encode(), stdout=f, cwd=root, check=True)
    tmp.rename(out)
