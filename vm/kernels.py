"""Which kernel to boot: resolve a user's --kernel value to a vmlinuz
(+ optional modules tree), fetching Debian packages when needed."""
from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from .apt import PrivateApt, cache_root

# Series tested by `--kernel all` (newest packaged point release of each).
DEFAULT_SERIES = ["6.12", "6.18", "6.19", "7.0", "7.1", "7.2", "7.3"]

# linux-{image,binary,modules}-<abi>-cloud-amd64, abi starting with a digit
# (excludes linux-binary-unsigned-*, *-dbg, meta packages).
PKG_RE = re.compile(r"linux-(image|binary|modules)-(\d[^-]*)-cloud-amd64")


@dataclass
class Kernel:
    label: str                  # what the user asked for
    release: str                # uname -r (results are filed under this)
    vmlinuz: Path | None = None
    modules: Path | None = None  # the lib/modules/<release> directory
    packages: list[str] | None = None  # Debian packages still to fetch


@dataclass(frozen=True)
class Available:
    release: str   # e.g. 7.3.4+deb13-cloud-amd64
    upstream: str  # e.g. 7.3.4 or 7.3~rc7
    version: str   # Debian version of the image/binary package
    packages: tuple[str, ...]

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
        names = [boot[0]] + ([kinds["modules"][0]] if "modules" in kinds else [])
        out.append(Available(f"{abi}-cloud-amd64", boot[1].rpartition("-")[0],
                             boot[1], tuple(names)))
    return sorted(out, key=lambda a: a.key)


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


def from_path(spec: str) -> Kernel:
    """A vmlinuz/bzImage file or a kernel build tree."""
    p = Path(spec).resolve()
    image = p / "arch/x86/boot/bzImage" if p.is_dir() else p
    if not image.is_file():
        raise LookupError(f"{spec}: no such kernel image (or build tree without arch/x86/boot/bzImage)")
    rel = bzimage_release(image) or image.name
    k = Kernel(spec, rel, image)
    if p.is_dir() and (p / "modules.order").is_file() and (p / "modules.order").stat().st_size:
        k.modules = install_tree_modules(p, rel)
    elif image.parent.parent.joinpath("lib/modules", rel).is_dir():
        k.modules = image.parent.parent / "lib/modules" / rel  # e.g. an extracted package
    return k


def install_tree_modules(tree: Path, rel: str) -> Path | None:
    """make modules_install into the cache, so the guest can modprobe them."""
    dest = kernels_dir() / "build" / rel
    mods = dest / "lib/modules" / rel
    if not mods.is_dir():
        r = subprocess.run(["make", "-C", str(tree), "-s", "modules_install",
                            f"INSTALL_MOD_PATH={dest}", "DEPMOD=true"],
                           capture_output=True, text=True)
        if r.returncode:
            print(f"warning: modules_install for {tree} failed, no modules in guest:\n{r.stderr[-500:]}")
            return None
        depmod(dest, rel)
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
        print("warning: no kmod depmod (apt-get install kmod): guests get no static device nodes")
        subprocess.run(["busybox", "depmod", "-b", str(root), rel], check=True)


def extracted(release: str) -> Kernel | None:
    root = kernels_dir() / release
    if (root / ".complete").exists():
        mods = root / "lib/modules" / release
        if mods.is_dir() and not (mods / "modules.devname").exists():
            depmod(root, release)  # cached by an older runner, before kmod's depmod
        # Older packages ship boot/vmlinuz-<rel>, newer lib/modules/<rel>/vmlinuz.
        image = root / f"boot/vmlinuz-{release}"
        if not image.exists():
            image = mods / "vmlinuz"
        return Kernel(release, release, image, mods if mods.is_dir() else None)
    return None


def extracted_point_release(spec: str) -> Kernel | None:
    if not re.fullmatch(r"\d+\.\d+\.\d+", spec):
        return extracted(spec) if "cloud-amd64" in spec else None
    for d in sorted(kernels_dir().glob(f"{spec}[+-]*"), reverse=True):
        if re.fullmatch(re.escape(spec) + r"[+-][^-]*-cloud-amd64", d.name):
            return extracted(d.name)
    return None


def resolve(specs: list[str], apt: PrivateApt | None = None) -> list[Kernel]:
    """--kernel values -> Kernel list (deduplicated by release). Package
    kernels not yet extracted carry .packages for fetch() to handle."""
    out: dict[str, Kernel] = {}
    avail = None
    for spec in specs:
        if "/" in spec or Path(spec).exists():
            k = from_path(spec)
            out.setdefault(k.release, k)
            continue
        # An exact release or X.Y.Z point release already extracted needs no
        # apt at all.  ("X.Y" does: only the index knows the newest X.Y.z.)
        k = extracted_point_release(spec)
        if k:
            k.label = spec
            out.setdefault(k.release, k)
            continue
        if avail is None:
            apt = apt or PrivateApt()
            avail = available(apt.kernel_packages())
        for a in resolve_versions(spec, avail):
            k = extracted(a.release) or Kernel(spec, a.release, packages=list(a.packages))
            k.label = spec
            out.setdefault(a.release, k)
    return list(out.values())


def fetch(k: Kernel, apt: PrivateApt) -> Kernel:
    """Download + dpkg-deb -x the kernel's packages (once, cached)."""
    if k.packages is None:
        return k
    done = extracted(k.release)
    if done:
        return done
    root = kernels_dir() / k.release
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
    return extracted(k.release)
