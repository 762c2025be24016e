"""Twin of tools/testing/selftests/filesystems/empty_mntns/overmount_chroot_test.c:
chroot into a directory overmounted five times lands on the top mount
(regression guard for the root-switching paths touched by nullfs)."""
import os

import pytest

from harness.upstream import upstream
from helpers import sys as k
from helpers import uapi
from helpers.mounts import count_mounts, make_rprivate, statmount, tmpfs
from helpers.ns import enter_userns

FILE = "filesystems/empty_mntns/overmount_chroot_test.c"


def setup_root(base):
    """upstream setup_root(): a tmpfs pivoted to "/", the old root detached."""
    tmpfs(base, "size=10M")
    os.mkdir(os.path.join(base, "oldroot"))
    k.pivot_root(base, os.path.join(base, "oldroot"))
    os.chdir("/")
    k.umount2("/oldroot", uapi.MNT_DETACH)
    os.rmdir("/oldroot")


@pytest.mark.userns
@upstream(FILE, "global.overmount_chroot")
def test_overmount_chroot(tmp_path):
    """Six tmpfs layers on /newroot; chroot("/newroot") enters the sixth:
    only layer_5 is visible and "/" has the top layer's mount id."""
    enter_userns()
    k.unshare(uapi.CLONE_NEWNS)
    make_rprivate("/")
    setup_root(str(tmp_path))
    os.mkdir("/newroot")
    tmpfs("/newroot")
    ids = [k.mnt_id_unique("/newroot")]
    open("/newroot/layer_0", "w").close()
    for i in range(5):
        tmpfs("/newroot")
        ids.append(k.mnt_id_unique("/newroot"))
        open(f"/newroot/layer_{i + 1}", "w").close()
    assert count_mounts() >= 7
    assert k.mnt_id_unique("/newroot") == ids[5]
    os.chroot("/newroot")
    os.chdir("/")
    assert k.mnt_id_unique("/") == ids[5]
    assert os.path.exists("/layer_5")
    for i in range(5):
        assert not os.path.exists(f"/layer_{i}")
    sm = statmount(ids[5], uapi.STATMOUNT_FS_TYPE)
    if sm.mask & uapi.STATMOUNT_FS_TYPE:
        assert sm.fs_type == "tmpfs"
