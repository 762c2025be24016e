"""Each kernel feature declared once: its probe, the first release expected
to have it, and what it is (@probe(name, since=..., doc=...) -> FEATURES).

harness/features.py reads FEATURES for the `requires` marker, the per-release
feature check (suites/features) and --strict-features; docs/features.md is
generated from it (`python -m harness.features --markdown`).

`since` is the first series in which the suite measured the feature on
Debian's kernels (docs/features-measured.json), not a guess: a feature already
present on 6.12, the oldest series tested, says 6.12, and one that appeared
between two tested series says the later one, so a release is never expected
to have a feature before it was seen to. `doc` names the interface, with the
upstream release in parentheses where it is older than `since`.

A probe answers True (present) or False (absent) only on the exact answer an
older kernel gives; any other outcome raises ProbeUnknown, because on 7.x an
EINVAL also has real meanings and must not be read as "not supported".
Probes that change namespaces run in a forked child (helpers.proc.in_child).
"""
import errno
import os
import re
import signal
from collections.abc import Callable
from dataclasses import dataclass

from helpers import uapi
from helpers import sys as ksys
from helpers.errors import errno_of
from helpers.mounts import detached_fs, mnt_id_req, statmount, tmpfs
from helpers.ns import new_mntns, own_mntns_id, setup_userns
from helpers.proc import clone3, in_child, waiting_child
from helpers.sys import SyscallError, ffi

FEATURES = {}


@dataclass(frozen=True)
class Feature:
    name: str
    since: str | None  # None: a host setting (sysctl, privilege), not a release's feature
    doc: str
    probe: Callable[[], bool]


class ProbeUnknown(Exception):
    """The probe got an answer that neither proves nor disproves the feature."""


def probe(name, *, since, doc):
    """Declare feature `name`: the decorated function probes it, `since` is
    the first release expected to have it ("7.1"), `doc` says what it is."""
    if not re.fullmatch(r"\d+\.\d+", since or "") or not doc:
        raise ValueError(f"feature {name}: since must be a release like '7.1' "
                         f"and doc a description, got {since!r}, {doc!r}")
    return _register(name, since, doc)


def setting(name, *, doc):
    """Declare a property of this host's configuration, not of the release
    (no first release, no per-release check): e.g. user namespaces, which
    exist since 3.8 but a sysctl or a missing privilege can refuse."""
    return _register(name, None, doc)


def _register(name, since, doc):
    def register(fn):
        FEATURES[name] = Feature(name, since, doc, fn)
        return fn
    return register


def _show(value):
    """An errno by name (0 = success); anything else (fs magic, fs name) as is."""
    if value == 0:
        return "success"
    if isinstance(value, int) and value in errno.errorcode:
        return errno.errorcode[value]
    return hex(value) if isinstance(value, int) else repr(value)


def _decide(value, present, absent, what):
    """True/False only for the answers that prove it; anything else is unknown."""
    if value in present:
        return True
    if value in absent:
        return False
    raise ProbeUnknown(f"{what}: unexpected {_show(value)}")


def _privileged():
    """Run a probe body with CAP_SYS_ADMIN over a mount namespace: as root in
    a private copy of ours, otherwise in a fresh user+mount namespace."""
    if os.geteuid() == 0:
        new_mntns()
    else:
        setup_userns()


@setting("userns", doc="user namespaces can be created by this user")
def userns():
    def body():
        try:
            ksys.unshare(uapi.CLONE_NEWUSER)
            return True
        except SyscallError as e:
            if e.errno in (errno.EPERM, errno.EINVAL, errno.ENOSPC, errno.EUSERS):
                return False
            raise
    return in_child(body)


@probe("statmount", since="6.12", doc="statmount(2) (6.8)")
def statmount_():
    req = mnt_id_req(0)
    return _decide(errno_of(ksys.syscall, "statmount", req, None, 0, 0),
                   {errno.EINVAL}, {errno.ENOSYS}, "statmount(mnt_id=0)")


@probe("listmount", since="6.12", doc="listmount(2) (6.8)")
def listmount_():
    req = mnt_id_req(0)
    return _decide(errno_of(ksys.syscall, "listmount", req, None, 0, 0),
                   {errno.EINVAL}, {errno.ENOSYS}, "listmount(mnt_id=0)")


@probe("listmount_reverse", since="6.12", doc="LISTMOUNT_REVERSE")
def listmount_reverse():
    req = mnt_id_req(uapi.LSMT_ROOT)
    ids = ffi.new("uint64_t[1]")
    return _decide(errno_of(ksys.syscall, "listmount", req, ids, 1, uapi.LISTMOUNT_REVERSE),
                   {0}, {errno.EINVAL, errno.ENOSYS}, "listmount(LISTMOUNT_REVERSE)")


@probe("mnt_id_req_ns_id", since="6.12", doc="mnt_id_req VER1: statmount/listmount of a namespace by id")
def mnt_id_req_ns_id():
    req = mnt_id_req(uapi.LSMT_ROOT, mnt_ns_id=own_mntns_id())
    ids = ffi.new("uint64_t[1]")
    return _decide(errno_of(ksys.syscall, "listmount", req, ids, 1, 0),
                   {0}, {errno.E2BIG, errno.ENOSYS}, "listmount(size=32, mnt_ns_id)")


@probe("mnt_id_req_ns_fd", since="6.12",
       doc="mnt_id_req.mnt_ns_fd: statmount/listmount of a namespace by fd (6.18; stable 6.12.59)")
def mnt_id_req_ns_fd():
    # "fs: allow mount namespace fd" read the fd from the old `spare` field,
    # which copy_mnt_id_req() still refused when nonzero (EINVAL) until "fs/
    # namespace: correctly handle errors returned by grab_requested_mnt_ns".
    fd = os.open("/proc/self/ns/mnt", os.O_RDONLY | os.O_CLOEXEC)
    try:
        req = mnt_id_req(uapi.LSMT_ROOT, mnt_ns_fd=fd)
        ids = ffi.new("uint64_t[1]")
        return _decide(errno_of(ksys.syscall, "listmount", req, ids, 1, 0),
                       {0}, {errno.EINVAL, errno.ENOSYS}, "listmount(mnt_ns_fd=own namespace)")
    finally:
        os.close(fd)


@probe("statmount_by_fd", since="7.0", doc="STATMOUNT_BY_FD")
def statmount_by_fd():
    fd = os.open("/", os.O_PATH | os.O_CLOEXEC)
    try:
        req = mnt_id_req(mnt_fd=fd)
        buf = ffi.new("char[]", 4096)
        return _decide(errno_of(ksys.syscall, "statmount", req, buf, 4096, uapi.STATMOUNT_BY_FD),
                       {0}, {errno.EINVAL, errno.ENOSYS}, "statmount(STATMOUNT_BY_FD)")
    finally:
        os.close(fd)


@probe("statmount_supported_mask", since="6.18", doc="STATMOUNT_SUPPORTED_MASK")
def statmount_supported_mask():
    sm = statmount(ksys.mnt_id_unique("/"), uapi.STATMOUNT_SUPPORTED_MASK)
    return bool(sm.mask & uapi.STATMOUNT_SUPPORTED_MASK)


@probe("ns_get_mntns_id", since="6.12", doc="NS_GET_MNTNS_ID ioctl")
def ns_get_mntns_id():
    fd = os.open("/proc/self/ns/mnt", os.O_RDONLY | os.O_CLOEXEC)
    try:
        value = ffi.new("uint64_t *")
        return _decide(errno_of(ksys.ioctl, fd, uapi.NS_GET_MNTNS_ID, value),
                       {0}, {errno.ENOTTY}, "ioctl(NS_GET_MNTNS_ID)")
    finally:
        os.close(fd)


@probe("ns_mnt_get_info", since="6.12", doc="NS_MNT_GET_INFO/NEXT/PREV ioctls")
def ns_mnt_get_info():
    fd = os.open("/proc/self/ns/mnt", os.O_RDONLY | os.O_CLOEXEC)
    try:
        info = ffi.new("struct mnt_ns_info *", {"size": uapi.MNT_NS_INFO_SIZE_VER0})
        return _decide(errno_of(ksys.ioctl, fd, uapi.NS_MNT_GET_INFO, info),
                       {0}, {errno.ENOTTY}, "ioctl(NS_MNT_GET_INFO)")
    finally:
        os.close(fd)


@probe("open_tree", since="6.12", doc="open_tree(2) and the new mount API (5.2)")
def open_tree():
    return _decide(errno_of(ksys.open_tree, -1, None, 0),
                   {errno.EFAULT, errno.EBADF}, {errno.ENOSYS}, "open_tree(-1, NULL, 0)")


@probe("open_tree_attr", since="6.18", doc="open_tree_attr(2) (6.15)")
def open_tree_attr():
    try:
        os.close(ksys.open_tree_attr(uapi.AT_FDCWD, "/", uapi.OPEN_TREE_CLOEXEC, None, 0))
        return True
    except SyscallError as e:
        return _decide(e.errno, set(), {errno.ENOSYS}, "open_tree_attr('/')")


@probe("open_tree_namespace", since="7.0", doc="open_tree(OPEN_TREE_NAMESPACE)")
def open_tree_namespace():
    # Flags are checked first (EINVAL on old kernels), then CAP_SYS_ADMIN in
    # the caller's own user namespace, then the NULL path (EFAULT). Run where
    # the caller may mount, so no permission check can answer first.
    def body():
        _privileged()
        return errno_of(ksys.open_tree, -1, None, uapi.OPEN_TREE_NAMESPACE)
    return _decide(in_child(body), {errno.EFAULT}, {errno.EINVAL, errno.ENOSYS},
                   "open_tree(-1, NULL, OPEN_TREE_NAMESPACE)")


@probe("fsmount_namespace", since="7.1", doc="fsmount(FSMOUNT_NAMESPACE)")
def fsmount_namespace():
    # Old kernels reject the flag (EINVAL) before looking at the fd (EBADF),
    # but only after may_mount(): an unprivileged caller would get EPERM from
    # 6.18 too, so the probe runs where the caller may mount.
    def body():
        _privileged()
        return errno_of(ksys.fsmount, -1, uapi.FSMOUNT_NAMESPACE, 0)
    return _decide(in_child(body), {errno.EBADF}, {errno.EINVAL, errno.ENOSYS},
                   "fsmount(-1, FSMOUNT_NAMESPACE)")


@probe("unshare_empty_mntns", since="7.1", doc="unshare(UNSHARE_EMPTY_MNTNS)")
def unshare_empty_mntns():
    # Old kernels check flags before privilege, so EPERM proves support.
    def body():
        return errno_of(ksys.unshare, uapi.UNSHARE_EMPTY_MNTNS)
    return _decide(in_child(body), {0, errno.EPERM}, {errno.EINVAL}, "unshare(UNSHARE_EMPTY_MNTNS)")


@probe("clone_empty_mntns", since="7.1", doc="clone3(CLONE_EMPTY_MNTNS)")
def clone_empty_mntns():
    err = in_child(errno_of, clone3, lambda: 0, uapi.CLONE_EMPTY_MNTNS, signal.SIGCHLD)
    return _decide(err, {0, errno.EPERM}, {errno.EINVAL, errno.ENOSYS},
                   "clone3(CLONE_EMPTY_MNTNS)")


@probe("nullfs_root", since="7.0", doc="nullfs beneath the namespace root")
def nullfs_root():
    def body():
        _privileged()
        mnt = ksys.mnt_id_unique("/")
        while True:
            sm = statmount(mnt, uapi.STATMOUNT_MNT_BASIC | uapi.STATMOUNT_FS_TYPE)
            if sm.mnt_parent_id == sm.mnt_id:
                return sm.fs_type
            mnt = sm.mnt_parent_id
    return _decide(in_child(body), {"nullfs"}, {"rootfs"}, "bottom of the mount stack")


@probe("move_mount_beneath", since="6.12", doc="MOVE_MOUNT_BENEATH (6.5)")
def move_mount_beneath():
    return _moved_flag_probe(uapi.MOVE_MOUNT_BENEATH)


@probe("move_mount_set_group", since="6.12", doc="MOVE_MOUNT_SET_GROUP (5.15)")
def move_mount_set_group():
    return _moved_flag_probe(uapi.MOVE_MOUNT_SET_GROUP)


def _moved_flag_probe(flag):
    # A known flag gets as far as the path lookup (ENOENT); an unknown one is EINVAL.
    def body():
        _privileged()
        return errno_of(ksys.move_mount, uapi.AT_FDCWD, "/nonexistent.probe1",
                         uapi.AT_FDCWD, "/nonexistent.probe2", flag)
    return _decide(in_child(body), {errno.ENOENT}, {errno.EINVAL, errno.ENOSYS},
                   f"move_mount(flags={flag:#x})")


@probe("open_tree_clone_pidfs", since="6.18",
       doc="open_tree(pidfd, OPEN_TREE_CLONE): a bind mount of a pidfs file (6.15)")
def open_tree_clone_pidfs():
    # 6.12's may_copy_tree() accepts only nsfs dentries from outside the
    # caller's namespace: EINVAL for the pidfs file of a valid, own pidfd
    # (the flags are long defined; AT_EMPTY_PATH names the fd itself).
    def body():
        _privileged()
        pidfd = ksys.pidfd_open(os.getpid())
        return errno_of(ksys.open_tree, pidfd, "",
                        uapi.AT_EMPTY_PATH | uapi.OPEN_TREE_CLONE | uapi.OPEN_TREE_CLOEXEC)
    return _decide(in_child(body), {0}, {errno.EINVAL}, "open_tree(pidfd, OPEN_TREE_CLONE)")


@probe("detached_mount_trees", since="6.18", doc="open_tree() from, and mounting onto, detached mount trees (6.15)")
def detached_mount_trees():
    # Older kernels refuse both with EINVAL (the source or target is not in
    # the caller's namespace). Fresh, valid detached tmpfs mounts leave EINVAL
    # no other meaning here; the two answers must agree.
    def body():
        _privileged()
        target, source = detached_fs(), detached_fs()
        os.mkdir("d", dir_fd=target)
        cloned = errno_of(ksys.open_tree, target, "d", uapi.OPEN_TREE_CLONE | uapi.OPEN_TREE_CLOEXEC)
        moved = errno_of(ksys.move_mount, source, "", target, "d", uapi.MOVE_MOUNT_F_EMPTY_PATH)
        return cloned, moved
    cloned, moved = in_child(body)
    if cloned == moved:
        return _decide(cloned, {0}, {errno.EINVAL}, "open_tree/move_mount on detached trees")
    raise ProbeUnknown(f"open_tree from a detached tree: {errno.errorcode.get(cloned, cloned)}, "
                       f"move_mount onto one: {errno.errorcode.get(moved, moved)}")


def _private_tmp():
    """Work under a private tmpfs on /tmp, so a probe leaves nothing on the host."""
    tmpfs("/tmp")


@probe("knullfs_covers", since="7.3", doc="knullfs stand-ins where an unmounted child was, under a held parent")
def knullfs_covers():
    # A child namespace mounts P with C on P/covered; we hold P and rmdir its
    # mountpoint here, which unmounts P over there. Looking up "covered"
    # through the held P finds the knullfs cover on kernels that have covers,
    # and tmpfs (C, or P's own directory) on kernels that do not.
    def body():
        _privileged()
        _private_tmp()
        os.mkdir("/tmp/p")

        def mount_p_and_c():
            ksys.unshare(uapi.CLONE_NEWNS)
            tmpfs("/tmp/p")
            os.mkdir("/tmp/p/covered")
            tmpfs("/tmp/p/covered")
        with waiting_child(mount_p_and_c) as pid:
            held = os.open(f"/proc/{pid}/root/tmp/p", os.O_PATH)
            os.rmdir("/tmp/p")
            found = os.open("covered", os.O_RDONLY | os.O_DIRECTORY, dir_fd=held)
            return ksys.fstatfs(found).f_type
    return _decide(in_child(body), {uapi.NULL_FS_MAGIC}, {uapi.TMPFS_MAGIC},
                   "fs magic found under a held unmounted parent")


@probe("move_mount_beneath_root", since="7.1", doc="MOVE_MOUNT_BENEATH onto the caller's root")
def move_mount_beneath_root():
    # A clone of "/" (a mount root here) moved beneath "/": older kernels
    # refuse a target that is the caller's root with EINVAL. Unprivileged,
    # "/" is always MNT_LOCKED, so an EINVAL there cannot tell the two apart.
    def body():
        _privileged()
        clone = ksys.open_tree(uapi.AT_FDCWD, "/", uapi.OPEN_TREE_CLONE | uapi.AT_RECURSIVE
                               | uapi.OPEN_TREE_CLOEXEC)
        return errno_of(ksys.move_mount, clone, "", uapi.AT_FDCWD, "/",
                         uapi.MOVE_MOUNT_F_EMPTY_PATH | uapi.MOVE_MOUNT_BENEATH)
    absent = {errno.EINVAL} if os.geteuid() == 0 else set()
    return _decide(in_child(body), {0}, absent, "move_mount(clone of /, /, BENEATH)")


@probe("move_mount_beneath_locked", since="7.1", doc="MOVE_MOUNT_BENEATH under an MNT_LOCKED mount")
def move_mount_beneath_locked():
    # Two tmpfs stacked on a directory, locked by copying them into a user
    # namespace's mount namespace; then a fresh tmpfs beneath the top one.
    def body():
        _privileged()
        _private_tmp()
        os.mkdir("/tmp/d")
        tmpfs("/tmp/d")
        tmpfs("/tmp/d")
        setup_userns()
        return errno_of(ksys.move_mount, detached_fs(), "", uapi.AT_FDCWD, "/tmp/d",
                         uapi.MOVE_MOUNT_F_EMPTY_PATH | uapi.MOVE_MOUNT_BENEATH)
    return _decide(in_child(body), {0}, {errno.EINVAL}, "move_mount(BENEATH a locked mount)")


@probe("mount_notify", since="6.18", doc="fanotify mount notifications (6.14)")
def mount_notify():
    def body():
        _privileged()
        return errno_of(lambda: os.close(ksys.syscall("fanotify_init", uapi.FAN_REPORT_MNT | uapi.FAN_NONBLOCK, 0)))
    return _decide(in_child(body), {0}, {errno.EINVAL, errno.ENOSYS}, "fanotify_init(FAN_REPORT_MNT)")


@probe("listns", since="6.19", doc="listns(2)")
def listns():
    # A NULL request is EFAULT (or EINVAL) where the syscall exists.
    err = errno_of(ksys.syscall, "listns", None, None, 0, 0)
    return _decide(err, {errno.EFAULT, errno.EINVAL, 0}, {errno.ENOSYS}, "listns(NULL)")


@probe("ns_get_id", since="6.18", doc="NS_GET_ID: the 64-bit id of a namespace of any type")
def ns_get_id():
    # nsfs answers an ioctl it does not know with ENOTTY (ns_ioctl()).
    fd = os.open("/proc/self/ns/uts", os.O_RDONLY | os.O_CLOEXEC)
    try:
        err = errno_of(ksys.ioctl, fd, uapi.NS_GET_ID, ffi.new("uint64_t *"))
    finally:
        os.close(fd)
    return _decide(err, {0}, {errno.ENOTTY}, "ioctl(uts ns fd, NS_GET_ID)")


@probe("nsfs_file_handle", since="6.18", doc="file handles of namespace files (FILEID_NSFS)")
def nsfs_file_handle():
    # Without nsfs's export_operations, name_to_handle_at() is EOPNOTSUPP
    # (exportfs_can_encode_fh()).
    fd = os.open("/proc/self/ns/uts", os.O_RDONLY | os.O_CLOEXEC)
    try:
        err = errno_of(ksys.name_to_handle_at, fd, "", uapi.AT_EMPTY_PATH)
    finally:
        os.close(fd)
    return _decide(err, {0}, {errno.EOPNOTSUPP}, "name_to_handle_at(uts ns fd)")


def run_all():
    """{name: True | False | 'unknown: <why>'} for every probe."""
    results = {}
    for name, feature in FEATURES.items():
        try:
            results[name] = bool(feature.probe())
        except (ProbeUnknown, OSError, AssertionError) as e:
            results[name] = f"unknown: {e}"
    return results
