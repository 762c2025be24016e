"""fsmount(FSMOUNT_NAMESPACE) for several filesystem types (beyond upstream).

Behaviour pinned down: the new namespace's single mount is the filesystem
the context created, whatever its type (statmount fs_type/sb_magic, and its
content after setns); procfs follows the fs context's pid namespace, whose
owning user namespace decides whether an unprivileged creator may create it
at all; nullfs is never registered, so fsopen("nullfs") is ENODEV.
"""
import errno
import os

import pytest

from helpers import uapi
from helpers import sys as k
from helpers.errors import raises_errno
from helpers.cleanup import scratch_dir
from helpers.mounts import tmpfs
from helpers.ns import setup_userns
from helpers.proc import in_child
from helpers.newns import fs_context, fsmount_ns, setns_mnt, top_mount

CLOEXEC, NS = uapi.FSMOUNT_CLOEXEC, uapi.FSMOUNT_NAMESPACE

pytestmark = [pytest.mark.requires("fsmount_namespace", "statmount", "listmount",
                                   "ns_get_mntns_id", "mnt_id_req_ns_id")]


def _check_content(fd, probe):
    def body():
        setns_mnt(fd)
        return probe()
    return in_child(body)


FSTYPES = {
    # name: (magic, content probe after setns)
    "tmpfs": (uapi.TMPFS_MAGIC, lambda: os.listdir("/") == []),
    "ramfs": (uapi.RAMFS_MAGIC, lambda: os.listdir("/") == []),
    "proc": (uapi.PROC_SUPER_MAGIC, lambda: os.readlink("/self") == str(os.getpid())),
    "sysfs": (uapi.SYSFS_MAGIC, lambda: os.path.isdir("/kernel")),
}


@pytest.mark.root
@pytest.mark.parametrize("fstype", list(FSTYPES))
def test_fstype(fstype):
    """The namespace holds exactly one mount, of this type, and it is "/" after setns."""
    magic, probe = FSTYPES[fstype]
    fd, new = fsmount_ns(fs_context(fstype))
    sm = top_mount(new)
    assert (sm.fs_type, sm.sb_magic) == (fstype, magic)
    assert sm.mnt_point is None or sm.mnt_point == "/"
    assert _check_content(fd, probe)


@pytest.mark.root
def test_overlay(defer):
    """A read-only overlay (two lowerdirs) as the namespace's mount: its merged
    content is "/" after setns."""
    d = scratch_dir(defer, prefix="fsmount_ns.")
    tmpfs(d)
    for layer, name in (("l1", "a"), ("l2", "b")):
        os.mkdir(f"{d}/{layer}")
        open(f"{d}/{layer}/{name}", "w").close()
    fsfd = fs_context("overlay", [("lowerdir", f"{d}/l1:{d}/l2")])
    fd, new = fsmount_ns(fsfd)
    sm = top_mount(new)
    assert (sm.fs_type, sm.sb_magic) == ("overlay", uapi.OVERLAYFS_SUPER_MAGIC)
    assert _check_content(fd, lambda: sorted(os.listdir("/"))) == ["a", "b"]


@pytest.mark.requires("nullfs_root")
def test_nullfs_is_not_registered():
    """nullfs backs every namespace root but is not a registered type: ENODEV.
    Unprivileged, from a user namespace owning its mount namespace: fsopen()
    checks CAP_SYS_ADMIN there before it looks the type up (fs/fsopen.c)."""
    if os.geteuid() != 0:
        setup_userns()
    with raises_errno(errno.ENODEV):
        k.fsopen("nullfs", uapi.FSOPEN_CLOEXEC)


@pytest.mark.root
@pytest.mark.userns
def test_proc_in_userns_needs_own_pid_namespace():
    """In a user namespace, procfs for the initial pid namespace (owned by the
    initial user namespace) cannot be created: CMD_CREATE is EPERM."""
    def body():
        setup_userns()
        fsfd = k.fsopen("proc", uapi.FSOPEN_CLOEXEC)
        with raises_errno(errno.EPERM):
            k.fsconfig(fsfd, uapi.FSCONFIG_CMD_CREATE)
    in_child(body)


@pytest.mark.root
@pytest.mark.userns
def test_proc_in_userns_with_own_pid_namespace():
    """With a pid namespace owned by the caller's user namespace, procfs is
    created and fsmount(FSMOUNT_NAMESPACE) gives a namespace whose "/" is it."""
    def body():
        setup_userns()
        k.unshare(uapi.CLONE_NEWPID)

        def in_pidns():
            fd, new = fsmount_ns(fs_context("proc"))
            sm = top_mount(new)
            setns_mnt(fd)
            return sm.fs_type, os.readlink("/self")
        return in_child(in_pidns)
    fs_type, self_link = in_child(body)
    assert fs_type == "proc"
    assert self_link == "1"
