"""Twins of tools/testing/selftests/filesystems/nsfs/iterate_mntns.c
(include/uapi/linux/nsfs.h, fs/nsfs.c): walking mount namespaces with NS_MNT_GET_NEXT/PREV.

The fixture makes 11 mount namespaces (unshare(CLONE_NEWNS) 11 times, each
kept open) and records their ids. NEXT/PREV need the init pid namespace and
CAP_SYS_ADMIN in the init user namespace (EPERM otherwise): root only.

Beyond upstream: the walk visits namespaces in strictly increasing (NEXT) or
decreasing (PREV) id order, and every step's info.mnt_ns_id is the id of the
fd it returns. Other processes on the machine make namespaces too, so (as
upstream since it dropped its "next id is ours" check) only our 11 are counted.
"""
import errno
import os

import pytest

from harness.upstream import upstream
from helpers import sys as k
from helpers import uapi
from helpers.errors import raises_errno
from helpers.ns import mnt_ns_info, ns_id, open_ns

FILE = "filesystems/nsfs/iterate_mntns.c"
COUNT = 11

pytestmark = [pytest.mark.root, pytest.mark.requires("ns_mnt_get_info", "ns_get_mntns_id")]


@pytest.fixture
def mntns():
    """FIXTURE_SETUP: [(fd, id)] of 11 new mount namespaces, oldest first."""
    out = []
    for _ in range(COUNT):
        k.unshare(uapi.CLONE_NEWNS)
        fd = open_ns("mnt")
        _, info = mnt_ns_info(fd)
        out.append((fd, info["mnt_ns_id"]))
    yield out
    for fd, _ in out:
        os.close(fd)


def step(fd, request):
    """One NEXT/PREV: (new fd, its info); the info must describe the new fd."""
    new_fd, info = mnt_ns_info(fd, request)
    assert new_fd >= 0
    assert info["mnt_ns_id"] == ns_id(new_fd)
    return new_fd, info["mnt_ns_id"]


def walk_to_end(fd, request):
    """Follow NEXT/PREV from fd until ENOENT; the ids visited, in order."""
    cur, ids = os.dup(fd), []
    while True:
        try:
            new_fd, _ = mnt_ns_info(cur, request)
        except OSError as e:
            assert e.errno == errno.ENOENT, e
            os.close(cur)
            return ids
        ids.append(ns_id(new_fd))
        os.close(cur)
        cur = new_fd


@upstream(FILE, "iterate_mount_namespaces.iterate_all_forward")
def test_next_walks_past_all_newer_namespaces(init_pidns, mntns):
    ids = walk_to_end(mntns[0][0], uapi.NS_MNT_GET_NEXT)
    assert all(a < b for a, b in zip(ids, ids[1:]))
    assert len({i for _, i in mntns[1:]} & set(ids)) == COUNT - 1
    assert mntns[0][1] not in ids


@upstream(FILE, "iterate_mount_namespaces.iterate_all_backwards")
def test_prev_walks_past_all_older_namespaces(init_pidns, mntns):
    ids = walk_to_end(mntns[-1][0], uapi.NS_MNT_GET_PREV)
    assert all(a > b for a, b in zip(ids, ids[1:]))
    assert len({i for _, i in mntns[:-1]} & set(ids)) == COUNT - 1
    assert mntns[-1][1] not in ids


@pytest.mark.parametrize("start,request_", [
    pytest.param(0, uapi.NS_MNT_GET_NEXT, id="forward", marks=upstream(FILE, "iterate_mount_namespaces.iterate_forward")),
    pytest.param(COUNT - 1, uapi.NS_MNT_GET_PREV, id="backward", marks=upstream(FILE, "iterate_mount_namespaces.iterate_backward")),
])
def test_steps_from_the_namespace_we_are_in(init_pidns, mntns, start, request_):
    """setns() into the first (last) namespace, then 10 NEXT (PREV) steps succeed."""
    fd, first_id = mntns[start]
    k.setns(fd, uapi.CLONE_NEWNS)
    cur, ids = os.dup(fd), [first_id]
    for _ in range(COUNT - 1):
        new_fd, new_id = step(cur, request_)
        os.close(cur)
        cur, ids = new_fd, ids + [new_id]
    os.close(cur)
    ordered = ids if request_ == uapi.NS_MNT_GET_NEXT else ids[::-1]
    assert all(a < b for a, b in zip(ordered, ordered[1:])), ids


@upstream(FILE, "iterate_mount_namespaces.nfs_valid_ioctl")
@pytest.mark.parametrize("request_", [uapi.AUTOFS_DEV_IOCTL_OPENMOUNT,
                                      uapi.AUTOFS_DEV_IOCTL_CLOSEMOUNT,
                                      uapi.AUTOFS_DEV_IOCTL_READY],
                         ids=["openmount", "closemount", "ready"])
def test_foreign_ioctls_on_nsfs_fd_are_enotty(mntns, request_):
    """nsfs rejects ioctls it does not know (here autofs's) with ENOTTY."""
    with raises_errno(errno.ENOTTY):
        k.ioctl(mntns[0][0], request_, None)
