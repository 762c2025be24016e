"""The project's own libvirtd (and virtlogd) inside a network namespace made
for the purpose: vagrant-libvirt's NAT network (192.168.121.0/24), its
bridge, dnsmasq and firewall rules then never touch the host's networks.
Vagrant itself runs on the host; its ssh goes through `ip netns exec NS
socat` (the Vagrantfile's ProxyCommand)."""
from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

from .. import errors

QEMU_CONF = Path("/etc/libvirt/qemu.conf")
# libvirt re-probes qemu's capabilities on every define (about 50 s under
# TCG here) when qemu runs as an unprivileged user that cannot open the
# root-only /dev/kvm; as root the cached probe holds.
QEMU_CONF_LINES = ['user = "root"', 'group = "root"']
MARK = "# mntns-conformance (vagrant/setup): qemu runs as root"
DAEMONS = [("virtlogd", Path("/run/virtlogd.pid")), ("libvirtd", Path("/run/libvirtd.pid"))]
SOCKET = Path("/run/libvirt/libvirt-sock")


def netns_path(ns: str) -> Path:
    return Path("/run/netns", ns)


def exists(ns: str) -> bool:
    return netns_path(ns).exists()


def ns_exec(ns: str, *cmd: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(["ip", "netns", "exec", ns, *cmd], **kw)


def pid_of(pidfile: Path) -> int | None:
    """The live process a pid file names, else None."""
    try:
        pid = int(pidfile.read_text().split()[0])
        os.kill(pid, 0)
        return pid
    except (OSError, ValueError, IndexError):
        return None


def in_netns(pid: int, ns: str) -> bool:
    try:
        return os.stat(f"/proc/{pid}/ns/net").st_ino == netns_path(ns).stat().st_ino
    except OSError:
        return False


def configure_qemu(conf: Path = QEMU_CONF) -> bool:
    """Append user/group root once (marked); True if the file changed."""
    text = conf.read_text()
    if MARK in text:
        return False
    conf.write_text(text.rstrip("\n") + "\n\n" + MARK + "\n" + "\n".join(QEMU_CONF_LINES) + "\n")
    return True


def up(ns: str, say=print) -> None:
    """Idempotent: the namespace, then virtlogd and libvirtd inside it."""
    if not exists(ns):
        subprocess.run(["ip", "netns", "add", ns], check=True)
        say(f"network namespace {ns} created")
    ns_exec(ns, "ip", "link", "set", "lo", "up", check=True)
    if configure_qemu():
        say(f"{QEMU_CONF}: qemu runs as root")
    for daemon, pidfile in DAEMONS:
        pid = pid_of(pidfile)
        if pid and not in_netns(pid, ns):
            raise errors.InfraError(
                f"a {daemon} not started by vagrant/setup runs (pid {pid}, outside netns {ns}): "
                f"stop it, or use it with {_uri_hint()}")
        if not pid:
            ns_exec(ns, daemon, "-d", check=True)
            say(f"{daemon} started in netns {ns}")
    _wait_socket()


def _uri_hint() -> str:
    from .config import URI_ENV
    return f"{URI_ENV}=qemu:///system"


def _wait_socket(timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while subprocess.run(["virsh", "-c", "qemu:///system", "version"],
                         capture_output=True).returncode:
        if time.monotonic() > deadline:
            raise errors.InfraError(f"libvirtd does not answer on {SOCKET} after {timeout:.0f} s")
        time.sleep(0.5)


def _virsh_names(command: str) -> list[str]:
    """Names of the running domains ("list") or active networks ("net-list")."""
    p = subprocess.run(["virsh", "-c", "qemu:///system", command, "--name"],
                       capture_output=True, text=True)
    return p.stdout.split() if p.returncode == 0 else []


def running_domains() -> list[str]:
    return _virsh_names("list")


def down(ns: str, say=print) -> int:
    """Stop the project's libvirtd and virtlogd and remove the namespace.
    Refuses while machines run: libvirtd leaves its qemus running."""
    pid = pid_of(DAEMONS[1][1])
    if pid and not in_netns(pid, ns):
        say(f"the running libvirtd (pid {pid}) is not the project's: left alone")
        return errors.USAGE
    domains = running_domains() if pid else []
    if domains:
        say(f"machines still running ({', '.join(domains)}): "
            "vagrant destroy -f (or vagrant halt) first")
        return errors.USAGE
    for net in _virsh_names("net-list") if pid else []:
        # each network's dnsmasq outlives libvirtd (and would hold the netns)
        subprocess.run(["virsh", "-c", "qemu:///system", "net-destroy", net], capture_output=True)
        say(f"network {net} stopped")
    for daemon, pidfile in reversed(DAEMONS):
        pid = pid_of(pidfile)
        if pid and in_netns(pid, ns):
            os.kill(pid, signal.SIGTERM)
            _wait_gone(pid)
            say(f"{daemon} stopped")
    if exists(ns):
        subprocess.run(["ip", "netns", "del", ns], check=True)
        say(f"network namespace {ns} removed")
    return errors.OK


def _wait_gone(pid: int, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except OSError:
            return
        time.sleep(0.2)
    os.kill(pid, signal.SIGKILL)


def ensure_pool(path: str, say=print, name: str = "default") -> None:
    """vagrant-libvirt puts the box's volume and each machine's disk in
    the 'default' storage pool."""
    virsh = lambda *a: subprocess.run(["virsh", "-c", "qemu:///system", *a],
                                      capture_output=True, text=True)
    if virsh("pool-info", name).returncode:
        for step in (("pool-define-as", name, "dir", "--target", path), ("pool-build", name),
                     ("pool-autostart", name)):
            p = virsh(*step)
            if p.returncode:
                raise errors.InfraError(f"virsh {step[0]} {name}: {p.stderr.strip()}")
        say(f"storage pool {name} defined at {path}")
    if "running" not in virsh("pool-info", name).stdout:
        p = virsh("pool-start", name)
        if p.returncode:
            raise errors.InfraError(f"virsh pool-start {name}: {p.stderr.strip()}")
