"""Shared names and the machines file: what `vagrant/setup` prepared, read
by the Vagrantfile (machine list, kernel/initrd paths, accel) and by the
pytest plugin (machine name -> kernel release for results/<release>/)."""
from __future__ import annotations

import json
import os
from pathlib import Path

from ..apt import cache_root

NETNS = "mntns-vagrant"       # network namespace of the project's libvirtd
BOX = "mntns/debian"          # the locally built box's name in `vagrant box list`
KERNELS_ENV = "MNTNS_KERNELS"  # "6.18 7.3": which kernels get a machine
URI_ENV = "MNTNS_LIBVIRT_URI"  # another libvirt (qemu+ssh://host/system): no netns here
ACCEL_ENV = "MNTNS_VAGRANT_ACCEL"  # kvm | tcg: overrides setup's probe
# Under TCG libvirt needs a named model: one with BMI2 (7.x kernels need it,
# qemu64 lacks it); the Vagrantfile disables cx16 on it, as vm/qemu.py's "max,-cx16".
TCG_CPU_MODEL = "Haswell-noTSX"
# The checkout goes into each machine at its host path (the Vagrantfile at
# `vagrant up`, the plugin before each run), without these:
RSYNC_EXCLUDE = [".git/", ".vagrant/", "results/"]
RSYNC_ARGS = ["--archive", "--delete"]


def state_dir() -> Path:
    return cache_root() / "vagrant"


def machines_file() -> Path:
    return state_dir() / "machines.json"


def load() -> dict | None:
    """{"kernels": [labels], "netns": NS|None, "accel": "kvm"|"tcg", "uri": URI|None,
        "machines": {label: {"release", "version", "vmlinuz", "initrd", "modules"}},
        "no_modules": {label: release}} or None before setup."""
    try:
        return json.loads(machines_file().read_text())
    except (OSError, ValueError):
        return None


def save(state: dict) -> None:
    path = machines_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(state, indent=2) + "\n")
    tmp.rename(path)


def wanted_kernels(default: list[str]) -> list[str]:
    return os.environ.get(KERNELS_ENV, "").split() or default
