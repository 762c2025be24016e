"""Who sees the nullfs root (fs/namespace.c grab_requested_root): listings of another namespace
by id and mountinfo are rooted above it, so it is hidden there; in an empty
mount namespace it is "/" and the only mount listed."""
import errno
import os

import pytest

from helpers import sys as k
from helpers import uapi
from helpers.errors import raises_errno
from helpers.mounts import listmount_all, mount_stack, mountinfo, statmount
from helpers.ns import new_mntns, ns_id, open_ns
from helpers.proc import waiting_child
from suites.nullfs.nullfs_util import CONTEXTS, SB_AND_TYPE, enter_empty


def _ns_id_of(pid):
    fd = open_ns("mnt", pid)
    try:
        return ns_id(fd)
    finally:
        os.close(fd)


@pytest.mark.root
@pytest.mark.requires("nullfs_root", "mnt_id_req_ns_id")
def test_foreign_listmount_hides_nullfs_root():
    """listmount of another (normal) namespace by id never lists its nullfs
    root, though that namespace does stand on one."""
    with waiting_child(lambda: new_mntns()) as pid:
        nsid = _ns_id_of(pid)
        ids = listmount_all(mnt_ns_id=nsid)
        assert ids
        types = [statmount(i, SB_AND_TYPE, mnt_ns_id=nsid) for i in ids]
    assert all(sm.fs_type != "nullfs" for sm in types), \
        [(sm.mnt_id, sm.fs_type) for sm in types]
    assert all(sm.mnt_parent_id != sm.mnt_id for sm in types)
    # our own copy of the same tree does stand on nullfs
    assert mount_stack("/")[-1].fs_type == "nullfs"


@pytest.mark.root
@pytest.mark.requires("unshare_empty_mntns", "mnt_id_req_ns_id")
def test_foreign_listmount_of_empty_mntns_is_enoent():
    """listmount of an empty namespace by id: ENOENT. The foreign view is
    rooted at the first mount on the nullfs root, and there is none."""
    with waiting_child(lambda: k.unshare(uapi.UNSHARE_EMPTY_MNTNS)) as pid:
        nsid = _ns_id_of(pid)
        with raises_errno(errno.ENOENT):
            listmount_all(mnt_ns_id=nsid)


@pytest.mark.requires("nullfs_root")
def test_mountinfo_of_normal_namespace_has_no_nullfs():
    """/proc/self/mountinfo of a normal namespace has no nullfs line."""
    entries = mountinfo()
    assert any(e.mount_point == "/" for e in entries)
    assert [e for e in entries if e.fstype == "nullfs"] == []


@pytest.mark.requires("unshare_empty_mntns")
@pytest.mark.parametrize("context", CONTEXTS)
def test_empty_mntns_lists_exactly_its_nullfs_root(context):
    """In one's own empty namespace listmount(LSMT_ROOT) == [id of "/"], and
    that mount is nullfs (NULL_FS_MAGIC), mounted at "/", its own parent."""
    enter_empty(context)
    root = k.mnt_id_unique("/")
    assert listmount_all() == [root]
    sm = statmount(root, SB_AND_TYPE | uapi.STATMOUNT_MNT_POINT | uapi.STATMOUNT_MNT_ROOT)
    assert (sm.fs_type, sm.sb_magic, sm.mnt_point, sm.mnt_root) == \
        ("nullfs", uapi.NULL_FS_MAGIC, "/", "/")
    assert sm.mnt_parent_id == sm.mnt_id == root


@pytest.mark.root
@pytest.mark.requires("unshare_empty_mntns")
def test_mountinfo_of_empty_mntns_process_shows_nullfs_root():
    """/proc/<pid>/mountinfo of a process in an empty namespace, read from
    outside, is rooted at that process's root: exactly one line, nullfs at "/"."""
    with waiting_child(lambda: k.unshare(uapi.UNSHARE_EMPTY_MNTNS)) as pid:
        entries = mountinfo(f"/proc/{pid}/mountinfo")
    assert [(e.fstype, e.mount_point, e.root) for e in entries] == [("nullfs", "/", "/")]
    assert entries[0].mnt_id == entries[0].parent_id
