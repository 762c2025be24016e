"""Optional kernel pieces (modules, filesystems, devices): load them, or SKIP
naming exactly what is missing.

A piece is "missing" only when its own check fails after `modprobe <module>`
AND /sys/module/<module> does not exist (nothing built in or loaded): an
unexpected errno from the piece itself is never turned into a skip.
"""
import os
import shutil
import subprocess

import pytest

from helpers.mounts import fs_registered


def modprobe(module):
    """Try to load a module; True if modprobe said yes. Silent otherwise."""
    tool = shutil.which("modprobe") or next(
        (p for p in ("/sbin/modprobe", "/usr/sbin/modprobe") if os.path.exists(p)), None)
    if not tool:
        return False
    return subprocess.run([tool, "-q", module], stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL).returncode == 0


def module_present(module):
    """Built in or loaded: /sys/module/<module> exists."""
    return os.path.isdir(f"/sys/module/{module.replace('-', '_')}")


def need(check, module, config, what):
    """SKIP unless check() holds, after trying to load `module`."""
    if check():
        return
    modprobe(module)
    if check():
        return
    if module_present(module):
        raise AssertionError(f"{module} is loaded but {what} is not there")
    pytest.skip(f"needs {module} ({config}): {what} missing and modprobe {module} did not provide it")


def need_fs(name, module=None, config=None):
    """SKIP unless filesystem `name` is registered (after modprobe)."""
    need(lambda: fs_registered(name), module or name, config or f"CONFIG_{name.upper()}_FS",
         f"filesystem type {name!r} in /proc/filesystems")


def have_fs(name, module=None):
    """Is filesystem `name` registered, after trying modprobe?"""
    if fs_registered(name):
        return True
    modprobe(module or name)
    return fs_registered(name)
