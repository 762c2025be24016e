"""`vagrant/setup`: everything `vagrant up` needs on a Debian 12 machine, idempotent.

Debian packages, the kernels (the VM runner's cache) and one initrd each,
KVM or TCG, the project's libvirtd in its network namespace with a storage
pool, the box; then the machines file the Vagrantfile reads."""
from __future__ import annotations

import os
import subprocess

from .. import errors, kernels, qemu
from ..apt import PrivateApt
from . import box, config, initrd, netns

PACKAGES = ["vagrant", "vagrant-libvirt", "libvirt-daemon-system", "libvirt-clients",
            "dnsmasq-base", "iptables", "debootstrap", "qemu-utils", "e2fsprogs", "rsync",
            "socat", "openssh-client", "busybox-static", "cpio", "kmod"]
POOL_DIR = "/var/lib/libvirt/images"
PROBE_S = 20


def say(msg: str) -> None:
    print(f"vagrant/setup: {msg}", flush=True)


def missing_packages() -> list[str]:
    q = lambda p: subprocess.run(["dpkg-query", "-W", "-f=${Status}", p],
                                 capture_output=True, text=True).stdout
    return [p for p in PACKAGES if "ok installed" not in q(p)]


def install_packages() -> None:
    need = missing_packages()
    if not need:
        return
    say(f"installing Debian packages: {' '.join(need)}")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (["apt-get", "update", "-qq"],
                ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *need]):
        if subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL).returncode:
            raise errors.InfraError(f"{' '.join(cmd[:2])} failed: install by hand: {' '.join(need)}")


def prepare_kernels(labels: list[str]) -> tuple[dict, dict]:
    """({label: machine entry}, {label: release without modules})."""
    apt = PrivateApt()
    try:
        ks = kernels.resolve(labels, apt)
    except LookupError as e:
        raise errors.UsageError(str(e)) from None
    machines, no_modules = {}, {}
    for k in ks:
        k = kernels.fetch(k, apt)
        if k.modules is None:
            no_modules[k.label] = k.release
            say(f"kernel {k.label} ({k.release}): no modules package in Debian, no Vagrant "
                f"machine; the direct runner covers it: .venv/bin/pytest --kernel {k.label}")
            continue
        machines[k.label] = {"release": k.release, "version": k.version,
                             "vmlinuz": str(k.vmlinuz), "modules": str(k.modules),
                             "initrd": str(initrd.build(k.modules, k.release))}
        say(f"kernel {k.label}: {k.release} ({k.version}), initrd ready")
    return machines, no_modules


def probe_accel(vmlinuz: str) -> str:
    """kvm if a kernel prints to its console under KVM (as the VM runner
    would use it); tcg if /dev/kvm cannot be opened or qemu dies under it."""
    accel, why = qemu.choose_accel("auto")
    if accel != "kvm":
        say(f"TCG ({why})")
        return "tcg"
    cmd = [qemu.QEMU, "-nodefaults", "-display", "none", "-no-reboot", "-accel", "kvm",
           "-cpu", "host", "-m", "256", "-serial", "stdio", "-kernel", vmlinuz,
           "-append", "console=ttyS0 panic=-1"]
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=PROBE_S)
        out, dead = p.stdout, f"qemu exited {p.returncode}: {(p.stderr.strip().splitlines() or [''])[-1]}"
    except subprocess.TimeoutExpired as e:
        out, dead = (e.stdout or b"").decode(errors="replace"), ""
    if "Linux version" in out and "KVM internal error" not in out:
        say("KVM works")
        return "kvm"
    say(f"TCG (qemu fails under KVM here: {dead or 'no console output'})")
    return "tcg"


def run() -> int:
    if os.geteuid() != 0:
        raise errors.UsageError("vagrant/setup needs root (packages, libvirtd, network namespace): "
                                "run it with sudo")
    install_packages()
    old = config.load() or {}
    # one machine per series: "all" is the runner's matrix, machine by machine
    labels = [s for label in config.wanted_kernels(["all"])
              for s in (kernels.DEFAULT_SERIES if label == "all" else [label])]
    machines, no_modules = prepare_kernels(labels)
    if not machines:
        # remembered, so `vagrant up` says why too; machines prepared before stay
        if old:
            config.save({**old, "no_modules": {**old.get("no_modules", {}), **no_modules}})
        raise errors.UsageError(f"none of {' '.join(labels)} can be a Vagrant machine (no modules)")
    first = next(iter(machines.values()))["vmlinuz"]
    accel = os.environ.get(config.ACCEL_ENV) or old.get("accel") or probe_accel(first)
    uri = os.environ.get(config.URI_ENV)
    if uri:
        say(f"using the libvirt at {uri} (no network namespace here)")
    else:
        netns.up(config.NETNS, say)
        netns.ensure_pool(POOL_DIR, say)
    box.ensure(say)
    config.save({"kernels": labels, "box": config.BOX, "accel": accel,
                 "tcg_cpu_model": config.TCG_CPU_MODEL, "uri": uri,
                 "rsync_exclude": config.RSYNC_EXCLUDE, "rsync_args": config.RSYNC_ARGS,
                 "netns": None if uri else config.NETNS,
                 # earlier machines stay known: `vagrant destroy` of one needs its entry
                 "machines": {**old.get("machines", {}), **machines},
                 "no_modules": no_modules})
    ready = ", ".join(f"{label} ({m['release']})" for label, m in machines.items())
    say(f"ready: {ready} under "
        f"{accel.upper()}; now: vagrant up && .venv/bin/pytest -n auto")
    return errors.OK
