"""The nullfs root inode, seen as "/" of an empty mount namespace (fs/nullfs.c):
an empty, immutable, S_NOATIME directory with inode number 1; lookups
of any name fail with ENOENT, attribute changes with EPERM, locks with ENOLCK
and notification marks with EINVAL (FS_DISALLOW_NOTIFY)."""
import errno
import fcntl
import os
import stat
import struct

import pytest

from helpers import sys as k
from helpers import uapi
from helpers.readdir import getdents
from helpers.errors import raises_errno
from helpers.mounts import statmount
from suites.nullfs.nullfs_util import CONTEXTS, enter_empty

pytestmark = pytest.mark.requires("unshare_empty_mntns")


@pytest.mark.parametrize("context", CONTEXTS)
def test_root_is_empty_directory(context):
    """os.listdir("/") is empty; "/" is a directory with inode number 1."""
    enter_empty(context)
    assert os.listdir("/") == []
    st = os.stat("/")
    assert stat.S_ISDIR(st.st_mode)
    assert st.st_ino == 1


def test_getdents_shows_only_dot_and_dotdot():
    """Raw getdents64: exactly "." and "..", both directories, both inode 1
    (the root is its own parent)."""
    enter_empty()
    entries = sorted(getdents("/"), key=lambda e: e[2])
    DT_DIR = 4
    assert entries == [(1, DT_DIR, "."), (1, DT_DIR, "..")]


@pytest.mark.parametrize("name", ["x", "..."])
def test_lookup_of_any_name_is_enoent(name):
    """stat of a name in the root: ENOENT, whatever the name."""
    enter_empty()
    with raises_errno(errno.ENOENT):
        os.stat("/" + name)


CREATE = {
    "open_creat": lambda: os.open("/new", os.O_CREAT | os.O_WRONLY, 0o644),
    "open_creat_excl": lambda: os.open("/new", os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644),
    "mkdir": lambda: os.mkdir("/new"),
    "mkfifo": lambda: os.mkfifo("/new"),
    "symlink": lambda: os.symlink("target", "/new"),
}


@pytest.mark.parametrize("op", CREATE)
def test_create_is_enoent(op):
    """Creating a name in the root fails with ENOENT, not EPERM/EROFS: the
    nullfs lookup fails before the immutable check is reached."""
    enter_empty()
    with raises_errno(errno.ENOENT):
        CREATE[op]()


REMOVE = {  # op, path(s), errno: the only names that exist are "." and ".."
    "unlink_missing": (os.unlink, ("/x",), errno.ENOENT),
    "unlink_dot": (os.unlink, ("/.",), errno.EISDIR),
    "rmdir_missing": (os.rmdir, ("/x",), errno.ENOENT),
    "rmdir_root": (os.rmdir, ("/",), errno.EBUSY),
    "rmdir_dot": (os.rmdir, ("/.",), errno.EINVAL),
    "rmdir_dotdot": (os.rmdir, ("/..",), errno.ENOTEMPTY),
    "rename_missing": (os.rename, ("/x", "/y"), errno.ENOENT),
    "rename_dot": (os.rename, ("/.", "/y"), errno.EBUSY),
}


@pytest.mark.parametrize("op", REMOVE)
def test_remove_or_rename_impossible(op):
    """Nothing in the root can be unlinked, removed or renamed."""
    enter_empty()
    fn, args, err = REMOVE[op]
    with raises_errno(err):
        fn(*args)
    assert os.listdir("/") == []


SETATTR = {
    "chmod": lambda: os.chmod("/", 0o700),
    "chown": lambda: os.chown("/", 1, 1),
    "utime_explicit": lambda: os.utime("/", (1, 1)),
    "utime_now": lambda: os.utime("/", None),
}


@pytest.mark.root
@pytest.mark.parametrize("op", SETATTR)
def test_setattr_is_eperm(op):
    """As real root (so ownership and capabilities are no obstacle) every
    attribute change on the root inode fails with EPERM: S_IMMUTABLE."""
    enter_empty()
    before = os.stat("/")
    with raises_errno(errno.EPERM):
        SETATTR[op]()
    after = os.stat("/")
    assert (after.st_mode, after.st_uid, after.st_mtime_ns) == \
        (before.st_mode, before.st_uid, before.st_mtime_ns)


@pytest.mark.root
@pytest.mark.parametrize("name", ["user.test", "trusted.test"])
def test_setxattr_refused(name):
    """setxattr on the immutable root inode: EPERM, even for real root."""
    enter_empty()
    with raises_errno(errno.EPERM):
        os.setxattr("/", name, b"1")


@pytest.mark.root
def test_root_cannot_write_access():
    """access("/", W_OK) is refused even to real root (immutable), while
    R_OK|X_OK is granted."""
    enter_empty()
    assert os.access("/", os.R_OK | os.X_OK)
    assert not os.access("/", os.W_OK)


@pytest.mark.parametrize("context", CONTEXTS)
def test_statvfs_reports_no_mount_flags(context):
    """statvfs("/") of the nullfs root reports none of ST_RDONLY, ST_NOSUID,
    ST_NODEV, ST_NOEXEC (7.3.4: f_flag == 0), and statmount's mnt_attr
    likewise has no RDONLY/NOSUID/NODEV/NOEXEC.

    nullfs's noexec/nodev are the superblock-internal SB_I_NOEXEC and
    SB_I_NODEV (s_iflags), which path_noexec()/may_open_dev() consult
    directly; statvfs's f_flag is built only from the mount's MNT_* flags
    and the superblock's s_flags, so it does not show them, and the nullfs
    root mount itself carries no MNT_NOEXEC/MNT_NODEV. The root is never
    read-only."""
    enter_empty(context)
    flags = os.statvfs("/").f_flag
    shown = uapi.ST_RDONLY | uapi.ST_NOSUID | uapi.ST_NODEV | uapi.ST_NOEXEC
    assert flags & shown == 0, f"f_flag={flags:#x}"
    attr = statmount(k.mnt_id_unique("/"), uapi.STATMOUNT_MNT_BASIC).mnt_attr
    assert attr & (uapi.MOUNT_ATTR_RDONLY | uapi.MOUNT_ATTR_NOSUID
                   | uapi.MOUNT_ATTR_NODEV | uapi.MOUNT_ATTR_NOEXEC) == 0, f"mnt_attr={attr:#x}"


@pytest.mark.root
@pytest.mark.parametrize("atime", [
    pytest.param(None, id="default"),
    pytest.param(uapi.MOUNT_ATTR_STRICTATIME, id="strictatime"),
])
def test_readdir_does_not_update_atime(atime):
    """Reading the root directory leaves its atime alone (S_NOATIME on the
    inode), even with MOUNT_ATTR_STRICTATIME on the mount."""
    enter_empty()
    if atime is not None:
        k.mount_setattr(uapi.AT_FDCWD, "/", 0,
                        k.mount_attr(attr_set=atime, attr_clr=uapi.MOUNT_ATTR__ATIME))
    before = os.stat("/").st_atime_ns
    for _ in range(2):
        assert os.listdir("/") == []
        getdents("/")
    assert os.stat("/").st_atime_ns == before




def _flock_struct(kind):
    # struct flock on x86_64/aarch64: short l_type, short l_whence, off_t l_start, off_t l_len, pid_t l_pid
    return struct.pack("hhxxxxqqi4x", kind, os.SEEK_SET, 0, 0, 0)


LOCKS = {
    "flock": lambda fd: fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB),
    "flock_shared": lambda fd: fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB),
    "posix_setlk": lambda fd: fcntl.fcntl(fd, fcntl.F_SETLK, _flock_struct(fcntl.F_RDLCK)),
    "posix_getlk": lambda fd: fcntl.fcntl(fd, fcntl.F_GETLK, _flock_struct(fcntl.F_RDLCK)),
    "ofd_setlk": lambda fd: fcntl.fcntl(fd, uapi.F_OFD_SETLK, _flock_struct(fcntl.F_RDLCK)),
}


@pytest.mark.parametrize("op", LOCKS)
def test_locks_are_enolck(op):
    """flock and POSIX/OFD byte-range locks on the root: ENOLCK."""
    enter_empty()
    fd = os.open("/", os.O_RDONLY | os.O_DIRECTORY)
    with raises_errno(errno.ENOLCK):
        LOCKS[op](fd)


def _inotify_add_watch(path):
    k.inotify_watch(path, uapi.IN_OPEN)


def _dnotify(path):
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.fcntl(fd, fcntl.F_NOTIFY, fcntl.DN_ACCESS)
    finally:
        os.close(fd)


def _fanotify_mark(kind):
    def mark(path):
        fd = k.fanotify_init(uapi.FAN_CLASS_NOTIF | uapi.FAN_CLOEXEC, os.O_RDONLY)
        try:
            k.fanotify_mark(fd, uapi.FAN_MARK_ADD | kind, uapi.FAN_OPEN, uapi.AT_FDCWD, path)
        finally:
            os.close(fd)
    return mark


NOTIFY = {
    "inotify": _inotify_add_watch,
    "dnotify": _dnotify,
    "fanotify_inode": _fanotify_mark(uapi.FAN_MARK_INODE),
    "fanotify_mount": _fanotify_mark(uapi.FAN_MARK_MOUNT),
    "fanotify_filesystem": _fanotify_mark(uapi.FAN_MARK_FILESYSTEM),
}


@pytest.mark.root
@pytest.mark.parametrize("op", NOTIFY)
def test_notify_marks_refused(op):
    """inotify, dnotify and fanotify marks on the nullfs root: EINVAL
    (nullfs is FS_DISALLOW_NOTIFY)."""
    enter_empty()
    with raises_errno(errno.EINVAL):
        NOTIFY[op]("/")
