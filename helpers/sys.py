"""Raw syscalls through cffi, in ABI mode.

Why ABI mode: every call here is libc's generic syscall(2) with numbers and
struct layouts this project defines itself (helpers/uapi.py), so API mode's
one benefit, checking against system headers, does not apply: those headers are
older than the kernels under test. ABI mode needs no compiler at install time,
and the same venv runs unchanged inside the VM guests, which see the host's
root read-only.

Every wrapper raises SyscallError (an OSError) carrying errno, strerror and the
call with its arguments; otherwise it returns the kernel's return value.
"""
import errno as _errno
import hashlib
import io
import os

from cffi import FFI

from helpers import uapi

# cffi's out-of-line ABI mode: the cdef is parsed (pycparser: ~45 ms a
# process natively, about a second in every guest process under TCG) once
# into this module, reused while uapi.CDEF is unchanged. The VM runner's
# host-side collection writes it; guests see it on their read-only root.
FFI_MODULE = "helpers._uapi_ffi"
FFI_PATH = os.path.join(os.path.dirname(__file__), "_uapi_ffi.py")


def _cdef_digest():
    return hashlib.sha256(uapi.CDEF.encode()).hexdigest()[:16]


def _emit(builder, digest):
    """Write FFI_PATH atomically (xdist workers may race); a read-only
    checkout just keeps parsing the cdef in every process."""
    builder.set_source(FFI_MODULE, None, compiler_verbose=False)
    source = io.StringIO()
    builder.emit_python_code(source)
    tmp = f"{FFI_PATH}.{os.getpid()}.tmp"
    try:
        with open(tmp, "w") as f:
            f.write(source.getvalue() + f"\nCDEF_SHA256 = {digest!r}\n")
        os.replace(tmp, FFI_PATH)
    except OSError:
        pass


def _load_ffi():
    digest = _cdef_digest()
    try:
        from helpers import _uapi_ffi
        if getattr(_uapi_ffi, "CDEF_SHA256", None) == digest:
            return _uapi_ffi.ffi
    except ImportError:
        pass
    builder = FFI()
    builder.cdef(uapi.CDEF)
    _emit(builder, digest)
    return builder


ffi = _load_ffi()
libc = ffi.dlopen(None)


class SyscallError(OSError):
    """OSError for a failed raw syscall; .call says which call failed and how."""

    def __init__(self, err, call):
        super().__init__(err, os.strerror(err))
        self.call = call

    def __str__(self):
        name = _errno.errorcode.get(self.errno, str(self.errno))
        return f"{self.call}: [{name}] {self.strerror}"


def _arg(value):
    """Variadic arguments must be typed cdata in ABI mode: ints become longs
    (unsigned values above LONG_MAX wrap, as the kernel reads the register),
    str/bytes become char *, None becomes NULL, cdata pass through."""
    if value is None:
        return ffi.NULL
    if isinstance(value, str):
        value = os.fsencode(value)
    if isinstance(value, bytes):
        return ffi.new("char[]", value)
    if isinstance(value, int):
        if value >= 1 << 63:
            value -= 1 << 64
        return ffi.cast("long", value)
    return value


def _show(value):
    if isinstance(value, int) and value > 0xFFFF:
        return hex(value)
    if isinstance(value, ffi.CData):
        return ffi.typeof(value).cname
    return repr(value)


def syscall(name, *args):
    """Call syscall `name` by number; raise SyscallError on failure."""
    ret = libc.syscall(uapi.NR[name], *[_arg(a) for a in args])
    if ret == -1:
        err = ffi.errno
        raise SyscallError(err, f"{name}({', '.join(_show(a) for a in args)})")
    return ret


# --- mount API -------------------------------------------------------------
def open_tree(dfd, path, flags):
    return syscall("open_tree", dfd, path, flags)


def open_tree_attr(dfd, path, flags, attr=None, size=None):
    """attr: a struct mount_attr * (see mount_attr()) or None."""
    if size is None:
        size = 0 if attr is None else ffi.sizeof("struct mount_attr")
    return syscall("open_tree_attr", dfd, path, flags, attr, size)


def move_mount(from_dfd, from_path, to_dfd, to_path, flags):
    return syscall("move_mount", from_dfd, from_path, to_dfd, to_path, flags)


def fsopen(fsname, flags=0):
    return syscall("fsopen", fsname, flags)


def fsconfig(fd, cmd, key=None, value=None, aux=0):
    return syscall("fsconfig", fd, cmd, key, value, aux)


def fsmount(fsfd, flags=0, attr_flags=0):
    return syscall("fsmount", fsfd, flags, attr_flags)


def fspick(dfd, path, flags=0):
    return syscall("fspick", dfd, path, flags)


def mount_attr(attr_set=0, attr_clr=0, propagation=0, userns_fd=0):
    return ffi.new("struct mount_attr *", {
        "attr_set": attr_set, "attr_clr": attr_clr,
        "propagation": propagation, "userns_fd": userns_fd & (2**64 - 1)})


def mount_setattr(dfd, path, flags, attr, size=None):
    if size is None:
        size = ffi.sizeof("struct mount_attr")
    return syscall("mount_setattr", dfd, path, flags, attr, size)


def mount(source, target, fstype, flags=0, data=None):
    return syscall("mount", source, target, fstype, flags, data)


def umount2(target, flags=0):
    return syscall("umount2", target, flags)


def pivot_root(new_root, put_old):
    return syscall("pivot_root", new_root, put_old)


# --- namespaces and processes ---------------------------------------------
def unshare(flags):
    return syscall("unshare", flags)


def setns(fd, nstype=0):
    return syscall("setns", fd, nstype)


def clone_args(flags=0, exit_signal=0, pidfd=None, **fields):
    """A struct clone_args; pidfd is an int * cdata for CLONE_PIDFD."""
    args = ffi.new("struct clone_args *", {"flags": flags, "exit_signal": exit_signal, **fields})
    if pidfd is not None:
        args.pidfd = int(ffi.cast("uintptr_t", pidfd))
    return args


def listns(req, ns_ids, nr_ns_ids, flags=0):
    """listns(2) (6.19): req a struct ns_id_req * and ns_ids a uint64_t[] (or
    None/any address, as the caller wants the kernel to see them)."""
    return syscall("listns", req, ns_ids, nr_ns_ids, flags)


def pidfd_open(pid, flags=0):
    return syscall("pidfd_open", pid, flags)


def pidfd_getfd(pidfd, targetfd, flags=0):
    return syscall("pidfd_getfd", pidfd, targetfd, flags)


def ioctl(fd, request, arg=0):
    """ioctl through libc (same on every architecture); arg is an int or cdata."""
    ret = libc.ioctl(fd, ffi.cast("unsigned long", request), _arg(arg))
    if ret == -1:
        raise SyscallError(ffi.errno, f"ioctl({fd}, {request:#x})")
    return ret


# --- statx ------------------------------------------------------------------
def statx(dfd, path, flags, mask):
    buf = ffi.new("struct statx *")
    syscall("statx", dfd, path, flags, mask, buf)
    return buf


def mnt_id_unique(path=None, fd=uapi.AT_FDCWD):
    """The 64-bit unique mount id of a path (or of fd with path None)."""
    flags = uapi.AT_EMPTY_PATH if path is None else 0
    stx = statx(fd, path or "", flags, uapi.STATX_MNT_ID_UNIQUE)
    if not stx.stx_mask & uapi.STATX_MNT_ID_UNIQUE:
        raise SyscallError(_errno.EOPNOTSUPP, f"statx({path!r}, STATX_MNT_ID_UNIQUE)")
    return stx.stx_mnt_id


def mnt_id_old(path=None, fd=uapi.AT_FDCWD):
    """The old (reusable, 32-bit) mount id, as in /proc/self/mountinfo."""
    flags = uapi.AT_EMPTY_PATH if path is None else 0
    return statx(fd, path or "", flags, uapi.STATX_MNT_ID).stx_mnt_id


# --- capabilities (for dropping privilege inside user namespaces) -----------
def capget():
    hdr = ffi.new("struct cap_header *", {"version": uapi._LINUX_CAPABILITY_VERSION_3})
    data = ffi.new("struct cap_data[2]")
    syscall("capget", hdr, data)
    return hdr, data


def capset_effective(caps):
    """Set the effective set to exactly `caps` (an iterable of CAP_* numbers)."""
    hdr, data = capget()
    data[0].effective = data[1].effective = 0
    for cap in caps:
        data[cap // 32].effective |= 1 << (cap % 32)
    syscall("capset", hdr, data)


def capdrop_effective(*caps):
    """Clear `caps` from the effective set, keep every other capability."""
    hdr, data = capget()
    for cap in caps:
        data[cap // 32].effective &= ~(1 << (cap % 32))
    syscall("capset", hdr, data)


def has_effective_cap(cap):
    _, data = capget()
    return bool(data[cap // 32].effective & (1 << (cap % 32)))


# --- statfs, access, inotify (libc by symbol) ---------------------------------
class StatFs:
    """statfs(2)/fstatfs(2) result: f_type as the unsigned 32-bit magic the
    kernel stores (TMPFS_MAGIC, NULL_FS_MAGIC...), f_flags the ST_* bits."""

    def __init__(self, buf):
        self.f_type = buf.f_type & 0xFFFFFFFF
        self.f_flags = buf.f_flags

    def __repr__(self):
        return f"StatFs(f_type={self.f_type:#x}, f_flags={self.f_flags:#x})"


def _libc_check(ret, call):
    if ret == -1:
        raise SyscallError(ffi.errno, call)
    return ret


def statfs(path):
    buf = ffi.new("struct statfs *")
    _libc_check(libc.statfs(os.fsencode(path), buf), f"statfs({path!r})")
    return StatFs(buf)


def fstatfs(fd):
    buf = ffi.new("struct statfs *")
    _libc_check(libc.fstatfs(fd, buf), f"fstatfs({fd})")
    return StatFs(buf)


def faccessat(dfd, path, mode, flags=0):
    """glibc faccessat (it implements AT_* flags the old syscall lacks)."""
    return _libc_check(libc.faccessat(dfd, os.fsencode(path), mode, flags),
                       f"faccessat({dfd}, {path!r})")


def before_hole(nbytes):
    """A char * `nbytes` below an unmapped page (mmap two pages, munmap the
    second): the kernel can write nbytes there, and faults (EFAULT) past them.
    The mapping lives as long as the process."""
    page = os.sysconf("SC_PAGE_SIZE")
    prot_rw, map_private_anon = 0x3, 0x22  # PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS
    base = libc.mmap(ffi.NULL, 2 * page, prot_rw, map_private_anon, -1, 0)
    if int(ffi.cast("intptr_t", base)) == -1:
        raise SyscallError(ffi.errno, "mmap(2 pages)")
    _libc_check(libc.munmap(ffi.cast("char *", base) + page, page), "munmap(second page)")
    return ffi.cast("char *", base) + page - nbytes


def inotify_init1(flags=0):
    return _libc_check(libc.inotify_init1(flags), "inotify_init1")


def inotify_add_watch(fd, path, mask):
    return _libc_check(libc.inotify_add_watch(fd, os.fsencode(path), mask),
                       f"inotify_add_watch({path!r})")


def inotify_watch(path, mask):
    """inotify_init1(O_CLOEXEC) + inotify_add_watch(path, mask); the group is
    closed again. Returns the watch descriptor."""
    fd = inotify_init1(os.O_CLOEXEC)
    try:
        return inotify_add_watch(fd, path, mask)
    finally:
        os.close(fd)


# --- fanotify, file handles, keys ----------------------------------------------
def fanotify_init(flags, event_f_flags=0):
    return syscall("fanotify_init", flags, event_f_flags)


def fanotify_mark(fd, flags, mask, dfd, path=None):
    return syscall("fanotify_mark", fd, flags, mask, dfd, path)


def name_to_handle_at(dfd, path, flags=0):
    """(handle, mount id): handle is opaque, for open_by_handle_at()."""
    size = ffi.sizeof("struct file_handle") + uapi.MAX_HANDLE_SZ
    buf = ffi.new("char[]", size)
    fh = ffi.cast("struct file_handle *", buf)
    fh.handle_bytes = uapi.MAX_HANDLE_SZ
    mnt = ffi.new("int *")
    syscall("name_to_handle_at", dfd, path, fh, mnt, flags)
    return (buf, fh), mnt[0]


def open_by_handle_at(mount_fd, handle, flags):
    return syscall("open_by_handle_at", mount_fd, handle[1], flags)


def add_key(key_type, description, payload, keyring):
    """add_key(2): the new key's serial number."""
    return syscall("add_key", key_type, description, payload, len(payload), keyring)


def keyctl(op, *args):
    return syscall("keyctl", op, *args)
