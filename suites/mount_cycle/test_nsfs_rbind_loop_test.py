"""Twin of filesystems/mount_cycle/nsfs_rbind_loop_test.c (fs/namespace.c do_loopback,
check_for_nsfs_mounts).

A recursive bind copies mntns-file mounts (CL_COPY_MNT_NS_FILE), so the copy is
scanned: a mntns file that is not newer than the caller's namespace fails the
whole rbind with EINVAL. 6.18 lacks the scan (the rbind succeeds there): that is
left to FAIL as a real 6.18 defect, not hidden behind a feature marker, because
the only "probe" would be this very scenario (see the top-level known-defects.toml).
"""
import errno
import os

import pytest

from harness.upstream import upstream
from helpers import uapi
from helpers import sys as k
from helpers.errors import raises_errno
from helpers.mounts import tmpfs
from helpers.ns import setup_userns
from helpers.proc import Partner
from suites.mount_cycle.cycle import fd_path

FILE = "filesystems/mount_cycle/nsfs_rbind_loop_test.c"


def _child(chan, d, fd):
    k.unshare(uapi.CLONE_NEWNS)          # a namespace newer than the parent's
    chan.send("unshared")
    chan.recv()                          # the parent stacked our mntns file on x
    y = f"{d}/y"
    tmpfs(y)
    open(f"{y}/f", "w").close()
    with raises_errno(errno.EINVAL):     # the copy would carry our own mntns file
        k.mount(fd_path(fd), f"{y}/f", None, uapi.MS_BIND | uapi.MS_REC)
    k.mount(fd_path(fd), f"{y}/f", None, uapi.MS_BIND)   # the mount alone is fine
    k.umount2(f"{y}/f", 0)


@pytest.mark.userns
@upstream(FILE, "nsfs_rbind_loop.own_ns_file_below_foreign_source")
def test_rbind_refuses_own_mntns_file_below_source(base):
    setup_userns()
    tmpfs(base)
    x = f"{base}/x"
    open(x, "w").close()
    os.mkdir(f"{base}/y")
    k.mount("/proc/self/ns/net", x, None, uapi.MS_BIND)
    fd = os.open(x, os.O_PATH)
    child = Partner(_child, base, fd)
    assert child.recv() == "unshared"
    k.mount(f"/proc/{child.pid}/ns/mnt", x, None, uapi.MS_BIND)  # newer ns: allowed
    child.send("go")
    child.join()
    os.close(fd)
    k.umount2(x, uapi.MNT_DETACH)
    k.umount2(x, uapi.MNT_DETACH)
