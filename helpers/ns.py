"""Entering namespaces, the way the upstream selftests do
(tools/testing/selftests/filesystems/utils.c: setup_userns, enter_userns).

All of these change the calling process: call them inside a test (which runs
in its own forked process) or inside helpers.proc.in_child, never in pytest.
"""
import errno
import os

from helpers import uapi
from helpers.mounts import make_rprivate, set_propagation, tmpfs
from helpers import sys as ksys
from helpers.sys import capset_effective, ffi, ioctl, unshare


def write_file(path, text):
    with open(path, "w") as f:
        f.write(text)


def write_id_maps(uid, gid, inside=0, pid="self"):
    """Map `inside` to (uid, gid) with setgroups denied, as an unprivileged
    process must (root may map without the deny; upstream writes it anyway)."""
    write_file(f"/proc/{pid}/uid_map", f"{inside} {uid} 1")
    try:
        write_file(f"/proc/{pid}/setgroups", "deny")
    except FileNotFoundError:
        pass
    write_file(f"/proc/{pid}/gid_map", f"{inside} {gid} 1")


def enter_userns(mntns=False, become_root=True):
    """unshare(CLONE_NEWUSER[|CLONE_NEWNS]) and map 0 to the caller's ids.

    mntns=False is upstream utils.c enter_userns(): the caller keeps a mount
    namespace owned by the parent user namespace ("foreign" to it).
    mntns=True is setup_userns() without the rprivate (see setup_userns)."""
    uid, gid = os.geteuid(), os.getegid()
    unshare(uapi.CLONE_NEWUSER | (uapi.CLONE_NEWNS if mntns else 0))
    write_id_maps(uid, gid)
    if become_root:
        os.setgid(0)
        os.setuid(0)


def setup_userns(rprivate=True):
    """upstream utils.c setup_userns(): user + mount namespace, rprivate '/'.
    Every mount copied into the new mount namespace is MNT_LOCKED.
    rprivate=False leaves propagation as copied (upstream's local
    enter_userns() of locked_mount_test.c; same as enter_userns(mntns=True))."""
    enter_userns(mntns=True)
    if rprivate:
        make_rprivate("/")


def new_mntns(propagation=uapi.MS_PRIVATE):
    """unshare(CLONE_NEWNS), then '/' recursively MS_PRIVATE (nothing this
    process mounts propagates back), MS_SLAVE (the copy still receives its
    parent namespace's mounts and umounts), or as copied (None)."""
    unshare(uapi.CLONE_NEWNS)
    if propagation is not None:
        set_propagation("/", propagation, recursive=True)


def mount_admin():
    """CAP_SYS_ADMIN over the current mount namespace (as root: the harness's
    private copy; otherwise a new user+mount namespace) and a fresh tmpfs on
    /tmp as cwd, so nothing below /tmp is locked or shared with the host."""
    if os.geteuid() != 0:
        setup_userns()
    tmpfs("/tmp")
    os.chdir("/tmp")


def caps_down():
    """Clear every effective capability (upstream utils.c caps_down())."""
    capset_effective(())


def ns_id(fd):
    """NS_GET_MNTNS_ID of a mount-namespace fd."""
    value = ffi.new("uint64_t *")
    ioctl(fd, uapi.NS_GET_MNTNS_ID, value)
    return value[0]


def ns_get_id(fd):
    """NS_GET_ID (6.18) of a namespace fd of any type."""
    value = ffi.new("uint64_t *")
    ioctl(fd, uapi.NS_GET_ID, value)
    return value[0]


def id_of(kind, pid="self"):
    """NS_GET_ID of /proc/<pid>/ns/<kind>."""
    fd = open_ns(kind, pid)
    try:
        return ns_get_id(fd)
    finally:
        os.close(fd)


def ns_id_req(ns_type=0, user_ns_id=0, last=0, size=uapi.NS_ID_REQ_SIZE_VER0, **spare):
    """A struct ns_id_req for listns(2); `last` is the id to list after."""
    return ffi.new("struct ns_id_req *", {"size": size, "ns_id": last, "ns_type": ns_type,
                                          "user_ns_id": user_ns_id, **spare})


def listns(ns_type=0, user_ns_id=0, last=0, nr=1000):
    """One listns(2) call: the ids it returned (at most nr), in order."""
    ids = ffi.new("uint64_t[]", max(nr, 1))
    count = ksys.listns(ns_id_req(ns_type, user_ns_id, last), ids, nr)
    return list(ids[0:count])


def listns_all(ns_type=0, user_ns_id=0, batch=256):
    """Every id listns(2) shows, paging `batch` at a time (ENOENT: nothing
    after the last id, 6.19+'s lookup_ns_id_after() answer)."""
    out = []
    while True:
        try:
            page = listns(ns_type, user_ns_id, out[-1] if out else 0, batch)
        except OSError as e:
            if e.errno == errno.ENOENT and out:
                return out
            raise
        out += page
        if len(page) < batch:
            return out


def nsfs_handle(ns_id, ns_type=0, ns_inum=0, handle_type=uapi.FILEID_NSFS,
                size=uapi.NSFS_FILE_HANDLE_SIZE_VER0):
    """A struct file_handle holding a struct nsfs_file_handle, in the
    (buffer, file_handle *) form helpers.sys.open_by_handle_at() takes."""
    buf = ffi.new("char[]", ffi.sizeof("struct file_handle"))
    fh = ffi.cast("struct file_handle *", buf)
    fh.handle_bytes, fh.handle_type = size, handle_type
    nsfh = ffi.cast("struct nsfs_file_handle *", fh.f_handle)
    nsfh.ns_id, nsfh.ns_type, nsfh.ns_inum = ns_id, ns_type, ns_inum
    return buf, fh


def open_ns_by_id(ns_id, ns_type=0, ns_inum=0, flags=os.O_RDONLY | os.O_CLOEXEC):
    """open_by_handle_at(FD_NSFS_ROOT, {ns_id, ns_type, ns_inum}): a namespace
    by its id (6.18), as the namespaces selftests open what listns() lists."""
    return ksys.open_by_handle_at(uapi.FD_NSFS_ROOT, nsfs_handle(ns_id, ns_type, ns_inum), flags)


def open_ns(kind="mnt", pid="self"):
    return os.open(f"/proc/{pid}/ns/{kind}", os.O_RDONLY | os.O_CLOEXEC)


def own_mntns_id():
    fd = open_ns("mnt")
    try:
        return ns_id(fd)
    finally:
        os.close(fd)


def mnt_ns_info(fd, request=uapi.NS_MNT_GET_INFO):
    """NS_MNT_GET_INFO/NEXT/PREV; returns (ret, {size, nr_mounts, mnt_ns_id})."""
    info = ffi.new("struct mnt_ns_info *", {"size": uapi.MNT_NS_INFO_SIZE_VER0})
    ret = ioctl(fd, request, info)
    return ret, {"size": info.size, "nr_mounts": info.nr_mounts, "mnt_ns_id": info.mnt_ns_id}


def get_userns_fd(nsid, hostid, count=1):
    """upstream get_userns_fd(): an fd for a fresh user namespace mapping
    nsid..nsid+count to hostid..; made by a short-lived child."""
    from helpers.proc import waiting_child
    with waiting_child(lambda: unshare(uapi.CLONE_NEWUSER | uapi.CLONE_NEWNS)) as pid:
        write_file(f"/proc/{pid}/uid_map", f"{nsid} {hostid} {count}")
        if os.geteuid() != 0:
            write_file(f"/proc/{pid}/setgroups", "deny")
        write_file(f"/proc/{pid}/gid_map", f"{nsid} {hostid} {count}")
        return open_ns("user", pid)
