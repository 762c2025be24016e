"""Mount attributes given to fsmount(FSMOUNT_NAMESPACE) (beyond upstream).

Behaviour pinned down (fs/namespace.c fsmount): each MOUNT_ATTR_* in attr_flags ends up
on the namespace's mount, visible in statmount.mnt_attr (exactly one atime
value), in statvfs.f_flag, and in what the mount does after setns: write ->
EROFS, exec -> EACCES, device open -> EACCES, symlink follow -> ELOOP, atime
updates per atime mode. The control (attr_flags 0) shows each behaviour is
the attribute's doing.
"""
import errno
import os
import stat
import time

import pytest

from helpers import uapi
from helpers.errors import errno_of
from helpers.proc import in_child
from helpers.newns import fs_context, fsmount_ns, setns_mnt, top_mount

CLOEXEC, NS = uapi.FSMOUNT_CLOEXEC, uapi.FSMOUNT_NAMESPACE

pytestmark = [pytest.mark.root, pytest.mark.requires("fsmount_namespace", "statmount", "listmount",
                                                     "ns_get_mntns_id", "mnt_id_req_ns_id")]
A = uapi


# --- behaviours, run after setns with "/" = the new tmpfs ------------------------------
def write_file():
    fd = os.open("/f", os.O_CREAT | os.O_WRONLY, 0o644)
    os.close(fd)


def exec_script():
    with open("/x", "w") as f:
        f.write("#!/nonexistent-interpreter\n")
    os.chmod("/x", 0o755)
    return errno_of(os.execv, "/x", ["/x"])


def open_device():
    os.mknod("/null", 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    return errno_of(lambda: os.close(os.open("/null", os.O_RDONLY)))


def follow_symlink():
    open("/target", "w").close()
    os.symlink("/target", "/link")
    return errno_of(lambda: os.close(os.open("/link", os.O_RDONLY)))


def atime_moves(atime_offset, is_dir=False):
    """Set atime to now+offset (mtime an hour ago), read, report whether atime changed."""
    now = time.time()
    path = "/d" if is_dir else "/f"
    if is_dir:
        os.mkdir(path)
    else:
        with open(path, "w") as f:
            f.write("data")
    os.utime(path, (now + atime_offset, now - 3600))
    before = os.stat(path).st_atime
    if is_dir:
        os.listdir(path)
    else:
        with open(path) as f:
            f.read()
    return os.stat(path).st_atime != before


BEHAVIOUR = {
    "write": (lambda: errno_of(write_file)),
    "exec": exec_script,
    "device": open_device,
    "symlink": follow_symlink,
    "atime_future": (lambda: atime_moves(+3600)),       # atime > mtime, ctime
    "atime_past": (lambda: atime_moves(-7200)),         # atime < mtime, ctime
    "dir_atime_past": (lambda: atime_moves(-7200, is_dir=True)),
}

# attr -> (expected mnt_attr bits, statvfs flag, behaviour, result with attr, result without)
CASES = {
    "rdonly": (A.MOUNT_ATTR_RDONLY, A.MOUNT_ATTR_RDONLY, A.ST_RDONLY, "write", errno.EROFS, 0),
    "nosuid": (A.MOUNT_ATTR_NOSUID, A.MOUNT_ATTR_NOSUID, A.ST_NOSUID, None, None, None),
    "nodev": (A.MOUNT_ATTR_NODEV, A.MOUNT_ATTR_NODEV, A.ST_NODEV, "device", errno.EACCES, 0),
    "noexec": (A.MOUNT_ATTR_NOEXEC, A.MOUNT_ATTR_NOEXEC, A.ST_NOEXEC, "exec", errno.EACCES, errno.ENOENT),
    "relatime": (A.MOUNT_ATTR_RELATIME, A.MOUNT_ATTR_RELATIME, A.ST_RELATIME, "atime_future", False, False),
    "noatime": (A.MOUNT_ATTR_NOATIME, A.MOUNT_ATTR_NOATIME, A.ST_NOATIME, "atime_past", False, True),
    "strictatime": (A.MOUNT_ATTR_STRICTATIME, A.MOUNT_ATTR_STRICTATIME, 0, "atime_future", True, False),
    "nodiratime": (A.MOUNT_ATTR_NODIRATIME, A.MOUNT_ATTR_NODIRATIME, A.ST_NODIRATIME,
                   "dir_atime_past", False, True),
    "nosymfollow": (A.MOUNT_ATTR_NOSYMFOLLOW, A.MOUNT_ATTR_NOSYMFOLLOW, A.ST_NOSYMFOLLOW,
                    "symlink", errno.ELOOP, 0),
}


@pytest.mark.parametrize("name", list(CASES))
def test_attr_in_statmount(name):
    """statmount.mnt_attr of the namespace's mount carries the attribute, with
    exactly the requested atime value."""
    attr, expect, *_ = CASES[name]
    fd, new = fsmount_ns(fs_context(), NS | CLOEXEC, attr)
    got = top_mount(new).mnt_attr
    assert got & ~A.MOUNT_ATTR__ATIME & expect == expect & ~A.MOUNT_ATTR__ATIME, hex(got)
    if attr & A.MOUNT_ATTR__ATIME or name == "relatime":
        assert got & A.MOUNT_ATTR__ATIME == expect & A.MOUNT_ATTR__ATIME, hex(got)


@pytest.mark.parametrize("with_attr", [True, False], ids=["with_attr", "control"])
@pytest.mark.parametrize("name", list(CASES))
def test_attr_behaviour_after_setns(name, with_attr):
    """After setns into the namespace, "/" is the new mount and behaves per its
    attribute (statvfs flag and a syscall that the attribute changes); the
    control mount (attr_flags 0, i.e. relatime) does not."""
    attr, _, st_flag, behaviour, result_on, result_off = CASES[name]
    fd, new = fsmount_ns(fs_context(), NS | CLOEXEC, attr if with_attr else 0)

    def body():
        setns_mnt(fd)
        flags = os.statvfs("/").f_flag
        return flags, (BEHAVIOUR[behaviour]() if behaviour else None)
    flags, result = in_child(body)
    if st_flag:
        assert bool(flags & st_flag) == (with_attr or name == "relatime"), hex(flags)
    if behaviour:
        assert result == (result_on if with_attr else result_off)
