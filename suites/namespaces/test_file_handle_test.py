"""Twins of tools/testing/selftests/namespaces/file_handle_test.c: file handles
of namespace files (fs/nsfs.c nsfs_encode_fh(), nsfs_fh_to_dentry(), 6.18),
opened with open_by_handle_at(FD_NSFS_ROOT, ...).

- nsfs_<type>_handle: as nobody, a handle of one of our own namespaces opens
  the same namespace (same inode and device). Upstream SKIPs the network case
  on EPERM, calling it "expected"; nsfs_fh_to_dentry() only refuses a
  namespace the caller is not in, so the twin requires success for every
  type. Beyond upstream: the handle is FILEID_NSFS and carries
  {ns_id = NS_GET_ID, ns_type = CLONE_NEW<type>, ns_inum = st_ino}.
- nsfs_user_<type>_namespace_isolation: a process in a new user namespace
  and a new namespace of that type cannot open the handle of ours: ESTALE
  (nsfs_fh_to_dentry() says EPERM for a namespace the caller is not in,
  unless may_see_all_namespaces(); do_handle_to_path() reports every decode
  failure but ENOMEM as ESTALE). Upstream unshare()s and, for pid and time
  namespaces, forks to enter them; here clone3(CLONE_NEWUSER|CLONE_NEW<type>)
  starts the child in both. Beyond upstream: the same child opens the handle
  of its own namespace, so the refusal is about whose namespace it is.
- nsfs_open_flags: the open flags a namespace file refuses.
"""
import errno
import os

import pytest

from harness.upstream import upstream
from helpers import sys as k
from helpers import uapi
from helpers.errors import errno_of, raises_errno
from helpers.ns import ns_get_id, open_ns, open_ns_by_id
from helpers.proc import clone3

FILE = "namespaces/file_handle_test.c"
KINDS = ["net", "uts", "ipc", "pid", "mnt", "user", "cgroup", "time"]
NOBODY = 65534
O_DIRECT = 0o40000
O_TMPFILE = 0o20200000

pytestmark = pytest.mark.requires("nsfs_file_handle")


def needs_kind(kind):
    if not os.path.exists(f"/proc/self/ns/{kind}"):
        pytest.skip(f"no {kind} namespaces in this kernel (/proc/self/ns/{kind})")


def handle_of(kind):
    fd = open_ns(kind)
    handle, _ = k.name_to_handle_at(fd, "", uapi.AT_EMPTY_PATH)
    return fd, handle


@pytest.mark.root
@pytest.mark.parametrize("kind", [
    pytest.param(kind, marks=upstream(FILE, f"global.nsfs_{kind}_handle")) for kind in KINDS])
def test_nobody_opens_own_namespace_by_handle(kind):
    needs_kind(kind)
    os.setresgid(NOBODY, NOBODY, NOBODY)
    os.setresuid(NOBODY, NOBODY, NOBODY)
    fd, handle = handle_of(kind)
    fh = handle[1]
    assert (fh.handle_type, fh.handle_bytes) == (uapi.FILEID_NSFS, uapi.NSFS_FILE_HANDLE_SIZE_VER0)
    nsfh = k.ffi.cast("struct nsfs_file_handle *", fh.f_handle)
    st = os.fstat(fd)
    assert (nsfh.ns_id, nsfh.ns_type, nsfh.ns_inum) == \
        (ns_get_id(fd), uapi.NS_TYPES[kind], st.st_ino)
    opened = os.fstat(k.open_by_handle_at(uapi.FD_NSFS_ROOT, handle, os.O_RDONLY))
    assert (opened.st_ino, opened.st_dev) == (st.st_ino, st.st_dev)


@pytest.mark.userns
@pytest.mark.parametrize("kind", [
    pytest.param(kind, marks=upstream(FILE, f"global.nsfs_user_{kind}_namespace_isolation"))
    for kind in ["net", "uts", "ipc", "mnt", "cgroup", "pid", "time"]])
def test_handle_of_our_namespace_is_estale_in_a_new_user_namespace(kind):
    needs_kind(kind)
    _, ours = handle_of(kind)

    def child():
        _, own = handle_of(kind)
        os.close(k.open_by_handle_at(uapi.FD_NSFS_ROOT, own, os.O_RDONLY))
        return errno_of(k.open_by_handle_at, uapi.FD_NSFS_ROOT, ours, os.O_RDONLY)
    err, _ = clone3(child, uapi.CLONE_NEWUSER | uapi.NS_TYPES[kind])
    assert err == errno.ESTALE, errno.errorcode.get(err, err)


@pytest.mark.parametrize("flags,err", [
    (os.O_WRONLY, errno.EPERM), (os.O_RDWR, errno.EPERM), (os.O_TRUNC, errno.EPERM),
    (O_DIRECT, errno.EINVAL), (O_TMPFILE, errno.EINVAL), (os.O_DIRECTORY, errno.ENOTDIR),
], ids=["wronly", "rdwr", "trunc", "direct", "tmpfile", "directory"])
@upstream(FILE, "global.nsfs_open_flags")
def test_namespace_handle_refuses_open_flags(flags, err):
    """Namespace inodes are S_IMMUTABLE regular files (fs/libfs.c
    path_from_stashed()): writing or truncating is EPERM, O_DIRECT has no
    direct I/O (EINVAL), O_TMPFILE without write access is EINVAL
    (build_open_flags()), O_DIRECTORY is ENOTDIR."""
    _, handle = handle_of("net")
    with raises_errno(err):
        k.open_by_handle_at(uapi.FD_NSFS_ROOT, handle, flags)


@pytest.mark.requires("listns")
@pytest.mark.parametrize("with_type,with_inum,err", [
    (False, False, 0), (True, True, 0), (True, False, errno.ESTALE), (False, True, errno.ESTALE),
], ids=["id-only", "id-type-inum", "type-without-inum", "inum-without-type"])
def test_handle_names_type_and_inode_together_or_neither(with_type, with_inum, err):
    """Beyond upstream: nsfs_fh_to_dentry() (6.19+; 6.18.44 refused {ns_id} alone)
    decodes {ns_id} alone or {ns_id, ns_type, ns_inum}; ns_type without
    ns_inum, or the reverse, is refused (ESTALE): what upstream's
    listns_filter_by_type handles do."""
    fd = open_ns("uts")
    ns_type = uapi.CLONE_NEWUTS if with_type else 0
    ns_inum = os.fstat(fd).st_ino if with_inum else 0
    assert errno_of(lambda: os.close(open_ns_by_id(ns_get_id(fd), ns_type, ns_inum))) == err
