"""Twins of tools/testing/selftests/filesystems/umount_propagation/shrink_submounts_test.c
(fs/namespace.c shrink_submounts): shrinking expirable submounts (the tracefs automount under
debugfs and binds of it) during umount must not pull out a busy mount that
propagation or a move brought into reach, and must take the parent along
when it may.

Difference from upstream: the base directory is made under a tmpfs mounted
over /tmp in the test's own namespace (the host's /tmp is untouched)."""
import errno
import os

import pytest

from harness.upstream import upstream
from helpers.cleanup import scratch_dir
from helpers import sys as k
from helpers import uapi
from helpers.errors import raises_errno
from helpers.mounts import bind, make_rprivate, set_propagation, tmpfs
from suites.umount_propagation.umount_propagation_debugfs import fs_type, mount_debugfs, require_tracefs_automount

FILE = "filesystems/umount_propagation/shrink_submounts_test.c"


@pytest.fixture
def automount(defer):
    """FIXTURE_SETUP(shrink_submounts): private tmpfs base, debugfs on
    base/dbg, the tracefs automount triggered; returns (base, automount)."""
    k.unshare(uapi.CLONE_NEWNS)
    make_rprivate("/")
    tmpfs("/tmp")
    base = scratch_dir(defer, prefix="shrink_submounts.")
    tmpfs(base)
    set_propagation(base, uapi.MS_PRIVATE)
    os.mkdir(f"{base}/dbg")
    mount_debugfs(f"{base}/dbg")
    require_tracefs_automount(f"{base}/dbg")
    return base, f"{base}/dbg/tracing"


@pytest.mark.root
@upstream(FILE, "shrink_submounts.busy_mount_moved_into_reach")
def test_busy_mount_moved_into_reach(automount):
    """umount2(p1, 0) is EBUSY when shrinking would pull out R, a busy tmpfs
    (our cwd) that a move brought under p1; R stays mounted and cwd intact.

    Upstream's optional fanotify watch (EXPECT only) is left out."""
    base, auto = automount
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
    assert fs_type(".") == "tmpfs"
    with raises_errno(errno.EBUSY):
        k.umount2(p1, 0)
    assert fs_type(".") == "tmpfs"
    assert os.getcwd() == r


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
