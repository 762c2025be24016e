"""Fixtures for the mount_setattr_test.c twins: the upstream FIXTURE_SETUPs."""
import pytest

from helpers.cleanup import scratch_dir
from helpers.ns import setup_userns

from suites.mount_setattr.mount_setattr_tree import build_tree, mount_ext4_image


@pytest.fixture
def tree(defer):
    """FIXTURE(mount_setattr): prepare_unpriv_mountns() (user namespace mapping
    0 to the caller, setuid 0, new mount namespace, rprivate), then the tmpfs
    tree. Upstream does this as root too, so every case runs as "root" of a
    user namespace that owns the mount namespace."""
    base = scratch_dir(defer, prefix="mount_setattr.")
    setup_userns()
    return build_tree(base)


@pytest.fixture
def idmapped_tree(defer):
    """FIXTURE(mount_setattr_idmapped) without the ext4 part: real root in a
    private mount namespace (the harness's), the tree with the files hidden
    under /tmp/B and /tmp/B/BB, /mnt 256m."""
    base = scratch_dir(defer, prefix="mount_setattr_idmapped.")
    return build_tree(base, hidden_files=True, mnt_size="256m")


@pytest.fixture
def ext4_mnt_d(idmapped_tree, defer):
    """The idmapped fixture's ext4 filesystem on a loop device at /mnt/D.
    Only the cases that use /mnt/D ask for it (upstream builds it for all 10)."""
    return mount_ext4_image(idmapped_tree, defer)
