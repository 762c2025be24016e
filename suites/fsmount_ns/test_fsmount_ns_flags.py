"""Every fsmount(2) flag bit and attr_flags bit with FSMOUNT_NAMESPACE (beyond upstream).

Behaviour pinned down (fs/namespace.c fsmount): flags other than FSMOUNT_CLOEXEC |
FSMOUNT_NAMESPACE are EINVAL; attr_flags outside the fsmount-valid set
(which excludes MOUNT_ATTR_IDMAP) are EINVAL; of the _ATIME field only the
values RELATIME (0), NOATIME and STRICTATIME are valid, so the lone bit 0x40
is EINVAL. Defined bits come from helpers import uapi
from helpers/flags.py for the running kernel.
"""
import errno
import fcntl

import pytest

from helpers import flags, uapi
from helpers import sys as k
from helpers.errors import raises_errno
from helpers.ns import ns_id
from helpers.newns import fs_context

CLOEXEC, NS = uapi.FSMOUNT_CLOEXEC, uapi.FSMOUNT_NAMESPACE

pytestmark = [pytest.mark.root, pytest.mark.requires("fsmount_namespace", "ns_get_mntns_id")]

FLAG_EXPECTED = {"FSMOUNT_CLOEXEC": 0, "FSMOUNT_NAMESPACE": 0}


@pytest.mark.parametrize("bit,name", [
    pytest.param(b, n, id=n or f"undefined_{b:#x}") for b, n in flags.all_bits("fsmount")])
def test_fsmount_namespace_with_flag(bit, name):
    """fsmount(NAMESPACE | one flag bit): undefined bits EINVAL, CLOEXEC sets FD_CLOEXEC."""
    fsfd = fs_context()
    if name is None:
        with raises_errno(errno.EINVAL):
            k.fsmount(fsfd, NS | bit, 0)
        return
    assert name in FLAG_EXPECTED, f"{name} defined on this kernel but has no expectation here"
    fd = k.fsmount(fsfd, NS | bit, 0)
    assert ns_id(fd) > 0
    assert bool(fcntl.fcntl(fd, fcntl.F_GETFD) & fcntl.FD_CLOEXEC) == (bit == CLOEXEC)


def _attr_expected(bit, name):
    if name is None:
        return errno.EINVAL
    if name == "MOUNT_ATTR__ATIME":
        return 0 if bit in (uapi.MOUNT_ATTR_NOATIME, uapi.MOUNT_ATTR_STRICTATIME) else errno.EINVAL
    return 0


@pytest.mark.parametrize("bit,name", [
    pytest.param(b, n, id=(f"{n}_{b:#x}" if n else f"undefined_{b:#x}"))
    for b, n in flags.all_bits("fsmount_attr")])
def test_fsmount_namespace_with_attr_bit(bit, name):
    """fsmount(NAMESPACE, attr_flags = one bit): valid attributes accepted,
    everything else (IDMAP, unknown bits, atime bit 0x40 alone) EINVAL."""
    fsfd = fs_context()
    expected = _attr_expected(bit, name)
    if expected:
        with raises_errno(expected):
            k.fsmount(fsfd, NS | CLOEXEC, bit)
    else:
        assert ns_id(k.fsmount(fsfd, NS | CLOEXEC, bit)) > 0


@pytest.mark.parametrize("state,expected", [("not_created", errno.EINVAL), ("already_mounted", errno.EBUSY)])
def test_fs_context_state(state, expected):
    """The context needs a created superblock (EINVAL before CMD_CREATE) and
    must be awaiting a mount (EBUSY once fsmount consumed it)."""
    fsfd = fs_context(create=(state != "not_created"))
    if state == "already_mounted":
        k.fsmount(fsfd, NS | CLOEXEC, 0)
    with raises_errno(expected):
        k.fsmount(fsfd, NS | CLOEXEC, 0)


@pytest.mark.parametrize("kind,expected", [("closed_fd", errno.EBADF), ("not_an_fs_context", errno.EINVAL)])
def test_bad_fd(kind, expected):
    """The fd must be an fs context: a closed fd is EBADF, another file EINVAL."""
    import os
    if kind == "closed_fd":
        fd = os.open("/", os.O_RDONLY)
        os.close(fd)
    else:
        fd = os.open("/", os.O_RDONLY | os.O_CLOEXEC)
    with raises_errno(expected):
        k.fsmount(fd, NS | CLOEXEC, 0)
