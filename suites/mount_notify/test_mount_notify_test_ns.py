"""Twins of tools/testing/selftests/filesystems/mount-notify/mount-notify_test_ns.c:
the same scenarios as mount-notify_test.c, watched from inside a user
namespace that owns the watched mount namespace (fs/notify/fanotify/fanotify_user.c
do_fanotify_mark).

Difference from upstream: the temporary root is made under a tmpfs mounted
over /tmp inside the new mount namespace, so nothing is created in the
host's /tmp (upstream creates a directory there)."""
import errno
import os
from types import SimpleNamespace

import pytest

from harness.upstream import upstream
from helpers import sys as k
from helpers import uapi
from helpers.errors import raises_errno
from helpers.fanotify import mark
from helpers.ns import setup_userns
from suites.mount_notify.mount_notify_cases import CASES
from suites.mount_notify.mount_notify_events import Watch, chrooted_tmpfs_root

FILE = "filesystems/mount-notify/mount-notify_test_ns.c"


def fid_group_checks(orig_root):
    """Upstream's extra setup: a FAN_REPORT_FID group may mark the userns-owned
    tmpfs "/" for FAN_OPEN with every mark type, and may not mark the
    original root's filesystem (owned by an ancestor user namespace)."""
    for mark_type in (uapi.FAN_MARK_FILESYSTEM, uapi.FAN_MARK_MOUNT, uapi.FAN_MARK_INODE):
        fd = k.fanotify_init(uapi.FAN_REPORT_FID, 0)
        try:
            k.fanotify_mark(fd, uapi.FAN_MARK_ADD | mark_type, uapi.FAN_OPEN, uapi.AT_FDCWD, "/")
            # Upstream only asks for failure. Which errno depends on the
            # original root's filesystem: EPERM (no CAP_SYS_ADMIN over its
            # owner) on a disk fs; ENODEV/EOPNOTSUPP/EXDEV first where it
            # cannot report file ids (virtiofs as a VM guest's root).
            with raises_errno(errno.EPERM, errno.EINVAL, errno.EACCES, errno.ENODEV,
                              errno.EOPNOTSUPP, errno.EXDEV):
                k.fanotify_mark(fd, uapi.FAN_MARK_ADD | uapi.FAN_MARK_FILESYSTEM,
                                uapi.FAN_OPEN, orig_root, ".")
        finally:
            os.close(fd)


@pytest.fixture
def env(defer):
    """FIXTURE_SETUP(fanotify) of the _ns program: setup_userns(), chroot into
    a tmpfs, groups that may mark the new mntns but not the original one."""
    orig_ns_fd = os.open("/proc/self/ns/mnt", os.O_RDONLY | os.O_CLOEXEC)
    setup_userns()
    ns_fd = os.open("/proc/self/ns/mnt", os.O_RDONLY | os.O_CLOEXEC)
    orig_root = chrooted_tmpfs_root(defer)
    fid_group_checks(orig_root)
    watch = Watch(ns_fd)
    for g in watch.groups:
        with raises_errno(errno.EPERM):
            mark(g.fd, uapi.FAN_MARK_ADD, orig_ns_fd)
    e = SimpleNamespace(root_id=k.mnt_id_unique("/"), watch=watch)
    yield e
    assert e.watch.unread() == 0, "events left unread"
    e.watch.close()


@pytest.mark.userns
@pytest.mark.requires("mount_notify")
@pytest.mark.parametrize("case", [
    pytest.param(name, marks=upstream(FILE, f"fanotify.{name}"), id=name)
    for name in CASES])
def test_mount_event_in_userns(env, case):
    """Each upstream scenario, watched by groups created inside the user
    namespace that owns the mount namespace (mount_notify_cases.py)."""
    CASES[case](env)
