"""NS_MNT_GET_INFO, NS_MNT_GET_NEXT and NS_MNT_GET_PREV (fs/nsfs.c ns_ioctl(),
copy_ns_info_to_user(); fs/namespace.c get_sequential_mnt_ns()) checked
against what listmount(2) shows of the same namespace.

What mnt_ns_info.nr_mounts counts: mnt_namespace.nr_mounts counts every mount
in the namespace, its root mount included (copy_mnt_ns() counts each copied
mount, the mount paths add, umount_tree() subtracts), whatever that root is
(rootfs before 7.0, nullfs since); copy_ns_info_to_user() subtracts the root.
listmount(mnt_id=<namespace root>) lists every mount of the namespace except
the one it starts from (do_listmount() skips mnt_parent_id), so the two agree
for any namespace. listmount(LSMT_ROOT) starts at the caller's "/" and lists
"/" itself: it agrees with nr_mounts only where "/" is the one mount on the
namespace root, as in a namespace open_tree(OPEN_TREE_NAMESPACE) made.

NEXT/PREV return a new fd of the mount namespace with the next higher (lower)
id among those the caller has CAP_SYS_ADMIN over, fill the struct with that
namespace's id and nr_mounts, and say ENOENT past the last one (walks to
ENOENT: suites/nsfs/test_iterate_mntns.py). Since "nsfs: tighten permission
checks for ns iteration ioctls" (7.0, in stable 6.12.78) they need the
initial pid namespace and CAP_SYS_ADMIN in the initial user namespace
(may_use_nsfs_ioctl(): may_see_all_namespaces()), EPERM otherwise;
NS_MNT_GET_INFO needs nothing.
"""
import errno
import os

import pytest

from helpers import sys as k
from helpers import uapi
from helpers.errors import raises_errno
from helpers.mounts import listmount, listmount_all, make_rprivate, mount_stack, tmpfs
from helpers.ns import enter_userns, mnt_ns_info, mount_admin, ns_id, open_ns
from helpers.proc import in_child

pytestmark = pytest.mark.requires("ns_mnt_get_info", "ns_get_mntns_id", "listmount", "statmount")


def nr_mounts(fd):
    return mnt_ns_info(fd)[1]["nr_mounts"]


def listed_from_ns_root():
    """listmount from the caller's namespace root mount (the bottom of the
    mount stack under "/"): every other mount of the namespace."""
    ns_root = mount_stack("/")[-1].mnt_id
    listed = listmount_all(ns_root)
    assert ns_root not in listed
    return listed


def mount_tree(path, children):
    """A tmpfs at path (created) with `children` tmpfs mounts inside."""
    os.mkdir(path)
    tmpfs(path)
    for i in range(children):
        os.mkdir(f"{path}/c{i}")
        tmpfs(f"{path}/c{i}")


@pytest.mark.userns
@pytest.mark.parametrize("extra", [0, 3])
def test_nr_mounts_is_every_mount_but_the_namespace_root(extra):
    """With `extra` more mounts, nr_mounts of one's own namespace equals the
    number of mounts listmount lists from the namespace root mount."""
    def child():
        mount_admin()
        if extra:
            mount_tree("/tmp/t", extra - 1)
        return nr_mounts(open_ns("mnt")), len(listed_from_ns_root())
    info, listed = in_child(child)
    assert info == listed


@pytest.mark.userns
@pytest.mark.parametrize("how", ["umount-each", "detach-parent"])
def test_nr_mounts_follows_mount_and_umount(how):
    """Three mounts (a tmpfs with two children) raise nr_mounts by 3;
    unmounting them, one by one or the parent with MNT_DETACH, brings it
    back; at each step it equals the listing from the namespace root."""
    def child():
        mount_admin()
        fd = open_ns("mnt")
        seen = [(nr_mounts(fd), len(listed_from_ns_root()))]
        mount_tree("/tmp/t", 2)
        seen.append((nr_mounts(fd), len(listed_from_ns_root())))
        if how == "umount-each":
            for path in ("/tmp/t/c0", "/tmp/t/c1", "/tmp/t"):
                k.umount2(path)
        else:
            k.umount2("/tmp/t", uapi.MNT_DETACH)
        seen.append((nr_mounts(fd), len(listed_from_ns_root())))
        return seen
    seen = in_child(child)
    n = seen[0][0]
    assert seen == [(n, n), (n + 3, n + 3), (n, n)]


@pytest.mark.userns
@pytest.mark.requires("open_tree_namespace", "mnt_id_req_ns_fd")
@pytest.mark.parametrize("children", [0, 2])
def test_nr_mounts_of_open_tree_namespace_matches_listmount(children):
    """A namespace from open_tree(OPEN_TREE_NAMESPACE | AT_RECURSIVE) of a
    tmpfs with `children` mounts: nr_mounts is 1 + children (the nullfs root
    not counted); listmount by the fd lists as many, and so does
    listmount(LSMT_ROOT) inside it, "/" included (its "/" is the one mount
    on the nullfs root)."""
    def child():
        mount_admin()
        mount_tree("/tmp/t", children)
        fd = k.open_tree(uapi.AT_FDCWD, "/tmp/t", uapi.OPEN_TREE_NAMESPACE | uapi.AT_RECURSIVE
                         | uapi.OPEN_TREE_CLOEXEC)
        by_fd = listmount(mnt_ns_fd=fd, nr=64)
        k.setns(fd, uapi.CLONE_NEWNS)
        own = listmount(nr=64)
        return nr_mounts(fd), by_fd, own, k.mnt_id_unique("/")
    info, by_fd, own, root = in_child(child)
    assert info == 1 + children
    assert by_fd == own and len(own) == info
    assert root in own


@pytest.mark.parametrize("fd_kind,arg,err", [
    pytest.param("uts", "info", errno.EINVAL, id="uts-ns-fd"),
    pytest.param("mnt", None, errno.EINVAL, id="null-info"),
])
def test_get_info_refusals(fd_kind, arg, err):
    """NS_MNT_GET_INFO on a namespace fd of another type, or with a NULL
    struct: EINVAL (ns_ioctl())."""
    fd = open_ns(fd_kind)
    info = k.ffi.new("struct mnt_ns_info *", {"size": uapi.MNT_NS_INFO_SIZE_VER0}) if arg else k.ffi.NULL
    with raises_errno(err):
        k.ioctl(fd, uapi.NS_MNT_GET_INFO, info)


# --- NEXT / PREV ---------------------------------------------------------------
def step(fd, request):
    """One NEXT/PREV: (new fd, the info it filled); the info must be that of
    the returned fd's namespace (nr_mounts is compared by the caller, for
    namespaces this test owns: another test's may be mounting meanwhile)."""
    new_fd, info = mnt_ns_info(fd, request)
    assert info["size"] == uapi.MNT_NS_INFO_SIZE_VER0
    assert info["mnt_ns_id"] == ns_id(new_fd)
    return new_fd, info


@pytest.mark.root
@pytest.mark.parametrize("first,then", [
    pytest.param(uapi.NS_MNT_GET_NEXT, uapi.NS_MNT_GET_PREV, id="next-then-prev"),
    pytest.param(uapi.NS_MNT_GET_PREV, uapi.NS_MNT_GET_NEXT, id="prev-then-next"),
])
def test_next_and_prev_are_adjacent_by_id(init_pidns, first, then):
    """Two namespaces A (older) and B (newer, with 4 more mounts: a tmpfs on
    /tmp holding a tmpfs with two children), both held open. NEXT from A
    (PREV from B) returns a namespace M whose id lies past the start, at
    most up to the other end; the opposite step from M comes back towards
    the start, not past it. Other tests' namespaces may appear between A
    and B at any time (alloc_mnt_ns() takes the id before ns_tree_add_raw()
    makes the namespace visible), so M is A's or B's neighbour only in a
    quiet system; when a step lands on A or B, it fills in exactly that
    namespace's size, mnt_ns_id and nr_mounts."""
    k.unshare(uapi.CLONE_NEWNS)
    a = open_ns("mnt")
    k.unshare(uapi.CLONE_NEWNS)
    make_rprivate("/")
    b = open_ns("mnt")
    before = nr_mounts(b)
    tmpfs("/tmp")
    mount_tree("/tmp/t", 2)
    assert nr_mounts(b) == before + 4
    own = {ns_id(a): nr_mounts(a), ns_id(b): nr_mounts(b)}
    start = a if first == uapi.NS_MNT_GET_NEXT else b
    mid, mid_info = step(start, first)
    back, back_info = step(mid, then)
    ids = sorted([ns_id(start), mid_info["mnt_ns_id"], back_info["mnt_ns_id"]])
    if first == uapi.NS_MNT_GET_NEXT:  # a <= back < mid <= b
        assert ns_id(a) <= back_info["mnt_ns_id"] < mid_info["mnt_ns_id"] <= ns_id(b), ids
    else:                              # a <= mid < back <= b
        assert ns_id(a) <= mid_info["mnt_ns_id"] < back_info["mnt_ns_id"] <= ns_id(b), ids
    for info in (mid_info, back_info):
        if info["mnt_ns_id"] in own:
            assert info["nr_mounts"] == own[info["mnt_ns_id"]]


@pytest.mark.root
@pytest.mark.parametrize("request_", [
    pytest.param(uapi.NS_MNT_GET_NEXT, id="next"),
    pytest.param(uapi.NS_MNT_GET_PREV, id="prev"),
])
def test_next_and_prev_without_info_return_the_fd(init_pidns, request_):
    """NEXT from the older of two held namespaces (PREV from the newer) with
    a NULL struct: the neighbour's fd, nothing filled. The struct is
    optional: ns_ioctl() copies the info out "If @uinfo is passed" (its
    comment; the check went missing when the case was converted to
    FD_PREPARE(), and copy_ns_info_to_user() then faults on NULL)."""
    k.unshare(uapi.CLONE_NEWNS)
    a = open_ns("mnt")
    k.unshare(uapi.CLONE_NEWNS)
    b = open_ns("mnt")
    start = a if request_ == uapi.NS_MNT_GET_NEXT else b
    fd = k.ioctl(start, request_, k.ffi.NULL)
    assert ns_id(a) <= ns_id(fd) <= ns_id(b) and ns_id(fd) != ns_id(start)


@pytest.mark.userns
@pytest.mark.parametrize("request_,err", [
    pytest.param(uapi.NS_MNT_GET_INFO, 0, id="info-allowed"),
    pytest.param(uapi.NS_MNT_GET_NEXT, errno.EPERM, id="next-eperm"),
    pytest.param(uapi.NS_MNT_GET_PREV, errno.EPERM, id="prev-eperm"),
])
def test_iteration_needs_privilege_over_all_namespaces(request_, err):
    """Inside a user namespace, with two mount namespaces it owns (so an
    older kernel's per-namespace check would find a neighbour): NEXT from
    the older and PREV from the newer are EPERM (may_use_nsfs_ioctl():
    may_see_all_namespaces()); NS_MNT_GET_INFO is answered."""
    def child():
        enter_userns(mntns=True)
        older = open_ns("mnt")
        k.unshare(uapi.CLONE_NEWNS)
        newer = open_ns("mnt")
        fd = newer if request_ == uapi.NS_MNT_GET_PREV else older
        if not err:
            return mnt_ns_info(fd, request_)[1]["mnt_ns_id"] == ns_id(fd)
        with raises_errno(err):
            mnt_ns_info(fd, request_)
        return True
    assert in_child(child)
