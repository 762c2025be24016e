"""One initrd per kernel for the Vagrant machines: busybox, the kernel's
modules the box needs before its module tree is rsynced in (MODULES, with
their dependencies, decompressed: busybox insmod reads plain .ko) and
init.sh. Cached by content."""
from __future__ import annotations

import hashlib
import lzma
import subprocess
import tempfile
from pathlib import Path

from .. import errors, initramfs
from .config import state_dir

# virtio_blk/virtio_net: the root disk and the network; button and evdev:
# the ACPI power button reaches systemd-logind, so `vagrant halt` (an ACPI
# shutdown request) halts the machine before the module tree is rsynced in.
MODULES = ["virtio_blk", "virtio_net", "button", "evdev"]
INIT = Path(__file__).with_name("init.sh")


def load_order(modules_dir: Path, release: str) -> list[Path]:
    """The .ko files to insmod, dependencies first (kmod's own answer)."""
    root = modules_dir.parents[2]  # <root>/lib/modules/<release>
    p = subprocess.run(["modprobe", "-d", str(root), "-S", release, "--show-depends", "-a", *MODULES],
                       capture_output=True, text=True)
    if p.returncode:
        raise errors.InfraError(f"modprobe --show-depends {' '.join(MODULES)} for {release}: "
                                f"{p.stderr.strip()}")
    files = [Path(l.split()[1]) for l in p.stdout.splitlines() if l.startswith("insmod ")]
    return list(dict.fromkeys(files))


def decompress(ko: Path) -> bytes:
    data = ko.read_bytes()
    if ko.suffix == ".xz":
        return lzma.decompress(data)
    if ko.suffix == ".zst":
        return subprocess.run(["zstd", "-dc"], input=data, capture_output=True, check=True).stdout
    if ko.suffix == ".gz":
        import gzip
        return gzip.decompress(data)
    return data


def build(modules_dir: Path, release: str) -> Path:
    kos = load_order(modules_dir, release)
    h = hashlib.sha256(INIT.read_bytes() + initramfs.BUSYBOX.read_bytes())
    for ko in kos:
        h.update(ko.read_bytes())
    out = state_dir() / "initrd" / f"{release}-{h.hexdigest()[:12]}.cpio"
    if out.exists():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as d:
        root = Path(d)
        files = initramfs.busybox_root(root, INIT)
        (root / "mods").mkdir()
        names = []
        for ko in kos:
            name = ko.name.split(".ko")[0] + ".ko"
            (root / "mods" / name).write_bytes(decompress(ko))
            names.append(name)
        (root / "mods/order").write_text("\n".join(names) + "\n")
        initramfs.write_cpio(root, [*files, "mods", "mods/order", *(f"mods/{n}" for n in names)], out)
    return out  # earlier builds stay: machines made with them boot from them
