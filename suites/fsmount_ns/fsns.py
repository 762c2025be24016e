"""Small building blocks for the FSMOUNT_NAMESPACE suites.

(Candidates for helpers/: kept local because helpers/ is owned elsewhere.)
"""
import errno
import os

import pytest

from helpers import uapi
from helpers import sys as k
from helpers.mounts import listmount, statmount
from helpers.ns import ns_id
from helpers.sys import SyscallError

NS = uapi.FSMOUNT_NAMESPACE
CLOEXEC = uapi.FSMOUNT_CLOEXEC


def fs_context(fstype="tmpfs", options=(), create=True):
    """fsopen + fsconfig(SET_STRING...) [+ CMD_CREATE]: an fs-context fd.
    A filesystem the kernel does not know SKIPs, named, only when fsopen says
    ENODEV and /proc/filesystems agrees."""
    try:
        fsfd = k.fsopen(fstype, uapi.FSOPEN_CLOEXEC)
    except SyscallError as e:
        if e.errno == errno.ENODEV and not fs_registered(fstype):
            pytest.skip(f"needs the {fstype} filesystem: fsopen({fstype!r}) ENODEV, "
                        f"not in /proc/filesystems")
        raise
    for key, value in options:
        if value is None:
            k.fsconfig(fsfd, uapi.FSCONFIG_SET_FLAG, key)
        else:
            k.fsconfig(fsfd, uapi.FSCONFIG_SET_STRING, key, value)
    if create:
        k.fsconfig(fsfd, uapi.FSCONFIG_CMD_CREATE)
    return fsfd


def fs_registered(fstype):
    with open("/proc/filesystems") as f:
        return any(line.split()[-1] == fstype for line in f if line.strip())


def fsmount_ns(fsfd, flags=NS | CLOEXEC, attr=0):
    """fsmount(fsfd, flags, attr); returns (fd, new mount-namespace id)."""
    fd = k.fsmount(fsfd, flags, attr)
    return fd, ns_id(fd)


def ns_mounts(nsid, flags=0, nr=256):
    return listmount(mnt_ns_id=nsid, nr=nr, flags=flags)


def top_mount(nsid, mask=uapi.STATMOUNT_MNT_BASIC | uapi.STATMOUNT_FS_TYPE | uapi.STATMOUNT_SB_BASIC):
    """statmount of the single mount a FSMOUNT_NAMESPACE namespace lists."""
    ids = ns_mounts(nsid)
    assert len(ids) == 1, ids
    return statmount(ids[0], mask, mnt_ns_id=nsid)


def setns_mnt(fd):
    k.setns(fd, uapi.CLONE_NEWNS)


def root_ns_id():
    return statmount(k.mnt_id_unique("/"), uapi.STATMOUNT_MNT_NS_ID).mnt_ns_id


def setns_and_report(fd):
    """setns into fd; the namespace id of the caller's "/" mount afterwards."""
    setns_mnt(fd)
    return root_ns_id()
