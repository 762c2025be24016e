"""Twins of tools/testing/selftests/filesystems/empty_mntns/clone3_empty_mntns_test.c:
clone3(CLONE_EMPTY_MNTNS) starts the child in a mount namespace holding only a
clone of the nullfs root; it implies CLONE_NEWNS and excludes CLONE_FS
(kernel/fork.c kernel_clone, fs/namespace.c copy_mnt_ns; 7.1).

Upstream's child does enter_userns() and clone3()s a grandchild; here the
test process is the child and helpers.proc.clone3 makes the grandchild,
whose assertions come back to the test.
"""
import errno
import os
import signal

import pytest

from harness.upstream import upstream
from helpers import clone_flags
from helpers import sys as k
from helpers import uapi
from helpers.errors import raises_errno
from helpers.mounts import count_mounts, listmount, statmount
from helpers.ns import enter_userns
from helpers import proc
from helpers.proc import clone3
from suites.empty_mntns.common import (build_root_from_nothing, drop_cap_sys_admin,
                                       root_and_cwd_ids, self_binds)

FILE = "filesystems/empty_mntns/clone3_empty_mntns_test.c"

fixture = pytest.mark.requires("clone_empty_mntns")


def clone3_empty(fn, extra=0, **kw):
    """upstream clone3_empty_mntns(extra): flags CLONE_EMPTY_MNTNS|extra, SIGCHLD."""
    value, _ = clone3(fn, uapi.CLONE_EMPTY_MNTNS | extra, signal.SIGCHLD, **kw)
    return value


def single_mount():
    assert count_mounts() == 1
    return True


@fixture
@pytest.mark.userns
@upstream(FILE, "clone3_empty_mntns.basic")
def test_basic():
    """The child sees one mount; "/" and "." are on it."""
    enter_userns()

    def child():
        assert count_mounts() == 1
        root, cwd = root_and_cwd_ids()
        assert root == cwd
    clone3_empty(child)


@fixture
@pytest.mark.userns
@upstream(FILE, "clone3_empty_mntns.implies_newns")
def test_implies_newns():
    """CLONE_EMPTY_MNTNS alone gives the child a new namespace; the parent's
    mount count does not change."""
    enter_userns()
    before = count_mounts()
    assert before >= 1
    assert clone3_empty(single_mount)
    assert count_mounts() == before


@fixture
@pytest.mark.userns
@pytest.mark.parametrize("extra", [
    pytest.param(uapi.CLONE_NEWNS, id="with_explicit_newns",
                 marks=upstream(FILE, "clone3_empty_mntns.with_explicit_newns")),
    pytest.param(uapi.CLONE_NEWUSER, id="with_newuser",
                 marks=upstream(FILE, "clone3_empty_mntns.with_newuser")),
    pytest.param(uapi.CLONE_NEWUTS | uapi.CLONE_NEWIPC, id="with_other_ns_flags",
                 marks=upstream(FILE, "clone3_empty_mntns.with_other_ns_flags")),
])
def test_with_flags(extra):
    """CLONE_EMPTY_MNTNS combined with other namespace flags: still one mount."""
    enter_userns()
    assert clone3_empty(single_mount, extra)


@fixture
@pytest.mark.userns
@upstream(FILE, "clone3_empty_mntns.with_newpid")
def test_with_newpid():
    """With CLONE_NEWPID the child is pid 1 of its pid namespace."""
    enter_userns()

    def child():
        assert count_mounts() == 1
        assert os.getpid() == 1
    clone3_empty(child, uapi.CLONE_NEWPID)


@fixture
@pytest.mark.userns
@upstream(FILE, "clone3_empty_mntns.with_clone_fs_fails")
def test_with_clone_fs_fails():
    """CLONE_EMPTY_MNTNS|CLONE_FS: EINVAL (the NEWNS+FS exclusion)."""
    enter_userns()
    with raises_errno(errno.EINVAL):
        clone3_empty(lambda: None, uapi.CLONE_FS)


@fixture
@pytest.mark.userns
@upstream(FILE, "clone3_empty_mntns.with_pidfd")
def test_with_pidfd():
    """CLONE_PIDFD works together with CLONE_EMPTY_MNTNS."""
    enter_userns()
    value, pidfd = clone3(single_mount, uapi.CLONE_EMPTY_MNTNS, signal.SIGCHLD, pidfd=True)
    assert value
    assert pidfd >= 0
    os.close(pidfd)


@fixture
@pytest.mark.parametrize("how", [
    pytest.param("nobody", id="nobody"),
    pytest.param("caps_down_in_userns", marks=pytest.mark.userns, id="caps_down_in_userns"),
])
@upstream(FILE, "clone3_empty_mntns.eperm_without_caps")
def test_eperm_without_caps(how):
    """Without CAP_SYS_ADMIN over the current user namespace: EPERM.

    Differs from upstream, which exits 0 as root and so asserts nothing
    there: root really drops the capability first (see drop_cap_sys_admin)."""
    drop_cap_sys_admin(how)
    with raises_errno(errno.EPERM):
        clone3_empty(lambda: None)


@fixture
@pytest.mark.userns
@upstream(FILE, "clone3_empty_mntns.parent_unchanged")
def test_parent_unchanged():
    """The parent's mount count is the same before and after the clone."""
    enter_userns()
    before = count_mounts()
    assert before >= 1
    assert clone3_empty(lambda: True)
    assert count_mounts() == before


@fixture
@pytest.mark.userns
@upstream(FILE, "clone3_empty_mntns.many_parent_mounts")
def test_many_parent_mounts(tmp_path):
    """Five self-binds in the parent are not copied into the child."""
    enter_userns()
    self_binds(str(tmp_path), 5)
    assert count_mounts() >= 5
    assert clone3_empty(single_mount)


@fixture
@pytest.mark.userns
@upstream(FILE, "clone3_empty_mntns.mount_properties")
def test_mount_properties():
    """The child's root: mount point "/", fs_type "nullfs", its own parent."""
    enter_userns()

    def child():
        root = k.mnt_id_unique("/")
        assert root != 0
        sm = statmount(root, uapi.STATMOUNT_MNT_BASIC | uapi.STATMOUNT_MNT_POINT
                       | uapi.STATMOUNT_FS_TYPE)
        assert sm.mask & uapi.STATMOUNT_MNT_POINT and sm.mnt_point == "/"
        assert sm.mask & uapi.STATMOUNT_FS_TYPE and sm.fs_type == "nullfs"
        assert sm.mask & uapi.STATMOUNT_MNT_BASIC and sm.mnt_parent_id == sm.mnt_id
    clone3_empty(child)


@fixture
@pytest.mark.userns
@upstream(FILE, "clone3_empty_mntns.listmount_single_entry")
def test_listmount_single_entry():
    """listmount(LSMT_ROOT) in the child returns exactly [id of "/"]."""
    enter_userns()

    def child():
        ids = listmount(nr=16)
        assert len(ids) == 1
        root = k.mnt_id_unique("/")
        assert root != 0
        assert ids[0] == root
    clone3_empty(child)


@fixture
@pytest.mark.userns
@upstream(FILE, "clone3_empty_mntns.child_overmount_tmpfs")
def test_child_overmount_tmpfs():
    """The child builds a writable tmpfs root on top of the nullfs root."""
    enter_userns()
    clone3_empty(build_root_from_nothing)


@fixture
@pytest.mark.userns
@upstream(FILE, "clone3_empty_mntns.repeated")
def test_repeated():
    """Two children get two different root mounts."""
    enter_userns()
    first = clone3_empty(lambda: k.mnt_id_unique("/"))
    second = clone3_empty(lambda: k.mnt_id_unique("/"))
    assert first != 0 and second != 0
    assert first != second


@fixture
@pytest.mark.userns
@upstream(FILE, "clone3_empty_mntns.setns_into_child_mntns")
def test_setns_into_child_mntns():
    """The parent can setns() into the child's empty namespace: count 1.

    A middle process does the clone3 (helpers.proc.clone3 waits for its
    child), so the test process stays single-threaded for setns(CLONE_NEWNS)."""
    enter_userns()
    ready_r, ready_w = os.pipe()
    go_r, go_w = os.pipe()

    def inner():
        os.write(ready_w, str(os.getpid()).encode())
        os.read(go_r, 1)

    middle = os.fork()
    if middle == 0:
        code = 1
        try:
            os.close(go_w)
            os.close(ready_r)
            clone3_empty(inner)
            code = 0
        finally:
            os._exit(code)
    os.close(ready_w)
    os.close(go_r)
    try:
        pid = os.read(ready_r, 32)
        assert pid, "the clone3 child never reported its pid"
        fd = os.open(f"/proc/{int(pid)}/ns/mnt", os.O_RDONLY | os.O_CLOEXEC)
        k.setns(fd, uapi.CLONE_NEWNS)
        os.close(fd)
        assert count_mounts() == 1
    finally:
        os.close(go_w)
        _, status = os.waitpid(middle, 0)
    assert os.waitstatus_to_exitcode(status) == 0


@fixture
@pytest.mark.userns
def test_upstream_setns_into_child_sequence_races_with_the_child_exit():
    """Why upstream's setns_into_child_mntns FAILs on Debian's 7.1.3, 7.1.13
    and 7.2.13 (its process exits 5: open("/proc/<child>/ns/mnt") failed) and
    PASSes on 7.3.4, while the twin above PASSes on all: upstream's child
    "waits" by read()ing the WRITE end of its pipe, which fails at once with
    EBADF, so it exits before its parent opens its namespace file unless the
    parent gets there first. A task that has exited has no nsproxy
    (exit_task_namespaces), so mntns_get() returns NULL and
    proc_ns_get_link() -> ns_get_path() fails with ENOENT (fs/nsfs.c,
    fs/namespace.c): the verdicts follow the scheduler, not the kernels.
    Here upstream's exact tree, with its parent opening the file after the
    child exited (upstream's losing order, made certain): ENOENT on every
    kernel, and the child's read() on its write end is EBADF."""
    enter_userns()
    r, w = os.pipe()

    def inner():
        os.write(w, b"r")
        try:
            os.read(w, 1)  # upstream's barrier
            os.write(w, b"?")
        except OSError as e:
            os.write(w, bytes([e.errno]))

    pid = proc.clone3_nowait(inner, uapi.CLONE_EMPTY_MNTNS)
    os.close(w)
    try:
        got = b"".join(iter(lambda: os.read(r, 2), b""))  # to EOF: the child is gone
        assert got == b"r" + bytes([errno.EBADF]), f"the child's barrier read() gave {got!r}"
        os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT)  # exited, not yet reaped
        with raises_errno(errno.ENOENT):
            os.open(f"/proc/{pid}/ns/mnt", os.O_RDONLY | os.O_CLOEXEC)
    finally:
        _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


@upstream(FILE, "global.unknown_flags_rejected")
def test_unknown_flags_rejected():
    """clone3 with a flag bit the running kernel does not define: EINVAL.

    Differs from upstream, which uses 0x800000000 as the "unknown" flag: that
    bit is CLONE_NNP on 7.x (include/uapi/linux/sched.h), which clone3 accepts, so
    upstream fails there while the kernel is right. The bit comes from
    helpers.clone_flags.unknown_clone3_flag(): the lowest bit above 31 that
    the running release does not define (1<<34 up to 7.0, 1<<38 from 7.1:
    CLONE_AUTOREAP, CLONE_NNP, CLONE_PIDFD_AUTOKILL and CLONE_EMPTY_MNTNS all
    appeared in 7.1)."""
    flag = clone_flags.unknown_clone3_flag()
    with raises_errno(errno.EINVAL):
        clone3(lambda: None, flag, signal.SIGCHLD)


@pytest.mark.userns
@upstream(FILE, "global.clone3_newns_full_copy")
def test_clone3_newns_full_copy():
    """Regression guard: clone3(CLONE_NEWNS) still copies the whole tree."""
    enter_userns()
    before = count_mounts()
    assert before >= 1
    after, _ = clone3(count_mounts, uapi.CLONE_NEWNS, signal.SIGCHLD)
    assert after >= before
