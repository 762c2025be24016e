"""How statmount(2) and listmount(2) read and check their struct mnt_id_req,
and which mount namespace they answer about (fs/namespace.c):

- copy_mnt_id_req(): `size` above PAGE_SIZE is E2BIG, below
  MNT_ID_REQ_SIZE_VER0 (24) EINVAL; a larger struct is read with
  copy_struct_from_user(), so trailing zero bytes are accepted and a nonzero
  one is E2BIG; mnt_ns_fd together with mnt_ns_id is EINVAL.
- SYSCALL_DEFINE4(statmount) / SYSCALL_DEFINE4(listmount): any flag but
  STATMOUNT_BY_FD / LISTMOUNT_REVERSE is EINVAL, before the request is read.
- grab_requested_mnt_ns(): mnt_ns_fd must be an open nsfs file (EBADF) of a
  mount namespace (EINVAL); an unknown mnt_ns_id is ENOENT. Any mount
  namespace fd works, also the ones open_tree(OPEN_TREE_NAMESPACE) and
  fsmount(FSMOUNT_NAMESPACE) return.
- A namespace the caller has no CAP_SYS_ADMIN over: asked by mnt_ns_id,
  listmount says ENOENT and statmount EPERM (the syscalls' own checks); asked
  by mnt_ns_fd neither syscall checks, the open fd is the permission, and
  only do_statmount()'s reachability check is left (EPERM for a mount
  outside the root grab_requested_root() picks, e.g. the namespace root).

mnt_ns_fd ("fs: allow mount namespace fd") only works since "fs/namespace:
correctly handle errors returned by grab_requested_mnt_ns" (6.18, stable
6.12.59): before it copy_mnt_id_req() refused the nonzero field with EINVAL.
The cases using it need the "mnt_id_req_ns_fd" probe (present on Debian's
6.12.117, 6.18.15, 6.19.14, 7.0.13, 7.1.13 and 7.3.4).
"""
import errno
import os

import pytest

from helpers import sys as k
from helpers import uapi
from helpers.errors import raises_errno
from helpers.flags import undefined_bits
from helpers.mounts import (detached_fs, listmount, mnt_id_req, mnt_id_req_sized, mount_stack,
                            statmount, statmount_raw, tmpfs)
from helpers.ns import enter_userns, mount_admin, ns_id, open_ns, own_mntns_id, setup_userns
from helpers.proc import in_child

PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
VER1 = uapi.MNT_ID_REQ_SIZE_VER1
SM_MASK = uapi.STATMOUNT_MNT_BASIC | uapi.STATMOUNT_MNT_NS_ID

pytestmark = pytest.mark.requires("statmount", "listmount", "mnt_id_req_ns_id")


def call_listmount(req, flags=0):
    """listmount(req, ids[64], 64, flags) from the request's mnt_id."""
    return k.syscall("listmount", req, k.ffi.new("uint64_t[]", 64), 64, flags)


def call_statmount(req, flags=0):
    return statmount_raw(req, 4096, flags)[0]


def request(call, size=None, tail=0, **fields):
    """(buffer, req) for `call`: listmount lists from LSMT_ROOT, statmount
    asks MNT_BASIC of "/"; `fields` add mnt_ns_id / mnt_ns_fd."""
    if call is call_listmount:
        fields.setdefault("mnt_id", uapi.LSMT_ROOT)
    else:
        fields.setdefault("mnt_id", k.mnt_id_unique("/"))
        fields.setdefault("param", uapi.STATMOUNT_MNT_BASIC)
    if size is None:
        size = VER1 if fields.get("mnt_ns_id") else uapi.MNT_ID_REQ_SIZE_VER0
    return mnt_id_req_sized(size, tail, **fields)


CALLS = [pytest.param(call_listmount, id="listmount"), pytest.param(call_statmount, id="statmount")]


# --- the request size: copy_mnt_id_req() -------------------------------------
@pytest.mark.parametrize("call", CALLS)
@pytest.mark.parametrize("size,err", [
    pytest.param(0, errno.EINVAL, id="0"),
    pytest.param(uapi.MNT_ID_REQ_SIZE_VER0 - 1, errno.EINVAL, id="ver0-minus-1"),
    pytest.param(PAGE_SIZE + 1, errno.E2BIG, id="page-plus-1"),
    pytest.param(2 * PAGE_SIZE, errno.E2BIG, id="two-pages"),
])
def test_size_out_of_range_is_refused(call, size, err):
    """size > PAGE_SIZE: E2BIG; size < MNT_ID_REQ_SIZE_VER0: EINVAL, whatever
    the buffer holds (copy_mnt_id_req() checks size before reading more)."""
    _, req = request(call, size)
    with raises_errno(err):
        call(req)


@pytest.mark.parametrize("call", CALLS)
@pytest.mark.parametrize("size", [uapi.MNT_ID_REQ_SIZE_VER0, 28, VER1, VER1 + 8, PAGE_SIZE],
                         ids=["ver0", "28", "ver1", "ver1-plus-8", "page"])
def test_zero_padded_size_is_accepted(call, size):
    """Any size from VER0 up to PAGE_SIZE whose bytes past the known struct
    are zero is read as the known struct (copy_struct_from_user())."""
    _, req = request(call, size)
    assert call(req) >= 0


@pytest.mark.parametrize("call", CALLS)
@pytest.mark.parametrize("size", [VER1 + 1, VER1 + 8, PAGE_SIZE], ids=["ver1-plus-1", "ver1-plus-8", "page"])
def test_nonzero_byte_past_the_struct_is_e2big(call, size):
    """A nonzero byte past the 32 bytes the kernel knows: E2BIG
    (copy_struct_from_user() via copy_mnt_id_req())."""
    _, req = request(call, size, tail=0xff)
    with raises_errno(errno.E2BIG):
        call(req)


# --- flags -------------------------------------------------------------------
@pytest.mark.parametrize("call", CALLS)
@pytest.mark.parametrize("pick", [0, -1], ids=["lowest_undefined", "highest_undefined"])
def test_unknown_flag_is_einval(call, pick):
    """Only STATMOUNT_BY_FD (statmount, 7.0) and LISTMOUNT_REVERSE
    (listmount) are flags; any other bit is EINVAL (SYSCALL_DEFINE4(statmount),
    SYSCALL_DEFINE4(listmount): flags & ~known). The bits come from
    helpers/flags.py for the running kernel."""
    flag = undefined_bits(call.__name__.removeprefix("call_"))[pick]
    _, req = request(call)
    with raises_errno(errno.EINVAL):
        call(req, flag)


@pytest.mark.requires("statmount_by_fd")
@pytest.mark.parametrize("field", ["mnt_id", "mnt_ns_id"])
def test_statmount_by_fd_refuses_mnt_id_and_mnt_ns_id(field):
    """STATMOUNT_BY_FD names the mount by mnt_fd alone: a mnt_id or
    mnt_ns_id as well is EINVAL (copy_mnt_id_req())."""
    fd = os.open("/", os.O_PATH | os.O_CLOEXEC)
    value = k.mnt_id_unique("/") if field == "mnt_id" else own_mntns_id()
    _, req = mnt_id_req_sized(VER1, mnt_fd=fd, param=uapi.STATMOUNT_MNT_BASIC)
    setattr(req, field, value)
    with raises_errno(errno.EINVAL):
        call_statmount(req, uapi.STATMOUNT_BY_FD)


# --- which namespace: grab_requested_mnt_ns() ---------------------------------
@pytest.mark.requires("mnt_id_req_ns_fd")
@pytest.mark.parametrize("call", CALLS)
def test_mnt_ns_fd_with_mnt_ns_id_is_einval(call):
    """A namespace by fd and by id at once: EINVAL, even when both name the
    caller's own namespace (copy_mnt_id_req())."""
    fd = open_ns("mnt")
    _, req = request(call, VER1, mnt_ns_fd=fd, mnt_ns_id=ns_id(fd))
    with raises_errno(errno.EINVAL):
        call(req)


def not_a_file():
    return 1 << 20  # above any open fd (RLIMIT_NOFILE is far lower)


@pytest.mark.requires("mnt_id_req_ns_fd")
@pytest.mark.parametrize("call", CALLS)
@pytest.mark.parametrize("make_fd,err", [
    pytest.param(lambda: os.open("/proc/self/status", os.O_RDONLY | os.O_CLOEXEC), errno.EINVAL, id="regular-file"),
    pytest.param(lambda: open_ns("uts"), errno.EINVAL, id="uts-ns"),
    pytest.param(lambda: open_ns("user"), errno.EINVAL, id="user-ns"),
    pytest.param(not_a_file, errno.EBADF, id="not-open"),
    pytest.param(lambda: os.open("/proc/self/ns/mnt", os.O_PATH | os.O_CLOEXEC), errno.EBADF,
                 id="o-path-mnt-ns"),
])
def test_mnt_ns_fd_must_be_a_mount_namespace(call, make_fd, err):
    """mnt_ns_fd that is no open file: EBADF, and so is an O_PATH fd even of
    a mount namespace file (CLASS(fd) is fdget(), which skips FMODE_PATH
    files); an open file that is not a namespace file (proc_ns_file()), or a
    namespace of another type: EINVAL (grab_requested_mnt_ns())."""
    _, req = request(call, mnt_ns_fd=make_fd())
    with raises_errno(err):
        call(req)


@pytest.mark.parametrize("call", CALLS)
def test_unknown_mnt_ns_id_is_enoent(call):
    """An id no mount namespace has (ids are never reused, so one past
    2**62 is unused): ENOENT (grab_requested_mnt_ns(): lookup_mnt_ns())."""
    _, req = request(call, mnt_ns_id=(1 << 62) + 1)
    with raises_errno(errno.ENOENT):
        call(req)


@pytest.mark.requires("mnt_id_req_ns_fd")
@pytest.mark.parametrize("call", CALLS)
def test_own_mnt_ns_fd_is_the_own_namespace(call):
    """mnt_ns_fd of the caller's own namespace answers as with no namespace
    at all: the same listing, the same statmount."""
    fd = open_ns("mnt")
    if call is call_listmount:
        assert listmount(mnt_ns_fd=fd, nr=4096) == listmount(nr=4096)
    else:
        root = k.mnt_id_unique("/")
        assert statmount(root, SM_MASK, mnt_ns_fd=fd).raw == statmount(root, SM_MASK).raw


def describe(fd):
    """listmount of the namespace behind fd, and for each listed mount the
    (mnt_ns_id, fs_type, mnt_point) statmount gives by the same fd."""
    ids = listmount(mnt_ns_fd=fd, nr=64)
    seen = [statmount(m, SM_MASK | uapi.STATMOUNT_FS_TYPE | uapi.STATMOUNT_MNT_POINT, mnt_ns_fd=fd)
            for m in ids]
    return ids, [(s.mnt_ns_id, s.fs_type, s.mnt_point) for s in seen]


@pytest.mark.userns
@pytest.mark.requires("open_tree_namespace", "mnt_id_req_ns_fd")
def test_mnt_ns_fd_of_open_tree_namespace():
    """The fd open_tree(OPEN_TREE_NAMESPACE | AT_RECURSIVE) returns, as
    mnt_ns_fd: listmount lists the copied tmpfs and its child, as by the
    namespace's id; statmount by the same fd reports that namespace's id and
    mount points seen from the copy's root (grab_requested_root())."""
    def child():
        mount_admin()
        os.mkdir("/tmp/a")
        tmpfs("/tmp/a")
        fd = k.open_tree(uapi.AT_FDCWD, "/tmp", uapi.OPEN_TREE_NAMESPACE | uapi.AT_RECURSIVE
                         | uapi.OPEN_TREE_CLOEXEC)
        ids, seen = describe(fd)
        assert ids == listmount(mnt_ns_id=ns_id(fd), nr=64)
        return ns_id(fd), seen
    nsid, seen = in_child(child)
    assert seen == [(nsid, "tmpfs", "/"), (nsid, "tmpfs", "/a")]


@pytest.mark.userns
@pytest.mark.requires("fsmount_namespace", "mnt_id_req_ns_fd")
def test_mnt_ns_fd_of_fsmount_namespace():
    """The fd fsmount(FSMOUNT_NAMESPACE) returns, as mnt_ns_fd: listmount
    lists exactly the new tmpfs, statmount by the fd reports it as "/" of
    that namespace."""
    def child():
        mount_admin()
        fd = detached_fs(mount_flags=uapi.FSMOUNT_NAMESPACE | uapi.FSMOUNT_CLOEXEC)
        ids, seen = describe(fd)
        assert len(ids) == 1
        return ns_id(fd), seen
    nsid, seen = in_child(child)
    assert seen == [(nsid, "tmpfs", "/")]


# --- a namespace the caller has no CAP_SYS_ADMIN over -------------------------
def privileged_foreign_listing(nsid):
    """listmount of namespace nsid by id, from another mount namespace of
    the same (owning) user namespace: the foreign view with privilege."""
    k.unshare(uapi.CLONE_NEWNS)
    return listmount(mnt_ns_id=nsid, nr=4096)


def unprivileged(fn, target_fd):
    """fn(target_fd, target_id) in a child that entered a new user and mount
    namespace: it holds no CAP_SYS_ADMIN over the target any more."""
    def child():
        nsid = ns_id(target_fd)
        enter_userns(mntns=True)
        return fn(target_fd, nsid)
    return in_child(child)


@pytest.fixture
def target():
    """A mount namespace we own (a new user+mount namespace), fd and id;
    the test process stays in it."""
    setup_userns()
    fd = open_ns("mnt")
    return fd, ns_id(fd)


@pytest.mark.userns
@pytest.mark.parametrize("call,err", [
    pytest.param(call_listmount, errno.ENOENT, id="listmount-enoent"),
    pytest.param(call_statmount, errno.EPERM, id="statmount-eperm"),
])
def test_foreign_by_id_without_privilege(target, call, err):
    """By mnt_ns_id without CAP_SYS_ADMIN over the namespace's owner:
    listmount says ENOENT, statmount EPERM (SYSCALL_DEFINE4(listmount),
    SYSCALL_DEFINE4(statmount): the ns_capable_noaudit() check after
    grab_requested_mnt_ns()); statmount asks for a mount a privileged
    caller lists there. The privileged listing also shows the id is alive,
    so listmount's ENOENT is not that of an unknown namespace."""
    fd, nsid = target
    listed = in_child(privileged_foreign_listing, nsid)
    assert listed
    fields = {} if call is call_listmount else {"mnt_id": listed[0]}

    def ask(fd, nsid):
        _, req = request(call, mnt_ns_id=nsid, **fields)
        with raises_errno(err):
            call(req)
    unprivileged(ask, fd)


@pytest.mark.requires("mnt_id_req_ns_fd")
@pytest.mark.userns
def test_foreign_listmount_by_fd_needs_no_privilege(target):
    """By mnt_ns_fd the same caller lists the namespace: the syscall checks
    privilege only for mnt_ns_id, and do_listmount() lets anyone list from
    the root grab_requested_root() picks. The listing is the one a
    privileged caller gets by id."""
    fd, nsid = target
    expected = in_child(privileged_foreign_listing, nsid)
    got = unprivileged(lambda fd, nsid: listmount(mnt_ns_fd=fd, nr=4096), fd)
    assert got == expected and got


@pytest.mark.requires("mnt_id_req_ns_fd")
@pytest.mark.userns
def test_foreign_statmount_by_fd_checks_reachability(target):
    """By mnt_ns_fd statmount answers for a mount below the root
    grab_requested_root() picks (the first mount on the namespace root) with
    the namespace's id, and refuses the namespace root itself with EPERM
    (do_statmount(): !is_path_reachable() && !ns_capable_noaudit())."""
    fd, nsid = target
    listed = in_child(privileged_foreign_listing, nsid)[0]
    ns_root = mount_stack("/")[-1].mnt_id

    def ask(fd, nsid):
        sm = statmount(listed, SM_MASK, mnt_ns_fd=fd)
        assert (sm.mnt_id, sm.mnt_ns_id) == (listed, nsid)
        with raises_errno(errno.EPERM):
            statmount(ns_root, SM_MASK, mnt_ns_fd=fd)
    unprivileged(ask, fd)
