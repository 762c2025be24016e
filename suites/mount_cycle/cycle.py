"""Local helpers for the mount_cycle suite: upstream's fanotify_group()
(-1 when refused), inode comparison and small waiting utilities. The
userfaultfd readdir hold (upstream readdir_hold.h) is helpers.readdir; the
libc calls and the two-way Partner child are helpers.sys and helpers.proc."""
import os
import time

from helpers import uapi
from helpers import sys as k


def fanotify_group():
    """upstream: fanotify_init(FAN_CLASS_NOTIF|FAN_CLOEXEC, O_RDONLY), -1 when refused."""
    try:
        return k.fanotify_init(uapi.FAN_CLASS_NOTIF | uapi.FAN_CLOEXEC, os.O_RDONLY)
    except OSError:
        return -1


def same_inode(a, b):
    sa, sb = os.fstat(a), os.fstat(b)
    return (sa.st_dev, sa.st_ino) == (sb.st_dev, sb.st_ino)


def fd_path(fd):
    return f"/proc/self/fd/{fd}"


def wait_until(pred, tries, delay):
    for _ in range(tries):
        if pred():
            return True
        time.sleep(delay)
    return pred()
