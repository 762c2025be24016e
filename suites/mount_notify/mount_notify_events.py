"""fanotify mount-notification groups for the mount_notify suite (kept here
until helpers/ grows a fanotify module; see the suite report).

A group is fanotify_init(FAN_REPORT_MNT|FAN_NONBLOCK) marked with
FAN_MARK_MNTNS on a mount-namespace fd. Events are struct
fanotify_event_metadata (24 bytes) followed by exactly one struct
fanotify_event_info_mnt (16 bytes) carrying the 64-bit unique mount id
(catalog 1.9)."""
import errno
import os
import struct

from helpers import sys as k
from helpers import uapi
from helpers.errors import raises_errno
from helpers.mounts import listmount

META = struct.Struct("=IBBHQii")          # struct fanotify_event_metadata
INFO_MNT = struct.Struct("=BBH4xQ")       # struct fanotify_event_info_mnt
ATTACH, DETACH = uapi.FAN_MNT_ATTACH, uapi.FAN_MNT_DETACH
MOVE = ATTACH | DETACH
assert META.size == k.ffi.sizeof("struct fanotify_event_metadata") == 24
assert INFO_MNT.size == k.ffi.sizeof("struct fanotify_event_info_mnt") == 16
FANOTIFY_METADATA_VERSION = 3


def mark(fd, flags, ns_fd, mask=ATTACH | DETACH):
    return k.syscall("fanotify_mark", fd, flags | uapi.FAN_MARK_MNTNS, mask, ns_fd, None)


def init(flags=uapi.FAN_REPORT_MNT | uapi.FAN_NONBLOCK):
    return k.syscall("fanotify_init", flags, 0)


class Group:
    """One FAN_REPORT_MNT group with the unread bytes it has received."""

    def __init__(self, ns_fd=None):
        self.fd = init()
        self.buf = b""
        if ns_fd is not None:
            mark(self.fd, uapi.FAN_MARK_ADD, ns_fd)

    def _fill(self):
        data = os.read(self.fd, 65536)
        assert data, "read() on a fanotify group returned 0 bytes"
        self.buf += data

    def next(self):
        """(mask, mnt_id) of the next event; reads more when the buffer is empty."""
        if not self.buf:
            self._fill()
        event_len, vers, _, metadata_len, mask, fd, _pid = META.unpack_from(self.buf)
        assert vers == FANOTIFY_METADATA_VERSION and metadata_len == META.size, (vers, metadata_len)
        assert META.size <= event_len <= len(self.buf), (event_len, len(self.buf))
        assert event_len - META.size == INFO_MNT.size, f"mount event info is {event_len - META.size} bytes"
        assert fd == -1, f"mount events carry no fd (FAN_NOFD), got {fd}"
        info_type, _, info_len, mnt_id = INFO_MNT.unpack_from(self.buf, META.size)
        assert info_type == uapi.FAN_EVENT_INFO_TYPE_MNT and info_len == INFO_MNT.size
        self.buf = self.buf[event_len:]
        return mask, mnt_id

    def expect_nothing(self):
        assert not self.buf, f"{len(self.buf)} unread bytes of events"
        with raises_errno(errno.EAGAIN):
            self._fill()

    def close(self):
        os.close(self.fd)


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
