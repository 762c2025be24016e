"""Find virtiofsd and build its command line, for either implementation.

Debian 12 ships the C virtiofsd in qemu-system-common at
/usr/lib/qemu/virtiofsd (`-o source=DIR`-style options).  QEMU dropped it in
8.0, so Debian 13 and later have only the Rust one, package `virtiofsd`, at
/usr/libexec/virtiofsd (`--shared-dir DIR`-style options).  Both are driven
to behave alike: chroot sandbox (the runner already puts virtiofsd in a
private mount namespace, see vm/rofs.py) and submounts NOT announced, so the
guest's mount table stays one virtiofs mount per share.
"""
from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass

from . import errors

# Looked at in this order.  The C one first: it is what this project was
# validated with on Debian 12, where both may be installed (bookworm-backports).
C_PATH = "/usr/lib/qemu/virtiofsd"
RUST_PATHS = ["/usr/libexec/virtiofsd", "/usr/lib/virtiofsd"]  # Debian/Fedora, Arch

# --cache values: the runner speaks the C names.
RUST_CACHE = {"none": "never", "always": "always", "auto": "auto"}


@dataclass(frozen=True)
class Virtiofsd:
    path: str
    kind: str  # "c" | "rust"
    # Rust virtiofsd announces submounts unless told --no-announce-submounts
    # (newer releases); older ones neither announce by default nor know the flag.
    announces_submounts: bool = False

    def argv(self, socket: str, source: str, cache: str) -> list[str]:
        """Command line sharing `source` on vhost-user socket `socket`;
        cache is "none" (the results share: the host reads it while the guest
        writes) or "always" (the read-only root)."""
        if cache not in RUST_CACHE:
            raise ValueError(f"cache must be one of {sorted(RUST_CACHE)}, not {cache!r}")
        return self._rust(socket, source, cache) if self.kind == "rust" else self._c(socket, source, cache)

    def _c(self, socket: str, source: str, cache: str) -> list[str]:
        # -o takes a comma-separated list: a comma in the path would split it.
        if "," in source:
            raise errors.UsageError(f"the C virtiofsd cannot share {source}: its path contains ','")
        # sandbox=chroot: "namespace" (the default) fails inside the runner's
        # private mount namespace; announce_submounts is off by default here.
        return [self.path, f"--socket-path={socket}", "-o", f"source={source}",
                "-o", "sandbox=chroot", "-o", f"cache={cache}"]

    def _rust(self, socket: str, source: str, cache: str) -> list[str]:
        # No --allow-mmap with --cache never: like the C one's cache=none, a
        # shared writable mmap of a results file is refused, not incoherent.
        argv = [self.path, "--socket-path", socket, "--shared-dir", source,
                "--sandbox", "chroot", "--cache", RUST_CACHE[cache]]
        if self.announces_submounts:
            # Announced submounts become automounts in the guest: every host
            # mount under / would show up in the mount table the suite tests.
            argv.append("--no-announce-submounts")
        return argv


def _help(path: str) -> str:
    """`--help` (+ `--version`) output; empty if the binary cannot run."""
    out = []
    for flag in ("--help", "--version"):
        try:
            p = subprocess.run([path, flag], capture_output=True, text=True, timeout=10)
            out.append(p.stdout + p.stderr)
        except (OSError, subprocess.SubprocessError):
            pass
    return "\n".join(out)


def kind_of(path: str, text: str) -> str:
    """C or Rust, from what the binary says about itself; the path decides
    only when it says nothing recognisable (e.g. it could not be run)."""
    if "--shared-dir" in text:
        return "rust"
    if "source=" in text or "QEMU" in text:
        return "c"
    return "c" if "/qemu/" in path else "rust"


def candidates() -> list[str]:
    """Executable virtiofsd binaries, best first ($PATH last: a Rust one on Arch)."""
    found = [C_PATH, *RUST_PATHS, shutil.which("virtiofsd")]
    return [p for p in dict.fromkeys(found) if p and os.path.isfile(p) and os.access(p, os.X_OK)]


def find() -> Virtiofsd:
    paths = candidates()
    if not paths:
        raise errors.InfraError(f"virtiofsd not found: apt-get install {package_hint()}")
    text = _help(paths[0])
    return Virtiofsd(paths[0], kind_of(paths[0], text), "--no-announce-submounts" in text)


def package_hint(os_release: str = "/etc/os-release") -> str:
    """The package that provides virtiofsd on this distribution release."""
    fields = {}
    try:
        for line in open(os_release):
            k, _, v = line.strip().partition("=")
            fields[k] = v.strip('"')
    except OSError:
        pass
    version = fields.get("VERSION_ID", "")  # absent on testing/sid
    if fields.get("ID") == "debian" and version.isdigit() and int(version) <= 12:
        return "qemu-system-x86 (its qemu-system-common has /usr/lib/qemu/virtiofsd)"
    return "virtiofsd (Debian 13 and later; on Debian 12: qemu-system-x86)"
