"""Small building blocks for the OPEN_TREE_NAMESPACE suites.

(Candidates for helpers/: a "new namespace" helper module shared with
suites/fsmount_ns; kept local because helpers/ is owned elsewhere.)
"""
import os

from helpers import uapi
from helpers import sys as k
from helpers.mounts import listmount, statmount
from helpers.ns import ns_id, own_mntns_id

NS = uapi.OPEN_TREE_NAMESPACE
CLOEXEC = uapi.OPEN_TREE_CLOEXEC
REC = uapi.AT_RECURSIVE


def open_tree_ns(path, flags=NS | CLOEXEC, dfd=uapi.AT_FDCWD):
    """open_tree(dfd, path, flags); returns (fd, new mount-namespace id)."""
    fd = k.open_tree(dfd, path, flags)
    return fd, ns_id(fd)


def ns_mounts(nsid, flags=0, nr=4096):
    """listmount(LSMT_ROOT) of namespace `nsid` (by id, as upstream LM())."""
    return listmount(mnt_ns_id=nsid, nr=nr, flags=flags)


def ns_table(nsid):
    """{mnt_id: statmount(MNT_BASIC|MNT_POINT|FS_TYPE)} for every listed mount."""
    mask = uapi.STATMOUNT_MNT_BASIC | uapi.STATMOUNT_MNT_POINT | uapi.STATMOUNT_FS_TYPE
    return {m: statmount(m, mask, mnt_ns_id=nsid) for m in ns_mounts(nsid)}


def setns_mnt(fd):
    k.setns(fd, uapi.CLONE_NEWNS)


def mnt_points(nsid):
    return sorted(sm.mnt_point for sm in ns_table(nsid).values())


def is_newer(nsid):
    return nsid > own_mntns_id()


def stat_ino(path_or_fd):
    return os.stat(path_or_fd).st_ino


def setns_and_report(fd):
    """setns(fd, CLONE_NEWNS), then the mount-namespace id of the caller's "/"
    mount (no /proc needed in the new namespace)."""
    setns_mnt(fd)
    return statmount(k.mnt_id_unique("/"), uapi.STATMOUNT_MNT_NS_ID).mnt_ns_id
