"""Local helpers for the mount_cycle suite: upstream's fanotify_group()
(-1 when refused), inode comparison and small waiting utilities. The
userfaultfd readdir hold (upstream readdir_hold.h) is helpers.readdir; the
libc calls and the two-way Partner child are helpers.sys and helpers.proc."""
import errno
import os
import time

from helpers import uapi
from helpers import sys as k


def fanotify_group():
    """upstream: fanotify_init(FAN_CLASS_NOTIF|FAN_CLOEXEC, O_RDONLY): (fd,
    None), or (-1, why) when this process may not have one -- EPERM without
    CAP_SYS_ADMIN in the initial user namespace, ENOSYS without
    CONFIG_FANOTIFY. Any other error is raised: a set-up failure, not a
    reason to drop a check."""
    try:
        return k.fanotify_init(uapi.FAN_CLASS_NOTIF | uapi.FAN_CLOEXEC, os.O_RDONLY), None
    except OSError as e:
        if e.errno == errno.EPERM:
            return -1, "needs CAP_SYS_ADMIN in the initial user namespace (fanotify_init EPERM)"
        if e.errno == errno.ENOSYS:
            return -1, "needs fanotify (CONFIG_FANOTIFY): fanotify_init ENOSYS"
        raise


def same_inode(a, b):
    sa, sb = os.fstat(a), os.fstat(b)
    return (sa.st_dev, sa.st_ino) == (sb.st_dev, sb.st_ino)


def fd_path(fd):
    return f"/proc/self/fd/{fd}"


def magic_at(path):
    """f_type of what path names, without opening it for reading (O_PATH)."""
    fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
    try:
        return k.fstatfs(fd).f_type
    finally:
        os.close(fd)


def wait_until(pred, tries, delay):
    for _ in range(tries):
        if pred():
            return True
        time.sleep(delay)
    return pred()
