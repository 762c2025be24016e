"""Twin of tools/testing/selftests/filesystems/empty_mntns/root_readdir_test.c
(with readdir_hold.h): a getdents64 stuck in a page fault while it fills the
caller's buffer must not block a mkdir or a lookup in the nullfs root.

The hold is the real one: the getdents64 buffer is an anonymous page
registered with userfaultfd (MISSING mode), so the reader thread stalls inside
the kernel's copy to user space. The test waits for the userfaultfd page-fault
event (proof the reader is inside getdents64) before it starts the creator
(mkdirat) and the finder (openat of a missing name); both must come back
within 5 s. The page is then filled (uapi.UFFDIO_ZEROPAGE) and the reader must
complete with "." and "..".
"""
import errno
import os

import pytest

from harness.upstream import upstream
from helpers import sys as k
from helpers import uapi
from helpers.readdir import ReaddirHold

FILE = "filesystems/empty_mntns/root_readdir_test.c"

STALL_LIMIT = 5.0


@pytest.mark.root
@pytest.mark.requires("unshare_empty_mntns")
@pytest.mark.timeout(60)
@upstream(FILE, "global.readdir_blocks_nobody")
def test_readdir_blocks_nobody():
    """While a getdents64 on the nullfs root is stalled in a userfaultfd page
    fault, mkdirat(root, "x") and openat(root, "no_such_name") return within
    5 s (both ENOENT: lookups in nullfs fail before anything else)."""
    # readdir_hold_init() before anything else: as root (CAP_SYS_PTRACE in
    # the initial user ns) kernel-mode faults may be handled by userfaultfd.
    hold = ReaddirHold()
    k.unshare(uapi.UNSHARE_EMPTY_MNTNS)
    dfd = os.open("/", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    got = hold.run(dfd, STALL_LIMIT)
    assert not got["stalled"], f"{' and '.join(got['stalled'])} blocked behind a stalled getdents64"
    assert got["openat"] == errno.ENOENT
    assert got["mkdirat"] == errno.ENOENT
    assert got["reader_done"], "getdents64 did not complete once the page was filled"
    assert sorted(name for _, _, name in got["entries"]) == [".", ".."]
