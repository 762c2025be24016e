"""FSMOUNT_NAMESPACE semantics past upstream (fs/namespace.c fsmount,
create_new_namespace, lock_mnt_tree, do_umount).

Each test's docstring names the behaviour it pins down.
"""
import errno
import os

import pytest

from helpers import uapi
from helpers import sys as k
from helpers.errors import raises_errno
from helpers.mounts import listmount, statmount
from helpers.ns import enter_userns, mnt_ns_info, own_mntns_id, setup_userns
from helpers.proc import in_child
from helpers.sys import capset_effective
from helpers.newns import fs_context, fsmount_ns, ns_mounts, setns_mnt

CLOEXEC, NS = uapi.FSMOUNT_CLOEXEC, uapi.FSMOUNT_NAMESPACE

pytestmark = [pytest.mark.requires("fsmount_namespace", "statmount", "listmount",
                                   "ns_get_mntns_id", "mnt_id_req_ns_id")]
ROOT = pytest.mark.root
USERNS = pytest.mark.userns


def _enter(where):
    if where == "child_userns":
        setup_userns()
    elif where == "foreign_userns":
        enter_userns()


WHERE = ["init_userns", pytest.param("child_userns", marks=USERNS),
         pytest.param("foreign_userns", marks=USERNS)]


@ROOT
@pytest.mark.parametrize("where", WHERE)
def test_owner_is_callers_user_namespace(where):
    """NS_GET_USERNS on the returned fd is the caller's current user namespace
    (same inode as /proc/self/ns/user) and NS_GET_OWNER_UID agrees, whether the
    caller is in the initial user ns, owns its mount ns, or is foreign to it."""
    fsfd = fs_context()  # made by root: a foreign caller may not fsopen

    def body():
        _enter(where)
        fd, _ = fsmount_ns(fsfd if where == "foreign_userns" else fs_context())
        owner = k.ioctl(fd, uapi.NS_GET_USERNS)
        mine = os.open("/proc/self/ns/user", os.O_RDONLY)
        uids = [k.ffi.new("uint32_t *") for _ in range(2)]
        k.ioctl(owner, uapi.NS_GET_OWNER_UID, uids[0])
        k.ioctl(mine, uapi.NS_GET_OWNER_UID, uids[1])
        return os.fstat(owner).st_ino, os.fstat(mine).st_ino, uids[0][0], uids[1][0]
    ino_owner, ino_mine, uid_owner, uid_mine = in_child(body)
    assert ino_owner == ino_mine
    assert uid_owner == uid_mine


@ROOT
def test_fd_is_a_mount_namespace_fd():
    """The returned fd is an nsfs mount-ns fd: NS_GET_NSTYPE CLONE_NEWNS,
    NS_MNT_GET_INFO has the new id, and it is not a directory (not a mount fd)."""
    fd, new = fsmount_ns(fs_context())
    assert k.ioctl(fd, uapi.NS_GET_NSTYPE) == uapi.CLONE_NEWNS
    assert mnt_ns_info(fd)[1]["mnt_ns_id"] == new
    import stat
    assert not stat.S_ISDIR(os.fstat(fd).st_mode)


@ROOT
def test_exactly_one_mount_listed():
    """Listing the new namespace by id shows one mount: the new filesystem
    (the nullfs root below it is hidden from a listing by id)."""
    fd, new = fsmount_ns(fs_context())
    assert len(ns_mounts(new)) == 1


@ROOT
def test_root_without_cap_sys_admin_gets_eperm():
    """CAP_SYS_ADMIN in the caller's own user namespace is required: root with
    only CAP_SYS_CHROOT effective gets EPERM."""
    fsfd = fs_context()

    def body():
        capset_effective([uapi.CAP_SYS_CHROOT])
        with raises_errno(errno.EPERM):
            k.fsmount(fsfd, NS | CLOEXEC, 0)
    in_child(body)


@ROOT
@USERNS
def test_foreign_caller_plain_fsmount_eperm_namespace_ok():
    """A user-ns root foreign to its mount ns: plain fsmount (may_mount) is
    EPERM, FSMOUNT_NAMESPACE (ns_capable on its own user ns) succeeds, on a
    context it created itself (tmpfs is FS_USERNS_MOUNT)."""
    def body():
        enter_userns()
        with raises_errno(errno.EPERM):
            k.fsopen("tmpfs", uapi.FSOPEN_CLOEXEC)
    # fsopen itself needs CAP_SYS_ADMIN over the current mount ns owner, so a
    # foreign caller cannot even get a context: get one first, then drop.
    fsfd = fs_context()

    def body2():
        enter_userns()
        with raises_errno(errno.EPERM):
            k.fsmount(fsfd, CLOEXEC, 0)
        fd, new = fsmount_ns(fsfd)
        return len(ns_mounts(new))
    in_child(body)
    assert in_child(body2) == 1


@ROOT
@pytest.mark.parametrize("where", ["init_userns", pytest.param("child_userns", marks=USERNS)])
def test_root_chain_ends_in_nullfs(where):
    """After setns, "/" is the new tmpfs; its parent is a nullfs mount
    (NULL_FS_MAGIC) that is its own parent."""
    def body():
        _enter(where)
        fd, new = fsmount_ns(fs_context())
        setns_mnt(fd)
        mask = uapi.STATMOUNT_MNT_BASIC | uapi.STATMOUNT_FS_TYPE | uapi.STATMOUNT_SB_BASIC
        top = statmount(k.mnt_id_unique("/"), mask)
        bottom = statmount(top.mnt_parent_id, mask)
        return top.fs_type, bottom.fs_type, bottom.sb_magic, bottom.mnt_id == bottom.mnt_parent_id
    assert in_child(body) == ("tmpfs", "nullfs", uapi.NULL_FS_MAGIC, True)


@ROOT
def test_umount_top_leaves_empty_nullfs():
    """Unlocked (root-made) namespace: umount2("/", MNT_DETACH) after setns
    succeeds; re-entering shows only the nullfs root: listmount 1 entry,
    readdir("/") empty, NS_MNT_GET_INFO nr_mounts 0 (root not counted)."""
    fd, new = fsmount_ns(fs_context())

    def body():
        setns_mnt(fd)
        k.umount2("/", uapi.MNT_DETACH)
        setns_mnt(fd)
        return (listmount(nr=16), statmount(k.mnt_id_unique("/"), uapi.STATMOUNT_FS_TYPE).fs_type,
                os.listdir("/"))
    ids, fs_type, entries = in_child(body)
    assert len(ids) == 1 and fs_type == "nullfs" and entries == []
    assert mnt_ns_info(fd)[1]["nr_mounts"] == 0


@ROOT
@USERNS
@pytest.mark.parametrize("where", ["child_userns", "foreign_userns"])
def test_umount_top_locked_in_userns(where):
    """Made in a user-ns-owned mount ns (rootfs stack locked) or by a foreign
    caller: the top mount is MNT_LOCKED, umount2("/", MNT_DETACH) is EINVAL."""
    fsfd = fs_context()  # made by root: a foreign caller cannot fsopen

    def body():
        _enter(where)
        fd, new = fsmount_ns(fsfd)
        setns_mnt(fd)
        with raises_errno(errno.EINVAL):
            k.umount2("/", uapi.MNT_DETACH)
    in_child(body)


@ROOT
def test_each_call_new_namespace():
    """Two fsmount(NAMESPACE) calls on two contexts give two namespaces, both
    newer than the caller's."""
    _, a = fsmount_ns(fs_context())
    _, b = fsmount_ns(fs_context())
    assert a != b and min(a, b) > own_mntns_id()
