"""Twins of tools/testing/selftests/filesystems/fsmount_ns/fsmount_ns_test.c.

fsmount(FSMOUNT_NAMESPACE) returns an nsfs fd for a new mount namespace whose
only visible mount is the new filesystem, stacked on a clone of the caller's
nullfs root (fs/namespace.c fsmount, create_new_namespace; 7.1).

Where this file differs from upstream:
- upstream maps EINVAL from fsmount to SKIP "not supported"; here feature
  absence comes only from @requires.
- cloexec_only (no FSMOUNT_NAMESPACE): upstream SKIPs setns/verify_*; here
  they check what a plain fsmount returns instead: a mount fd (a directory),
  which setns refuses with EBADF, and whose type statmount(BY_FD) reports.
  Those params need the mount API / STATMOUNT_BY_FD, not FSMOUNT_NAMESPACE,
  so two of them also run on 6.18.
- verify_mount_properties / verify_tmpfs_type run for namespace_only too.
"""
import errno
import fcntl
import os
import stat

import pytest

from harness.upstream import upstream
from helpers.cleanup import scratch_dir
from helpers import uapi
from helpers import sys as k
from helpers.errors import raises_errno
from helpers.mounts import statmount
from helpers.ns import caps_down, enter_userns, new_mntns, own_mntns_id, setup_userns
from helpers.proc import in_child
from helpers.newns import fs_context, fsmount_ns, ns_mounts, setns_and_report, setns_mnt, umount_all_after_setns

CLOEXEC, NS = uapi.FSMOUNT_CLOEXEC, uapi.FSMOUNT_NAMESPACE

FILE = "filesystems/fsmount_ns/fsmount_ns_test.c"


pytestmark = [pytest.mark.requires("statmount", "listmount", "ns_get_mntns_id", "mnt_id_req_ns_id")]

NEEDS_NS = pytest.mark.requires("fsmount_namespace")
VARIANTS = {"basic_tmpfs": NS | CLOEXEC, "cloexec_only": CLOEXEC, "namespace_only": NS}


def variants(test, plain_needs="open_tree"):
    params = []
    for name, flags in VARIANTS.items():
        need = NEEDS_NS if flags & NS else pytest.mark.requires(plain_needs)
        params.append(pytest.param(flags, id=name, marks=[upstream(FILE, f"fsmount_ns.{name}.{test}"), need]))
    return pytest.mark.parametrize("flags", params)


# --- FIXTURE fsmount_ns ------------------------------------------------------------
@pytest.mark.root
@variants("create_namespace")
def test_create_namespace(flags):
    """With NAMESPACE: an nsfs fd of a new namespace with >= 1 mount; without:
    a mount fd (the tmpfs root directory). FD_CLOEXEC follows FSMOUNT_CLOEXEC."""
    fd = k.fsmount(fs_context(), flags, 0)
    assert bool(fcntl.fcntl(fd, fcntl.F_GETFD) & fcntl.FD_CLOEXEC) == bool(flags & CLOEXEC)
    if not flags & NS:
        assert stat.S_ISDIR(os.fstat(fd).st_mode)
        return
    from helpers.ns import ns_id
    new = ns_id(fd)
    assert new != own_mntns_id()
    assert len(ns_mounts(new)) >= 1


@pytest.mark.root
@variants("setns_into_namespace")
def test_setns_into_namespace(flags):
    """A child can setns into the namespace fd. Upstream SKIPs cloexec_only;
    here setns on that plain mount fd fails with EBADF (neither an nsfs fd nor
    a pidfd: kernel/nsproxy.c setns; observed on 6.18)."""
    fd = k.fsmount(fs_context(), flags, 0)
    if not flags & NS:
        with raises_errno(errno.EBADF):
            setns_mnt(fd)
        return
    from helpers.ns import ns_id
    assert in_child(setns_and_report, fd) == ns_id(fd)


def _attached_plain_mount(flags, defer):
    """A plain fsmount fd, attached with move_mount at a fresh /tmp dir
    (statmount BY_FD of the still-detached mount is ENOENT on 7.3)."""
    fd = k.fsmount(fs_context(), flags, 0)
    k.move_mount(fd, "", uapi.AT_FDCWD, scratch_dir(defer), uapi.MOVE_MOUNT_F_EMPTY_PATH)
    return fd


@pytest.mark.root
@variants("verify_mount_properties", plain_needs="statmount_by_fd")
def test_verify_mount_properties(flags, defer):
    """statmount(MNT_BASIC) works on the listed mount, which is not its own
    parent (nullfs below). cloexec_only: statmount(BY_FD) of the mount once attached."""
    if not flags & NS:
        fd = _attached_plain_mount(flags, defer)
        sm = statmount(mask=uapi.STATMOUNT_MNT_BASIC, fd=fd)
        assert sm.mask & uapi.STATMOUNT_MNT_BASIC
        return
    fd, new = fsmount_ns(fs_context(), flags)
    ids = ns_mounts(new)
    assert len(ids) >= 1
    sm = statmount(ids[0], uapi.STATMOUNT_MNT_BASIC, mnt_ns_id=new)
    assert sm.mnt_id != sm.mnt_parent_id


@pytest.mark.root
@variants("verify_tmpfs_type", plain_needs="statmount_by_fd")
def test_verify_tmpfs_type(flags, defer):
    """The namespace's mount is the tmpfs just created (statmount FS_TYPE)."""
    if not flags & NS:
        fd = _attached_plain_mount(flags, defer)
        assert statmount(mask=uapi.STATMOUNT_FS_TYPE, fd=fd).fs_type == "tmpfs"
        return
    fd, new = fsmount_ns(fs_context(), flags)
    ids = ns_mounts(new)
    assert statmount(ids[0], uapi.STATMOUNT_FS_TYPE, mnt_ns_id=new).fs_type == "tmpfs"


# --- FIXTURE fsmount_ns_caps -------------------------------------------------------
@pytest.mark.root
@pytest.mark.userns
@NEEDS_NS
@upstream(FILE, "fsmount_ns_caps.requires_cap_sys_admin")
def test_requires_cap_sys_admin():
    """Without CAP_SYS_ADMIN in its own user namespace: EPERM (the fs context
    was made by root before dropping)."""
    fsfd = fs_context()

    def child():
        enter_userns()
        caps_down()
        with raises_errno(errno.EPERM):
            k.fsmount(fsfd, NS | CLOEXEC, 0)
    in_child(child)


# --- FIXTURE fsmount_ns_userns ------------------------------------------------------
def _userns_fsmount():
    setup_userns()
    return fsmount_ns(fs_context())


@pytest.mark.userns
@NEEDS_NS
@upstream(FILE, "fsmount_ns_userns.create_in_userns")
def test_create_in_userns():
    """Inside setup_userns(): a namespace with >= 1 mount."""
    def child():
        fd, new = _userns_fsmount()
        assert len(ns_mounts(new)) >= 1
    in_child(child)


@pytest.mark.userns
@NEEDS_NS
@upstream(FILE, "fsmount_ns_userns.setns_in_userns")
def test_setns_in_userns():
    """Inside setup_userns(): a grandchild can setns into the new namespace."""
    def child():
        fd, new = _userns_fsmount()
        assert in_child(setns_and_report, fd) == new
    in_child(child)


@pytest.mark.userns
@NEEDS_NS
@upstream(FILE, "fsmount_ns_userns.umount_fails_einval")
def test_umount_fails_einval():
    """The rootfs stack of a setup_userns() namespace is MNT_LOCKED, so the new
    top mount is locked too: umount2(MNT_DETACH) is EINVAL (fs/namespace.c
    create_new_namespace, can_umount)."""
    def child():
        fd, new = _userns_fsmount()
        return umount_all_after_setns(fd, new)
    result = in_child(child)
    assert result and all(err == errno.EINVAL for err in result.values()), result


@pytest.mark.root
@NEEDS_NS
@upstream(FILE, "fsmount_ns_userns.umount_succeeds")
def test_umount_succeeds():
    """Root, no user namespace: nothing is locked, every mount detaches."""
    new_mntns(uapi.MS_SLAVE)
    fd, new = fsmount_ns(fs_context())
    result = umount_all_after_setns(fd, new)
    assert result and all(err == 0 for err in result.values()), result


# --- FIXTURE fsmount_ns_mount_attrs ---------------------------------------------------
ATTRS = {
    "readonly": uapi.MOUNT_ATTR_RDONLY,
    "noexec": uapi.MOUNT_ATTR_NOEXEC,
    "nosuid": uapi.MOUNT_ATTR_NOSUID,
    "noatime": uapi.MOUNT_ATTR_NOATIME,
    "combined": uapi.MOUNT_ATTR_RDONLY | uapi.MOUNT_ATTR_NOEXEC | uapi.MOUNT_ATTR_NOSUID
    | uapi.MOUNT_ATTR_NOATIME,
}


@pytest.mark.root
@NEEDS_NS
@pytest.mark.parametrize("attr", [
    pytest.param(v, id=n, marks=upstream(FILE, f"fsmount_ns_mount_attrs.{n}")) for n, v in ATTRS.items()])
def test_mount_attrs(attr):
    """attr_flags given to fsmount(FSMOUNT_NAMESPACE) show in statmount.mnt_attr."""
    fd, new = fsmount_ns(fs_context(), NS | CLOEXEC, attr)
    ids = ns_mounts(new)
    assert len(ids) >= 1
    sm = statmount(ids[0], uapi.STATMOUNT_MNT_BASIC, mnt_ns_id=new)
    assert sm.mnt_attr & attr == attr, hex(sm.mnt_attr)
