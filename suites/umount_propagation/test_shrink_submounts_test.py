"""Twins of tools/testing/selftests/filesystems/umount_propagation/shrink_submounts_test.c
(fs/namespace.c shrink_submounts): shrinking expirable submounts (the tracefs automount under
debugfs and binds of it) during umount must not pull out a busy mount that
propagation or a move brought into reach, and must take the parent along
when it may.

Difference from upstream: the base directory is made under a tmpfs mounted
over /tmp in the test's own namespace (the host's /tmp is untouched)."""
import errno
import os
import tempfile

import pytest

from harness.upstream import upstream
from helpers.cleanup import scratch_dir
from helpers import sys as k
from helpers import uapi
from helpers import fanotify
from helpers.errors import errno_of, name, raises_errno
from helpers.mounts import bind, make_rprivate, mountinfo, set_propagation, tmpfs
from helpers.proc import blocked_step
from suites.umount_propagation.umount_propagation_debugfs import fs_type, mount_debugfs, require_tracefs_automount

FILE = "filesystems/umount_propagation/shrink_submounts_test.c"


def set_up_automount(make_base):
    """FIXTURE_SETUP(shrink_submounts): a namespace of our own with a tmpfs
    on /tmp, a private tmpfs base (make_base() makes the directory), debugfs
    on base/dbg, the tracefs automount triggered; returns (base, automount)."""
    k.unshare(uapi.CLONE_NEWNS)
    make_rprivate("/")
    tmpfs("/tmp")
    base = make_base()
    tmpfs(base)
    set_propagation(base, uapi.MS_PRIVATE)
    os.mkdir(f"{base}/dbg")
    mount_debugfs(f"{base}/dbg")
    require_tracefs_automount(f"{base}/dbg")
    return base, f"{base}/dbg/tracing"


@pytest.fixture
def automount(defer):
    """set_up_automount with the base removed at teardown."""
    return set_up_automount(lambda: scratch_dir(defer, prefix="shrink_submounts."))


def move_busy_mount_into_reach(base, auto):
    """busy_mount_moved_into_reach's mounts: P shared, P1 a shared slave of
    P, P2 its peer; B on P/options with copies on P1/options and
    P2/options; R, a tmpfs and our cwd, on the private P2/options; P moved
    to P1/instances. Returns (p1, r)."""
    p, p1, p2 = f"{base}/p", f"{base}/p1", f"{base}/p2"
    bind(auto, p, mkdir=True)
    set_propagation(p, uapi.MS_SHARED)
    bind(p, p1, mkdir=True)
    set_propagation(p1, uapi.MS_SLAVE)
    set_propagation(p1, uapi.MS_SHARED)
    bind(p1, p2, mkdir=True)
    bind(auto, f"{p}/options", mkdir=True)
    set_propagation(f"{p2}/options", uapi.MS_PRIVATE)
    r = f"{p2}/options"
    tmpfs(r)
    os.chdir(r)
    k.mount(p, f"{p1}/instances", None, uapi.MS_MOVE)
    return p1, r


@pytest.mark.root
@upstream(FILE, "shrink_submounts.busy_mount_moved_into_reach")
def test_busy_mount_moved_into_reach(automount):
    """umount2(p1, 0) is EBUSY when shrinking would pull out R, a busy tmpfs
    (our cwd) that a move brought under p1; R stays mounted and cwd intact.

    Upstream's optional fanotify watch (EXPECT only) is left out: with it a
    kernel that gets this wrong wedges (see
    test_busy_mount_moved_into_reach_watched_leaves_namespace_lock_free)."""
    p1, r = move_busy_mount_into_reach(*automount)
    assert fs_type(".") == "tmpfs"
    with raises_errno(errno.EBUSY):
        k.umount2(p1, 0)
    assert fs_type(".") == "tmpfs"
    assert os.getcwd() == r


# Mount operations take well under a second even under TCG; a step still
# running after this long is stuck in the kernel.
LOCK_DEADLINE_S = 30


def mount_operations_of_a_new_case(base):
    """What the next case's set-up does, in another process: the namespace
    writers unshare(CLONE_NEWNS) and mount/umount, then a mountinfo read."""
    return [("unshare(CLONE_NEWNS)", lambda: k.unshare(uapi.CLONE_NEWNS)),
            ("mount and umount a tmpfs", lambda: (tmpfs(base), k.umount2(base, 0))),
            ("reading /proc/self/mountinfo", lambda: mountinfo())]


@pytest.mark.root
@pytest.mark.vm_only
@pytest.mark.disruptive("the kernel's mount-namespace lock: a kernel with the defect leaves "
                        "namespace_sem held and every later mount operation blocks")
@pytest.mark.alone("a kernel with the defect never releases namespace_sem")
@pytest.mark.requires("mount_notify")
@upstream(FILE, "shrink_submounts.busy_mount_moved_into_reach")
def test_busy_mount_moved_into_reach_watched_leaves_namespace_lock_free():
    """Upstream's busy_mount_moved_into_reach as upstream runs it, with a
    fanotify mount watch (FAN_MARK_MNTNS, FAN_MNT_ATTACH|FAN_MNT_DETACH) on
    the namespace "so that the detached mounts get queued": whatever
    umount2(p1, 0) returns (its errno is test_busy_mount_moved_into_reach's
    business), mount operations in another process complete afterwards.

    With a watch, umount_tree() queues each mount it takes on the global
    notify_list (fs/mount.h mnt_notify_add()), and namespace_unlock() walks
    that list after downgrading namespace_sem to read (fs/namespace.c
    notify_mnt_list(), mnt_notify()). Kernels whose shrink_submounts()
    unmounts the busy R (fixed by 'namespace: check a submount for
    references right before unmounting it', 7.2.11) leave notify_list
    corrupt: the next namespace_unlock() in any process WARNs in
    fsnotify_mnt() (fs/notify/fsnotify.c: a queued mount with neither a
    namespace nor a previous one) and loops in notify_mnt_list() with
    namespace_sem held ("list_del corruption, ...->next is NULL" a minute
    later), so unshare(CLONE_NEWNS) and mounting block for good, and so
    does reading mountinfo once a writer waits (seen on 7.1.13; without
    the watch nothing is queued and nothing hangs).

    The steps run in a child with a deadline: a step that never returns
    FAILs this case with the step named, and the harness then reports the
    child, which SIGKILL cannot end, as stuck in the kernel (a hang of the
    kernel blamed on this case in the VM runner's report). It runs after
    every other case of the run, with none beside it (the alone marker): on
    a kernel it wedges, every other case has its verdict. No teardown:
    everything is mounted in the test process's own namespace (on a tmpfs
    over /tmp) and goes with it; after a failed check any mount operation
    here would block."""
    base, auto = set_up_automount(lambda: tempfile.mkdtemp(prefix="shrink_submounts.", dir="/tmp"))
    ns_fd = os.open("/proc/self/ns/mnt", os.O_RDONLY | os.O_CLOEXEC)
    watch = fanotify.Group(ns_fd)
    os.close(ns_fd)
    p1, _ = move_busy_mount_into_reach(base, auto)
    result = name(errno_of(k.umount2, p1, 0))
    blocked = blocked_step(mount_operations_of_a_new_case(base), LOCK_DEADLINE_S)
    assert blocked is None, (
        f"{blocked[0]} in another process blocked for {blocked[1]} s after a watched "
        f"umount2(p1, 0) ({result}) shrank the submounts: namespace_sem never released")
    watch.close()


@pytest.mark.root
@upstream(FILE, "shrink_submounts.parent_goes_with_child")
def test_parent_goes_with_child(automount):
    """umount2(v, 0) succeeds when everything below v is shrinkable, even
    after T was moved under its own slave Q: v is really gone afterwards."""
    base, auto = automount
    v = f"{base}/v"
    os.mkdir(v)
    tmpfs(v)
    set_propagation(v, uapi.MS_PRIVATE)
    before = os.stat(v).st_dev
    bind(auto, f"{v}/t", mkdir=True)
    set_propagation(f"{v}/t", uapi.MS_SHARED)
    bind(auto, f"{v}/t/options", mkdir=True)
    bind(f"{v}/t", f"{v}/q", mkdir=True)
    set_propagation(f"{v}/q", uapi.MS_SLAVE)
    k.mount(f"{v}/t", f"{v}/q/options", None, uapi.MS_MOVE)
    k.umount2(v, 0)
    assert os.stat(v).st_dev != before
