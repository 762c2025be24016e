"""A new mount namespace from one call: open_tree(OPEN_TREE_NAMESPACE) (7.0)
and fsmount(FSMOUNT_NAMESPACE) (7.1), and looking at the namespace by its id.

Both calls return an nsfs fd of the new namespace; the *_ns wrappers return
(fd, namespace id). ns_mounts/ns_table/mnt_points look at a namespace by id
without entering it (upstream LM()); setns_and_report enters it."""
import errno

import pytest

from helpers import sys as k
from helpers import uapi
from helpers.mounts import fs_registered, listmount, statmount
from helpers.ns import ns_id
from helpers.sys import SyscallError


def open_tree_ns(path, flags=uapi.OPEN_TREE_NAMESPACE | uapi.OPEN_TREE_CLOEXEC, dfd=uapi.AT_FDCWD):
    """open_tree(dfd, path, flags); returns (fd, new mount-namespace id)."""
    fd = k.open_tree(dfd, path, flags)
    return fd, ns_id(fd)


def fsmount_ns(fsfd, flags=uapi.FSMOUNT_NAMESPACE | uapi.FSMOUNT_CLOEXEC, attr=0):
    """fsmount(fsfd, flags, attr); returns (fd, new mount-namespace id)."""
    fd = k.fsmount(fsfd, flags, attr)
    return fd, ns_id(fd)


def fs_context(fstype="tmpfs", options=(), create=True):
    """fsopen + fsconfig(SET_STRING, or SET_FLAG for a None value) [+ CMD_CREATE]:
    an fs-context fd. A filesystem the kernel does not know SKIPs, named, only
    when fsopen says ENODEV and /proc/filesystems agrees."""
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


def ns_mounts(nsid, flags=0, nr=4096):
    """listmount(LSMT_ROOT) of namespace `nsid` (by id, as upstream LM())."""
    return listmount(mnt_ns_id=nsid, nr=nr, flags=flags)


def ns_table(nsid):
    """{mnt_id: statmount(MNT_BASIC|MNT_POINT|FS_TYPE)} for every listed mount."""
    mask = uapi.STATMOUNT_MNT_BASIC | uapi.STATMOUNT_MNT_POINT | uapi.STATMOUNT_FS_TYPE
    return {m: statmount(m, mask, mnt_ns_id=nsid) for m in ns_mounts(nsid)}


def mnt_points(nsid):
    return sorted(sm.mnt_point for sm in ns_table(nsid).values())


def top_mount(nsid, mask=uapi.STATMOUNT_MNT_BASIC | uapi.STATMOUNT_FS_TYPE | uapi.STATMOUNT_SB_BASIC):
    """statmount of the single mount a FSMOUNT_NAMESPACE namespace lists."""
    ids = ns_mounts(nsid)
    assert len(ids) == 1, ids
    return statmount(ids[0], mask, mnt_ns_id=nsid)


def setns_mnt(fd):
    k.setns(fd, uapi.CLONE_NEWNS)


def root_ns_id():
    """The mount-namespace id of the caller's "/" mount (no /proc needed)."""
    return statmount(k.mnt_id_unique("/"), uapi.STATMOUNT_MNT_NS_ID).mnt_ns_id


def setns_and_report(fd):
    """setns(fd, CLONE_NEWNS), then the namespace id of the caller's "/" mount."""
    setns_mnt(fd)
    return root_ns_id()


def umount_all_after_setns(fd, nsid):
    """setns into fd, then umount2(MNT_DETACH) every mount of namespace nsid,
    newest first (points taken by id beforehand): {mount point: errno or 0}."""
    ids = ns_mounts(nsid, flags=uapi.LISTMOUNT_REVERSE, nr=256)
    assert len(ids) >= 1
    points = [statmount(m, uapi.STATMOUNT_MNT_POINT, mnt_ns_id=nsid).mnt_point for m in ids]
    setns_mnt(fd)
    result = {}
    for point in points:
        try:
            k.umount2(point, uapi.MNT_DETACH)
            result[point] = 0
        except OSError as e:
            result[point] = e.errno
    return result


# --- the two one-call sources, for cases parametrized over both ----------------------
ONE_CALL = ("open_tree_namespace", "fsmount_namespace")


def feature_params(*names):
    """pytest params named after probes, each marked requires(<its name>):
    for cases parametrized over ways of getting a namespace (the kind names
    are the probe names: open_tree_namespace, fsmount_namespace, ...)."""
    return [pytest.param(name, marks=pytest.mark.requires(name)) for name in names]


def new_ns_fd(kind, tree=None, fsfd=None):
    """The nsfs fd of a mount namespace made by one call, owned by the
    caller's user namespace: "open_tree_namespace" copies `tree`
    (AT_RECURSIVE); "fsmount_namespace" mounts the fs context `fsfd`
    (default: a fresh tmpfs)."""
    if kind == "open_tree_namespace":
        return open_tree_ns(tree, uapi.OPEN_TREE_NAMESPACE | uapi.AT_RECURSIVE | uapi.OPEN_TREE_CLOEXEC)[0]
    if kind == "fsmount_namespace":
        return fsmount_ns(fs_context() if fsfd is None else fsfd)[0]
    raise ValueError(kind)
