"""Twins of tools/testing/selftests/namespaces/nsid_test.c: NS_GET_ID (6.18)
gives every namespace a non-zero 64-bit id (fs/nsfs.c ns_ioctl()); a new
namespace gets an id of its own.

Beyond upstream: the id is the same through any fd of the namespace; for a
mount namespace it equals NS_GET_MNTNS_ID; and (6.19+) a new namespace's id
is larger than its creator's.

Upstream forks a child that unshare()s (and for pid and time namespaces, a
grandchild that lives in them); here clone3(CLONE_NEW<type>) puts the child
itself in the new namespace (the same namespaces, one process fewer).
Creating a namespace other than a user namespace needs CAP_SYS_ADMIN: those
are root only (upstream SKIPs on EPERM).
"""
import os
from contextlib import contextmanager

import pytest

from harness.upstream import upstream
from helpers import uapi
from helpers.ns import id_of, ns_get_id, ns_id, open_ns
from helpers.proc import clone3_nowait

FILE = "namespaces/nsid_test.c"
KINDS = ["mnt", "cgroup", "ipc", "uts", "user", "net", "time", "pid"]

pytestmark = pytest.mark.requires("ns_get_id")


def needs_time(kind):
    if kind == "time" and not os.path.exists("/proc/self/ns/time"):
        pytest.skip("no time namespaces in this kernel (CONFIG_TIME_NS)")


@pytest.mark.parametrize("kind", [
    pytest.param(kind, marks=upstream(FILE, f"global.nsid_{kind}ns_basic")) for kind in KINDS])
def test_ns_get_id_is_nonzero_and_stable(kind):
    needs_time(kind)
    first, second = open_ns(kind), open_ns(kind)
    ns = ns_get_id(first)
    assert ns != 0
    assert ns_get_id(first) == ns_get_id(second) == ns
    if kind == "mnt":
        assert ns_id(first) == ns


@contextmanager
def child_in_new(kind):
    """The pid of a child clone3()d into a new namespace of `kind`."""
    r, w = os.pipe()

    def wait():
        os.close(w)
        os.read(r, 1)
    pid = clone3_nowait(wait, uapi.NS_TYPES[kind])
    os.close(r)
    try:
        yield pid
    finally:
        os.close(w)
        os.waitpid(pid, 0)


def separate(kind):
    return pytest.mark.userns if kind == "user" else pytest.mark.root


@pytest.mark.parametrize("kind", [
    pytest.param(kind, marks=[upstream(FILE, f"nsid.{kind}ns_separate"), separate(kind)])
    for kind in KINDS])
def test_new_namespace_has_a_new_id(kind):
    needs_time(kind)
    ours = id_of(kind)
    with child_in_new(kind) as pid:
        theirs = id_of(kind, pid)
    assert theirs not in (0, ours)


@pytest.mark.requires("listns")
@pytest.mark.parametrize("kind", [pytest.param(kind, marks=separate(kind)) for kind in KINDS])
def test_new_namespace_id_is_larger_than_its_creators(kind):
    """Beyond upstream: since 6.19's namespace tree, every type takes its ids
    from one increasing counter (kernel/nstree.c __ns_tree_gen_id()), so a
    new namespace's id is larger than any existing one's. (6.18 is not held
    to it: it gave an ipc namespace id 50 after one with id 4097, 6.18.15.)"""
    needs_time(kind)
    ours = id_of(kind)
    with child_in_new(kind) as pid:
        theirs = id_of(kind, pid)
    assert theirs > ours
