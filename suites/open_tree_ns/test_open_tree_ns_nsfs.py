"""Namespace-file mounts and OPEN_TREE_NAMESPACE (beyond upstream; fs/namespace.c
copy_tree, create_new_namespace).

Behaviours pinned down:
- a recursive copy leaves out mounts of *mount*-namespace files (copy_tree
  without CL_COPY_MNT_NS_FILE) but copies net/uts nsfs binds and pidfs binds;
- no cycle can be built through the new namespace's own file: binding it
  inside that namespace is refused (mount(2): EINVAL, mnt_ns_loop; move_mount
  of a detached copy: ELOOP, check_for_nsfs_mounts), while binding it into the
  older caller namespace is allowed (the file's namespace is newer).
"""
import errno

import pytest

from helpers import uapi
from helpers import sys as k
from helpers.errors import raises_errno
from helpers.proc import in_child, waiting_child
from helpers.newns import mnt_points, open_tree_ns, setns_mnt

CLOEXEC, NS, REC = uapi.OPEN_TREE_CLOEXEC, uapi.OPEN_TREE_NAMESPACE, uapi.AT_RECURSIVE

pytestmark = [pytest.mark.root,
              pytest.mark.requires("open_tree_namespace", "statmount", "listmount",
                                   "ns_get_mntns_id", "mnt_id_req_ns_id")]


def _bind(source, target):
    open(target, "w").close()
    k.mount(source, target, None, uapi.MS_BIND)


@pytest.mark.parametrize("kind,copied", [
    ("mnt", False), ("net", True), ("uts", True), ("pidfd", True)])
def test_recursive_copy_of_nsfs_binds(tree, kind, copied):
    """open_tree(NAMESPACE|AT_RECURSIVE) drops a bind of a (newer) mount-ns
    file and keeps net/uts nsfs binds and pidfs binds."""
    target = f"{tree}/dir/{kind}"
    with waiting_child(lambda: k.unshare(uapi.CLONE_NEWNS)) as pid:
        if kind == "pidfd":
            # mount(2) of /proc/self/fd/<pidfd> is EINVAL on 7.3; attach a
            # detached copy of the pidfs file instead.
            pidfd = k.pidfd_open(pid)
            clone = k.open_tree(pidfd, "", uapi.OPEN_TREE_CLONE | uapi.AT_EMPTY_PATH | CLOEXEC)
            open(target, "w").close()
            k.move_mount(clone, "", uapi.AT_FDCWD, target, uapi.MOVE_MOUNT_F_EMPTY_PATH)
        else:
            _bind(f"/proc/{pid}/ns/{kind}", target)
        fd, new = open_tree_ns(tree, NS | REC | CLOEXEC)
        points = mnt_points(new)
    assert ("/dir/" + kind in points) == copied, points
    assert "/sub1" in points and "/sub2" in points


def test_new_ns_file_binds_into_older_caller_ns(tree):
    """The caller's namespace is older than the new one: binding the new
    namespace's file there is allowed (and pins it)."""
    fd, new = open_tree_ns(tree, NS | CLOEXEC)
    _bind(f"/proc/self/fd/{fd}", f"{tree}/pin")


def test_bind_new_ns_file_into_itself_einval(tree):
    """Inside the new namespace, mount(MS_BIND) of that namespace's own file
    is EINVAL: it is not newer than the caller's (now the same) namespace."""
    fd, new = open_tree_ns("/", NS | REC | CLOEXEC)

    def body():
        setns_mnt(fd)
        with raises_errno(errno.EINVAL):
            _bind(f"/proc/self/fd/{fd}", f"{tree}/self")
    in_child(body)


def test_move_detached_ns_file_into_itself_eloop(tree):
    """Inside the new namespace, attaching a detached copy of its own file
    (open_tree(fd, "", CLONE|AT_EMPTY_PATH) + move_mount) is ELOOP."""
    fd, new = open_tree_ns("/", NS | REC | CLOEXEC)

    def body():
        setns_mnt(fd)
        open(f"{tree}/self", "w").close()
        clone = k.open_tree(fd, "", uapi.OPEN_TREE_CLONE | uapi.AT_EMPTY_PATH | CLOEXEC)
        with raises_errno(errno.ELOOP):
            k.move_mount(clone, "", uapi.AT_FDCWD, f"{tree}/self", uapi.MOVE_MOUNT_F_EMPTY_PATH)
    in_child(body)
