"""Twins of mount_setattr/mount_setattr_test.c, FIXTURE(mount_setattr) (24 cases).

Every case runs as uid 0 of a user namespace that owns a private mount
namespace (upstream prepare_unpriv_mountns(), the `tree` fixture), on the tmpfs
tree described in mount_setattr_tree.py. Where upstream only asserts "fails"
(ASSERT_NE/ASSERT_LT), the twin asserts the errno the kernel gives (fs/namespace.c
build_mount_kattr, do_mount_setattr). Steps that change namespace ("a process in another user/mount
namespace tries X") run in helpers.proc.in_child, so the fixture's teardown
still runs in the fixture's namespace; upstream does them in the test process.
"""
import errno
import os
import threading

import pytest

from harness.upstream import upstream
from helpers import sys as k
from helpers import flags, uapi
from helpers.errors import raises_errno
from helpers.ns import enter_userns, setup_userns
from helpers.proc import in_child

from suites.mount_setattr.mount_setattr_tree import FOUR, is_mount_root, is_shared, mnt_flags, setattr_fd, setattr_path

FILE = "mount_setattr/mount_setattr_test.c"
pytestmark = [pytest.mark.userns]


# "Undefined" bits come from helpers/flags.py's tables for the running kernel
# (mount_setattr rejects attr_set/attr_clr bits outside MOUNT_SETATTR_VALID_FLAGS
# and propagation outside the four types with EINVAL), never hard-coded.
# upstream uses 1 << 31: the highest undefined bit of the low 32.
UNDEFINED_ATTR = max(flags.undefined_bits("mount_setattr"))
UNDEFINED_PROPAGATION = max(flags.undefined_bits("mount_setattr_propagation"))

RDONLY = uapi.MOUNT_ATTR_RDONLY
ATIME = uapi.MOUNT_ATTR__ATIME
SHALLOW_CLONE_FLAGS = (uapi.AT_NO_AUTOMOUNT | uapi.AT_SYMLINK_NOFOLLOW
                       | uapi.OPEN_TREE_CLOEXEC | uapi.OPEN_TREE_CLONE)
TREE_CLONE_FLAGS = SHALLOW_CLONE_FLAGS | uapi.AT_RECURSIVE
# open_tree without CLONE: a second file on the same (detached) mount
PATH_FD_FLAGS = (uapi.AT_NO_AUTOMOUNT | uapi.AT_SYMLINK_NOFOLLOW | uapi.AT_EMPTY_PATH
                 | uapi.OPEN_TREE_CLOEXEC)


def clone_tree(dfd, path, flags=TREE_CLONE_FLAGS):
    return k.open_tree(dfd, path, flags)


def attach(fd, target):
    """move_mount(fd, "", -EBADF, target, MOVE_MOUNT_F_EMPTY_PATH)."""
    return k.move_mount(fd, "", -errno.EBADF, target, uapi.MOVE_MOUNT_F_EMPTY_PATH)


def move_onto(from_fd, to_fd):
    return k.move_mount(from_fd, "", to_fd, "",
                        uapi.MOVE_MOUNT_F_EMPTY_PATH | uapi.MOVE_MOUNT_T_EMPTY_PATH)


# --- attribute validation ---------------------------------------------------------
@upstream(FILE, "mount_setattr.invalid_attributes")
def test_invalid_attributes(tree):
    """Undefined attr_set, attr_clr and propagation bits are EINVAL, and a
    relative path with dfd -1 is EBADF; nothing changes. Upstream asserts only
    "fails" for 1 << 31; the twin also sweeps every undefined bit."""
    a = tree("/mnt/A")
    before = tree.flags()
    with raises_errno(errno.EINVAL):
        setattr_path(a, attr_set=UNDEFINED_ATTR)
    with raises_errno(errno.EINVAL):
        setattr_path(a, attr_clr=UNDEFINED_ATTR)
    with raises_errno(errno.EINVAL):
        setattr_path(a, propagation=UNDEFINED_PROPAGATION)
    with raises_errno(errno.EINVAL):
        setattr_path(a, attr_set=UNDEFINED_ATTR, attr_clr=UNDEFINED_ATTR,
                     propagation=UNDEFINED_PROPAGATION)
    for bit in flags.undefined_bits("mount_setattr", width=64):
        with raises_errno(errno.EINVAL):
            setattr_path(a, attr_set=bit)
        with raises_errno(errno.EINVAL):
            setattr_path(a, attr_clr=bit)
    for bit in flags.undefined_bits("mount_setattr_propagation", width=64):
        with raises_errno(errno.EINVAL):
            setattr_path(a, propagation=bit)
    # Upstream passes the relative path with the invalid attrs, so the
    # EINVAL comes from the attrs; a valid attr isolates the path: EBADF.
    with raises_errno(errno.EBADF):
        setattr_path(a.lstrip("/"), attr_set=RDONLY)
    assert tree.flags() == before


@upstream(FILE, "mount_setattr.extensibility")
def test_extensibility(tree):
    """struct mount_attr is an extensible struct: NULL is EFAULT, sizes below
    VER0 (32) are EINVAL, a larger zero-padded struct is accepted, nonzero
    trailing bytes are E2BIG.

    Upstream passes the 6-byte string "dummy" and relies on the garbage the
    kernel reads past it decoding as invalid flags (upstream's extensibility case); the
    twin passes a real 32-byte struct with an undefined attr_set bit."""
    a = tree("/mnt/A")
    old = mnt_flags(a)
    assert old
    with raises_errno(errno.EFAULT):
        k.mount_setattr(-1, a, uapi.AT_RECURSIVE, None, uapi.MOUNT_ATTR_SIZE_VER0)
    with raises_errno(errno.EINVAL):
        k.mount_setattr(-1, a, uapi.AT_RECURSIVE, k.mount_attr(attr_set=UNDEFINED_ATTR),
                        uapi.MOUNT_ATTR_SIZE_VER0)
    for size in (0, 16):
        with raises_errno(errno.EINVAL):
            k.mount_setattr(-1, a, uapi.AT_RECURSIVE, k.mount_attr(), size)

    big = k.ffi.new("struct mount_attr[3]")
    big_ptr = k.ffi.cast("struct mount_attr *", big)
    big_size = k.ffi.sizeof(big)
    assert big_size == 3 * uapi.MOUNT_ATTR_SIZE_VER0
    assert k.mount_setattr(-1, a, uapi.AT_RECURSIVE, big_ptr, big_size) == 0
    big[2].attr_set = RDONLY
    with raises_errno(errno.E2BIG):
        k.mount_setattr(-1, a, uapi.AT_RECURSIVE, big_ptr, big_size)
    big[2].attr_set = 0
    big[0].attr_set = RDONLY
    assert k.mount_setattr(-1, a, uapi.AT_RECURSIVE, big_ptr, big_size) == 0
    for path in tree.four:
        assert mnt_flags(path) == old | {"ro"}, path


# --- changing flags ---------------------------------------------------------------
@upstream(FILE, "mount_setattr.basic")
def test_basic(tree):
    """Without AT_RECURSIVE only the mount at the path changes."""
    before = tree.flags()
    old = before["/mnt/A"]
    assert setattr_path(tree("/mnt/A"), 0, attr_set=RDONLY | uapi.MOUNT_ATTR_NOEXEC
                        | uapi.MOUNT_ATTR_RELATIME, attr_clr=ATIME) == 0
    assert mnt_flags(tree("/mnt/A")) == (old - {"noatime"}) | {"ro", "noexec", "relatime"}
    for path in FOUR[1:]:
        assert mnt_flags(tree(path)) == before[path], path


@upstream(FILE, "mount_setattr.basic_recursive")
def test_basic_recursive(tree):
    """AT_RECURSIVE changes every mount below the path; a file open for
    writing anywhere in the tree makes RDONLY fail (EBUSY) and leaves every
    mount, and its propagation, as it was."""
    old = mnt_flags(tree("/mnt/A"))
    assert setattr_path(tree("/mnt/A"), attr_set=RDONLY | uapi.MOUNT_ATTR_NOEXEC
                        | uapi.MOUNT_ATTR_RELATIME, attr_clr=ATIME) == 0
    expected = (old - {"noatime"}) | {"ro", "noexec", "relatime"}
    for path in tree.four:
        assert mnt_flags(path) == expected, path

    assert setattr_path(tree("/mnt/A"), attr_clr=RDONLY, propagation=uapi.MS_SHARED) == 0
    expected -= {"ro"}
    for path in tree.four:
        assert mnt_flags(path) == expected, path
        assert is_shared(path), path

    fd = os.open(tree("/mnt/A/AA/B/b"), os.O_RDWR | os.O_CLOEXEC | os.O_CREAT | os.O_EXCL, 0o777)
    with raises_errno(errno.EBUSY):
        setattr_path(tree("/mnt/A"), attr_set=RDONLY, attr_clr=RDONLY, propagation=uapi.MS_SHARED)
    for path in tree.four:
        assert mnt_flags(path) == expected, path
        assert is_shared(path), path
    os.close(fd)


@upstream(FILE, "mount_setattr.mount_has_writers")
def test_mount_has_writers(tree):
    """A writer on one mount of the tree fails the whole recursive change
    (EBUSY), including its propagation change; without it the call works."""
    before = tree.flags()
    fd = os.open(tree("/mnt/A/AA/B/b"), os.O_RDWR | os.O_CLOEXEC | os.O_CREAT | os.O_EXCL, 0o777)
    attrs = dict(attr_set=RDONLY | uapi.MOUNT_ATTR_NOEXEC | uapi.MOUNT_ATTR_RELATIME,
                 attr_clr=ATIME, propagation=uapi.MS_SHARED)
    with raises_errno(errno.EBUSY):
        setattr_path(tree("/mnt/A"), **attrs)
    assert tree.flags() == before
    for path in tree.four:
        assert not is_shared(path), path

    dfd = os.open(tree("/mnt/A/AA/B"), os.O_DIRECTORY | os.O_CLOEXEC)
    os.fsync(dfd)
    os.close(dfd)
    os.fsync(fd)
    os.close(fd)

    assert setattr_path(tree("/mnt/A"), **attrs) == 0
    for path in FOUR:
        assert mnt_flags(tree(path)) == (before[path] - {"noatime"}) | {"ro", "noexec", "relatime"}, path
        assert is_shared(tree(path)), path


@upstream(FILE, "mount_setattr.mixed_mount_options")
def test_mixed_mount_options(tree):
    """Clearing flags on a ramfs mount that has them (and some it lacks) works."""
    old = mnt_flags(tree("/mnt/B/BB"))
    assert setattr_path(tree("/mnt/B"), attr_clr=RDONLY | uapi.MOUNT_ATTR_NOSUID
                        | uapi.MOUNT_ATTR_NOEXEC | ATIME,
                        attr_set=uapi.MOUNT_ATTR_RELATIME) == 0
    expected = (old - {"ro", "noexec", "noatime", "nosuid"}) | {"relatime"}
    assert mnt_flags(tree("/mnt/B")) == expected
    assert mnt_flags(tree("/mnt/B/BB")) == expected


@upstream(FILE, "mount_setattr.time_changes")
def test_time_changes(tree):
    """An atime mode in attr_set needs all of MOUNT_ATTR__ATIME in attr_clr,
    and attr_clr takes _ATIME whole or not at all (EINVAL otherwise); the
    accepted transitions replace the atime mode on every mount of the tree."""
    a = tree("/mnt/A")
    noatime, strict = uapi.MOUNT_ATTR_NOATIME, uapi.MOUNT_ATTR_STRICTATIME
    invalid = [
        dict(attr_set=uapi.MOUNT_ATTR_NODIRATIME | noatime),
        dict(attr_set=strict),
        dict(attr_set=strict | noatime),
        dict(attr_set=strict | noatime, attr_clr=ATIME),
        dict(attr_clr=strict),
        dict(attr_clr=noatime),
    ]
    for attrs in invalid:
        with raises_errno(errno.EINVAL):
            setattr_path(a, **attrs)

    old = mnt_flags(a)
    assert setattr_path(a, attr_set=uapi.MOUNT_ATTR_NODIRATIME | noatime, attr_clr=ATIME) == 0
    expected = old | {"noatime", "nodiratime"}
    for path in tree.four:
        assert mnt_flags(path) == expected, path

    steps = [
        (uapi.MOUNT_ATTR_RELATIME, (expected - {"noatime"}) | {"relatime"}),
        (strict, expected - {"noatime", "relatime"}),
        (noatime, expected),
    ]
    for atime, want in steps:
        assert setattr_path(a, attr_set=atime, attr_clr=ATIME) == 0
        for path in tree.four:
            assert mnt_flags(path) == want, (atime, path)

    assert setattr_path(a) == 0
    for path in tree.four:
        assert mnt_flags(path) == expected, path

    assert setattr_path(a, attr_clr=uapi.MOUNT_ATTR_NODIRATIME) == 0
    for path in tree.four:
        assert mnt_flags(path) == expected - {"nodiratime"}, path


@upstream(FILE, "mount_setattr.multi_threaded")
def test_multi_threaded(tree):
    """Concurrent recursive mount_setattr calls on the same tree all succeed."""
    old = mnt_flags(tree("/mnt/A"))
    nthreads = min(os.cpu_count() or 1, 4)
    results = [None] * nthreads

    def worker(i):
        try:
            results[i] = setattr_path(tree("/mnt/A"), attr_set=RDONLY | uapi.MOUNT_ATTR_NOSUID,
                                      propagation=uapi.MS_SHARED)
        except OSError as e:
            results[i] = e

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(nthreads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [0] * nthreads
    for path in tree.four:
        assert mnt_flags(path) == old | {"ro", "nosuid"}, path
        assert is_shared(path), path


# --- who may change a mount ---------------------------------------------------------
@upstream(FILE, "mount_setattr.wrong_user_namespace")
def test_wrong_user_namespace(tree):
    """Root of a nested user namespace has no CAP_SYS_ADMIN over the mount
    namespace's owner: EPERM."""
    def child():
        enter_userns()
        with raises_errno(errno.EPERM):
            setattr_path(tree("/mnt/A"), attr_set=RDONLY)
    in_child(child)
    assert "ro" not in mnt_flags(tree("/mnt/A"))


@upstream(FILE, "mount_setattr.wrong_mount_namespace")
def test_wrong_mount_namespace(tree):
    """A mount of another mount namespace, reached through an fd, is EINVAL."""
    fd = os.open(tree("/mnt/A"), os.O_DIRECTORY | os.O_CLOEXEC)

    def child():
        k.unshare(uapi.CLONE_NEWNS)
        with raises_errno(errno.EINVAL):
            setattr_fd(fd, uapi.AT_EMPTY_PATH | uapi.AT_RECURSIVE, attr_set=RDONLY)
    in_child(child)
    assert "ro" not in mnt_flags(tree("/mnt/A"))
    os.close(fd)


@upstream(FILE, "mount_setattr.mount_attr_nosymfollow")
def test_mount_attr_nosymfollow(tree):
    """MOUNT_ATTR_NOSYMFOLLOW makes following a symlink on the mount ELOOP;
    clearing it restores it."""
    symlink = tree("/mnt/A/AA/symlink")
    os.close(os.open(symlink, os.O_RDWR | os.O_CLOEXEC))

    assert setattr_path(tree("/mnt/A"), attr_set=uapi.MOUNT_ATTR_NOSYMFOLLOW) == 0
    for path in tree.four:
        assert "nosymfollow" in mnt_flags(path), path
    with raises_errno(errno.ELOOP):
        os.open(symlink, os.O_RDWR | os.O_CLOEXEC)

    assert setattr_path(tree("/mnt/A"), attr_clr=uapi.MOUNT_ATTR_NOSYMFOLLOW) == 0
    for path in tree.four:
        assert "nosymfollow" not in mnt_flags(path), path
    os.close(os.open(symlink, os.O_RDWR | os.O_CLOEXEC))


# --- detached trees (open_tree OPEN_TREE_CLONE) -------------------------------------
SUBMOUNTS_OF_MNT = ("A", "A/AA", "A/AA/B", "A/AA/B/BB")


@upstream(FILE, "mount_setattr.open_tree_detached")
@pytest.mark.requires("detached_mount_trees")
def test_open_tree_detached(tree):
    """A recursive clone of a detached tree can itself be cloned, and both
    attach with every submount intact."""
    base = clone_tree(-errno.EBADF, tree("/mnt"))
    for sub in SUBMOUNTS_OF_MNT:
        assert is_mount_root(base, sub), sub
    sub_fd = clone_tree(base, "A/AA")
    for sub in ("B", "B/BB"):
        assert is_mount_root(sub_fd, sub), sub

    assert attach(sub_fd, tree("/tmp/target1")) == 0
    for path in ("/tmp/target1", "/tmp/target1/B", "/tmp/target1/B/BB"):
        assert is_mount_root(-1, tree(path)), path

    assert attach(base, tree("/tmp/target2")) == 0
    for path in ("", "/A", "/A/AA", "/A/AA/B", "/A/AA/B/BB", "/B"):
        assert is_mount_root(-1, tree("/tmp/target2" + path)), path
    os.close(sub_fd)
    os.close(base)


@upstream(FILE, "mount_setattr.open_tree_detached_fail")
def test_open_tree_detached_fail(tree):
    """A detached tree cannot be cloned from another mount namespace: EINVAL."""
    base = clone_tree(-errno.EBADF, tree("/mnt"))
    for sub in SUBMOUNTS_OF_MNT:
        assert is_mount_root(base, sub), sub

    def child():
        k.unshare(uapi.CLONE_NEWNS)
        with raises_errno(errno.EINVAL):
            clone_tree(base, "A/AA")
    in_child(child)
    os.close(base)


@upstream(FILE, "mount_setattr.open_tree_detached_fail2")
def test_open_tree_detached_fail2(tree):
    """Nor from a nested user namespace without privilege over it: EPERM."""
    base = clone_tree(-errno.EBADF, tree("/mnt"))
    for sub in SUBMOUNTS_OF_MNT:
        assert is_mount_root(base, sub), sub

    def child():
        enter_userns()
        with raises_errno(errno.EPERM):
            clone_tree(base, "A/AA")
    in_child(child)
    os.close(base)


@upstream(FILE, "mount_setattr.open_tree_detached_fail3")
def test_open_tree_detached_fail3(tree):
    """Nor from a new user namespace with its own mount namespace: EINVAL."""
    base = clone_tree(-errno.EBADF, tree("/mnt"))
    for sub in SUBMOUNTS_OF_MNT:
        assert is_mount_root(base, sub), sub

    def child():
        setup_userns()
        with raises_errno(errno.EINVAL):
            clone_tree(base, "A/AA")
    in_child(child)
    os.close(base)


@upstream(FILE, "mount_setattr.open_tree_subfolder")
@pytest.mark.requires("detached_mount_trees")
def test_open_tree_subfolder(tree):
    """A subdirectory of an fsmount()ed filesystem can be cloned, attached and
    unmounted."""
    fsfd = k.fsopen("tmpfs", uapi.FSOPEN_CLOEXEC)
    k.fsconfig(fsfd, uapi.FSCONFIG_CMD_CREATE)
    mnt = k.fsmount(fsfd, 0, 0)
    os.close(fsfd)
    os.mkdir("subdir", dir_fd=mnt)
    fd = k.open_tree(mnt, "subdir", uapi.AT_NO_AUTOMOUNT | uapi.AT_SYMLINK_NOFOLLOW
                     | uapi.AT_RECURSIVE | uapi.OPEN_TREE_CLOEXEC | uapi.OPEN_TREE_CLONE)
    os.close(mnt)
    target = tree("/mnt/open_tree_subfolder")
    os.mkdir(target)
    assert attach(fd, target) == 0
    assert is_mount_root(-1, target)
    os.close(fd)
    assert k.umount2(target, 0) == 0
    os.rmdir(target)


@upstream(FILE, "mount_setattr.mount_detached_mount_on_detached_mount_then_close")
@pytest.mark.requires("detached_mount_trees")
def test_mount_detached_mount_on_detached_mount_then_close(tree):
    """A detached mount can be mounted on another detached mount, once: the
    second move is refused (EINVAL: no longer the root of its own tree)."""
    base = clone_tree(-errno.EBADF, tree("/mnt"), SHALLOW_CLONE_FLAGS)
    assert not is_mount_root(base, "A")
    sub = clone_tree(base, "", SHALLOW_CLONE_FLAGS | uapi.AT_EMPTY_PATH)
    assert not is_mount_root(sub, "A")
    assert move_onto(sub, base) == 0
    assert is_mount_root(sub)
    with raises_errno(errno.EINVAL):
        move_onto(sub, base)
    os.close(sub)
    os.close(base)


@upstream(FILE, "mount_setattr.mount_detached_mount_on_detached_mount_and_attach")
@pytest.mark.requires("detached_mount_trees")
def test_mount_detached_mount_on_detached_mount_and_attach(tree):
    """A detached mount stacked on a detached mount is attached with it."""
    base = clone_tree(-errno.EBADF, tree("/mnt"), SHALLOW_CLONE_FLAGS)
    assert not is_mount_root(base, "A")
    sub = clone_tree(base, "", SHALLOW_CLONE_FLAGS | uapi.AT_EMPTY_PATH)
    assert not is_mount_root(sub, "A")
    sub_id = k.mnt_id_unique(fd=sub)
    assert move_onto(sub, base) == 0
    assert is_mount_root(sub)
    with raises_errno(errno.EINVAL):
        move_onto(sub, base)

    assert attach(base, tree("/tmp/target1")) == 0
    assert is_mount_root(-1, tree("/tmp/target1"))
    assert k.mnt_id_unique(tree("/tmp/target1")) == sub_id
    os.close(sub)
    os.close(base)


@upstream(FILE, "mount_setattr.move_mount_detached_fail")
def test_move_mount_detached_fail(tree):
    """An attached mount cannot be moved onto a detached one: EINVAL."""
    attached = clone_tree(-errno.EBADF, tree("/mnt"), SHALLOW_CLONE_FLAGS)
    assert attach(attached, tree("/tmp/target1")) == 0
    assert not is_mount_root(attached, "A")
    detached = clone_tree(-errno.EBADF, tree("/tmp/B"), SHALLOW_CLONE_FLAGS)
    assert not is_mount_root(detached, "BB")
    with raises_errno(errno.EINVAL):
        move_onto(attached, detached)
    os.close(detached)
    os.close(attached)


@upstream(FILE, "mount_setattr.attach_detached_mount_then_umount_then_close")
def test_attach_detached_mount_then_umount_then_close(tree):
    """Closing the fd of an attached-then-unmounted tree is harmless."""
    fd = clone_tree(-errno.EBADF, tree("/mnt"))
    assert is_mount_root(fd, "A")
    assert attach(fd, tree("/tmp/target1")) == 0
    assert is_mount_root(-1, tree("/tmp/target1"))
    assert k.umount2(tree("/tmp/target1"), uapi.MNT_DETACH) == 0
    os.close(fd)
    assert not is_mount_root(-1, tree("/tmp/target1"))


@upstream(FILE, "mount_setattr.mount_detached1_onto_detached2_then_close_detached1_then_mount_detached2_onto_attached")
@pytest.mark.requires("detached_mount_trees")
def test_mount_detached1_onto_detached2_then_close_detached1_then_mount_detached2_onto_attached(tree):
    """After t1 is mounted on t2, t1 is no longer an anonymous tree root
    (EINVAL to attach it); closing t1 keeps it mounted on t2, which attaches."""
    t1 = clone_tree(-errno.EBADF, tree("/mnt/A"))
    t2 = clone_tree(-errno.EBADF, tree("/mnt/B"), SHALLOW_CLONE_FLAGS | uapi.AT_EMPTY_PATH)
    assert move_onto(t1, t2) == 0
    with raises_errno(errno.EINVAL):
        attach(t1, tree("/tmp/target1"))
    t1_id = k.mnt_id_unique(fd=t1)
    os.close(t1)
    assert attach(t2, tree("/tmp/target1")) == 0
    assert k.mnt_id_unique(tree("/tmp/target1")) == t1_id
    os.close(t2)


@upstream(FILE, "mount_setattr.two_detached_mounts_referring_to_same_anonymous_mount_namespace")
def test_two_detached_mounts_referring_to_same_anonymous_mount_namespace(tree):
    """Two fds on one anonymous tree: once it is attached through one, the
    other cannot add the same tree into itself. Upstream asserts only
    "fails"; the kernel says ELOOP: t1 now names the attached mount at
    target1, so this is a move of that mount beneath itself."""
    t1 = clone_tree(-errno.EBADF, tree("/mnt/A"))
    t2 = k.open_tree(t1, "", PATH_FD_FLAGS)
    assert attach(t2, tree("/tmp/target1")) == 0
    with raises_errno(errno.ELOOP):
        attach(t1, tree("/tmp/target1"))
    os.close(t2)
    os.close(t1)


@upstream(FILE, "mount_setattr.two_detached_subtrees_of_same_anonymous_mount_namespace")
def test_two_detached_subtrees_of_same_anonymous_mount_namespace(tree):
    """Only the root of an anonymous tree can be attached (EINVAL for a
    submount of it)."""
    t1 = clone_tree(-errno.EBADF, tree("/mnt/A"))
    t2 = k.open_tree(t1, "AA", PATH_FD_FLAGS)
    with raises_errno(errno.EINVAL):
        attach(t2, tree("/tmp/target1"))
    assert attach(t1, tree("/tmp/target1")) == 0
    os.close(t2)
    os.close(t1)


@upstream(FILE, "mount_setattr.detached_tree_propagation")
def test_detached_tree_propagation(tree):
    """A detached clone of a shared tree receives no mount propagation."""
    k.unshare(uapi.CLONE_NEWNS)
    k.mount(None, tree("/mnt"), None, uapi.MS_REC | uapi.MS_SHARED, None)
    fd = clone_tree(-errno.EBADF, tree("/mnt"))
    old_minor = k.statx(-1, tree("/mnt/A"), 0, 0).stx_dev_minor
    assert k.statx(fd, "A", 0, 0).stx_dev_minor == old_minor
    k.mount(None, tree("/mnt/A"), "tmpfs", 0, None)
    assert k.statx(-1, tree("/mnt/A"), 0, 0).stx_dev_minor != old_minor
    assert k.statx(fd, "A", 0, 0).stx_dev_minor == old_minor
    os.close(fd)
