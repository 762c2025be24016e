"""A private apt state used only to find and fetch Debian kernel packages.

Nothing here touches the machine's own apt state: sources.list, lists,
package cache and archives all live under <cache>/apt.  The machine's
apt.conf.d is still read on purpose (it may carry proxy settings).
"""
from __future__ import annotations

import glob
import os
import re
import subprocess
import time
from pathlib import Path

from vm.log import log

# Suites that carry the kernels we care about (6.12 ... 7.x).
SUITES = ["sid", "experimental", "trixie", "trixie-backports", "bookworm-backports"]
KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"
INDEX_MAX_AGE = 24 * 3600  # seconds before the private index is refreshed


def cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")
    return Path(base) / "mntns-conformance"


def debs_dir(root: Path | None = None) -> Path:
    """Where downloaded .debs are kept (also read by kernels.py's cache)."""
    return (root or cache_root()) / "apt" / "debs"


def system_mirror() -> str:
    """The Debian archive URI named by the machine's own apt sources.

    The security archive is skipped: it carries no kernels for sid or
    experimental and uses a different suite layout.
    """
    uris: list[str] = []
    for path in ["/etc/apt/sources.list", *sorted(glob.glob("/etc/apt/sources.list.d/*.list"))]:
        try:
            for line in Path(path).read_text().splitlines():
                m = re.match(r"\s*deb\s+(?:\[[^\]]*\]\s+)?(\S+)", line)
                if m:
                    uris.append(m.group(1))
        except OSError:
            pass
    for path in sorted(glob.glob("/etc/apt/sources.list.d/*.sources")):
        try:
            for line in Path(path).read_text().splitlines():
                m = re.match(r"\s*URIs:\s*(.+)", line)
                if m:
                    uris.extend(m.group(1).split())
        except OSError:
            pass
    for uri in uris:
        u = uri.rstrip("/")
        if "security" in u:
            continue
        if u.endswith("/debian") or "/debian/" in u or "debian" in u.split("/")[-1]:
            return u
    raise RuntimeError("no Debian archive URI found in /etc/apt/sources*; pass --mirror URL")


class PrivateApt:
    def __init__(self, mirror: str | None = None, root: Path | None = None):
        self.root = (root or cache_root()) / "apt"
        self.mirror = (mirror or system_mirror()).rstrip("/")
        self.sources = self.root / "sources.list"
        self.state = self.root / "state"
        self.cache = self.root / "cache"
        self.debs = debs_dir(root)

    def _setup(self) -> None:
        for d in (self.state / "lists/partial", self.cache / "archives/partial", self.debs):
            d.mkdir(parents=True, exist_ok=True)
        (self.state / "status").touch()
        text = "".join(
            f"deb [signed-by={KEYRING}] {self.mirror} {s} main\n" for s in SUITES)
        # A changed mirror/suite list invalidates the index.
        if not self.sources.exists() or self.sources.read_text() != text:
            self.sources.write_text(text)
            (self.state / "updated").unlink(missing_ok=True)

    def _opts(self) -> list[str]:
        o = {
            "Dir::Etc::sourcelist": self.sources,
            "Dir::Etc::sourceparts": "-",
            "Dir::Etc::preferences": self.root / "preferences",
            "Dir::Etc::preferencesparts": "-",
            "Dir::State": self.state,
            "Dir::State::status": self.state / "status",
            "Dir::Cache": self.cache,
            "Dir::Cache::pkgcache": self.cache / "pkgcache.bin",
            "Dir::Cache::srcpkgcache": self.cache / "srcpkgcache.bin",
            "APT::Architecture": "amd64",
            "APT::Architectures": "amd64",
            "Acquire::Languages": "none",
            # Downloads land in our own cache dir; the _apt user could not write there.
            "APT::Sandbox::User": "root",
        }
        return [a for k, v in o.items() for a in ("-o", f"{k}={v}")]

    def _run(self, tool: str, *args: str) -> str:
        cmd = [tool, "-q", *self._opts(), *args]
        p = subprocess.run(cmd, capture_output=True, text=True, cwd=self.debs)
        if p.returncode:
            raise RuntimeError(f"{' '.join([tool, *args])} failed:\n{p.stderr.strip()}")
        return p.stdout

    def index_age(self) -> float:
        stamp = self.state / "updated"
        return time.time() - stamp.stat().st_mtime if stamp.exists() else float("inf")

    def update(self, force: bool = False) -> bool:
        """apt-get update unless the private index is fresh. True if it ran."""
        self._setup()
        if not force and self.index_age() < INDEX_MAX_AGE:
            return False
        log.info(f"apt-get update of the private index ({self.root})")
        self._run("apt-get", "update")  # verifies Release signatures
        (self.state / "updated").touch()
        return True

    def kernel_packages(self) -> dict[str, str]:
        """{package name: candidate version} for cloud-amd64 kernel packages."""
        self.update()
        names = [n for n in self._run("apt-cache", "pkgnames", "linux-").split()
                 if re.fullmatch(r"linux-(image|binary|modules)-\S+-cloud-amd64", n)]
        out: dict[str, str] = {}
        if not names:
            return out
        # One policy call for all names: "name:\n  Installed: ..\n  Candidate: x"
        pkg = None
        for line in self._run("apt-cache", "policy", *names).splitlines():
            if not line.startswith(" "):
                pkg = line.rstrip(":").split(":")[0]
            elif line.strip().startswith("Candidate:") and pkg:
                out[pkg] = line.split(":", 1)[1].strip()
        return out

    def download(self, pins: list[str]) -> list[Path]:
        """Fetch exact versions, given as apt pins "name=version", into
        <cache>/apt/debs.  A file there is reused only under that version's
        own name: a Debian respin (same package name, new version) is fetched."""
        self._setup()
        files = [self.debs / deb_name(*pin.split("=", 1)) for pin in pins]
        want = [pin for pin, f in zip(pins, files) if not f.exists()]
        if want:
            self.update()
            log.info(f"apt-get download {' '.join(want)}")
            self._run("apt-get", "download", *want)
        missing = [f.name for f in files if not f.exists()]
        if missing:
            raise RuntimeError(f"apt-get download left no {', '.join(missing)} in {self.debs}")
        return files

    def download_candidate(self, package: str) -> Path:
        """The candidate version of `package`, whatever its architecture
        (linux-source-X.Y is "all"), fetched into <cache>/apt/debs unless
        that version's file is there."""
        self.update()
        m = re.search(r"^\s*Candidate:\s*(\S+)", self._run("apt-cache", "policy", package), re.M)
        if not m or m.group(1) == "(none)":
            raise RuntimeError(f"{package} is not in the private index ({self.sources})")
        pattern = f"{package}_{m.group(1).replace(':', '%3a')}_*.deb"
        if not list(self.debs.glob(pattern)):
            log.info(f"apt-get download {package}={m.group(1)}")
            self._run("apt-get", "download", f"{package}={m.group(1)}")
        found = list(self.debs.glob(pattern))
        if not found:
            raise RuntimeError(f"apt-get download left no {pattern} in {self.debs}")
        return found[0]


def deb_name(package: str, version: str, arch: str = "amd64") -> str:
    """The file name `apt-get download` gives: <pkg>_<version>_<arch>.deb with
    an epoch's ':' written %3a."""
    return f"{package}_{version.replace(':', '%3a')}_{arch}.deb"
