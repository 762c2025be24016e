"""Twins of tools/testing/selftests/filesystems/mntns_unbindable/mntns_unbindable_test.c
(fs/namespace.c __do_loopback, copy_tree): a mount made MS_UNBINDABLE stays
unbindable in mount namespaces copied from the one it was made unbindable in
(clone_mnt copies the flag), so bind, rbind and open_tree(OPEN_TREE_CLONE) of
it fail with EINVAL there too, and mountinfo still says "unbindable".

Root only, as upstream (which SKIPs without CAP_SYS_ADMIN). Kernels that lose
the flag when copying the namespace (verified on 6.18.44) FAIL the
*_after_clone(s) cases: that is the kernel defect these cases exist for.
"""
import errno
import os
from dataclasses import dataclass

import pytest

from harness.upstream import upstream
from helpers import sys as k
from helpers import uapi
from helpers.errors import raises_errno
from helpers.cleanup import scratch_dir
from helpers.mounts import mountinfo, tmpfs
from helpers.ns import new_mntns
from helpers.proc import in_child

FILE = "filesystems/mntns_unbindable/mntns_unbindable_test.c"

pytestmark = pytest.mark.root


@dataclass
class Tree:
    src: str  # tmpfs, MS_UNBINDABLE
    dst: str  # empty directory next to it


@pytest.fixture
def tree(defer):
    """FIXTURE_SETUP: new mount ns, rprivate; tmpfs base with src and dst;
    tmpfs on src, made unbindable."""
    new_mntns()
    base = scratch_dir(defer, "mntns_unbindable.")
    tmpfs(base)
    src, dst = f"{base}/src", f"{base}/dst"
    os.mkdir(src)
    os.mkdir(dst)
    tmpfs(src)
    k.mount(None, src, None, uapi.MS_UNBINDABLE)
    return Tree(src, dst)


def is_unbindable(path):
    """The mountinfo entry mounted at path has the "unbindable" tag."""
    entries = [m for m in mountinfo() if m.mount_point == path]
    assert entries, f"no mountinfo entry for {path}"
    return "unbindable" in entries[-1].optional


def after_unshares(n, fn, *args):
    """In a child: unshare(CLONE_NEWNS) n times, then fn(*args)."""
    def child():
        for _ in range(n):
            k.unshare(uapi.CLONE_NEWNS)
        return fn(*args)
    return in_child(child)


def bind_refused(tree, flags=uapi.MS_BIND):
    with raises_errno(errno.EINVAL):
        k.mount(tree.src, tree.dst, None, flags)


def open_tree_refused(tree):
    with raises_errno(errno.EINVAL):
        os.close(k.open_tree(uapi.AT_FDCWD, tree.src, uapi.OPEN_TREE_CLONE | uapi.OPEN_TREE_CLOEXEC))


@upstream(FILE, "mntns_unbindable.refuses_bind")
def test_refuses_bind_in_same_ns(tree):
    bind_refused(tree)
    assert is_unbindable(tree.src)


@upstream(FILE, "mntns_unbindable.refuses_bind_after_clone")
def test_refuses_bind_after_unshare(tree):
    after_unshares(1, bind_refused, tree)


@upstream(FILE, "mntns_unbindable.refuses_rbind_after_clone")
def test_refuses_rbind_after_unshare(tree):
    after_unshares(1, bind_refused, tree, uapi.MS_BIND | uapi.MS_REC)


@upstream(FILE, "mntns_unbindable.refuses_open_tree_after_clone")
@pytest.mark.requires("open_tree")
def test_refuses_open_tree_clone_after_unshare(tree):
    after_unshares(1, open_tree_refused, tree)


@upstream(FILE, "mntns_unbindable.mountinfo_after_clone")
def test_mountinfo_shows_unbindable_after_unshare(tree):
    assert after_unshares(1, is_unbindable, tree.src)


@upstream(FILE, "mntns_unbindable.refuses_bind_after_two_clones")
def test_refuses_bind_after_two_unshares(tree):
    after_unshares(2, bind_refused, tree)
