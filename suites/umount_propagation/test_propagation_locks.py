"""umount propagation and MNT_LOCKED through propagation, user namespaces and
OPEN_TREE_NAMESPACE / FSMOUNT_NAMESPACE namespaces, past upstream
(fs/namespace.c create_new_namespace, lock_mnt_tree, do_umount; fs/pnode.c
propagate_umount).

Each test first gets CAP_SYS_ADMIN over its mount namespace: as root it is
already in a private copy; otherwise it enters a user+mount namespace
(setup_userns), where everything it mounts itself is unlocked."""
import errno
import os

import pytest

from helpers import sys as k
from helpers import uapi
from helpers.errors import raises_errno
from helpers.mounts import bind, set_propagation, shared_pair, statmount, tmpfs
from helpers.ns import enter_userns, mount_admin, new_mntns
from helpers.proc import Peer, in_child

STATE = {}


def mkmount(path):
    os.makedirs(path, exist_ok=True)
    tmpfs(path)
    return k.mnt_id_unique(path)


def is_mountpoint(path, parent):
    return k.mnt_id_unique(path) != k.mnt_id_unique(parent)


def shared_pair_a_b(relation="peer"):
    """/tmp/A shared, /tmp/B its peer or slave (a bind of it), /tmp/A/x a directory."""
    os.mkdir("/tmp/A")
    os.mkdir("/tmp/B")
    shared_pair("/tmp/A", "/tmp/B", relation)
    os.mkdir("/tmp/A/x")


# --- umount propagation between peers, masters and slaves --------------------

@pytest.mark.userns
def test_umount_on_a_shared_peer_propagates_to_its_peers():
    """A mount made on peer A appears on peer B; umount on B removes both."""
    mount_admin()
    shared_pair_a_b()
    tmpfs("/tmp/A/x")
    assert is_mountpoint("/tmp/B/x", "/tmp/B")
    k.umount2("/tmp/B/x", 0)
    assert not is_mountpoint("/tmp/A/x", "/tmp/A")
    assert not is_mountpoint("/tmp/B/x", "/tmp/B")


@pytest.mark.userns
def test_umount_on_a_master_propagates_to_its_slave():
    """umount of a mount under a master removes the copy under its slave."""
    mount_admin()
    shared_pair_a_b("slave")
    tmpfs("/tmp/A/x")
    assert is_mountpoint("/tmp/B/x", "/tmp/B")
    k.umount2("/tmp/A/x", 0)
    assert not is_mountpoint("/tmp/B/x", "/tmp/B")


@pytest.mark.userns
def test_umount_on_a_slave_does_not_reach_its_master():
    """umount of the propagated copy under a slave leaves the master's mount."""
    mount_admin()
    shared_pair_a_b("slave")
    tmpfs("/tmp/A/x")
    k.umount2("/tmp/B/x", 0)
    assert is_mountpoint("/tmp/A/x", "/tmp/A")
    assert not is_mountpoint("/tmp/B/x", "/tmp/B")


def hold_slave_copy(path):
    """Peer: private-to-slave copy of the namespace, cwd inside the copy of path."""
    new_mntns(uapi.MS_SLAVE)
    os.chdir(path)
    return k.mnt_id_unique(".")


def cwd_mount():
    return k.mnt_id_unique(".")


@pytest.mark.userns
def test_umount_with_a_busy_slave_copy_is_ebusy_and_detach_works():
    """A synchronous umount that would also remove a busy copy in a slave
    namespace (a process's cwd) is EBUSY and removes nothing; MNT_DETACH
    succeeds and takes the slave's copy out of its tree too."""
    mount_admin()
    mkmount("/tmp/A")
    set_propagation("/tmp/A", uapi.MS_SHARED)
    mkmount("/tmp/A/x")
    with Peer() as slave:
        slave.run(hold_slave_copy, "/tmp/A/x")
        with raises_errno(errno.EBUSY):
            k.umount2("/tmp/A/x", 0)
        assert is_mountpoint("/tmp/A/x", "/tmp/A")
        k.umount2("/tmp/A/x", uapi.MNT_DETACH)
        assert not is_mountpoint("/tmp/A/x", "/tmp/A")


# --- MNT_LOCKED in copies owned by another user namespace ---------------------

def locked_copy_setup():
    """/tmp/P shared with a tmpfs on P/d, then (in a child) a user+mount
    namespace: its copies of P and P/d are slaves, P/d is MNT_LOCKED."""
    mkmount("/tmp/P")
    set_propagation("/tmp/P", uapi.MS_SHARED)
    mkmount("/tmp/P/d")
    os.mkdir("/tmp/P/e")


def enter_locked_copy():
    enter_userns(mntns=True)


@pytest.mark.userns
@pytest.mark.parametrize("flags", [0, uapi.MNT_DETACH], ids=["sync", "detach"])
def test_locked_mount_in_a_userns_slave_copy_cannot_be_unmounted(flags):
    """In a namespace copied into a new user namespace, the copy of a
    mount that covers something is MNT_LOCKED: umount2 is EINVAL."""
    mount_admin()
    locked_copy_setup()

    def child():
        enter_locked_copy()
        with raises_errno(errno.EINVAL):
            k.umount2("/tmp/P/d", flags)
        assert is_mountpoint("/tmp/P/d", "/tmp/P")
    in_child(child)


def umount_e():
    k.umount2("/tmp/P/e", 0)
    return is_mountpoint("/tmp/P/e", "/tmp/P")


def umount_sub_is_einval():
    with raises_errno(errno.EINVAL):
        k.umount2("/tmp/P/z/s", 0)
    return is_mountpoint("/tmp/P/z/s", "/tmp/P/z")


@pytest.mark.userns
def test_mount_propagated_into_a_userns_copy_is_not_locked():
    """A mount the master makes after the copy propagates into the user
    namespace's slave copy as an unlocked top: it may be unmounted there,
    and only there."""
    mount_admin()
    locked_copy_setup()
    with Peer() as child:
        child.run(enter_locked_copy)
        tmpfs("/tmp/P/e")
        assert child.run(umount_e) is False
    assert is_mountpoint("/tmp/P/e", "/tmp/P")


@pytest.mark.userns
def test_submounts_propagated_into_a_userns_copy_are_locked():
    """A tree the master attaches later (an rbind with a submount) arrives in
    the user namespace's copy with its submount MNT_LOCKED: EINVAL."""
    mount_admin()
    locked_copy_setup()
    mkmount("/tmp/T")
    mkmount("/tmp/T/s")
    with Peer() as child:
        child.run(enter_locked_copy)
        bind("/tmp/T", "/tmp/P/z", recursive=True, mkdir=True)
        assert child.run(umount_sub_is_einval) is True


# --- OPEN_TREE_NAMESPACE / FSMOUNT_NAMESPACE ----------------------------------

def tree_with_submount(path="/tmp/src"):
    mkmount(path)
    mkmount(f"{path}/sub")
    os.mkdir(f"{path}/x")


@pytest.mark.userns
@pytest.mark.requires("open_tree_namespace")
def test_foreign_open_tree_namespace_locks_the_copied_submounts():
    """A caller outside the user namespace that owns its mount namespace
    ("foreign", after unshare(CLONE_NEWUSER) alone) gets a namespace whose
    copied mounts are all MNT_LOCKED: umount of a submount is EINVAL, with
    or without MNT_DETACH."""
    mount_admin()
    tree_with_submount()
    enter_userns()
    ns_fd = k.open_tree(uapi.AT_FDCWD, "/tmp/src",
                        uapi.OPEN_TREE_NAMESPACE | uapi.AT_RECURSIVE | uapi.OPEN_TREE_CLOEXEC)
    k.setns(ns_fd, uapi.CLONE_NEWNS)
    for flags in (0, uapi.MNT_DETACH):
        with raises_errno(errno.EINVAL):
            k.umount2("/sub", flags)


@pytest.mark.userns
@pytest.mark.requires("open_tree_namespace")
def test_foreign_open_tree_namespace_refuses_a_non_recursive_copy_with_submounts():
    """Foreign and non-recursive with something mounted below the path: EINVAL."""
    mount_admin()
    tree_with_submount()
    enter_userns()
    with raises_errno(errno.EINVAL):
        k.open_tree(uapi.AT_FDCWD, "/tmp/src", uapi.OPEN_TREE_NAMESPACE | uapi.OPEN_TREE_CLOEXEC)


@pytest.mark.userns
@pytest.mark.requires("open_tree_namespace")
def test_own_open_tree_namespace_submounts_can_be_unmounted():
    """Made by the owner of the source namespace, the copied submounts are
    not locked: umount of one succeeds inside the new namespace."""
    mount_admin()
    tree_with_submount()
    ns_fd = k.open_tree(uapi.AT_FDCWD, "/tmp/src",
                        uapi.OPEN_TREE_NAMESPACE | uapi.AT_RECURSIVE | uapi.OPEN_TREE_CLOEXEC)
    k.setns(ns_fd, uapi.CLONE_NEWNS)
    k.umount2("/sub", 0)
    assert not is_mountpoint("/sub", "/")


@pytest.mark.userns
@pytest.mark.requires("open_tree_namespace")
def test_foreign_open_tree_namespace_copy_of_a_shared_mount_is_a_slave():
    """Foreign copies are made with CL_SLAVE: a mount the source namespace
    adds later under the shared source appears inside the new namespace, and
    its umount there propagates the removal too."""
    mount_admin()
    tree_with_submount()
    set_propagation("/tmp/src", uapi.MS_SHARED)

    with Peer() as p:
        p.run(_foreign_ns_and_enter)
        tmpfs("/tmp/src/x")
        assert p.run(is_mountpoint, "/x", "/") is True
        k.umount2("/tmp/src/x", 0)
        assert p.run(is_mountpoint, "/x", "/") is False


def _foreign_ns_and_enter():
    enter_userns()
    ns_fd = k.open_tree(uapi.AT_FDCWD, "/tmp/src",
                        uapi.OPEN_TREE_NAMESPACE | uapi.AT_RECURSIVE | uapi.OPEN_TREE_CLOEXEC)
    k.setns(ns_fd, uapi.CLONE_NEWNS)


@pytest.mark.root
@pytest.mark.requires("fsmount_namespace")
def test_fsmount_namespace_top_mount_can_be_detached_by_its_owner():
    """The fresh mount on top of an FSMOUNT_NAMESPACE namespace's nullfs root
    is not locked when the caller's root stack is unlocked:
    umount2("/", MNT_DETACH) succeeds after setns, and "/" then is the
    nullfs root (its own parent).

    root only: the fsmount_namespace probe misreports for non-root on 6.18."""
    fsfd = k.fsopen("tmpfs", uapi.FSOPEN_CLOEXEC)
    k.fsconfig(fsfd, uapi.FSCONFIG_CMD_CREATE)
    ns_fd = k.fsmount(fsfd, uapi.FSMOUNT_NAMESPACE | uapi.FSMOUNT_CLOEXEC, 0)
    k.setns(ns_fd, uapi.CLONE_NEWNS)
    top = k.mnt_id_unique("/")
    k.umount2("/", uapi.MNT_DETACH)
    with raises_errno(errno.ENOENT):
        statmount(top, uapi.STATMOUNT_MNT_BASIC)
