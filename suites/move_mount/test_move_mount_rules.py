"""move_mount(2) rules past upstream: flag validation and the MOVE_MOUNT_BENEATH
placement/lock rules of do_lock_mount + can_move_mount_beneath +
attach_recursive_mnt (fs/namespace.c; MNT_LOCKED moves with the displaced mount).

Every test gets CAP_SYS_ADMIN over its mount namespace first: as root it is
already in a private copy; otherwise it enters a fresh user+mount namespace
(setup_userns), where everything it mounts itself is unlocked.
"""
import errno
import os

import pytest

from helpers import sys as k
from helpers import flags, uapi
from helpers.errors import raises_errno
from helpers.mounts import detached_fs, tmpfs
from helpers.ns import mount_admin, setup_userns

BENEATH = uapi.MOVE_MOUNT_F_EMPTY_PATH | uapi.MOVE_MOUNT_BENEATH

# Defined and undefined move_mount flags come from helpers/flags.py's table
# for the running kernel (MOVE_MOUNT__MASK = 0x377 from 6.5, BENEATH, through
# 7.3); the two flags a feature probe knows carry its `requires` marker.
FEATURE = {uapi.MOVE_MOUNT_SET_GROUP: "move_mount_set_group",
           uapi.MOVE_MOUNT_BENEATH: "move_mount_beneath"}


def _defined_param(flag):
    marks = [pytest.mark.requires(FEATURE[flag])] if flag in FEATURE else []
    return pytest.param(flag, marks=marks, id=f"{flag:#x}")


@pytest.mark.userns
@pytest.mark.parametrize("bit", flags.undefined_bits("move_mount"), ids=lambda b: f"{b:#x}")
def test_undefined_flag_bit_is_einval(bit):
    """Any bit outside MOVE_MOUNT__MASK (0x377) is EINVAL, decided before the
    paths are looked up (nonexistent paths would give ENOENT)."""
    mount_admin()
    with raises_errno(errno.EINVAL):
        k.move_mount(uapi.AT_FDCWD, "/nonexistent.a", uapi.AT_FDCWD, "/nonexistent.b", bit)


@pytest.mark.userns
@pytest.mark.parametrize("flag", [_defined_param(f) for f in flags.names("move_mount")])
def test_defined_flag_reaches_path_lookup(flag):
    """Every defined flag passes flag validation: nonexistent paths give ENOENT."""
    mount_admin()
    with raises_errno(errno.ENOENT):
        k.move_mount(uapi.AT_FDCWD, "/nonexistent.a", uapi.AT_FDCWD, "/nonexistent.b", flag)


@pytest.mark.userns
@pytest.mark.requires("move_mount_beneath", "move_mount_set_group")
def test_beneath_with_set_group_is_einval():
    """MOVE_MOUNT_BENEATH | MOVE_MOUNT_SET_GROUP is EINVAL before any lookup."""
    mount_admin()
    with raises_errno(errno.EINVAL):
        k.move_mount(uapi.AT_FDCWD, "/nonexistent.a", uapi.AT_FDCWD, "/nonexistent.b",
                     uapi.MOVE_MOUNT_BENEATH | uapi.MOVE_MOUNT_SET_GROUP)


@pytest.mark.userns
@pytest.mark.requires("move_mount_beneath")
def test_beneath_target_not_a_mount_root_is_einval():
    """BENEATH needs the target path to be a mount root: a plain directory
    inside a mount gives EINVAL and nothing is attached."""
    mount_admin()
    os.mkdir("t")
    tmpfs("t")
    os.mkdir("t/sub")
    fd = detached_fs()
    with raises_errno(errno.EINVAL):
        k.move_mount(fd, "", uapi.AT_FDCWD, "t/sub", BENEATH)
    assert k.mnt_id_unique("t/sub") == k.mnt_id_unique("t")


@pytest.mark.userns
@pytest.mark.requires("move_mount_beneath")
def test_beneath_target_that_is_an_ancestor_of_the_source_is_einval():
    """Moving a mount beneath one of its own ancestors is EINVAL."""
    mount_admin()
    os.mkdir("t")
    tmpfs("t")
    os.mkdir("t/s")
    tmpfs("t/s")
    with raises_errno(errno.EINVAL):
        k.move_mount(uapi.AT_FDCWD, "t/s", uapi.AT_FDCWD, "t", uapi.MOVE_MOUNT_BENEATH)


@pytest.mark.userns
@pytest.mark.requires("move_mount_beneath")
def test_beneath_source_not_a_mount_root_is_einval():
    """The source of a move must be a mount root: a subdirectory is EINVAL."""
    mount_admin()
    for d in ("s", "t"):
        os.mkdir(d)
        tmpfs(d)
    os.mkdir("s/sub")
    with raises_errno(errno.EINVAL):
        k.move_mount(uapi.AT_FDCWD, "s/sub", uapi.AT_FDCWD, "t", uapi.MOVE_MOUNT_BENEATH)


@pytest.mark.userns
@pytest.mark.requires("move_mount_beneath")
def test_beneath_puts_the_source_under_the_top_mount():
    """BENEATH slides the source between the top mount and its parent: the
    path still shows the top mount; unmounting it reveals the new one."""
    mount_admin()
    os.mkdir("t")
    tmpfs("t")
    top = k.mnt_id_unique("t")
    fd = detached_fs()
    new = k.mnt_id_unique(fd=fd)
    k.move_mount(fd, "", uapi.AT_FDCWD, "t", BENEATH)
    assert k.mnt_id_unique("t") == top
    k.umount2("t", 0)
    assert k.mnt_id_unique("t") == new


@pytest.mark.userns
@pytest.mark.requires("move_mount_beneath", "unshare_empty_mntns")
def test_beneath_namespace_root_with_nothing_on_top_is_einval():
    """In an empty mount namespace "/" is the nullfs namespace root, which is
    its own parent: there is nothing to slide beneath, so EINVAL. A plain
    move onto "/" (stacking) works."""
    if os.geteuid() != 0:
        setup_userns()  # fsopen() needs CAP_SYS_ADMIN over the current mount namespace
    fd = detached_fs()
    k.unshare(uapi.UNSHARE_EMPTY_MNTNS)
    with raises_errno(errno.EINVAL):
        k.move_mount(fd, "", uapi.AT_FDCWD, "/", BENEATH)
    k.move_mount(fd, "", uapi.AT_FDCWD, "/", uapi.MOVE_MOUNT_F_EMPTY_PATH)


def _locked_cover(base):
    """tmpfs `base` with a tmpfs cover on base/d, then a new user+mount
    namespace in which both copies are MNT_LOCKED."""
    os.mkdir(base)
    tmpfs(base)
    os.mkdir(f"{base}/d")
    tmpfs(f"{base}/d")
    setup_userns()
    with raises_errno(errno.EINVAL):
        k.umount2(f"{base}/d", uapi.MNT_DETACH)


@pytest.mark.userns
@pytest.mark.requires("move_mount_beneath", "move_mount_beneath_locked")
def test_beneath_locked_mount_propagated_copy_keeps_the_lock():
    """Through propagation: P (shared) and its peer Q both carry a locked
    cover on d. Sliding a mount beneath P/d unlocks P's cover (the caller's
    own source went beneath it), but the copy propagated beneath Q/d does
    not: Q's cover stays MNT_LOCKED (EINVAL) and keeps hiding Q/d.

    the move_mount_beneath_locked probe checks for "beneath a locked mount" support."""
    mount_admin()
    _locked_cover("/tmp/P")
    k.mount(None, "/tmp/P", None, uapi.MS_SHARED)
    os.mkdir("/tmp/Q")
    k.mount("/tmp/P", "/tmp/Q", None, uapi.MS_BIND | uapi.MS_REC)
    q_cover = k.mnt_id_unique("/tmp/Q/d")
    with raises_errno(errno.EINVAL):
        k.umount2("/tmp/Q/d", uapi.MNT_DETACH)
    fd = detached_fs()
    new = k.mnt_id_unique(fd=fd)
    k.move_mount(fd, "", uapi.AT_FDCWD, "/tmp/P/d", BENEATH)
    assert k.mnt_id_unique("/tmp/Q/d") == q_cover
    with raises_errno(errno.EINVAL):
        k.umount2("/tmp/Q/d", uapi.MNT_DETACH)
    k.umount2("/tmp/P/d", uapi.MNT_DETACH)
    assert k.mnt_id_unique("/tmp/P/d") == new


@pytest.mark.userns
@pytest.mark.requires("move_mount_beneath")
def test_move_of_a_locked_mount_is_einval():
    """do_move_mount: a locked mount in the caller's namespace cannot be
    moved away (it would reveal what it covers): EINVAL."""
    mount_admin()
    _locked_cover("/tmp/P")
    os.mkdir("/tmp/elsewhere")
    with raises_errno(errno.EINVAL):
        k.move_mount(uapi.AT_FDCWD, "/tmp/P/d", uapi.AT_FDCWD, "/tmp/elsewhere", 0)


@pytest.mark.userns
def test_move_under_a_shared_parent_is_einval():
    """do_move_mount: a mount whose parent is shared cannot be moved: EINVAL."""
    mount_admin()
    os.mkdir("p")
    tmpfs("p")
    k.mount(None, "p", None, uapi.MS_SHARED)
    os.mkdir("p/c")
    tmpfs("p/c")
    os.mkdir("dst")
    with raises_errno(errno.EINVAL):
        k.move_mount(uapi.AT_FDCWD, "p/c", uapi.AT_FDCWD, "dst", 0)

