"""Marks of the project tests that boot kernels through the VM runner: the
runner is a subprocess of minutes, so they run in the pytest process (not
forked per case), are selected out with -m "not vm", and skip with the
reason where no VM can be booted."""
import os
import shutil

import pytest


def marks(timeout_s):
    return [
        pytest.mark.vm,
        pytest.mark.no_fork,
        pytest.mark.timeout(timeout_s),
        pytest.mark.skipif(os.environ.get("MNTNS_VM") == "1", reason="already inside a VM: no nested VMs"),
        pytest.mark.skipif(os.geteuid() != 0, reason="needs root: virtiofsd and the private apt state"),
        pytest.mark.skipif(not shutil.which("qemu-system-x86_64"),
                           reason="needs qemu-system-x86_64: run ./setup.sh (apt-get install qemu-system-x86)"),
    ]
