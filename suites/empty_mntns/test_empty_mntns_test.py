"""Twins of tools/testing/selftests/filesystems/empty_mntns/empty_mntns_test.c:
unshare(UNSHARE_EMPTY_MNTNS) gives a mount namespace holding one mount, a
clone of the namespace's nullfs root (kernel/nsproxy.c unshare_nsproxy_namespaces,
fs/namespace.c copy_mnt_ns; 7.1).

Upstream runs each case in a child that first does utils.c enter_userns();
here the test process itself is that child (it is thrown away afterwards).
"""
import errno
import os
import socket

import pytest

from harness.upstream import upstream
from helpers import clone_flags
from helpers import sys as k
from helpers import uapi
from helpers.errors import raises_errno
from helpers.mounts import count_mounts, listmount, make_rprivate, statmount, tmpfs
from helpers.ns import enter_userns, write_id_maps
from suites.empty_mntns.common import (build_root_from_nothing, drop_cap_sys_admin,
                                       root_and_cwd_ids, self_binds)

FILE = "filesystems/empty_mntns/empty_mntns_test.c"

fixture = pytest.mark.requires("unshare_empty_mntns")


def unshare_empty():
    k.unshare(uapi.UNSHARE_EMPTY_MNTNS)


@fixture
@pytest.mark.userns
@upstream(FILE, "empty_mntns.basic")
def test_basic():
    """One mount after unshare(UNSHARE_EMPTY_MNTNS); "/" and "." are on it."""
    enter_userns()
    unshare_empty()
    assert count_mounts() == 1
    root, cwd = root_and_cwd_ids()
    assert root == cwd


@fixture
@pytest.mark.userns
@upstream(FILE, "empty_mntns.with_clone_newuser")
def test_with_clone_newuser():
    """unshare(CLONE_NEWUSER) with hand-written maps, then the empty mntns."""
    uid, gid = os.geteuid(), os.getegid()
    k.unshare(uapi.CLONE_NEWUSER)
    write_id_maps(uid, gid)
    unshare_empty()
    assert count_mounts() == 1


@fixture
@pytest.mark.userns
@upstream(FILE, "empty_mntns.with_other_ns_flags")
def test_with_other_ns_flags():
    """UNSHARE_EMPTY_MNTNS combines with CLONE_NEWUTS|CLONE_NEWIPC."""
    enter_userns()
    k.unshare(uapi.UNSHARE_EMPTY_MNTNS | uapi.CLONE_NEWUTS | uapi.CLONE_NEWIPC)
    assert count_mounts() == 1


@fixture
@pytest.mark.parametrize("how", [
    pytest.param("nobody", id="nobody"),
    pytest.param("caps_down_in_userns", marks=pytest.mark.userns, id="caps_down_in_userns"),
])
@upstream(FILE, "empty_mntns.eperm_without_caps")
def test_eperm_without_caps(how):
    """Without CAP_SYS_ADMIN over the current user namespace: EPERM.

    Differs from upstream: upstream exits 0 at once when getuid() == 0, so as
    root it asserts nothing. Here root really drops CAP_SYS_ADMIN first
    (setresuid to nobody, or caps_down() in a user namespace) and the EPERM
    is asserted on every run."""
    drop_cap_sys_admin(how)
    with raises_errno(errno.EPERM):
        unshare_empty()


@fixture
@pytest.mark.userns
@upstream(FILE, "empty_mntns.many_source_mounts")
def test_many_source_mounts(tmp_path):
    """Five self-binds in the source namespace are not copied: count is 1."""
    enter_userns()
    self_binds(str(tmp_path), 5)
    assert count_mounts() >= 5
    unshare_empty()
    assert count_mounts() == 1


@fixture
@pytest.mark.userns
@upstream(FILE, "empty_mntns.cwd_reset")
def test_cwd_reset(tmp_path):
    """A cwd on a tmpfs is reset to the new namespace's root."""
    enter_userns()
    k.unshare(uapi.CLONE_NEWNS)
    make_rprivate("/")
    tmpfs(str(tmp_path), "size=1M")
    os.chdir(tmp_path)
    unshare_empty()
    root, cwd = root_and_cwd_ids()
    assert cwd == root
    sm = statmount(root, uapi.STATMOUNT_MNT_ROOT | uapi.STATMOUNT_MNT_POINT)
    assert sm.mnt_point == "/"


@fixture
@pytest.mark.userns
@upstream(FILE, "empty_mntns.mount_properties")
def test_mount_properties():
    """statmount of the root: mount point "/", mnt_id equal to the root id."""
    enter_userns()
    unshare_empty()
    root = k.mnt_id_unique("/")
    assert root != 0
    sm = statmount(root, uapi.STATMOUNT_MNT_BASIC | uapi.STATMOUNT_MNT_ROOT
                   | uapi.STATMOUNT_MNT_POINT | uapi.STATMOUNT_FS_TYPE)
    assert sm.mask & uapi.STATMOUNT_MNT_POINT
    assert sm.mnt_point == "/"
    assert sm.mask & uapi.STATMOUNT_MNT_BASIC
    assert sm.mnt_id == root


@fixture
@pytest.mark.userns
@upstream(FILE, "empty_mntns.repeated_unshare")
def test_repeated_unshare():
    """A second unshare makes another namespace with a new root mount."""
    enter_userns()
    unshare_empty()
    assert count_mounts() == 1
    first = k.mnt_id_unique("/")
    unshare_empty()
    assert count_mounts() == 1
    assert k.mnt_id_unique("/") != first


@fixture
@pytest.mark.userns
@upstream(FILE, "empty_mntns.root_is_own_parent")
def test_root_is_own_parent():
    """The root's mnt_parent_id is its own id (statmount into a 512-byte buffer)."""
    enter_userns()
    unshare_empty()
    root = k.mnt_id_unique("/")
    assert root != 0
    sm = statmount(root, uapi.STATMOUNT_MNT_BASIC, bufsize=512)
    assert sm.mask & uapi.STATMOUNT_MNT_BASIC
    assert sm.mnt_parent_id == sm.mnt_id


@fixture
@pytest.mark.userns
@upstream(FILE, "empty_mntns.listmount_single_entry")
def test_listmount_single_entry():
    """listmount(LSMT_ROOT) with room for 16 returns exactly [id of "/"]."""
    enter_userns()
    unshare_empty()
    ids = listmount(nr=16)
    assert len(ids) == 1
    root = k.mnt_id_unique("/")
    assert root != 0
    assert ids[0] == root


@fixture
@pytest.mark.userns
@upstream(FILE, "empty_mntns.overmount_tmpfs")
def test_overmount_tmpfs():
    """nullfs root, O_CREAT gives ENOENT; a tmpfs moved onto "/" and entered
    with fchdir+chroot is a writable root (count 2)."""
    enter_userns()
    unshare_empty()
    build_root_from_nothing()


@pytest.mark.userns
@upstream(FILE, "global.invalid_flags")
def test_invalid_flags():
    """unshare with a flag the running kernel does not accept: EINVAL.

    Upstream hard-codes 0x80000000 (CLONE_IO, which unshare never accepted);
    the flag comes from helpers.clone_flags for the running kernel, which on
    every kernel so far is that same bit."""
    enter_userns()
    with raises_errno(errno.EINVAL):
        k.unshare(clone_flags.unknown_unshare_flag())


@pytest.mark.userns
@upstream(FILE, "global.clone_newns_full_copy")
def test_clone_newns_full_copy(tmp_path):
    """Regression guard: plain CLONE_NEWNS still copies the whole tree."""
    enter_userns()
    self_binds(str(tmp_path), 3)
    before = count_mounts()
    assert before >= 3
    k.unshare(uapi.CLONE_NEWNS)
    assert count_mounts() >= before


@pytest.mark.userns
@upstream(FILE, "global.other_ns_unaffected")
def test_other_ns_unaffected():
    """CLONE_NEWUTS still works: a hostname set there reads back."""
    enter_userns()
    k.unshare(uapi.CLONE_NEWUTS)
    socket.sethostname("test-empty-mntns")
    assert socket.gethostname() == "test-empty-mntns"
