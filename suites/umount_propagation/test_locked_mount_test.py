"""Twins of tools/testing/selftests/filesystems/umount_propagation/locked_mount_test.c
(fs/namespace.c lock_mnt_tree, can_move_mount_beneath): MNT_LOCKED is set on the copy that needs it,
survives expiry and propagation, and cannot be handed to a mount-namespace
file by MOVE_MOUNT_BENEATH.

The child that enters a user namespace uses upstream's local enter_userns():
unshare(CLONE_NEWUSER|CLONE_NEWNS), id maps, setuid(0), and no rprivate
(helpers.ns.enter_userns(mntns=True)).
Difference from upstream: the base directory is made under a tmpfs mounted
over /tmp in the test's own namespace (the host's /tmp is untouched)."""
import errno
import os
from types import SimpleNamespace

import pytest

from harness.upstream import upstream
from helpers.cleanup import scratch_dir
from helpers import sys as k
from helpers import uapi
from helpers.errors import raises_errno
from helpers.mounts import make_rprivate, tmpfs
from helpers.ns import enter_userns
from helpers.proc import Peer, in_child, waiting_child
from suites.umount_propagation.umount_propagation_debugfs import mount_debugfs, tracefs_automount

FILE = "filesystems/umount_propagation/locked_mount_test.c"
BENEATH = uapi.MOVE_MOUNT_F_EMPTY_PATH | uapi.MOVE_MOUNT_BENEATH


def write(path, text):
    with open(path, "w") as f:
        f.write(text)


def cannot_open(path):
    with raises_errno(errno.ENOENT, errno.EACCES, errno.EPERM):
        os.close(os.open(path, os.O_RDONLY))


@pytest.fixture
def env(defer):
    """FIXTURE_SETUP(locked_mount): tmpfs base (mode=0755) with debugfs on
    base/dbg (nosuid,nodev,noexec); .tracing says whether dbg/tracing is
    the tracefs automount point."""
    k.unshare(uapi.CLONE_NEWNS)
    make_rprivate("/")
    tmpfs("/tmp")
    base = scratch_dir(defer, prefix="locked_mount.")
    tmpfs(base, "mode=0755")
    os.mkdir(f"{base}/dbg")
    e = SimpleNamespace(base=base, dbg=f"{base}/dbg", tracing=False)
    try:
        mount_debugfs(e.dbg, uapi.MS_NOSUID | uapi.MS_NODEV | uapi.MS_NOEXEC)
        e.tracing = tracefs_automount(e.dbg)
    except pytest.skip.Exception as why:
        e.no_tracing = why.msg
    return e


def need_tracing(e):
    if not e.tracing:
        pytest.skip(getattr(e, "no_tracing", None) or
                    "needs the tracefs automount under debugfs (CONFIG_TRACING): dbg/tracing is missing")


def trigger_in_userns(dfd):
    enter_userns(mntns=True)
    os.stat("tracing/.", dir_fd=dfd)


def remount_bind(path):
    k.mount(None, path, None, uapi.MS_REMOUNT | uapi.MS_BIND)


def remount_is_eperm(path):
    with raises_errno(errno.EPERM):
        remount_bind(path)


@pytest.mark.root
@upstream(FILE, "locked_mount.automount_locked_in_the_triggering_namespace")
def test_automount_locked_in_the_triggering_namespace(env):
    """An automount triggered from a user namespace through the host's
    shared debugfs propagates into the child's copy with its flags locked:
    MS_REMOUNT|MS_BIND clearing nosuid/nodev/noexec is EPERM there, while
    the host may remount its own mount."""
    need_tracing(env)
    k.mount(None, env.dbg, None, uapi.MS_SHARED)
    dfd = os.open(env.dbg, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    tracing = f"{env.dbg}/tracing"
    with Peer() as child:
        child.run(trigger_in_userns, dfd)
        child.run(remount_is_eperm, tracing)
    remount_bind(tracing)


@pytest.mark.root
@pytest.mark.requires("move_mount_beneath", "move_mount_beneath_locked")
@upstream(FILE, "locked_mount.expiry_leaves_a_locked_mount_alone")
def test_expiry_leaves_a_locked_mount_alone(env):
    """A shrinkable bind moved beneath a locked cover takes the lock over and
    is not expired away by umount of its parent: the covered secret stays
    hidden.

    Moving beneath a locked mount is 7.x (6.18 refuses it with EINVAL);
    the move_mount_beneath_locked probe checks for that feature."""
    need_tracing(env)
    b = env.base
    os.mkdir(f"{b}/shr")
    k.mount(f"{env.dbg}/tracing", f"{b}/shr", None, uapi.MS_BIND)
    os.mkdir(f"{b}/srv")
    tmpfs(f"{b}/srv")
    os.mkdir(f"{b}/srv/hidden")
    write(f"{b}/srv/hidden/secret", "covered-by-root")
    tmpfs(f"{b}/srv/hidden")
    os.mkdir(f"{b}/x")
    os.mkdir(f"{b}/c")

    def child():
        enter_userns(mntns=True)
        k.mount(f"{b}/srv", f"{b}/x", None, uapi.MS_BIND | uapi.MS_REC)
        k.mount(f"{b}/shr", f"{b}/c", None, uapi.MS_BIND)
        with raises_errno(errno.EINVAL):
            k.umount2(f"{b}/x/hidden", 0)
        k.move_mount(uapi.AT_FDCWD, f"{b}/c", uapi.AT_FDCWD, f"{b}/x/hidden", uapi.MOVE_MOUNT_BENEATH)
        k.umount2(f"{b}/x/hidden", 0)
        with raises_errno(errno.EINVAL):
            k.umount2(f"{b}/x/hidden", 0)
        os.chdir(f"{b}/x")
        try:
            k.umount2(f"{b}/x", 0)      # result ignored, as upstream
        except OSError:
            pass
        cannot_open(f"{b}/x/hidden/secret")
    in_child(child)


@pytest.mark.root
@upstream(FILE, "locked_mount.umount_of_a_bind_leaves_a_locked_automount_alone")
def test_umount_of_a_bind_leaves_a_locked_automount_alone(env):
    """In a user namespace, an rbind of debugfs carries the locked tracefs
    automount: umount of it is EINVAL, umount of the (busy) bind is EBUSY,
    and the automount is still there afterwards."""
    need_tracing(env)
    b = env.base
    os.stat(f"{env.dbg}/tracing/.")
    os.mkdir(f"{b}/x")

    def child():
        enter_userns(mntns=True)
        k.mount(env.dbg, f"{b}/x", None, uapi.MS_BIND | uapi.MS_REC)
        with raises_errno(errno.EINVAL):
            k.umount2(f"{b}/x/tracing", 0)
        os.chdir(f"{b}/x")
        with raises_errno(errno.EBUSY):
            k.umount2(f"{b}/x", 0)
        st_x = os.stat(f"{b}/x")
        st_t = os.stat("tracing", dir_fd=os.open(f"{b}/x", os.O_PATH), follow_symlinks=False)
        assert st_t.st_dev != st_x.st_dev, "x/tracing is no longer a separate mount"
    in_child(child)


STATE = {}


def slave_cover_then_userns(p):
    """Peer M+Z: a slave namespace with a tmpfs over P/d (kept alive by an
    nsfs fd), then a user+mount namespace copy in which that cover is locked."""
    k.unshare(uapi.CLONE_NEWNS)
    k.mount(None, p, None, uapi.MS_SLAVE)
    tmpfs(f"{p}/d")
    STATE["m_ns"] = os.open("/proc/self/ns/mnt", os.O_RDONLY | os.O_CLOEXEC)
    enter_userns(mntns=True)
    with raises_errno(errno.EINVAL):
        k.umount2(f"{p}/d", 0)


def cover_still_locked(p):
    with raises_errno(errno.EINVAL):
        k.umount2(f"{p}/d", 0)
    cannot_open(f"{p}/d/secret")


@pytest.mark.root
@upstream(FILE, "locked_mount.propagated_copy_keeps_the_cover_locked")
def test_propagated_copy_keeps_the_cover_locked(env):
    """A host mount+umount on P/d propagates beneath the user namespace's
    locked cover; afterwards the cover is still locked and still hides P/d."""
    p = f"{env.base}/P"
    os.mkdir(p)
    tmpfs(p)
    k.mount(None, p, None, uapi.MS_SHARED)
    os.mkdir(f"{p}/d")
    write(f"{p}/d/secret", "covered-by-root")
    with Peer() as z:
        z.run(slave_cover_then_userns, p)
        tmpfs(f"{p}/d")
        k.umount2(f"{p}/d", 0)
        z.run(cover_still_locked, p)


def move_beneath(src, dst):
    fd = k.open_tree(uapi.AT_FDCWD, src, uapi.OPEN_TREE_CLONE | uapi.OPEN_TREE_CLOEXEC)
    try:
        k.move_mount(fd, "", uapi.AT_FDCWD, dst, BENEATH)
    finally:
        os.close(fd)


@pytest.mark.root
@pytest.mark.requires("move_mount_beneath", "move_mount_beneath_locked")
@upstream(FILE, "locked_mount.mount_namespace_file_cant_take_the_lock")
def test_mount_namespace_file_cant_take_the_lock(env):
    """MOVE_MOUNT_BENEATH of a mount-namespace file under a locked cover is
    EINVAL (every namespace copy would drop it and reveal the secret); a
    regular file may take the lock over.

    Moving beneath a locked mount is 7.x (6.18 refuses every source with
    EINVAL); the move_mount_beneath_locked probe checks for that feature."""
    p = f"{env.base}/P"
    os.mkdir(p)
    tmpfs(p)
    write(f"{p}/secret", "covered-by-root")
    write(f"{p}/empty", "")
    k.mount(f"{p}/empty", f"{p}/secret", None, uapi.MS_BIND)
    mine = f"{env.base}/mine"
    write(mine, "mine")

    def child():
        enter_userns(mntns=True)
        with raises_errno(errno.EINVAL):
            k.umount2(f"{p}/secret", 0)
        with waiting_child(lambda: k.unshare(uapi.CLONE_NEWNS)) as gc:
            with raises_errno(errno.EINVAL):
                move_beneath(f"/proc/{gc}/ns/mnt", f"{p}/secret")
        move_beneath(mine, f"{p}/secret")
        k.umount2(f"{p}/secret", 0)
        with raises_errno(errno.EINVAL):
            k.umount2(f"{p}/secret", 0)
        k.unshare(uapi.CLONE_NEWNS)
        with open(f"{p}/secret") as f:
            assert f.read() == "mine"
    in_child(child)
