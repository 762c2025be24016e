"""Twin of filesystems/mount_cycle/overmount_ns_file_test.c (fs/namespace.c
attach_recursive_mnt, fs/pnode.c propagate_mnt).

Moving a mount that carries a mntns-file bind onto a shared mount: the copies
propagated to slaves leave the file out, and a mount already sitting at the
destination in the slave ends up on top of the propagated copy.
"""
import os

import pytest

from harness.upstream import upstream
from helpers import uapi
from helpers import sys as k
from helpers.mounts import shared_pair, tmpfs
from helpers.ns import setup_userns
from helpers.proc import waiting_child

FILE = "filesystems/mount_cycle/overmount_ns_file_test.c"


def _write(path, text):
    with open(path, "w") as f:
        f.write(text)


def _read(path):
    with open(path) as f:
        return f.read()


@pytest.mark.userns
@upstream(FILE, "overmount_ns_file.existing_mount_stays_on_top")
def test_existing_slave_mount_stays_on_top_of_propagated_copy(base):
    setup_userns()
    tmpfs(base)
    a, b, s = f"{base}/A", f"{base}/B", f"{base}/s"
    for d in (a, b, s):
        os.mkdir(d)
    shared_pair(a, b, "slave")
    _write(f"{a}/file", "A")
    _write(f"{base}/Q", "Q")
    k.mount(f"{base}/Q", f"{b}/file", None, uapi.MS_BIND)            # Q
    tmpfs(s)
    _write(f"{s}/f", "f")
    _write(f"{s}/S", "S")
    k.mount(f"{s}/S", f"{s}/f", None, uapi.MS_BIND)
    fd = os.open(f"{s}/f", os.O_PATH)
    with waiting_child(lambda: k.unshare(uapi.CLONE_NEWNS)) as pid:
        k.mount(f"/proc/{pid}/ns/mnt", f"{s}/f", None, uapi.MS_BIND)  # N
        assert _read(f"{b}/file") == "Q"
        k.move_mount(fd, "", uapi.AT_FDCWD, f"{a}/file", uapi.MOVE_MOUNT_F_EMPTY_PATH)
        assert _read(f"{b}/file") == "Q", "the propagated copy went on top of Q"
        k.umount2(f"{b}/file", 0)
        assert _read(f"{b}/file") == "S", "the propagated copy carries the mntns file"
