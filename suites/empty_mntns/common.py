"""Building blocks shared by the empty_mntns twins (upstream empty_mntns.h and
the recurring set-up steps of empty_mntns_test.c / clone3_empty_mntns_test.c)."""
import os

from helpers import sys as k
from helpers import uapi
from helpers.mounts import count_mounts, make_rprivate, statmount, tmpfs
from helpers.ns import caps_down, enter_userns

NOBODY = 65534


def root_and_cwd_ids():
    """Unique mount ids of "/" and "."; both nonzero (upstream checks [4]/[5])."""
    root, cwd = k.mnt_id_unique("/"), k.mnt_id_unique(".")
    assert root != 0 and cwd != 0
    return root, cwd


def self_binds(base, n):
    """upstream: unshare(NEWNS), rprivate, tmpfs size=1M on base, n subdirs
    sub0..sub<n-1>, each bind-mounted onto itself."""
    k.unshare(uapi.CLONE_NEWNS)
    make_rprivate("/")
    tmpfs(base, "size=1M")
    for i in range(n):
        sub = os.path.join(base, f"sub{i}")
        os.mkdir(sub)
        k.mount(sub, sub, None, uapi.MS_BIND)


def build_root_from_nothing():
    """The "build a root from nothing" pattern of overmount_tmpfs and
    child_overmount_tmpfs, in a fresh empty mount namespace."""
    assert count_mounts() == 1
    root, cwd = root_and_cwd_ids()
    assert cwd == root
    assert statmount(root, uapi.STATMOUNT_FS_TYPE).fs_type == "nullfs"
    try:
        os.open("/test", os.O_CREAT | os.O_RDWR, 0o644)
        raise AssertionError("open('/test', O_CREAT) on the nullfs root succeeded")
    except FileNotFoundError:
        pass  # ENOENT: the lookup fails before any permission check
    fsfd = k.fsopen("tmpfs", 0)
    k.fsconfig(fsfd, uapi.FSCONFIG_SET_STRING, "size", "1M")
    k.fsconfig(fsfd, uapi.FSCONFIG_CMD_CREATE)
    mnt = k.fsmount(fsfd, 0, 0)
    k.move_mount(mnt, "", uapi.AT_FDCWD, "/", uapi.MOVE_MOUNT_F_EMPTY_PATH)
    assert count_mounts() == 2
    os.fchdir(mnt)
    os.chroot(".")
    new_root = k.mnt_id_unique("/")
    assert new_root != 0
    assert statmount(new_root, uapi.STATMOUNT_FS_TYPE).fs_type == "tmpfs"
    fd = os.open("/testfile", os.O_CREAT | os.O_RDWR, 0o644)
    assert os.write(fd, b"test") == 4
    os.close(fd)
    assert os.access("/testfile", os.F_OK)


def drop_cap_sys_admin(how):
    """Lose CAP_SYS_ADMIN for real, also when the suite runs as root (upstream
    eperm_without_caps just exits 0 as root and so tests nothing there).

    "nobody": as root setresgid/setresuid to 65534 (no SECBIT_KEEP_CAPS, so
    every capability goes); an unprivileged caller already lacks it.
    "caps_down_in_userns": enter a user namespace (full caps there, and the
    current mount namespace is owned by the parent user namespace) and clear
    the effective set, so the check against the new user namespace fails too.
    """
    if how == "nobody":
        if os.geteuid() == 0:
            os.setgroups([])
            os.setresgid(NOBODY, NOBODY, NOBODY)
            os.setresuid(NOBODY, NOBODY, NOBODY)
    elif how == "caps_down_in_userns":
        enter_userns()
        caps_down()
    else:
        raise ValueError(how)
    assert not k.has_effective_cap(uapi.CAP_SYS_ADMIN)
