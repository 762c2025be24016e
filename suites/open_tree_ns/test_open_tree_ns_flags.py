"""Every open_tree(2) flag bit combined with OPEN_TREE_NAMESPACE (beyond upstream).

Behaviour pinned down: vfs_open_tree's validation order (fs/namespace.c):
unknown bits -> EINVAL; OPEN_TREE_CLONE|NAMESPACE -> EINVAL; AT_RECURSIVE,
AT_NO_AUTOMOUNT, OPEN_TREE_CLOEXEC accepted; AT_EMPTY_PATH on a directory fd
accepted; AT_SYMLINK_NOFOLLOW on a symlink resolves to the link itself,
which is not a directory -> ENOTDIR. Which bits are defined comes from
helpers/flags.py for the running kernel, so a bit that gains a meaning
later fails here until its expectation is written down.
"""
import errno
import fcntl
import os

import pytest

from helpers import flags, uapi
from helpers import sys as k
from helpers.errors import raises_errno
from helpers.ns import ns_id

NS = uapi.OPEN_TREE_NAMESPACE

pytestmark = [pytest.mark.root, pytest.mark.requires("open_tree_namespace", "ns_get_mntns_id")]


def _call(tree, name):
    """(dfd, path) for the flag's natural use; flag-specific set-up."""
    if name == "AT_EMPTY_PATH":
        return os.open(f"{tree}/dir", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC), ""
    if name == "AT_SYMLINK_NOFOLLOW":
        return uapi.AT_FDCWD, f"{tree}/link"
    return uapi.AT_FDCWD, f"{tree}/dir"


# Expected result of open_tree(.., NAMESPACE | flag): 0 or an errno.
EXPECTED = {
    "OPEN_TREE_NAMESPACE": 0,
    "OPEN_TREE_CLONE": errno.EINVAL,
    "OPEN_TREE_CLOEXEC": 0,
    "AT_RECURSIVE": 0,
    "AT_NO_AUTOMOUNT": 0,
    "AT_EMPTY_PATH": 0,
    "AT_SYMLINK_NOFOLLOW": errno.ENOTDIR,
}


@pytest.mark.parametrize("bit,name", [
    pytest.param(bit, name, id=name or f"undefined_{bit:#x}") for bit, name in flags.all_bits("open_tree")])
def test_open_tree_namespace_with_flag(tree, bit, name):
    """open_tree(NAMESPACE | one flag bit): undefined bits EINVAL, defined ones per EXPECTED."""
    if name is None:
        expected = errno.EINVAL
    else:
        assert name in EXPECTED, f"{name} is defined on this kernel but has no expectation here"
        expected = EXPECTED[name]
    dfd, path = _call(tree, name)
    if expected:
        with raises_errno(expected):
            k.open_tree(dfd, path, NS | bit)
        return
    fd = k.open_tree(dfd, path, NS | bit)
    assert ns_id(fd) > 0
    assert bool(fcntl.fcntl(fd, fcntl.F_GETFD) & fcntl.FD_CLOEXEC) == (bit == uapi.OPEN_TREE_CLOEXEC)


def test_symlink_followed_without_nofollow(tree):
    """Without AT_SYMLINK_NOFOLLOW the symlink is followed to its directory."""
    assert ns_id(k.open_tree(uapi.AT_FDCWD, f"{tree}/link", NS)) > 0


def test_regular_file_is_enotdir(tree):
    """The root of a new namespace must be a directory: a regular file is ENOTDIR."""
    with raises_errno(errno.ENOTDIR):
        k.open_tree(uapi.AT_FDCWD, f"{tree}/file", NS)


def test_recursive_alone_is_einval(tree):
    """AT_RECURSIVE needs OPEN_TREE_CLONE or OPEN_TREE_NAMESPACE: EINVAL alone."""
    with raises_errno(errno.EINVAL):
        k.open_tree(uapi.AT_FDCWD, tree, uapi.AT_RECURSIVE)
