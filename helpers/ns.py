"""Entering namespaces, the way the upstream selftests do
(tools/testing/selftests/filesystems/utils.c: setup_userns, enter_userns).

All of these change the calling process: call them inside a test (which runs
in its own forked process) or inside helpers.proc.in_child, never in pytest.
"""
import os

from helpers import uapi
from helpers.mounts import make_rprivate, set_propagation, tmpfs
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
