"""fanotify mount-notification rules past upstream (fs/notify/fanotify/
fanotify_user.c fanotify_init, do_fanotify_mark): which groups and marks FAN_REPORT_MNT accepts, who may watch
which mount namespace, and that only the watched namespace reports.

Each test first gets CAP_SYS_ADMIN over its mount namespace: as root it is
already in a private copy; otherwise it enters a user+mount namespace."""
import errno
import os

import pytest

from helpers import sys as k
from helpers import uapi
from helpers.errors import raises_errno
from helpers.mounts import make_rprivate, tmpfs
from helpers.ns import enter_userns, mount_admin
from helpers.proc import in_child
from helpers.fanotify import ATTACH, DETACH, Group, init, mark


def own_ns_fd():
    return os.open("/proc/self/ns/mnt", os.O_RDONLY | os.O_CLOEXEC)


@pytest.mark.userns
@pytest.mark.requires("mount_notify")
def test_report_mnt_with_report_fid_is_einval():
    """FAN_REPORT_MNT excludes every FID reporting bit: EINVAL."""
    mount_admin()
    with raises_errno(errno.EINVAL):
        init(uapi.FAN_REPORT_MNT | uapi.FAN_REPORT_FID | uapi.FAN_NONBLOCK)


@pytest.mark.root
@pytest.mark.requires("mount_notify")
def test_report_mnt_needs_notification_class():
    """FAN_REPORT_MNT only with FAN_CLASS_NOTIF: FAN_CLASS_CONTENT is EINVAL."""
    with raises_errno(errno.EINVAL):
        init(uapi.FAN_REPORT_MNT | uapi.FAN_CLASS_CONTENT)


@pytest.mark.userns
@pytest.mark.requires("mount_notify")
@pytest.mark.parametrize("mark_type", [uapi.FAN_MARK_INODE, uapi.FAN_MARK_MOUNT, uapi.FAN_MARK_FILESYSTEM],
                         ids=["inode", "mount", "filesystem"])
def test_report_mnt_group_takes_only_mntns_marks(mark_type):
    """A FAN_REPORT_MNT group accepts only FAN_MARK_MNTNS: inode, mount and
    filesystem marks (even for ATTACH/DETACH) are EINVAL."""
    mount_admin()
    g = Group()
    with raises_errno(errno.EINVAL):
        k.syscall("fanotify_mark", g.fd, uapi.FAN_MARK_ADD | mark_type,
                  ATTACH | DETACH, uapi.AT_FDCWD, "/tmp")


@pytest.mark.userns
@pytest.mark.requires("mount_notify")
@pytest.mark.parametrize("mask", [uapi.FAN_OPEN, ATTACH | uapi.FAN_OPEN, 0x04000000],
                         ids=["open", "attach_and_open", "undefined_mnt_bit"])
def test_mntns_mark_takes_only_mount_events(mask):
    """On a mntns mark, mask bits other than FAN_MNT_ATTACH|FAN_MNT_DETACH are EINVAL."""
    mount_admin()
    g = Group()
    with raises_errno(errno.EINVAL):
        mark(g.fd, uapi.FAN_MARK_ADD, own_ns_fd(), mask)


@pytest.mark.userns
@pytest.mark.requires("mount_notify")
def test_mntns_mark_needs_a_report_mnt_group():
    """A FID group (no FAN_REPORT_MNT) cannot add a FAN_MARK_MNTNS mark: EINVAL."""
    mount_admin()
    fd = k.syscall("fanotify_init", uapi.FAN_REPORT_FID | uapi.FAN_NONBLOCK, 0)
    with raises_errno(errno.EINVAL):
        mark(fd, uapi.FAN_MARK_ADD, own_ns_fd())


@pytest.mark.userns
@pytest.mark.requires("mount_notify")
@pytest.mark.parametrize("path", ["/proc/self/ns/net", "/tmp"], ids=["netns_fd", "directory"])
def test_mntns_mark_object_must_be_a_mntns_fd(path):
    """The object of a FAN_MARK_MNTNS mark must be a mount-namespace fd:
    another namespace's fd or a directory is EINVAL."""
    mount_admin()
    g = Group()
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    with raises_errno(errno.EINVAL):
        mark(g.fd, uapi.FAN_MARK_ADD, fd)


@pytest.mark.userns
@pytest.mark.requires("mount_notify")
def test_group_in_child_userns_cannot_watch_parent_mntns():
    """A group made inside a user namespace may watch its own mount namespace
    but not one owned by an ancestor: EPERM (CAP_SYS_ADMIN over the owner)."""
    mount_admin()
    parent_ns = own_ns_fd()

    def child():
        enter_userns(mntns=True)
        g = Group()
        with raises_errno(errno.EPERM):
            mark(g.fd, uapi.FAN_MARK_ADD, parent_ns)
        mark(g.fd, uapi.FAN_MARK_ADD, own_ns_fd())
    in_child(child)


@pytest.mark.userns
@pytest.mark.requires("mount_notify")
def test_mounts_in_another_namespace_are_not_reported():
    """Only the marked namespace reports: a mount and umount in a private
    child namespace give no event; one in the marked namespace does."""
    mount_admin()
    g = Group(own_ns_fd())
    os.mkdir("x")

    def child():
        k.unshare(uapi.CLONE_NEWNS)
        make_rprivate("/")
        tmpfs("/tmp/x")
        k.umount2("/tmp/x", 0)
    in_child(child)
    g.expect_nothing()
    tmpfs("x")
    assert g.next() == (ATTACH, k.mnt_id_unique("x"))
    g.expect_nothing()


@pytest.mark.userns
@pytest.mark.requires("mount_notify")
def test_removed_mark_stops_events():
    """FAN_MARK_REMOVE of the mntns mark: later mounts are not reported."""
    mount_admin()
    ns = own_ns_fd()
    g = Group(ns)
    mark(g.fd, uapi.FAN_MARK_REMOVE, ns)
    os.mkdir("x")
    tmpfs("x")
    g.expect_nothing()


@pytest.mark.userns
@pytest.mark.requires("mount_notify")
def test_detach_mask_only_reports_detach_and_move():
    """A mark for FAN_MNT_DETACH alone gets no ATTACH event; a move is still
    reported, with its mask cut down to the marked bit (DETACH only)."""
    mount_admin()
    g = Group()
    mark(g.fd, uapi.FAN_MARK_ADD, own_ns_fd(), DETACH)
    os.mkdir("x")
    os.mkdir("y")
    tmpfs("x")
    mnt = k.mnt_id_unique("x")
    g.expect_nothing()
    k.move_mount(uapi.AT_FDCWD, "x", uapi.AT_FDCWD, "y", 0)
    mask, got = g.next()
    assert (mask, got) == (DETACH, mnt), (hex(mask), got)
    k.umount2("y", 0)
    assert g.next() == (DETACH, mnt)
