"""Which kernel to boot: resolve a user's --kernel value to a vmlinuz
(+ optional modules tree), fetching Debian packages when needed."""
from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from . import errors
from .apt import PrivateApt, cache_root, deb_name, debs_dir
from .log import log

# Series tested by `--kernel all` (newest packaged point release of each).
DEFAULT_SERIES = ["6.12", "6.18", "6.19", "7.0", "7.1", "7.2", "7.3"]

# linux-{image,binary,modules}-<abi>-cloud-amd64, abi starting with a digit
# (excludes linux-binary-unsigned-*, *-dbg, meta packages).
PKG_RE = re.compile(r"linux-(image|binary|modules)-(\d[^-]*)-cloud-amd64")


@dataclass
class Kernel:
    label: str                  # what the user asked for
    release: str                # uname -r
    vmlinuz: Path | None = None
    modules: Path | None = None  # the lib/modules/<release> directory
    packages: list[str] | None = None  # apt pins "name=version" still to fetch
    version: str | None = None  # Debian package version (packaged kernels)
    digest: str | None = None   # short sha256 of the image (image files, build trees)
    source: "Source | None" = field(default=None, repr=False, compare=False)  # who resolved it

    @property
    def name(self) -> str:
        """Results directory and summary key.  A packaged kernel's release
        names one kernel (a run resolves each release to one version); an
        image's does not (two build trees can both say 7.3.4-dirty), so it
        gets its content hash too."""
        return f"{self.release}@{self.digest}" if self.digest else self.release


@dataclass(frozen=True)
class Available:
    release: str   # e.g. 7.3.4+deb13-cloud-amd64
    upstream: str  # e.g. 7.3.4 or 7.3~rc7
    version: str   # Debian version of the image/binary package
    packages: tuple[str, ...]
    versions: tuple[str, ...] = ()  # each package's version (empty: from the cache)

    @property
    def key(self):
        return version_key(self.upstream, self.version)

    @property
    def series(self) -> str:
        return ".".join(re.split(r"[.~]", self.upstream)[:2])


def version_key(upstream: str, debver: str = ""):
    """Sortable key: 7.3~rc7 < 7.3 < 7.3.4; ties broken by Debian revision."""
    base, _, pre = upstream.partition("~")
    nums = [int(x) for x in re.findall(r"\d+", base)][:3]
    nums += [0] * (3 - len(nums))
    rc = int((re.findall(r"\d+", pre) or ["0"])[0])
    rev = [int(x) for x in re.findall(r"\d+", debver.rpartition("-")[2])]
    return (*nums, 0 if pre else 1, rc, rev)


def available(pkgs: dict[str, str]) -> list[Available]:
    """Group {package: version} (from apt) into bootable kernels."""
    by_abi: dict[str, dict[str, tuple[str, str]]] = {}
    for name, ver in pkgs.items():
        m = PKG_RE.fullmatch(name)
        if m and ver and ver != "(none)":
            by_abi.setdefault(m.group(2), {})[m.group(1)] = (name, ver)
    out = []
    for abi, kinds in by_abi.items():
        # linux-binary-* holds the vmlinuz where it exists; otherwise the
        # image package does (and then also ships the modules).
        boot = kinds.get("binary") or kinds.get("image")
        if not boot:
            continue
        pkgs = [boot] + ([kinds["modules"]] if "modules" in kinds else [])
        out.append(Available(f"{abi}-cloud-amd64", upstream_of(boot[1]), boot[1],
                             tuple(n for n, _ in pkgs), tuple(v for _, v in pkgs)))
    return sorted(out, key=lambda a: a.key)


def upstream_of(debver: str) -> str:
    """7.3.4-1~bpo13+1 -> 7.3.4 (epoch and Debian revision dropped)."""
    return debver.partition(":")[2 if ":" in debver else 0].rpartition("-")[0]


def nearest(want: str, avail: list[Available], n: int = 5) -> list[str]:
    w = version_key(want)
    dist = lambda a: sum(abs(x - y) * s for x, y, s in zip(a.key[:3], w[:3], (10**6, 10**3, 1)))
    return [a.upstream for a in sorted(avail, key=dist)[:n]]


def resolve_versions(want: str, avail: list[Available]) -> list[Available]:
    """'all' | 'X.Y' (newest X.Y.z) | 'X.Y.Z' (exact) | a release/package name."""
    if want == "all":
        picks = [resolve_versions(s, avail)[0] for s in DEFAULT_SERIES
                 if any(a.series == s for a in avail)]
        if not picks:
            raise LookupError("no kernel of the default series is packaged")
        return picks
    exact = [a for a in avail if want in (a.release, a.upstream) or want in a.packages]
    if re.fullmatch(r"\d+\.\d+", want):
        exact = [a for a in avail if a.series == want]
    if not exact:
        near = ", ".join(nearest(want, avail)) or "none"
        raise LookupError(f"kernel {want!r} is not packaged; nearest available: {near}")
    return [max(exact, key=lambda a: a.key)]


def bzimage_release(path: Path) -> str | None:
    """uname -r of a bzImage, from the version string its setup header points to."""
    try:
        data = path.read_bytes()[:0x10000]
        if data[0x202:0x206] != b"HdrS":
            return None
        off = int.from_bytes(data[0x20E:0x210], "little") + 0x200
        return data[off:off + 256].split(b" ")[0].decode()
    except (OSError, UnicodeDecodeError, IndexError):
        return None


def kernels_dir() -> Path:
    return cache_root() / "kernels"


def is_path(spec: str) -> bool:
    """A vmlinuz/bzImage or build tree (needs no apt), not a version."""
    return not isinstance(source_of(spec, sources()), DebianArchive)


# --- image files and build trees ------------------------------------------

def image_digest(image: Path) -> str:
    """Short content hash of a kernel image: its identity, since two builds
    can share one release string."""
    with open(image, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()[:12]


def from_path(spec: str) -> Kernel:
    """A vmlinuz/bzImage file or a kernel build tree."""
    p = Path(spec).resolve()
    image = p / "arch/x86/boot/bzImage" if p.is_dir() else p
    if not image.is_file():
        raise LookupError(f"{spec}: no such kernel image (or build tree without arch/x86/boot/bzImage)")
    rel = bzimage_release(image) or image.name
    k = Kernel(spec, rel, image, digest=image_digest(image))
    if p.is_dir() and (p / "modules.order").is_file() and (p / "modules.order").stat().st_size:
        k.modules = install_tree_modules(p, k)
    elif image.parent.parent.joinpath("lib/modules", rel).is_dir():
        k.modules = image.parent.parent / "lib/modules" / rel  # e.g. an extracted package
    return k


def modules_stamp(tree: Path) -> str:
    """Names, sizes and mtimes of the modules a tree built: `make modules`
    alone changes them without relinking the bzImage."""
    h = hashlib.sha256()
    for entry in (tree / "modules.order").read_text().split():
        ko = tree / Path(entry).with_suffix(".ko")  # modules.order lists .o since 6.2
        st = ko.stat() if ko.exists() else None
        h.update(f"{entry} {st and st.st_size} {st and st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:12]


def install_tree_modules(tree: Path, k: Kernel) -> Path | None:
    """make modules_install into the cache, so the guest can modprobe them;
    one directory per image (k.name), redone when the modules change."""
    dest = kernels_dir() / "build" / k.name
    mods, stamp = dest / "lib/modules" / k.release, dest / ".modules-stamp"
    want = modules_stamp(tree)
    if mods.is_dir() and stamp.exists() and stamp.read_text() == want:
        return mods
    shutil.rmtree(dest, ignore_errors=True)
    r = subprocess.run(["make", "-C", str(tree), "-s", "modules_install",
                        f"INSTALL_MOD_PATH={dest}", "DEPMOD=true"],
                       capture_output=True, text=True)
    if r.returncode:
        log.warning("modules_install for %s failed, no modules in guest:\n%s", tree, r.stderr[-500:])
        return None
    depmod(dest, k.release)
    stamp.write_text(want)
    return mods


def depmod(root: Path, rel: str) -> None:
    """Debian's packages ship no modules.dep (postinst makes it). kmod's
    depmod also writes modules.devname, from which the guest creates the
    static device nodes (/dev/loop-control, /dev/fuse...) that autoload their
    module; busybox depmod cannot, so it is only the fallback."""
    tool = shutil.which("depmod") or next(
        (p for p in ("/usr/sbin/depmod", "/sbin/depmod") if Path(p).exists()), None)
    if tool:
        subprocess.run([tool, "-b", str(root), rel], check=True)
    else:
        log.warning("no kmod depmod (apt-get install kmod): guests get no static device nodes")
        subprocess.run(["busybox", "depmod", "-b", str(root), rel], check=True)


# --- packaged kernels: kernels/deb/<release>/<version>/ ------------------
# Keyed by the Debian version too: a respin keeps the release (uname -r) and
# changes only the version.  The old layout, kernels/<release>/, recorded no
# version; it is adopted when its version can be proven (_adopt_old), else
# ignored (delete it at will).

def deb_dir(release: str, version: str) -> Path:
    return kernels_dir() / "deb" / release / version.replace(":", "%3a")


def _load(root: Path, release: str) -> Kernel | None:
    """The Kernel extracted at root, if the extraction completed."""
    if not (root / ".complete").exists():
        return None
    mods = root / "lib/modules" / release
    if mods.is_dir() and not (mods / "modules.devname").exists():
        depmod(root, release)  # cached by an older runner, before kmod's depmod
    # Older packages ship boot/vmlinuz-<rel>, newer lib/modules/<rel>/vmlinuz.
    image = root / f"boot/vmlinuz-{release}"
    if not image.exists():
        image = mods / "vmlinuz"
    return Kernel(release, release, image, mods if mods.is_dir() else None)


def extracted(release: str, version: str) -> Kernel | None:
    k = _load(deb_dir(release, version), release)
    if k:
        k.version = version
    return k


def cached_available() -> list[Available]:
    """The extracted kernels, oldest first, as Available entries: what can
    run when the index cannot say what is newest."""
    out = []
    for done in kernels_dir().glob("deb/*/*/.complete"):
        vdir = done.parent
        if not vdir.name.endswith(".partial"):
            version = vdir.name.replace("%3a", ":")
            out.append(Available(vdir.parent.name, upstream_of(version), version, ()))
    return sorted(out, key=lambda a: a.key)


def _adopt_old(a: Available) -> Kernel | None:
    """Move an old-layout kernels/<release>/ to a's place if it holds a's
    version: the old runner fetched a package once and never again, so when
    the only .deb of each package in the apt cache is a's, that is what was
    extracted."""
    old = kernels_dir() / a.release
    if not (old / ".complete").exists() or not a.versions:
        return None
    for pkg, ver in zip(a.packages, a.versions):
        if [f.name for f in debs_dir().glob(f"{pkg}_*.deb")] != [deb_name(pkg, ver)]:
            return None
    new = deb_dir(a.release, a.version)
    new.parent.mkdir(parents=True, exist_ok=True)
    old.rename(new)
    return extracted(a.release, a.version)


class _Index:
    """The private apt index, read at most once, and only if a spec needs
    it.  Unreadable (no network, no mirror): no kernels, and .error says why."""

    def __init__(self, apt: PrivateApt | None):
        self.apt, self.error, self._avail = apt, None, None

    def available(self) -> list[Available]:
        if self._avail is None:
            try:
                self._avail = available((self.apt or PrivateApt()).kernel_packages())
            except (RuntimeError, OSError) as e:
                self.error = " ".join(str(e).split())[:300]
                self._avail = []
        return self._avail


def _from_cache(spec: str, missing: LookupError, index: _Index) -> list[Available]:
    """The index has nothing for spec (unreadable, or the archive dropped
    that version): an extracted kernel may still do, with a warning."""
    try:
        picks = resolve_versions(spec, cached_available())
    except LookupError:
        if index.error:
            raise errors.InfraError(f"cannot read the kernel index ({index.error}) "
                                    f"and no extracted kernel matches {spec!r}") from None
        raise missing from None
    why = f"cannot read the kernel index ({index.error})" if index.error else "not in the archive any more"
    got = ", ".join(f"{a.release} {a.version}" for a in picks)
    log.warning("%s: %s; using the extracted %s, which may not be the newest", spec, why, got)
    return picks


def _packaged(spec: str, index: _Index) -> list[Kernel]:
    """The newest packaged version(s) for spec; the cache serves only that
    exact version (or, failing the index, whatever _from_cache allows)."""
    try:
        picks = resolve_versions(spec, index.available())
    except LookupError as missing:
        picks = _from_cache(spec, missing, index)
    out = []
    for a in picks:
        k = extracted(a.release, a.version) or _adopt_old(a) or Kernel(
            spec, a.release, version=a.version,
            packages=[f"{p}={v}" for p, v in zip(a.packages, a.versions)])
        k.label = spec
        out.append(k)
    return out


# --- kernel sources ----------------------------------------------------------
# Where a --kernel value can come from. Each source says whether a value is
# its own, turns it into Kernels, and makes a Kernel bootable (download,
# extract) if resolving it did not. A new source (Ubuntu's mainline builds,
# a Fedora kernel, a URL) is one class more in SOURCES, before DebianArchive,
# which takes every value nobody else claims.

class Source:
    name = "?"

    def claims(self, spec: str) -> bool:
        raise NotImplementedError

    def resolve(self, spec: str) -> list[Kernel]:
        """LookupError: the value names no kernel of this source (usage)."""
        raise NotImplementedError

    def fetch(self, k: Kernel, apt: PrivateApt) -> Kernel:
        return k  # local kernels are bootable as resolved


class BuildTree(Source):
    """A kernel build tree (arch/x86/boot/bzImage; `make modules_install`
    into the cache when it built modules)."""
    name = "build tree"

    def claims(self, spec):
        return Path(spec).is_dir()

    def resolve(self, spec):
        return [from_path(spec)]


class ImageFile(Source):
    """A vmlinuz/bzImage file (an extracted package's lib/modules next to
    it is used)."""
    name = "image file"

    def claims(self, spec):
        return "/" in spec or Path(spec).exists()

    def resolve(self, spec):
        return [from_path(spec)]


class DebianArchive(Source):
    """Debian's cloud-amd64 kernel packages: 'all', a series, a point
    release, a release or package name; downloaded with the private apt."""
    name = "Debian archive"

    def __init__(self, apt: PrivateApt | None = None):
        self.index = _Index(apt)

    def claims(self, spec):
        return True

    def resolve(self, spec):
        return _packaged(spec, self.index)

    def fetch(self, k, apt):
        if k.packages is None:
            return k
        done = extracted(k.release, k.version) or _extract(k, apt)
        done.label = k.label
        return done


def sources(apt: PrivateApt | None = None) -> list[Source]:
    return [BuildTree(), ImageFile(), DebianArchive(apt)]


def source_of(spec: str, srcs: list[Source]) -> Source:
    return next(s for s in srcs if s.claims(spec))


def resolve(specs: list[str], apt: PrivateApt | None = None) -> list[Kernel]:
    """--kernel values -> Kernel list, deduplicated by Kernel.name (so two
    different images with one release both run).  A kernel its source still
    has to download carries .packages for fetch() to handle."""
    out: dict[str, Kernel] = {}
    srcs = sources(apt)
    for spec in specs:
        src = source_of(spec, srcs)
        for k in src.resolve(spec):
            k.source = src
            out.setdefault(k.name, k)
    return list(out.values())


def fetch(k: Kernel, apt: PrivateApt) -> Kernel:
    """Make k bootable: download + dpkg-deb -x a packaged kernel's exact
    versions (once, cached); local kernels as they are."""
    return (k.source or DebianArchive()).fetch(k, apt)


def _extract(k: Kernel, apt: PrivateApt) -> Kernel:
    root = deb_dir(k.release, k.version)
    tmp = root.with_name(root.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for deb in apt.download(k.packages):
        subprocess.run(["dpkg-deb", "-x", str(deb), str(tmp)], check=True)
    # Newer packages install to /usr/lib/modules; keep one path for the guest.
    if (tmp / "usr/lib/modules").is_dir() and not (tmp / "lib/modules").exists():
        (tmp / "lib").mkdir(exist_ok=True)
        (tmp / "usr/lib/modules").rename(tmp / "lib/modules")
    if (tmp / "usr/boot").is_dir() and not (tmp / "boot").exists():
        (tmp / "usr/boot").rename(tmp / "boot")
    if (tmp / "lib/modules" / k.release).is_dir():
        depmod(tmp, k.release)
    (tmp / ".complete").touch()
    shutil.rmtree(root, ignore_errors=True)
    tmp.rename(root)
    return extracted(k.release, k.version)
