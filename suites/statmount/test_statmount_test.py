"""Twins of tools/testing/selftests/filesystems/statmount/statmount_test.c
(a ksft_test_result program, plan 17; fs/namespace.c statmount, do_statmount).

Upstream's program setup becomes the `chroot_root` fixture: unshare
CLONE_NEWNS|CLONE_NEWUSER|CLONE_NEWPID with "0 <uid> 1" maps, "/" rprivate,
a /tmp/statmount_test_root.XXXXXX directory bound onto itself, chroot into it.
"/" is then a single mount whose parent is the mount holding /tmp.

Differences from upstream, on purpose:
- A field-mask mismatch is a FAIL here, not a SKIP: every field these cases
  request (SB_BASIC, MNT_BASIC, MNT_ROOT, MNT_POINT, FS_TYPE, MNT_NS_ID,
  MNT_OPTS) exists on every kernel that has statmount and is in scope (>= 6.10),
  and a silently dropped bit is exactly what a conformance run must see.
- "statmount fs type" only checks membership in a list of known filesystems
  upstream, so it always passes; here fs_type must equal the type that
  /proc/self/mountinfo shows for the same mount (without a fuse subtype).
- The STATMOUNT_BY_FD cases need the feature (7.0): `requires` marker.
"""
import errno
import os
from dataclasses import dataclass

import pytest

from harness.upstream import upstream
from helpers.cleanup import scratch_dir
from helpers import sys as k
from helpers import uapi
from helpers.errors import raises_errno
from helpers.mounts import listmount, make_rprivate, mnt_id_req, statmount, statmount_raw, tmpfs
from helpers.ns import write_id_maps
from suites.statmount.statmount_local import keep_sources_readable

FILE = "filesystems/statmount/statmount_test.c"
SM_SIZE = uapi.STATMOUNT_FIXED_SIZE
ALL_MASK = (uapi.STATMOUNT_SB_BASIC | uapi.STATMOUNT_MNT_BASIC | uapi.STATMOUNT_PROPAGATE_FROM |
            uapi.STATMOUNT_MNT_ROOT | uapi.STATMOUNT_MNT_POINT | uapi.STATMOUNT_FS_TYPE |
            uapi.STATMOUNT_MNT_NS_ID)

pytestmark = [pytest.mark.userns, pytest.mark.requires("statmount", "listmount")]


@dataclass
class Root:
    mntpoint: str       # the tmp dir, as seen from the original root
    orig_root: int      # O_PATH fd of the original "/"
    root_id: int        # unique id of "/" after the chroot (the bind mount)
    old_root_id: int
    parent_id: int      # unique id of the mount holding the tmp dir
    old_parent_id: int


@pytest.fixture
def chroot_root(request, defer):
    """upstream setup_namespace(); teardown is its cleanup_namespace()."""
    keep_sources_readable(request.module.__name__, "helpers.errors", "helpers.mounts", "helpers.sys")
    uid, gid = os.getuid(), os.getgid()
    k.unshare(uapi.CLONE_NEWNS | uapi.CLONE_NEWUSER | uapi.CLONE_NEWPID)
    write_id_maps(uid, gid)
    make_rprivate("/")
    mntpoint = scratch_dir(defer, prefix="statmount_test_root.")
    old_parent_id, parent_id = k.mnt_id_old(mntpoint), k.mnt_id_unique(mntpoint)
    orig_root = os.open("/", os.O_PATH)
    k.mount(mntpoint, mntpoint, None, uapi.MS_BIND)
    os.chroot(mntpoint)
    os.chdir("/")
    yield Root(mntpoint, orig_root, k.mnt_id_unique("/"), k.mnt_id_old("/"),
               parent_id, old_parent_id)
    os.fchdir(orig_root)
    os.chroot(".")


def statmount_fixed(mnt_id, mask):
    """statmount into exactly a struct statmount (512 bytes), as upstream does."""
    _, buf = statmount_raw(mnt_id_req(mnt_id, mask), SM_SIZE)
    return k.ffi.cast("struct statmount *", buf)


def root_mountinfo(root):
    """The /proc/self/mountinfo line of the chroot's "/" (proc is reached
    through the original root; the view is the chroot's)."""
    fd = os.open("proc/self/mountinfo", os.O_RDONLY, dir_fd=root.orig_root)
    with open(fd) as f:
        for line in f:
            left, right = line.rstrip("\n").split(" - ", 1)
            if int(left.split()[0]) == root.old_root_id:
                fstype, _source, super_opts = right.split(" ", 2)
                return fstype, super_opts
    raise AssertionError(f"no mountinfo line for mount {root.old_root_id}")


@upstream(FILE, "listmount empty root")
def test_listmount_lists_only_the_chroot_root(chroot_root):
    assert listmount(uapi.LSMT_ROOT, nr=32) == [chroot_root.root_id]


@upstream(FILE, "statmount zero mask")
def test_statmount_zero_mask_fills_nothing(chroot_root):
    sm = statmount_fixed(chroot_root.root_id, 0)
    assert sm.size == SM_SIZE
    assert sm.mask == 0


@upstream(FILE, "statmount mnt basic")
def test_statmount_mnt_basic(chroot_root):
    sm = statmount_fixed(chroot_root.root_id, uapi.STATMOUNT_MNT_BASIC)
    assert sm.size == SM_SIZE
    assert sm.mask == uapi.STATMOUNT_MNT_BASIC
    assert sm.mnt_id == chroot_root.root_id
    assert sm.mnt_id_old == chroot_root.old_root_id
    assert sm.mnt_parent_id == chroot_root.parent_id
    assert sm.mnt_parent_id_old == chroot_root.old_parent_id
    assert sm.mnt_propagation == uapi.MS_PRIVATE


@upstream(FILE, "statmount sb basic")
def test_statmount_sb_basic_matches_statx_and_statfs(chroot_root):
    sm = statmount_fixed(chroot_root.root_id, uapi.STATMOUNT_SB_BASIC)
    assert sm.size == SM_SIZE
    assert sm.mask == uapi.STATMOUNT_SB_BASIC
    stx = k.statx(uapi.AT_FDCWD, "/", 0, 0)
    assert (sm.sb_dev_major, sm.sb_dev_minor) == (stx.stx_dev_major, stx.stx_dev_minor)
    assert sm.sb_magic == k.statfs("/").f_type


@upstream(FILE, "statmount mount root")
def test_statmount_mnt_root_is_the_bound_directory(chroot_root):
    sm = statmount(chroot_root.root_id, uapi.STATMOUNT_MNT_ROOT)
    assert sm.mask & uapi.STATMOUNT_MNT_ROOT
    assert os.path.basename(sm.mnt_root) == os.path.basename(chroot_root.mntpoint)


@upstream(FILE, "statmount mount point")
def test_statmount_mnt_point_is_slash_in_the_chroot(chroot_root):
    sm = statmount(chroot_root.root_id, uapi.STATMOUNT_MNT_POINT)
    assert sm.mask & uapi.STATMOUNT_MNT_POINT
    assert sm.mnt_point == "/"


@upstream(FILE, "statmount fs type")
def test_statmount_fs_type_matches_mountinfo(chroot_root):
    """Upstream only checks that the name is in a list of known filesystems
    (and passes either way); here it must be the mount's real type."""
    sm = statmount(chroot_root.root_id, uapi.STATMOUNT_FS_TYPE)
    assert sm.mask & uapi.STATMOUNT_FS_TYPE
    fstype, _ = root_mountinfo(chroot_root)
    assert fstype.split(".", 1)[0] == sm.fs_type  # mountinfo adds ".<subtype>" for fuse


def strip_generic_sb_flags(super_opts):
    """mountinfo's super options minus what show_sb_opts() prepends
    ("ro"/"rw", "sync", "dirsync", "lazytime"), as upstream strips them."""
    opts = super_opts.split(",")
    for generic in (("ro", "rw"), ("sync",), ("dirsync",), ("lazytime",)):
        if opts and opts[0] in generic:
            opts.pop(0)
    return ",".join(opts)


@upstream(FILE, "statmount mount options")
def test_statmount_mnt_opts_match_mountinfo_super_options(chroot_root):
    sm = statmount(chroot_root.root_id, uapi.STATMOUNT_MNT_BASIC | uapi.STATMOUNT_MNT_OPTS)
    assert sm.mask & uapi.STATMOUNT_MNT_BASIC
    _, super_opts = root_mountinfo(chroot_root)
    expected = strip_generic_sb_flags(super_opts)
    assert (sm.mnt_opts if sm.mask & uapi.STATMOUNT_MNT_OPTS else "") == expected


STRING_CASES = [
    ("mount root", uapi.STATMOUNT_MNT_ROOT, "mnt_root"),
    ("mount point", uapi.STATMOUNT_MNT_POINT, "mnt_point"),
    ("fs type", uapi.STATMOUNT_FS_TYPE, "fs_type"),
    ("mount root & all", ALL_MASK, "mnt_root"),
    ("mount point & all", ALL_MASK, "mnt_point"),
    ("fs type & all", ALL_MASK, "fs_type"),
]


@pytest.mark.parametrize("mask,field", [
    pytest.param(mask, field, id=name.replace(" & ", "_and_").replace(" ", "_"),
                 marks=upstream(FILE, f"statmount string {name}"))
    for name, mask, field in STRING_CASES])
def test_statmount_string_needs_room_for_its_nul(chroot_root, mask, field):
    """The string lies inside `size`, is NUL-terminated there; a buffer of
    exactly `size` works, one that ends just before the NUL is EOVERFLOW."""
    size = statmount(chroot_root.root_id, mask).size
    assert size >= SM_SIZE
    _, buf = statmount_raw(mnt_id_req(chroot_root.root_id, mask), size)
    sm = k.ffi.cast("struct statmount *", buf)
    assert sm.mask == mask
    strings = k.ffi.buffer(buf, size)[SM_SIZE:]
    start = getattr(sm, field)
    assert start < len(strings), f"{field} offset {start} outside the {len(strings)} string bytes"
    nul = strings.find(b"\0", start)
    assert nul != -1, f"{field} is not NUL-terminated inside size {size}"
    with raises_errno(errno.EOVERFLOW):
        statmount_raw(mnt_id_req(chroot_root.root_id, mask), SM_SIZE + nul)


@upstream(FILE, "listmount tree")
def test_listmount_pages_through_a_propagated_tree(chroot_root):
    """Shared "/" bound onto itself 4 times: propagation doubles the stack each
    time, 16 mounts. Paging 3 ids at a time gives the same ids in order."""
    k.mount("", "/", None, uapi.MS_REC | uapi.MS_SHARED)
    for _ in range(4):
        k.mount("/", "/", None, uapi.MS_BIND)
    whole = listmount(uapi.LSMT_ROOT, nr=20)
    assert len(whole) == 16
    paged, last = [], 0
    while True:
        got = listmount(uapi.LSMT_ROOT, last=last, nr=3)
        if not got:
            break
        assert len(got) <= 3
        paged += got
        last = got[-1]
    assert paged == whole


@upstream(FILE, "statmount by fd on unmounted mount")
@pytest.mark.requires("statmount_by_fd")
def test_statmount_by_fd_on_detached_mount(chroot_root, defer):
    """A detached mount has no mount point: MNT_POINT is dropped from the
    mask, MNT_ROOT is still reported."""
    tmpdir = scratch_dir(defer, prefix="statmount.fd.", parent="/")
    tmpfs(tmpdir)
    subdir = f"{tmpdir}/test.unmounted"
    os.mkdir(subdir)
    k.mount(subdir, subdir, None, uapi.MS_BIND)
    fd = os.open(subdir, os.O_PATH)
    k.umount2(tmpdir, uapi.MNT_DETACH)
    sm = statmount(mask=uapi.STATMOUNT_MNT_POINT | uapi.STATMOUNT_MNT_ROOT, fd=fd)
    assert sm.size >= SM_SIZE
    assert not sm.mask & uapi.STATMOUNT_MNT_POINT
    assert sm.mask & uapi.STATMOUNT_MNT_ROOT
    assert sm.mnt_root == "/test.unmounted"


@upstream(FILE, "statmount by fd")
@pytest.mark.requires("statmount_by_fd")
def test_statmount_by_fd_mount_point_depends_on_root(chroot_root, defer):
    """MNT_POINT is reported only while the mount is reachable from the
    caller's root; MNT_ROOT always."""
    mask = uapi.STATMOUNT_MNT_ROOT | uapi.STATMOUNT_MNT_POINT
    tmpdir = scratch_dir(defer, prefix="statmount.fd.", parent="/")
    tmpfs(tmpdir)
    subdir = f"{tmpdir}/test"
    os.mkdir(subdir)
    k.mount(subdir, subdir, None, uapi.MS_BIND)
    os.mkdir(f"{tmpdir}/chroot")
    fd = os.open(subdir, os.O_PATH)

    os.chroot(f"{tmpdir}/chroot")  # cwd stays at the old root
    sm = statmount(mask=mask, fd=fd)
    assert sm.size >= SM_SIZE
    assert not sm.mask & uapi.STATMOUNT_MNT_POINT
    assert sm.mask & uapi.STATMOUNT_MNT_ROOT
    assert sm.mnt_root == "/test"

    os.chroot(".")
    sm = statmount(mask=mask, fd=fd)
    assert sm.size >= SM_SIZE
    assert sm.mask & mask == mask
    assert sm.mnt_point == subdir
    assert sm.mnt_root == "/test"
