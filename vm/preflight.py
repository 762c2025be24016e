"""Checks run before the VM runner downloads or boots anything.

Each failure is ONE line, raised as errors.UsageError (the user must change
something: exit 4) or errors.InfraError (the machine lacks a tool: exit 125),
so a missing package costs seconds, not a kernel download.
"""
from __future__ import annotations

import os
import shutil
import struct
import tempfile
from pathlib import Path

from . import apt, errors, initramfs, virtiofsd

# Directories the guest has its own of (proc, sysfs, devtmpfs): a host path
# under one of them is not what the guest sees there, so it is refused.
GUEST_PRIVATE_PREFIXES = ("/proc", "/sys", "/dev")
# Guest tmpfs mounts the runner makes the host's paths under visible again:
# allowed, even /dev/shm under the refused /dev.
GUEST_TMPFS_PREFIXES = ("/tmp", "/var/tmp", "/run", "/dev/shm")

PT_INTERP = 3  # ELF program header of a dynamically linked executable
# ELF class (32/64-bit) -> (e_phoff's struct type, its offset, e_phentsize's offset)
ELF_LAYOUT = {1: ("I", 28, 42), 2: ("Q", 32, 54)}


def check(*, cwd: str, results_dir: Path, python: str, need_apt: bool,
          mirror: str | None) -> virtiofsd.Virtiofsd:
    """Raise the first problem; return the virtiofsd every guest of the run uses."""
    _root()
    _tool("qemu-system-x86_64", "qemu-system-x86")
    fsd = virtiofsd.find()
    _busybox(initramfs.BUSYBOX)
    _tool("cpio", "cpio")
    if need_apt:
        _apt(mirror)
    for what, path in paths_to_share(cwd, python):
        _visible(what, path)
    _visible("the results directory", str(results_dir), "pass --results-dir DIR elsewhere")
    _writable(Path(results_dir))
    if fsd.kind == "c" and "," in os.path.realpath(results_dir):
        raise errors.UsageError(f"results directory {results_dir}: the C virtiofsd cannot share "
                                "a path containing ','; pass --results-dir DIR without one")
    return fsd


def _root() -> None:
    # virtiofsd must open any host file as its owner and the runner builds a
    # private mount namespace (vm/rofs.py): both need real root.
    if os.geteuid() != 0:
        raise errors.UsageError("the VM runner needs root (virtiofsd, private mount namespaces): "
                                "run it with sudo")


def _tool(name: str, package: str) -> None:
    if not shutil.which(name):
        raise errors.InfraError(f"{name} not found: apt-get install {package}")


def is_static_elf(path: Path) -> bool:
    """True for an ELF executable without a program interpreter: it runs in
    an initramfs that holds no libc."""
    with open(path, "rb") as f:
        head = f.read(64)
        if head[:4] != b"\x7fELF" or head[4] not in ELF_LAYOUT:
            return False
        end = "<" if head[5] == 1 else ">"
        word, at_phoff, at_phentsize = ELF_LAYOUT[head[4]]
        (phoff,) = struct.unpack_from(end + word, head, at_phoff)
        entsize, count = struct.unpack_from(end + "HH", head, at_phentsize)
        f.seek(phoff)
        table = f.read(entsize * count)
    # p_type is the first 32-bit word of every program header, in both classes.
    return all(struct.unpack_from(end + "I", table, i * entsize)[0] != PT_INTERP for i in range(count))


def _busybox(path: Path) -> None:
    # Debian's plain `busybox` package also installs /bin/busybox, dynamically
    # linked: it would die in the initramfs, which has no libc.
    try:
        ok = is_static_elf(path)
    except (OSError, struct.error):
        ok = False
    if not ok:
        raise errors.InfraError(f"{path} missing or not statically linked: apt-get install busybox-static")


def _apt(mirror: str | None) -> None:
    _tool("apt-get", "apt")
    _tool("dpkg-deb", "dpkg")
    if not os.path.exists(apt.KEYRING):
        raise errors.InfraError(f"{apt.KEYRING} missing: apt-get install debian-archive-keyring")
    if mirror is None:
        try:
            apt.system_mirror()
        except RuntimeError:
            raise errors.UsageError("no Debian archive in /etc/apt/sources.list{,.d/}: "
                                    "pass --mirror URL (e.g. http://deb.debian.org/debian)") from None


def paths_to_share(cwd: str, python: str) -> list[tuple[str, str]]:
    """(what, path) the guest must see at the same path: the project and the
    interpreter's environment (a venv's prefix is the parent of its bin/;
    its python is usually a symlink to the system's)."""
    prefix = os.path.dirname(os.path.dirname(os.path.abspath(python)))
    return [("the project directory", cwd), ("the Python environment", prefix),
            ("the Python interpreter", os.path.realpath(python))]


def guest_private(path: str) -> str | None:
    """The guest-private prefix `path` is under, if any (symlinks resolved:
    the guest follows them too)."""
    try:
        real = os.path.realpath(path)
    except OSError:  # e.g. /proc/1/root in a restricted namespace
        real = path
    for p in dict.fromkeys([os.path.abspath(path), os.path.abspath(real)]):
        if any(under(p, t) for t in GUEST_TMPFS_PREFIXES):
            continue
        hit = next((g for g in GUEST_PRIVATE_PREFIXES if under(p, g)), None)
        if hit:
            return hit
    return None


def under(path: str, prefix: str) -> bool:
    return path == prefix or path.startswith(prefix + "/")


def _visible(what: str, path: str, fix: str = "clone or move it elsewhere, e.g. under /root or /srv") -> None:
    hit = guest_private(path)
    if hit:
        raise errors.UsageError(f"{what} {path} is under {hit}, which the guest replaces with its own: {fix}")


def _writable(d: Path) -> None:
    # Really create a file: a full disk or a root-squashing NFS export, say,
    # only shows then (root passes most access(2) checks).
    try:
        d.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=d):
            pass
    except OSError as e:
        raise errors.UsageError(f"results directory {d} cannot be written ({e.strerror or e}): "
                                "pass --results-dir DIR") from None
