"""Mount notifications in namespaces made by open_tree(OPEN_TREE_NAMESPACE)
and fsmount(FSMOUNT_NAMESPACE) (fs/namespace.c create_new_namespace,
fs/notify/fanotify/fanotify_user.c fanotify_mark).

The returned nsfs fd is a mount-namespace fd: it can be the object of a
FAN_MARK_MNTNS mark, by a caller with CAP_SYS_ADMIN over the namespace's
owner (the creator's user namespace). No process lives in such a namespace
until one setns()es into it."""
import errno
import os

import pytest

from helpers import sys as k
from helpers import uapi
from helpers.errors import raises_errno
from helpers.mounts import detached_fs, tmpfs
from helpers.ns import enter_userns, mount_admin, setup_userns
from helpers.proc import in_child
from helpers.fanotify import ATTACH, DETACH, MOVE, Group, mark


def tree_namespace(path="/tmp/src"):
    """An OPEN_TREE_NAMESPACE namespace whose "/" is a copy of a tmpfs with a/ b/."""
    os.mkdir(path)
    tmpfs(path)
    os.mkdir(f"{path}/a")
    os.mkdir(f"{path}/b")
    return k.open_tree(uapi.AT_FDCWD, path, uapi.OPEN_TREE_NAMESPACE | uapi.OPEN_TREE_CLOEXEC)


@pytest.mark.userns
@pytest.mark.requires("mount_notify", "open_tree_namespace")
def test_attach_move_detach_reported_inside_open_tree_namespace():
    """A group marking an OPEN_TREE_NAMESPACE fd sees, after setns into it,
    ATTACH for a new mount, one ATTACH|DETACH event for a move, and DETACH
    for the umount, each with the mount's unique id."""
    mount_admin()
    ns_fd = tree_namespace()
    g = Group(ns_fd)
    k.setns(ns_fd, uapi.CLONE_NEWNS)
    tmpfs("/a")
    mnt = k.mnt_id_unique("/a")
    assert g.next() == (ATTACH, mnt)
    k.move_mount(uapi.AT_FDCWD, "/a", uapi.AT_FDCWD, "/b", 0)
    assert g.next() == (MOVE, mnt)
    k.umount2("/b", 0)
    assert g.next() == (DETACH, mnt)
    g.expect_nothing()


@pytest.mark.userns
@pytest.mark.requires("mount_notify", "open_tree_namespace")
def test_open_tree_namespace_watch_ignores_the_creators_namespace():
    """Mounts in the namespace open_tree() was called from are not reported
    to a group watching the new namespace (and the copy itself made no event)."""
    mount_admin()
    ns_fd = tree_namespace()
    g = Group(ns_fd)
    tmpfs("/tmp/src/a")
    k.umount2("/tmp/src/a", 0)
    g.expect_nothing()


@pytest.mark.userns
@pytest.mark.requires("mount_notify", "open_tree_namespace")
def test_open_tree_namespace_mark_needs_admin_over_its_owner():
    """The namespace is owned by its creator's user namespace: a group made
    in a child user namespace cannot mark it (EPERM), while a namespace the
    child creates itself can be marked."""
    mount_admin()
    ns_fd = tree_namespace()

    def child():
        enter_userns(mntns=True)
        g = Group()
        with raises_errno(errno.EPERM):
            mark(g.fd, uapi.FAN_MARK_ADD, ns_fd)
        tmpfs("/tmp/src/b")
        own = k.open_tree(uapi.AT_FDCWD, "/tmp/src/b",
                          uapi.OPEN_TREE_NAMESPACE | uapi.OPEN_TREE_CLOEXEC)
        mark(g.fd, uapi.FAN_MARK_ADD, own)
    in_child(child)


@pytest.mark.root
@pytest.mark.requires("mount_notify", "open_tree_namespace")
def test_detaching_the_top_mount_of_an_unlocked_tree_namespace_is_reported():
    """Made from an unlocked namespace, the new namespace's top mount (the
    caller's "/" after setns) may be lazily unmounted: one DETACH event for it."""
    mount_admin()
    ns_fd = tree_namespace()
    g = Group(ns_fd)
    k.setns(ns_fd, uapi.CLONE_NEWNS)
    top = k.mnt_id_unique("/")
    k.umount2("/", uapi.MNT_DETACH)
    assert g.next() == (DETACH, top)
    g.expect_nothing()


@pytest.mark.userns
@pytest.mark.requires("mount_notify", "open_tree_namespace")
def test_locked_top_mount_of_tree_namespace_is_not_detached():
    """Made from a user-namespace copy (whose root stack is MNT_LOCKED), the
    new namespace's top mount is locked: umount2("/", MNT_DETACH) is EINVAL
    and nothing is reported."""
    setup_userns()
    tmpfs("/tmp")
    ns_fd = tree_namespace()
    g = Group(ns_fd)
    k.setns(ns_fd, uapi.CLONE_NEWNS)
    with raises_errno(errno.EINVAL):
        k.umount2("/", uapi.MNT_DETACH)
    g.expect_nothing()


@pytest.mark.root
@pytest.mark.requires("mount_notify", "fsmount_namespace")
def test_attach_detach_reported_inside_fsmount_namespace():
    """FSMOUNT_NAMESPACE returns a mount-namespace fd that can be marked:
    mounts made inside it after setns are reported with their ids.

    root only: the fsmount_namespace probe misreports for non-root on 6.18
    (fsmount checks may_mount() before its flags there; see the report)."""
    fsfd = k.fsopen("tmpfs", uapi.FSOPEN_CLOEXEC)
    k.fsconfig(fsfd, uapi.FSCONFIG_CMD_CREATE)
    ns_fd = k.fsmount(fsfd, uapi.FSMOUNT_NAMESPACE | uapi.FSMOUNT_CLOEXEC, 0)
    g = Group(ns_fd)
    k.setns(ns_fd, uapi.CLONE_NEWNS)
    os.mkdir("/a")
    mfd = detached_fs()
    k.move_mount(mfd, "", uapi.AT_FDCWD, "/a", uapi.MOVE_MOUNT_F_EMPTY_PATH)
    os.close(mfd)       # an open mount fd would keep the mount busy (EBUSY)
    mnt = k.mnt_id_unique("/a")
    assert g.next() == (ATTACH, mnt)
    k.umount2("/a", 0)
    assert g.next() == (DETACH, mnt)
    g.expect_nothing()
