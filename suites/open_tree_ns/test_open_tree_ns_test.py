"""Twins of tools/testing/selftests/filesystems/open_tree_ns/open_tree_ns_test.c.

open_tree(OPEN_TREE_NAMESPACE) returns an nsfs fd for a new mount namespace
holding a copy of the tree at the path, stacked on a clone of the caller's
nullfs root (fs/namespace.c vfs_open_tree, create_new_namespace; 7.0).

Where this file differs from upstream:
- upstream maps every EINVAL to SKIP "not supported"; here feature absence
  comes only from @requires and every EINVAL is asserted or fails.
- open_tree_ns_userns.create_in_userns / setns_in_userns: a foreign caller's
  non-recursive copy of "/" with submounts is refused with EINVAL on 7.x
  (create_new_namespace), which upstream turns into a SKIP; the twins assert
  the EINVAL and then check the recursive copy the kernel does allow.
- verify_mount_properties runs for every variant that creates a namespace
  (upstream checks basic_root only and SKIPs the rest); for the invalid
  variant setns/verify assert that no namespace fd exists (EINVAL) instead
  of skipping.
- open_tree_ns_unbindable runs in the test's private mount namespace, not
  the host's, and checks the errno (EINVAL) upstream leaves unchecked.
"""
import errno

import pytest

from harness.upstream import upstream
from helpers.cleanup import scratch_dir
from helpers import uapi
from helpers import sys as k
from helpers.errors import raises_errno
from helpers.mounts import statmount
from helpers.ns import caps_down, enter_userns, new_mntns, own_mntns_id
from helpers.proc import in_child
from helpers.newns import ns_mounts, open_tree_ns, setns_and_report, umount_all_after_setns

CLOEXEC, NS, REC = uapi.OPEN_TREE_CLOEXEC, uapi.OPEN_TREE_NAMESPACE, uapi.AT_RECURSIVE

FILE = "filesystems/open_tree_ns/open_tree_ns_test.c"


# variant: (path, flags, expect_success)
VARIANTS = {
    "basic_root": ("/", NS | CLOEXEC, True),
    "recursive_root": ("/", NS | REC | CLOEXEC, True),
    "subdir_tmp": ("/tmp", NS | CLOEXEC, True),
    "subdir_proc": ("/proc", NS | CLOEXEC, True),
    "recursive_tmp": ("/tmp", NS | REC | CLOEXEC, True),
    "recursive_run": ("/run", NS | REC | CLOEXEC, True),
    "invalid_recursive_alone": ("/", REC | CLOEXEC, False),
}


def variants(test):
    return pytest.mark.parametrize(
        "path,flags,ok",
        [pytest.param(*v, marks=upstream(FILE, f"open_tree_ns.{name}.{test}"), id=name)
         for name, v in VARIANTS.items()])


pytestmark = [pytest.mark.requires("open_tree_namespace", "statmount", "listmount",
                                   "ns_get_mntns_id", "mnt_id_req_ns_id")]


# --- FIXTURE open_tree_ns ------------------------------------------------------
@pytest.mark.root
@variants("create_namespace")
def test_create_namespace(path, flags, ok):
    """A new, non-empty mount namespace with its own id; AT_RECURSIVE without
    CLONE or NAMESPACE is EINVAL."""
    if not ok:
        with raises_errno(errno.EINVAL):
            k.open_tree(uapi.AT_FDCWD, path, flags)
        return
    fd, new = open_tree_ns(path, flags)
    assert new != own_mntns_id()
    assert len(ns_mounts(new, nr=256)) >= 1


@pytest.mark.root
@variants("setns_into_namespace")
def test_setns_into_namespace(path, flags, ok):
    """The returned fd is a mount-namespace fd a (single-threaded) child can setns into.
    Upstream SKIPs the invalid variant; here it asserts there is no fd (EINVAL)."""
    if not ok:
        with raises_errno(errno.EINVAL):
            k.open_tree(uapi.AT_FDCWD, path, flags)
        return
    fd, new = open_tree_ns(path, flags)

    assert in_child(setns_and_report, fd) == new


@pytest.mark.root
@variants("verify_mount_properties")
def test_verify_mount_properties(path, flags, ok):
    """The first listed mount of the new namespace is not its own parent: the
    nullfs namespace root sits below it (hidden from a listing by id).
    Upstream checks basic_root only; the check holds for every variant."""
    if not ok:
        with raises_errno(errno.EINVAL):
            k.open_tree(uapi.AT_FDCWD, path, flags)
        return
    fd, new = open_tree_ns(path, flags)
    ids = ns_mounts(new, nr=256)
    assert len(ids) >= 1
    sm = statmount(ids[0], uapi.STATMOUNT_MNT_BASIC, mnt_ns_id=new)
    assert sm.mnt_id != sm.mnt_parent_id


# --- FIXTURE open_tree_ns_caps --------------------------------------------------
@pytest.mark.userns
@upstream(FILE, "open_tree_ns_caps.requires_cap_sys_admin")
def test_requires_cap_sys_admin():
    """Without CAP_SYS_ADMIN in its own user namespace the caller gets EPERM."""
    def child():
        enter_userns()
        caps_down()
        with raises_errno(errno.EPERM):
            k.open_tree(uapi.AT_FDCWD, "/", NS | CLOEXEC)
    in_child(child)


# --- FIXTURE open_tree_ns_userns ------------------------------------------------
@pytest.mark.userns
@upstream(FILE, "open_tree_ns_userns.create_in_userns")
def test_create_in_userns():
    """After enter_userns() the caller is foreign to its mount namespace.
    Differs from upstream: the non-recursive copy of "/" (which has submounts)
    is EINVAL on 7.x (create_new_namespace: foreign + !AT_RECURSIVE +
    children), which upstream misreads as "not supported" and SKIPs; asserted
    here, followed by the recursive copy, which must give a non-empty namespace."""
    def child():
        enter_userns()
        with raises_errno(errno.EINVAL):
            k.open_tree(uapi.AT_FDCWD, "/", NS | CLOEXEC)
        fd, new = open_tree_ns("/", NS | REC | CLOEXEC)
        assert len(ns_mounts(new, nr=256)) >= 1
    in_child(child)


@pytest.mark.userns
@upstream(FILE, "open_tree_ns_userns.setns_in_userns")
def test_setns_in_userns():
    """As create_in_userns (same EINVAL difference from upstream); the
    recursive copy is owned by the caller's user namespace, so it can setns."""
    def child():
        enter_userns()
        with raises_errno(errno.EINVAL):
            k.open_tree(uapi.AT_FDCWD, "/", NS | CLOEXEC)
        fd, new = open_tree_ns("/", NS | REC | CLOEXEC)

        assert in_child(setns_and_report, fd) == new
    in_child(child)


@pytest.mark.userns
@upstream(FILE, "open_tree_ns_userns.recursive_in_userns")
def test_recursive_in_userns():
    """A foreign caller may copy "/" recursively; the namespace is non-empty."""
    def child():
        enter_userns()
        fd, new = open_tree_ns("/", NS | REC | CLOEXEC)
        assert len(ns_mounts(new, nr=256)) >= 1
    in_child(child)


@pytest.mark.userns
@upstream(FILE, "open_tree_ns_userns.umount_fails_einval")
def test_umount_fails_einval():
    """Every mount of a foreign copy is MNT_LOCKED (lock_mnt_tree), so each
    umount2(MNT_DETACH) inside the new namespace is EINVAL."""
    def child():
        enter_userns()
        fd, new = open_tree_ns("/", NS | REC | CLOEXEC)
        return umount_all_after_setns(fd, new)
    result = in_child(child)
    assert result and all(err == errno.EINVAL for err in result.values()), result


@pytest.mark.root
@upstream(FILE, "open_tree_ns_userns.umount_succeeds")
def test_umount_succeeds():
    """The owner's (non-foreign, unlocked) copy: every mount, "/" included, detaches."""
    new_mntns(uapi.MS_SLAVE)
    fd, new = open_tree_ns("/", NS | REC | CLOEXEC)
    result = umount_all_after_setns(fd, new)
    assert result and all(err == 0 for err in result.values()), result


# --- FIXTURE open_tree_ns_unbindable ---------------------------------------------
@pytest.fixture
def unbindable_tmp(defer):
    path = scratch_dir(defer, prefix="open_tree_ns_test.")
    k.mount("tmpfs", path, "tmpfs")
    k.mount(None, path, None, uapi.MS_UNBINDABLE)
    return path


@pytest.mark.root
@upstream(FILE, "open_tree_ns_unbindable.fails_on_unbindable")
def test_fails_on_unbindable(unbindable_tmp):
    """An unbindable source mount cannot be copied: EINVAL (__do_loopback).
    Upstream only checks that the call fails."""
    with raises_errno(errno.EINVAL):
        k.open_tree(uapi.AT_FDCWD, unbindable_tmp, NS | CLOEXEC)


@pytest.mark.root
@upstream(FILE, "open_tree_ns_unbindable.recursive_skips_on_unbindable")
def test_recursive_skips_on_unbindable(unbindable_tmp):
    """A recursive copy of "/" by the owner leaves the unbindable submount out."""
    fd, new = open_tree_ns("/", NS | REC | CLOEXEC)
    ids = ns_mounts(new, nr=4096)
    assert ids
    points = [statmount(m, uapi.STATMOUNT_MNT_POINT, mnt_ns_id=new).mnt_point for m in ids]
    assert unbindable_tmp not in points
