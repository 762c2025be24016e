"""The nullfs-era way for an initramfs to switch root (fs/namespace.c init_mount_tree,
7.0): with a
nullfs mount under the rootfs, `chdir(new_root); pivot_root(".", ".");
umount2(".", MNT_DETACH)` works; without it the initramfs *is* the namespace
root and pivot_root refuses. Read from the VM runner's boot record."""
import pytest

from harness.features import features
from helpers.kernel import boot_record


def _steps():
    record = boot_record()
    return record, record["steps"]


@pytest.mark.vm_only
@pytest.mark.requires("nullfs_root")
def test_initramfs_pivot_root_dot_dot_works():
    """chdir, pivot_root(".", ".") and umount2(".", MNT_DETACH) all
    succeeded from the initramfs; init then ran in the new root."""
    record, steps = _steps()
    for step in ("chdir", "pivot_root", "umount2"):
        assert steps[step] == {"ok": True, "error": None}, (step, steps[step])
    assert record["nullfs_pivot_root"] is True
    assert record["method"] == "pivot_root"


@pytest.mark.vm_only
def test_initramfs_pivot_root_refused_without_nullfs(request):
    """Without nullfs the initramfs rootfs is the namespace root and
    pivot_root(".", ".") is refused; init falls back to move + chroot."""
    if features(request.config)["nullfs_root"] is not False:
        pytest.skip("kernel has nullfs_root: test_initramfs_pivot_root_dot_dot_works covers it")
    record, steps = _steps()
    assert steps["chdir"]["ok"] is True
    assert steps["pivot_root"]["ok"] is False and steps["pivot_root"]["error"]
    assert steps["umount2"]["ok"] is False
    assert record["nullfs_pivot_root"] is False
    assert record["method"] != "pivot_root"
