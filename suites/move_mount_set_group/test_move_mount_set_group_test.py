"""Twins of tools/testing/selftests/move_mount_set_group/move_mount_set_group_test.c
(fs/namespace.c do_set_group): MOVE_MOUNT_SET_GROUP copies the peer group
(shared / slave) of one mount onto a private mount of the same superblock.

Differences from upstream, on purpose:
- Upstream's support probe returns -1 through a bool on every setup failure,
  so it reads "supported" and its final ASSERT can never fail
  (move_mount_set_group_supported()). Here support is the project's probe (`requires` marker) and the
  cases themselves do the work.
- Upstream clones its two helper children with CLONE_VM|CLONE_FILES|CLONE_VFORK
  so their fds land in the parent's table. Here the children stay alive inside
  their namespaces and the parent opens /proc/<pid>/ns/{user,mnt} and the
  child's /tmp/A through /proc/<pid>/root: the same objects.
- The upstream binary is TEST_GEN_FILES, so `make run_tests` never runs it.
"""
import errno
import os

import pytest

from harness.upstream import upstream
from helpers import sys as k
from helpers import uapi
from helpers.errors import raises_errno
from helpers.mounts import mountinfo, tmpfs
from helpers.ns import open_ns, setup_userns
from helpers.proc import waiting_child

FILE = "move_mount_set_group/move_mount_set_group_test.c"
SET_GROUP = uapi.MOVE_MOUNT_SET_GROUP

pytestmark = [pytest.mark.userns, pytest.mark.requires("move_mount_set_group")]


@pytest.fixture
def tmp_a():
    """FIXTURE_SETUP: user + mount ns (uid 0, "/" rprivate), a fresh tmpfs on
    /tmp and another on /tmp/A."""
    setup_userns()
    try:
        k.umount2("/tmp", uapi.MNT_DETACH)
    except OSError:
        pass  # upstream ignores this too: /tmp may be no mount, or locked
    tmpfs("/tmp")
    os.mkdir("/tmp/A")
    tmpfs("/tmp/A")
    return "/tmp/A"


def tags(path, pid="self"):
    """Optional mountinfo fields (shared:N, master:N, unbindable) of the top
    mount at path."""
    entries = [m for m in mountinfo(f"/proc/{pid}/mountinfo") if m.mount_point == path]
    assert entries, f"no mountinfo entry for {path}"
    return entries[-1].optional


def has(path, prefix):
    return any(t.startswith(prefix) for t in tags(path))


@upstream(FILE, "move_mount_set_group.complex_sharing_copying")
def test_set_group_across_two_mount_namespaces(tmp_a):
    """Two children in their own (nested) user+mount namespaces; the "from"
    child's /tmp/A is shared, the "to" child's private. SET_GROUP between the
    two, by fds, makes the "to" copy shared as well."""
    def from_child():
        setup_userns()
        k.mount(None, tmp_a, None, uapi.MS_SHARED)

    with waiting_child(from_child) as from_pid, waiting_child(setup_userns) as to_pid:
        from_fd = os.open(f"/proc/{from_pid}/root{tmp_a}", os.O_RDONLY)
        to_fd = os.open(f"/proc/{to_pid}/root{tmp_a}", os.O_RDONLY)
        to_mntns = open_ns("mnt", to_pid)
        assert not any(t.startswith("shared:") for t in tags(tmp_a, to_pid))
        k.move_mount(from_fd, "", to_fd, "",
                     SET_GROUP | uapi.MOVE_MOUNT_F_EMPTY_PATH | uapi.MOVE_MOUNT_T_EMPTY_PATH)
        k.setns(to_mntns, uapi.CLONE_NEWNS)
        assert has(tmp_a, "shared:")


@upstream(FILE, "move_mount_set_group.unbindable_target")
def test_set_group_refuses_unbindable_target(tmp_a):
    """The target must be private: an unbindable one is refused (EINVAL) both
    as a would-be slave and as a would-be peer, and stays as it was."""
    k.mount(None, "/tmp/A", None, uapi.MS_SHARED)
    os.mkdir("/tmp/B")
    k.mount("/tmp/A", "/tmp/B", None, uapi.MS_BIND)
    k.mount(None, "/tmp/B", None, uapi.MS_SLAVE)
    assert has("/tmp/B", "master:")
    os.mkdir("/tmp/C")
    k.mount("/tmp/A", "/tmp/C", None, uapi.MS_BIND)
    k.mount(None, "/tmp/C", None, uapi.MS_UNBINDABLE)
    assert "unbindable" in tags("/tmp/C")

    with raises_errno(errno.EINVAL):
        k.move_mount(uapi.AT_FDCWD, "/tmp/B", uapi.AT_FDCWD, "/tmp/C", SET_GROUP)
    assert not has("/tmp/C", "master:")
    assert "unbindable" in tags("/tmp/C")

    with raises_errno(errno.EINVAL):
        k.move_mount(uapi.AT_FDCWD, "/tmp/A", uapi.AT_FDCWD, "/tmp/C", SET_GROUP)
    assert not has("/tmp/C", "shared:")
    assert "unbindable" in tags("/tmp/C")
