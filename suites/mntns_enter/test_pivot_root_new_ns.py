"""pivot_root(".", ".") in the new kinds of mount namespace, whose bottom is a
nullfs root: entered by setns into an open_tree(OPEN_TREE_NAMESPACE) or
fsmount(FSMOUNT_NAMESPACE) namespace, or made empty by
unshare(UNSHARE_EMPTY_MNTNS) / clone3(CLONE_EMPTY_MNTNS) with a tmpfs moved
onto "/" and chrooted into. Each leaves "/" = "." = a tmpfs sitting directly on
the nullfs root.

What fs/namespace.c path_pivot_root() (SYSCALL_DEFINE2(pivot_root)) decides, in
its order: EINVAL if a mount involved is shared or new_root's mount is
MNT_LOCKED, EBUSY if new_root or put_old
is the caller's root mount ("loop, on the same file system"), EINVAL if the
root is not a mount root or has no parent ("absolute root": the nullfs root
is its own parent), EINVAL if new_root is not a mount root or has no parent.
"""
import errno
import os

import pytest

from helpers import sys as k
from helpers import uapi
from helpers.errors import errno_of
from helpers.mounts import listmount, mount_stack, tmpfs, tmpfs_onto_root
from helpers.newns import ONE_CALL, feature_params, new_ns_fd, setns_mnt
from helpers.ns import setup_userns
from helpers.proc import clone3, in_child

EMPTY = ("unshare_empty_mntns", "clone_empty_mntns")
pytestmark = [pytest.mark.requires("nullfs_root", "statmount", "listmount")]
WHERE_MARK = {"init_userns": pytest.mark.root, "own_userns": pytest.mark.userns}


def _cases(where, *kinds):
    """(kind, where) params: each needs its kind's feature, and root or user namespaces."""
    return [pytest.param(kind, where, marks=[pytest.mark.requires(kind), WHERE_MARK[where]],
                         id=f"{where}-{kind}") for kind in kinds]


def _run_in_empty(kind, body):
    """body() in a child in a new empty mount namespace."""
    if kind == "clone_empty_mntns":
        return clone3(body, uapi.CLONE_EMPTY_MNTNS)[0]

    def unshared():
        k.unshare(uapi.UNSHARE_EMPTY_MNTNS)
        return body()
    return in_child(unshared)


def _run_on_tmpfs_over_nullfs(kind, where, body):
    """body() in a child whose "/" and "." are a tmpfs directly on the nullfs
    root of a fresh namespace of this kind, made by root in the initial user
    namespace or inside a user namespace of our own (setup_userns: every
    mount we start with is MNT_LOCKED)."""
    if where == "own_userns":
        setup_userns()
    if kind in ONE_CALL:
        tmpfs("/tmp")
        os.mkdir("/tmp/tree")
        tmpfs("/tmp/tree")
        fd = new_ns_fd(kind, "/tmp/tree")

        def entered():
            setns_mnt(fd)
            return body()
        return in_child(entered)

    def chrooted():
        tmpfs_onto_root(enter=True)
        return body()
    return _run_in_empty(kind, chrooted)


def _stack():
    return [sm.fs_type for sm in mount_stack("/")]


def _pivot_at_root():
    """chdir("/"); pivot_root(".", "."): (stack under "/", errno, "/" unchanged)."""
    os.chdir("/")
    before = k.mnt_id_unique("/")
    err = errno_of(k.pivot_root, ".", ".")
    return _stack(), err, k.mnt_id_unique("/") == before


@pytest.mark.parametrize("kind,where", _cases("init_userns", *ONE_CALL) + _cases("own_userns", *EMPTY))
def test_pivot_root_dot_dot_at_root_is_ebusy(kind, where):
    """chdir("/"); pivot_root(".", ".") where "/" is an unlocked tmpfs right on
    the nullfs root: new_root is the caller's root mount, so EBUSY
    (path_pivot_root(): new_mnt == root_mnt), and "/" stays that tmpfs."""
    assert _run_on_tmpfs_over_nullfs(kind, where, _pivot_at_root) == (["tmpfs", "nullfs"], errno.EBUSY, True)


@pytest.mark.parametrize("kind,where", _cases("own_userns", *ONE_CALL))
def test_pivot_root_dot_dot_at_locked_root_is_einval(kind, where):
    """The same in a namespace made inside our own user namespace, whose
    mounts on the nullfs root are MNT_LOCKED: create_new_namespace() locks the
    new top as well, and path_pivot_root() refuses a locked new_root with
    EINVAL before it compares it with the root (EBUSY)."""
    assert _run_on_tmpfs_over_nullfs(kind, where, _pivot_at_root) == (["tmpfs", "nullfs"], errno.EINVAL, True)


def _switch_root():
    """The initramfs sequence onto a tmpfs mounted at /newroot."""
    os.mkdir("/newroot")
    tmpfs("/newroot")
    open("/newroot/marker", "w").close()
    new = k.mnt_id_unique("/newroot")
    os.chdir("/newroot")
    k.pivot_root(".", ".")
    k.umount2(".", uapi.MNT_DETACH)
    return new, k.mnt_id_unique("/"), os.listdir("/"), listmount(), _stack()


@pytest.mark.parametrize("kind,where", _cases("own_userns", *ONE_CALL, *EMPTY))
def test_pivot_root_dot_dot_onto_submount_switches_root(kind, where):
    """mount a tmpfs at /newroot, chdir there, pivot_root(".", "."),
    umount2(".", MNT_DETACH): the old root (whose parent is the nullfs root, so
    not an "absolute root") is stacked on the new one and then detached, so "/"
    is the new tmpfs, directly on the nullfs root, and the namespace lists it
    alone (path_pivot_root(): attach_mnt(new_mnt, root_parent, ...), old root
    attached on put_old; chroot_fs_refs() moves root and cwd). A locked old
    root passes MNT_LOCKED on to the new one and still detaches."""
    new, root, entries, mounts, stack = _run_on_tmpfs_over_nullfs(kind, where, _switch_root)
    assert root == new
    assert entries == ["marker"]
    assert mounts == [new]
    assert stack == ["tmpfs", "nullfs"]


@pytest.mark.userns
@pytest.mark.parametrize("kind", feature_params(*EMPTY))
@pytest.mark.parametrize("cwd,expected", [("fchdir_to_overmount", errno.EINVAL), ("chdir_slash", errno.EBUSY)],
                         ids=["fchdir_to_overmount-EINVAL", "chdir_slash-EBUSY"])
def test_pivot_root_from_nullfs_root_fails(kind, cwd, expected):
    """An empty namespace with a tmpfs moved onto "/" but root not switched:
    the caller's root is still the nullfs root. With "." the tmpfs (fchdir to
    its mount fd), pivot_root(".", ".") is EINVAL: the root mount has no parent
    (path_pivot_root(): !mnt_has_parent(root_mnt), "absolute root").
    chdir("/") does not climb onto the tmpfs ("/" is the root itself, no mount
    is crossed), so "." stays the nullfs root and new_root is the root: EBUSY."""
    def body():
        mnt = tmpfs_onto_root()
        if cwd == "fchdir_to_overmount":
            os.fchdir(mnt)
        else:
            os.chdir("/")
        return k.statfs(".").f_type, k.statfs("/").f_type, errno_of(k.pivot_root, ".", ".")
    setup_userns()
    cwd_type = uapi.TMPFS_MAGIC if cwd == "fchdir_to_overmount" else uapi.NULL_FS_MAGIC
    assert _run_in_empty(kind, body) == (cwd_type, uapi.NULL_FS_MAGIC, expected)
