"""OPEN_TREE_NAMESPACE semantics past upstream (fs/namespace.c
vfs_open_tree, create_new_namespace, copy_tree, lock_mnt_tree).

Each test's docstring names the one behaviour it pins down.
"""
import errno
import os

import pytest

from helpers import uapi
from helpers import sys as k
from helpers.errors import raises_errno
from helpers.mounts import listmount, statmount, tmpfs
from helpers.ns import caps_down, enter_userns, mnt_ns_info, own_mntns_id
from helpers.proc import in_child
from helpers.sys import capset_effective
from helpers.newns import ns_mounts, ns_table, open_tree_ns, setns_mnt

CLOEXEC, NS, REC = uapi.OPEN_TREE_CLOEXEC, uapi.OPEN_TREE_NAMESPACE, uapi.AT_RECURSIVE

pytestmark = [pytest.mark.requires("open_tree_namespace", "statmount", "listmount",
                                   "ns_get_mntns_id", "mnt_id_req_ns_id")]
ROOT = pytest.mark.root
USERNS = pytest.mark.userns


# --- what gets copied ----------------------------------------------------------------
@ROOT
@pytest.mark.parametrize("flags,count", [(NS, 1), (NS | REC, 3)], ids=["non_recursive", "recursive"])
def test_copy_size(tree, flags, count):
    """The owner's copy of a tmpfs with two submounts: non-recursive copies the
    one mount (allowed for the owner despite submounts), AT_RECURSIVE all three."""
    fd, new = open_tree_ns(tree, flags)
    assert len(ns_mounts(new)) == count


@ROOT
def test_each_call_makes_a_new_namespace(tree):
    """Two calls give two distinct namespaces, both newer than the caller's."""
    _, a = open_tree_ns(tree)
    _, b = open_tree_ns(tree)
    own = own_mntns_id()
    assert a != b and a > own and b > own


@ROOT
def test_fd_keeps_namespace_alive(tree):
    """No process lives in the namespace: closing the only fd frees it, after
    which listmount by its id is ENOENT."""
    fd, new = open_tree_ns(tree)
    assert ns_mounts(new)
    os.close(fd)
    with raises_errno(errno.ENOENT):
        listmount(mnt_ns_id=new, nr=16)


@ROOT
def test_fd_is_a_mount_namespace_fd(tree):
    """The fd is an nsfs mount-namespace fd: NS_GET_NSTYPE is CLONE_NEWNS and
    NS_MNT_GET_INFO reports the new id."""
    fd, new = open_tree_ns(tree, NS | REC)
    assert k.ioctl(fd, uapi.NS_GET_NSTYPE) == uapi.CLONE_NEWNS
    _, info = mnt_ns_info(fd)
    assert info["mnt_ns_id"] == new


# --- ownership --------------------------------------------------------------------------
def _owner_matches_caller(path):
    fd, _ = open_tree_ns(path, NS | REC | CLOEXEC)
    owner = k.ioctl(fd, uapi.NS_GET_USERNS)
    mine = os.open("/proc/self/ns/user", os.O_RDONLY)
    uid_owner = k.ffi.new("uint32_t *")
    uid_mine = k.ffi.new("uint32_t *")
    k.ioctl(owner, uapi.NS_GET_OWNER_UID, uid_owner)
    k.ioctl(mine, uapi.NS_GET_OWNER_UID, uid_mine)
    return os.fstat(owner).st_ino, os.fstat(mine).st_ino, uid_owner[0], uid_mine[0]


@ROOT
@pytest.mark.parametrize("where", ["init_userns", pytest.param("child_userns", marks=USERNS)])
def test_owner_is_callers_user_namespace(tree, where):
    """NS_GET_USERNS on the returned fd is the caller's current user namespace
    from the start (no later "ownership transfer"), and NS_GET_OWNER_UID of it
    matches the caller's own user namespace."""
    def body():
        if where == "child_userns":
            enter_userns()
        return _owner_matches_caller(tree)
    ino_owner, ino_mine, uid_owner, uid_mine = in_child(body)
    assert ino_owner == ino_mine
    assert uid_owner == uid_mine


# --- CAP_SYS_ADMIN -------------------------------------------------------------------------
@ROOT
def test_root_without_cap_sys_admin_gets_eperm(tree):
    """CAP_SYS_ADMIN in the caller's own (here: initial) user namespace is
    required: root with only CAP_SYS_CHROOT effective gets EPERM."""
    def body():
        capset_effective([uapi.CAP_SYS_CHROOT])
        with raises_errno(errno.EPERM):
            k.open_tree(uapi.AT_FDCWD, tree, NS)
    in_child(body)


@ROOT
@USERNS
def test_foreign_caller_namespace_ok_clone_eperm(tree):
    """A user-namespace root without privilege over its mount namespace:
    OPEN_TREE_CLONE (may_mount) is EPERM, but OPEN_TREE_NAMESPACE|AT_RECURSIVE
    (ns_capable on its own user namespace) succeeds."""
    def body():
        enter_userns()
        with raises_errno(errno.EPERM):
            k.open_tree(uapi.AT_FDCWD, tree, uapi.OPEN_TREE_CLONE)
        fd, new = open_tree_ns(tree, NS | REC)
        return len(ns_mounts(new))
    assert in_child(body) == 3


@ROOT
@USERNS
def test_userns_without_caps_eperm_even_recursive(tree):
    """caps_down() in the user namespace: EPERM for the recursive form too."""
    def body():
        enter_userns()
        caps_down()
        with raises_errno(errno.EPERM):
            k.open_tree(uapi.AT_FDCWD, tree, NS | REC)
    in_child(body)


# --- nullfs root and umount of the top ---------------------------------------------------
@ROOT
def test_root_chain_ends_in_nullfs(tree):
    """After setns, walking statmount parents from "/" reaches a nullfs mount
    (NULL_FS_MAGIC) that is its own parent, directly below the copied top."""
    fd, new = open_tree_ns(tree)

    def body():
        setns_mnt(fd)
        mask = uapi.STATMOUNT_MNT_BASIC | uapi.STATMOUNT_FS_TYPE | uapi.STATMOUNT_SB_BASIC
        top = statmount(k.mnt_id_unique("/"), mask)
        bottom = statmount(top.mnt_parent_id, mask)
        return top.fs_type, bottom.fs_type, bottom.sb_magic, bottom.mnt_id, bottom.mnt_parent_id
    top_type, fs_type, magic, mnt_id, parent = in_child(body)
    assert top_type == "tmpfs"
    assert (fs_type, magic) == ("nullfs", uapi.NULL_FS_MAGIC)
    assert mnt_id == parent


@ROOT
def test_umount_top_leaves_empty_nullfs(tree):
    """In an unlocked copy, umount2("/", MNT_DETACH) after setns succeeds and
    leaves only the nullfs root: re-entering the namespace, listmount shows
    one mount, "/" is nullfs, and readdir("/") is empty."""
    fd, new = open_tree_ns(tree, NS | REC)

    def body():
        setns_mnt(fd)
        k.umount2("/", uapi.MNT_DETACH)
        setns_mnt(fd)
        root = statmount(k.mnt_id_unique("/"), uapi.STATMOUNT_FS_TYPE)
        return listmount(nr=16), root.fs_type, os.listdir("/")
    ids, fs_type, entries = in_child(body)
    assert len(ids) == 1
    assert fs_type == "nullfs"
    assert entries == []


@ROOT
def test_nullfs_root_cannot_be_detached(tree):
    """The nullfs root of the new namespace has no parent: MNT_DETACH of it is EINVAL."""
    fd, new = open_tree_ns(tree)

    def body():
        setns_mnt(fd)
        k.umount2("/", uapi.MNT_DETACH)
        setns_mnt(fd)
        with raises_errno(errno.EINVAL):
            k.umount2("/", uapi.MNT_DETACH)
    in_child(body)


# --- unbindable and locked ------------------------------------------------------------------
@ROOT
@pytest.mark.parametrize("flags", [NS, NS | REC], ids=["non_recursive", "recursive"])
@pytest.mark.parametrize("foreign", [False, pytest.param(True, marks=USERNS)], ids=["owner", "foreign"])
def test_unbindable_source_einval(tree, flags, foreign):
    """The source mount itself unbindable: EINVAL for every caller, recursive
    or not (CL_COPY_UNBINDABLE only applies to submounts)."""
    k.mount(None, tree, None, uapi.MS_UNBINDABLE)

    def body():
        if foreign:
            enter_userns()
        with raises_errno(errno.EINVAL):
            k.open_tree(uapi.AT_FDCWD, tree, flags)
    in_child(body)


@ROOT
@USERNS
def test_locked_unbindable_child_eperm(tree):
    """Owner (not foreign) of a user-namespace mount ns whose unbindable
    submount is MNT_LOCKED: the recursive copy would have to drop it and reveal
    what it covers, so the call fails with EPERM instead."""
    k.umount2(f"{tree}/sub1", uapi.MNT_DETACH)
    open(f"{tree}/sub1/covered.txt", "w").close()
    tmpfs(f"{tree}/sub1")
    k.mount(None, f"{tree}/sub1", None, uapi.MS_UNBINDABLE)

    def body():
        # user+mount ns without setup_userns()'s rprivate, which would turn
        # the unbindable mount private: copy_mnt_ns copies and locks it.
        enter_userns(mntns=True)
        sm = statmount(k.mnt_id_unique(f"{tree}/sub1"), uapi.STATMOUNT_MNT_BASIC)
        try:
            fd, new = open_tree_ns(tree, NS | REC)
        except OSError as e:
            return e.errno, None
        setns_mnt(fd)  # evidence: what the copy shows
        return 0, {"sub1_propagation": hex(sm.mnt_propagation), "points": sorted(
            s.mnt_point for s in ns_table(new).values()), "sub1": os.listdir("/sub1")}
    err, evidence = in_child(body)
    assert err == errno.EPERM, f"expected EPERM, got {err}: {evidence}"


@ROOT
@USERNS
def test_foreign_copy_attr_locks(tree):
    """Foreign copies lock attributes too: clearing MOUNT_ATTR_RDONLY on a
    read-only mount of the copy is EPERM after setns."""
    k.mount(None, f"{tree}/sub1", None, uapi.MS_REMOUNT | uapi.MS_BIND | uapi.MS_RDONLY)

    def body():
        enter_userns()
        fd, new = open_tree_ns(tree, NS | REC)
        setns_mnt(fd)
        with raises_errno(errno.EPERM):
            k.mount_setattr(uapi.AT_FDCWD, "/sub1", 0, k.mount_attr(attr_clr=uapi.MOUNT_ATTR_RDONLY))
    in_child(body)


@ROOT
@USERNS
def test_foreign_copy_is_slave_of_shared_source(tree):
    """Foreign copies of a shared mount become slaves of its peer group
    (CL_SLAVE): a mount made at the source later propagates into the copy."""
    k.mount(None, tree, None, uapi.MS_SHARED)
    os.mkdir(f"{tree}/dir/late")

    seen = in_child(_foreign_slave_probe, tree)
    assert seen["propagation"] & uapi.MS_SLAVE, hex(seen["propagation"])
    assert "/dir/late" in seen["points_after"]


def _foreign_slave_probe(tree):
    r, w = os.pipe()
    go_r, go_w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the root process mounts at the source once the copy exists
        os.read(go_r, 1)
        tmpfs(f"{tree}/dir/late")
        os.write(w, b"1")
        os._exit(0)
    enter_userns()
    fd, new = open_tree_ns(tree, NS | REC)
    top = ns_table(new)
    root = [sm for sm in top.values() if sm.mnt_point == "/"][0]
    os.write(go_w, b"1")
    os.read(r, 1)
    os.waitpid(pid, 0)
    return {"propagation": root.mnt_propagation,
            "points_after": [sm.mnt_point for sm in ns_table(new).values()]}
