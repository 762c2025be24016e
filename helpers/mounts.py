"""statmount / listmount / mountinfo, decoded into plain Python values."""
import errno
import os
from dataclasses import dataclass

from helpers import uapi
from helpers.sys import SyscallError, ffi, mnt_id_unique, syscall

STATMOUNT_BUFSIZE = 32768
_STR_FIELDS = {  # request bit -> string fields it fills (offsets into str[])
    uapi.STATMOUNT_MNT_ROOT: ("mnt_root",),
    uapi.STATMOUNT_MNT_POINT: ("mnt_point",),
    uapi.STATMOUNT_FS_TYPE: ("fs_type",),
    uapi.STATMOUNT_MNT_OPTS: ("mnt_opts",),
    uapi.STATMOUNT_FS_SUBTYPE: ("fs_subtype",),
    uapi.STATMOUNT_SB_SOURCE: ("sb_source",),
}
_NUM_FIELDS = (
    "size", "mask", "sb_dev_major", "sb_dev_minor", "sb_magic", "sb_flags",
    "mnt_id", "mnt_parent_id", "mnt_id_old", "mnt_parent_id_old", "mnt_attr",
    "mnt_propagation", "mnt_peer_group", "mnt_master", "propagate_from",
    "mnt_ns_id", "opt_num", "opt_sec_num", "supported_mask",
    "mnt_uidmap_num", "mnt_gidmap_num",
)


def mnt_id_req(mnt_id=0, param=0, mnt_ns_id=0, mnt_ns_fd=0, mnt_fd=None, size=None):
    """struct mnt_id_req; size 24 (VER0) unless a namespace id or BY_FD needs 32."""
    req = ffi.new("struct mnt_id_req *")
    req.mnt_id, req.param, req.mnt_ns_id = mnt_id, param, mnt_ns_id
    req.mnt_ns_fd = mnt_ns_fd if mnt_fd is None else mnt_fd
    if size is None:
        size = uapi.MNT_ID_REQ_SIZE_VER1 if (mnt_ns_id or mnt_fd is not None) else uapi.MNT_ID_REQ_SIZE_VER0
    req.size = size
    return req


def mnt_id_req_sized(size, tail=0, **fields):
    """A struct mnt_id_req (fields as for mnt_id_req()) whose size field says
    `size`, in a zeroed buffer of max(size, 32) bytes: sizes below VER0, and
    a struct extended past VER1 whose last byte (at size - 1) is `tail`.
    Returns (buffer, struct mnt_id_req *); keep the buffer alive."""
    req = mnt_id_req(**fields)
    buf = ffi.new("char[]", max(size, ffi.sizeof("struct mnt_id_req")))
    ffi.memmove(buf, req, ffi.sizeof("struct mnt_id_req"))
    sized = ffi.cast("struct mnt_id_req *", buf)
    sized.size = size
    if tail:
        if size <= ffi.sizeof("struct mnt_id_req"):
            raise ValueError(f"a tail byte needs size > {ffi.sizeof('struct mnt_id_req')}, got {size}")
        buf[size - 1] = bytes([tail])
    return buf, sized


@dataclass
class StatMount:
    """Decoded struct statmount: numeric fields, plus requested strings (None if absent)."""
    raw: dict

    def __getattr__(self, name):
        try:
            return self.raw[name]
        except KeyError:
            raise AttributeError(name) from None


def statmount_raw(req, bufsize, flags=0):
    """One statmount call; returns (ret, buffer)."""
    buf = ffi.new("char[]", bufsize)
    ret = syscall("statmount", req, buf, bufsize, flags)
    return ret, buf


def statmount(mnt_id=0, mask=0, mnt_ns_id=0, fd=None, mnt_ns_fd=0, flags=0,
              bufsize=STATMOUNT_BUFSIZE):
    """statmount, growing the buffer while the kernel says EOVERFLOW.
    fd: a mount fd/O_PATH fd, which selects STATMOUNT_BY_FD."""
    if fd is not None:
        req = mnt_id_req(mnt_fd=fd, param=mask)
        flags |= uapi.STATMOUNT_BY_FD
    else:
        req = mnt_id_req(mnt_id, mask, mnt_ns_id, mnt_ns_fd)
    while True:
        try:
            _, buf = statmount_raw(req, bufsize, flags)
            return decode_statmount(buf)
        except SyscallError as e:
            if e.errno != errno.EOVERFLOW or bufsize >= 1 << 24:
                raise
            bufsize *= 2


def decode_statmount(buf):
    sm = ffi.cast("struct statmount *", buf)
    raw = {name: getattr(sm, name) for name in _NUM_FIELDS}
    strings = ffi.cast("char *", buf) + uapi.STATMOUNT_FIXED_SIZE
    for bit, names in _STR_FIELDS.items():
        for name in names:
            present = sm.mask & bit
            raw[name] = ffi.string(strings + getattr(sm, name)).decode() if present else None
    return StatMount(raw)


def listmount(mnt_id=uapi.LSMT_ROOT, mnt_ns_id=0, last=0, nr=4096, flags=0, mnt_ns_fd=0):
    """One listmount call: up to nr unique mount ids after `last`."""
    req = mnt_id_req(mnt_id, last, mnt_ns_id, mnt_ns_fd)
    ids = ffi.new("uint64_t[]", max(nr, 1))
    n = syscall("listmount", req, ids, nr, flags)
    return [ids[i] for i in range(n)]


def listmount_all(mnt_id=uapi.LSMT_ROOT, mnt_ns_id=0, flags=0, batch=512):
    """Page through listmount until it returns nothing."""
    out, last = [], 0
    while True:
        got = listmount(mnt_id, mnt_ns_id, last, batch, flags)
        if not got:
            return out
        out += got
        last = got[-1]


def count_mounts():
    """Mounts in the caller's own namespace, from its root (upstream count_mounts())."""
    return len(listmount(nr=4096))


@dataclass
class MountInfo:
    mnt_id: int
    parent_id: int
    root: str
    mount_point: str
    options: str
    optional: list
    fstype: str
    source: str
    super_options: str


def _unescape(field):
    return field.encode().decode("unicode_escape")


def mountinfo(path="/proc/self/mountinfo"):
    entries = []
    with open(path) as f:
        for line in f:
            left, right = line.rstrip("\n").split(" - ", 1)
            fields = left.split()
            fstype, source, sopts = (right.split(" ", 2) + [""])[:3]
            entries.append(MountInfo(int(fields[0]), int(fields[1]), _unescape(fields[3]),
                                     _unescape(fields[4]), fields[5], fields[6:], fstype,
                                     source, sopts))
    return entries


# --- small building blocks the suites use over and over ----------------------
def fs_registered(fstype):
    """Is `fstype` in /proc/filesystems?"""
    with open("/proc/filesystems") as f:
        return any(line.split()[-1] == fstype for line in f if line.strip())


def tmpfs(target, options=None, flags=0):
    syscall("mount", "tmpfs", target, "tmpfs", flags, options)


def set_propagation(path, flag, recursive=False):
    """mount(NULL, path, NULL, flag[|MS_REC]): MS_SHARED, MS_SLAVE, MS_PRIVATE, MS_UNBINDABLE."""
    syscall("mount", None, path, None, flag | (uapi.MS_REC if recursive else 0), None)


def make_rprivate(path="/"):
    set_propagation(path, uapi.MS_PRIVATE, recursive=True)


def bind(src, dst, recursive=False, mkdir=False):
    """mount(src, dst, NULL, MS_BIND[|MS_REC]); mkdir: create dst (and parents) first."""
    if mkdir:
        os.makedirs(dst, exist_ok=True)
    syscall("mount", src, dst, None, uapi.MS_BIND | (uapi.MS_REC if recursive else 0), None)


def shared_pair(a, b, relation="peer"):
    """A tmpfs on directory a made shared, bound onto directory b: b is a's
    peer, or with relation="slave" its slave (upstream's MS_SHARED + MS_BIND
    [+ MS_SLAVE] set-up of the propagation tests)."""
    if relation not in ("peer", "slave"):
        raise ValueError(relation)
    tmpfs(a)
    set_propagation(a, uapi.MS_SHARED)
    bind(a, b)
    if relation == "slave":
        set_propagation(b, uapi.MS_SLAVE)


def mount_stack(path="/", mask=uapi.STATMOUNT_SB_BASIC | uapi.STATMOUNT_MNT_BASIC | uapi.STATMOUNT_FS_TYPE):
    """statmount of every mount from the one at `path` down through
    mnt_parent_id to the self-parented namespace root (bottom last)."""
    stack = [statmount(mnt_id_unique(path), mask)]
    while stack[-1].mnt_parent_id != stack[-1].mnt_id:
        assert len(stack) < 64, "mnt_parent_id chain does not end"
        stack.append(statmount(stack[-1].mnt_parent_id, mask))
    return stack


def detached_fs(fstype="tmpfs", options=(), mount_flags=uapi.FSMOUNT_CLOEXEC, attr_flags=0):
    """fsopen + fsconfig strings + CMD_CREATE + fsmount: a detached mount fd."""
    from helpers.sys import fsconfig, fsmount, fsopen
    fsfd = fsopen(fstype, uapi.FSOPEN_CLOEXEC)
    try:
        for key, value in options:
            fsconfig(fsfd, uapi.FSCONFIG_SET_STRING, key, value)
        fsconfig(fsfd, uapi.FSCONFIG_CMD_CREATE)
        return fsmount(fsfd, mount_flags, attr_flags)
    finally:
        os.close(fsfd)


def tmpfs_onto_root(enter=False):
    """fsmount a tmpfs and move it onto "/" (in an empty mount namespace:
    right above the nullfs root); with enter, fchdir to it and chroot("."),
    so "/" and "." are the tmpfs. Returns its mount fd."""
    from helpers.sys import move_mount
    mnt = detached_fs()
    move_mount(mnt, "", uapi.AT_FDCWD, "/", uapi.MOVE_MOUNT_F_EMPTY_PATH)
    if enter:
        os.fchdir(mnt)
        os.chroot(".")
    return mnt
