"""The upstream mount-notify fixture pieces (kept here: they are upstream's
test shape, not general fanotify tools; those are helpers/fanotify.py):
Watch (three groups: double-added, removed, flushed), check_mounted(), and the
temporary chroot both mount-notify programs set up."""
import errno
import os

from helpers import uapi
from helpers.cleanup import scratch_dir
from helpers.errors import raises_errno
from helpers.fanotify import Group, mark
from helpers.mounts import listmount, tmpfs


def chrooted_tmpfs_root(defer):
    """Upstream FIXTURE_SETUP's root: a tmpfs over /tmp, a temporary directory
    there with its own tmpfs, chroot into it, directories a and b. Returns an
    O_PATH fd of the original root; at teardown (defer) chroots back, then
    the directory is detached and removed."""
    tmpfs("/tmp")
    tmp = scratch_dir(defer, prefix="mount-notify_test_root.")
    orig_root = os.open("/", os.O_PATH | os.O_CLOEXEC)
    tmpfs(tmp)
    os.chroot(tmp)
    os.chdir("/")
    os.mkdir("a")
    os.mkdir("b")
    defer(_chroot_back, orig_root)
    return orig_root


def _chroot_back(orig_root):
    os.fchdir(orig_root)
    os.chroot(".")
    os.chdir("/")


class Watch:
    """Upstream's three groups: group 0 watched twice (ADD, ADD), group 1
    added then REMOVEd, group 2 added then FLUSHed. expect() checks that
    groups 2 and 1 see nothing (EAGAIN) and reads one event from group 0,
    like upstream expect_notify()."""

    def __init__(self, ns_fd):
        self.groups = [Group(ns_fd) for _ in range(3)]
        mark(self.groups[0].fd, uapi.FAN_MARK_ADD, ns_fd)
        mark(self.groups[1].fd, uapi.FAN_MARK_REMOVE, ns_fd)
        mark(self.groups[2].fd, uapi.FAN_MARK_FLUSH, ns_fd)

    def expect(self, mask=None):
        for g in (self.groups[2], self.groups[1]):
            with raises_errno(errno.EAGAIN):
                os.read(g.fd, 4096)
        got_mask, mnt_id = self.groups[0].next()
        if mask is not None:
            assert got_mask == mask, f"event mask {got_mask:#x}, expected {mask:#x} (mnt {mnt_id:#x})"
        return got_mask, mnt_id

    def expect_n(self, n, mask=None):
        return [self.expect(mask) for _ in range(n)]

    def unread(self):
        return len(self.groups[0].buf)

    def close(self):
        for g in self.groups:
            g.close()


def check_mounted(ids):
    """Upstream check_mounted(): listmount of the own namespace from its root
    returns exactly `ids` (no duplicates)."""
    got = listmount(nr=len(ids) + 1)
    assert len(got) == len(ids), f"listmount gave {len(got)} mounts, expected {len(ids)}"
    assert len(set(got)) == len(got)
    assert set(got) == set(ids), (sorted(got), sorted(ids))
