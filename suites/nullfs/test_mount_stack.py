"""Every mount namespace stands on a nullfs mount (fs/nullfs.c,
fs/namespace.c init_mount_tree; 7.0): the bottom of
the mnt_parent_id chain is a self-parented mount of type "nullfs", and an
empty mount namespace's root is a clone of it (same superblock, new mount)."""
import os

import pytest

from helpers import sys as k
from helpers import uapi
from helpers.mounts import mount_stack
from suites.nullfs.nullfs_util import enter_empty

pytestmark = pytest.mark.requires("nullfs_root")


@pytest.mark.root
def test_bottom_of_mount_stack_is_nullfs():
    """Walking statmount(mnt_parent_id) down from "/" ends at a mount that is
    its own parent, with fs_type "nullfs" and sb_magic NULL_FS_MAGIC; every
    mount above it is something else (nullfs never stacks on nullfs here)."""
    stack = mount_stack("/")
    bottom = stack[-1]
    assert bottom.mnt_parent_id == bottom.mnt_id
    assert bottom.fs_type == "nullfs"
    assert bottom.sb_magic == uapi.NULL_FS_MAGIC
    assert len(stack) >= 2, "'/' itself is the nullfs root of a normal namespace"
    assert all(sm.fs_type != "nullfs" for sm in stack[:-1])


@pytest.mark.root
@pytest.mark.requires("unshare_empty_mntns")
def test_empty_mntns_root_clones_the_nullfs_root():
    """UNSHARE_EMPTY_MNTNS clones the namespace's nullfs root: same
    superblock (device numbers) as the bottom of the old stack, a new mount id."""
    bottom = mount_stack("/")[-1]
    enter_empty("init_userns")
    st = os.stat("/")
    assert (os.major(st.st_dev), os.minor(st.st_dev)) == (bottom.sb_dev_major, bottom.sb_dev_minor)
    root = mount_stack("/")
    assert len(root) == 1
    assert root[0].mnt_id == k.mnt_id_unique("/") != bottom.mnt_id
    assert root[0].fs_type == "nullfs" and root[0].sb_magic == uapi.NULL_FS_MAGIC
