"""Checks of the VM runner's guest environment.  They only mean something
inside a guest booted by `pytest --kernel ...` and skip on the host."""
import json
import os
import subprocess

import pytest

pytestmark = [
    pytest.mark.vm_only,
    pytest.mark.skipif(os.environ.get("MNTNS_VM") != "1", reason="only inside a runner-booted VM"),
]


def boot_record():
    with open(os.environ["MNTNS_BOOT_RECORD"]) as f:
        return json.load(f)


def test_boot_record_shape():
    rec = boot_record()
    assert set(rec) == {"nullfs_pivot_root", "steps", "method", "kernel"}
    assert set(rec["steps"]) == {"chdir", "pivot_root", "umount2"}
    assert rec["kernel"] == os.uname().release
    assert rec["nullfs_pivot_root"] == all(step["ok"] for step in rec["steps"].values())
    assert rec["method"] == ("pivot_root" if rec["nullfs_pivot_root"] else "move_chroot")


def test_root_is_read_only():
    with pytest.raises(OSError):
        open("/etc/.mntns-vm-probe", "w")


def test_tmp_is_writable(tmp_path):
    (tmp_path / "x").write_text("x")


def test_modprobe_loop():
    if not os.path.isdir(f"/lib/modules/{os.uname().release}"):
        pytest.skip("no modules for this kernel")
    subprocess.run(["modprobe", "loop"], check=True)
    assert os.path.isdir("/sys/module/loop")


def test_static_device_nodes_autoload_their_module():
    """/dev/loop-control exists (from modules.devname, as kmod static-nodes
    makes it) and opening it loads the loop module."""
    release = os.uname().release
    devname = f"/lib/modules/{release}/modules.devname"
    if not os.path.exists(devname):
        pytest.skip(f"no modules for {release} (Debian ships no modules package for it)")
    if " loop-control " not in open(devname).read():
        pytest.skip("loop is built in or absent: no loop-control entry in modules.devname")
    fd = os.open("/dev/loop-control", os.O_RDWR)
    os.close(fd)
    assert os.path.isdir("/sys/module/loop")
