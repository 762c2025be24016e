"""fanotify mount notifications (FAN_REPORT_MNT, FAN_MARK_MNTNS; include/uapi/linux/fanotify.h).

A group is fanotify_init(FAN_REPORT_MNT|FAN_NONBLOCK) marked with
FAN_MARK_MNTNS on a mount-namespace fd. Events are struct
fanotify_event_metadata (24 bytes) followed by exactly one struct
fanotify_event_info_mnt (16 bytes) carrying the 64-bit unique mount id.

The raw calls are helpers.sys.fanotify_init / fanotify_mark."""
import errno
import os
import struct

from helpers import sys as k
from helpers import uapi
from helpers.errors import raises_errno

META = struct.Struct("=IBBHQii")          # struct fanotify_event_metadata
INFO_MNT = struct.Struct("=BBH4xQ")       # struct fanotify_event_info_mnt
ATTACH, DETACH = uapi.FAN_MNT_ATTACH, uapi.FAN_MNT_DETACH
MOVE = ATTACH | DETACH
assert META.size == k.ffi.sizeof("struct fanotify_event_metadata") == 24
assert INFO_MNT.size == k.ffi.sizeof("struct fanotify_event_info_mnt") == 16


def mark(fd, flags, ns_fd, mask=ATTACH | DETACH):
    """fanotify_mark(fd, flags|FAN_MARK_MNTNS, mask, ns_fd, NULL)."""
    return k.fanotify_mark(fd, flags | uapi.FAN_MARK_MNTNS, mask, ns_fd, None)


def init(flags=uapi.FAN_REPORT_MNT | uapi.FAN_NONBLOCK):
    """fanotify_init(flags, 0): a mount-notification group by default."""
    return k.fanotify_init(flags, 0)


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
        assert vers == uapi.FANOTIFY_METADATA_VERSION and metadata_len == META.size, (vers, metadata_len)
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
