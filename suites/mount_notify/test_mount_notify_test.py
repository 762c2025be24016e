"""Twins of tools/testing/selftests/filesystems/mount-notify/mount-notify_test.c:
fanotify mount notifications (FAN_MARK_MNTNS, FAN_MNT_ATTACH/DETACH) in a
mount namespace of the initial user namespace (fs/notify/fanotify/fanotify_user.c).

Difference from upstream: the temporary root is made under a tmpfs mounted
over /tmp inside the test's own mount namespace, so nothing is created in
the host's /tmp."""
import os
from types import SimpleNamespace

import pytest

from harness.upstream import upstream
from helpers import sys as k
from helpers import uapi
from helpers.mounts import make_rprivate
from suites.mount_notify.mount_notify_cases import CASES
from suites.mount_notify.mount_notify_events import Watch, chrooted_tmpfs_root

FILE = "filesystems/mount-notify/mount-notify_test.c"


@pytest.fixture
def env(defer):
    """FIXTURE_SETUP(fanotify): new mount ns, chroot into a tmpfs with a and
    b, three watching groups (one double-added, one removed, one flushed)."""
    k.unshare(uapi.CLONE_NEWNS)
    ns_fd = os.open("/proc/self/ns/mnt", os.O_RDONLY | os.O_CLOEXEC)
    make_rprivate("/")
    chrooted_tmpfs_root(defer)
    e = SimpleNamespace(root_id=k.mnt_id_unique("/"), watch=Watch(ns_fd))
    yield e
    assert e.watch.unread() == 0, "events left unread"
    e.watch.close()


@pytest.mark.root
@pytest.mark.requires("mount_notify")
@pytest.mark.parametrize("case", [
    pytest.param(name, marks=upstream(FILE, f"fanotify.{name}"), id=name)
    for name in CASES])
def test_mount_event(env, case):
    """Each upstream scenario: the exact ATTACH/DETACH (or ATTACH|DETACH for a
    move) events, and listmount agreeing with them (mount_notify_cases.py)."""
    CASES[case](env)
