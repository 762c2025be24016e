"""The Vagrant box, built here (no box registry is reachable or needed):
debootstrap minbase of the host's own Debian release (the guest runs the
host's .venv, so the same python), a `vagrant` user with Vagrant's
insecure key, `mkfs.ext4 -d` into a raw image, qcow2, libvirt metadata.
One box serves every kernel: the kernels boot directly (the Vagrantfile)."""
from __future__ import annotations

import glob
import json
import shutil
import subprocess
import tempfile
from pathlib import Path

from .. import errors
from ..apt import system_mirror
from .config import BOX, state_dir

PACKAGES = ["systemd", "systemd-sysv", "udev", "dbus", "openssh-server", "sudo", "rsync",
            "python3", "libffi8", "kmod", "e2fsprogs", "iproute2", "procps"]
DISK_GB = 8
INSECURE_KEY = "/usr/share/rubygems-integration/all/gems/vagrant-*/keys/vagrant.pub"
# Every clone of the box must ask DHCP with its own MAC (not a machine-id
# based DUID, identical in clones), or they collide on one address.
NETWORK = """[Match]
Name=e*

[Network]
DHCP=ipv4

[DHCPv4]
ClientIdentifier=mac
"""


def host_release() -> str:
    for line in Path("/etc/os-release").read_text().splitlines():
        if line.startswith("VERSION_CODENAME="):
            return line.split("=", 1)[1].strip('"')
    raise errors.InfraError("/etc/os-release names no VERSION_CODENAME: cannot pick the box's release")


def box_file() -> Path:
    return state_dir() / f"box-{host_release()}.box"


def added() -> bool:
    p = subprocess.run(["vagrant", "box", "list", "--machine-readable"], capture_output=True,
                       text=True, cwd="/")  # not the project's Vagrantfile: not needed here
    rows = [l.split(",") for l in p.stdout.splitlines()]
    names = [r[3] for r in rows if len(r) > 3 and r[2] == "box-name"]
    providers = [r[3] for r in rows if len(r) > 3 and r[2] == "box-provider"]
    return any(n == BOX and pv == "libvirt" for n, pv in zip(names, providers))


def ensure(say=print) -> None:
    """The box is in `vagrant box list`; built (about 2-5 minutes) only when
    its file is not cached."""
    if added():
        return
    path = box_file()
    if not path.exists():
        say(f"vagrant/setup: building the box {BOX} ({host_release()}, debootstrap) -> {path}")
        build(path)
    subprocess.run(["vagrant", "box", "add", "--force", "--name", BOX, str(path)],
                   check=True, stdout=subprocess.DEVNULL, cwd="/")
    say(f"vagrant/setup: box {BOX} added")


def _run(*cmd: str, **kw) -> None:
    p = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if p.returncode:
        last = (p.stderr or p.stdout).strip().splitlines()[-1:] or [""]
        raise errors.InfraError(f"{cmd[0]} failed (exit {p.returncode}): {last[0]}")


def build(out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent, prefix="box-") as d:
        work = Path(d)
        root = work / "root"
        _run("debootstrap", "--variant=minbase", f"--include={','.join(PACKAGES)}",
             host_release(), str(root), system_mirror())
        configure(root)
        raw = work / "box.raw"
        with open(raw, "wb") as f:
            f.truncate(DISK_GB << 30)
        _run("mkfs.ext4", "-q", "-F", "-L", "root", "-d", str(root), str(raw))
        _run("qemu-img", "convert", "-O", "qcow2", str(raw), str(work / "box.img"))
        (work / "metadata.json").write_text(json.dumps(
            {"provider": "libvirt", "format": "qcow2", "virtual_size": DISK_GB}))
        tmp = out.with_suffix(".tmp")
        _run("tar", "-cf", str(tmp), "-C", str(work), "metadata.json", "box.img")
        tmp.rename(out)


def configure(root: Path) -> None:
    chroot = lambda *cmd: _run("chroot", str(root), *cmd)
    chroot("useradd", "-m", "-s", "/bin/bash", "vagrant")
    ssh = root / "home/vagrant/.ssh"
    ssh.mkdir(mode=0o700)
    keys = glob.glob(INSECURE_KEY)
    if not keys:
        raise errors.InfraError(f"no {INSECURE_KEY}: apt-get install vagrant")
    shutil.copyfile(keys[0], ssh / "authorized_keys")
    chroot("chown", "-R", "vagrant:vagrant", "/home/vagrant/.ssh")
    (root / "etc/sudoers.d/vagrant").write_text("vagrant ALL=(ALL) NOPASSWD: ALL\n")
    (root / "etc/sudoers.d/vagrant").chmod(0o440)
    (root / "etc/fstab").write_text("LABEL=root / ext4 rw,errors=remount-ro 0 1\n")
    (root / "etc/hostname").write_text("mntns\n")
    (root / "etc/hosts").write_text("127.0.0.1 localhost\n127.0.1.1 mntns\n")
    (root / "etc/machine-id").write_text("")  # each clone makes its own at first boot
    (root / "var/lib/dbus/machine-id").unlink(missing_ok=True)
    (root / "etc/systemd/network/80-dhcp.network").write_text(NETWORK)
    chroot("systemctl", "enable", "systemd-networkd", "ssh")
    chroot("passwd", "-d", "root")  # console login for debugging; ssh refuses empty passwords
    (root / "etc/apt/sources.list").write_text("")  # the guest has no route out
    shutil.rmtree(root / "var/cache/apt/archives", ignore_errors=True)
    (root / "var/cache/apt/archives/partial").mkdir(parents=True)
