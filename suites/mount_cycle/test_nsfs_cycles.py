"""Beyond upstream: mount-namespace-file cycle rules (fs/namespace.c mnt_ns_loop,
check_for_nsfs_mounts, copy_tree without CL_COPY_MNT_NS_FILE, create_new_namespace)
and knullfs covers, through OPEN_TREE_NAMESPACE / FSMOUNT_NAMESPACE namespaces,
user namespaces and mount propagation. Each test's docstring names its rule.
"""
import errno
import os

import pytest

from helpers import uapi
from helpers import sys as k
from helpers.errors import errno_of, raises_errno
from helpers.mounts import shared_pair, tmpfs
from helpers.newns import new_ns_fd
from helpers.ns import enter_userns, setup_userns
from helpers.proc import in_child, reporting_child, usable_cpus, waiting_child
from helpers.proc import Partner
from suites.mount_cycle.cycle import fd_path, magic_at

pytestmark = pytest.mark.userns
OTN = uapi.OPEN_TREE_NAMESPACE | uapi.OPEN_TREE_CLOEXEC
CLONE_REC = uapi.OPEN_TREE_CLONE | uapi.AT_RECURSIVE | uapi.OPEN_TREE_CLOEXEC


def _enter():
    """A mount namespace we may change: user+mount ns, '/' rprivate."""
    setup_userns()


def _populate(base, newer_pid):
    """tmpfs at base with m = a newer namespace's mntns file, n = a net-ns bind."""
    tmpfs(base)
    for name in ("m", "n", "t"):
        open(f"{base}/{name}", "w").close()
    k.mount(f"/proc/{newer_pid}/ns/mnt", f"{base}/m", None, uapi.MS_BIND)
    k.mount("/proc/self/ns/net", f"{base}/n", None, uapi.MS_BIND)
    assert magic_at(f"{base}/m") == uapi.NSFS_MAGIC


def _look(root):
    return magic_at(f"{root}/m"), magic_at(f"{root}/n")


def _copy_unshare(base):
    return in_child(lambda: (k.unshare(uapi.CLONE_NEWNS), _look(base))[1])


def _copy_unshare_userns(base):
    return in_child(lambda: (enter_userns(mntns=True), _look(base))[1])


def _copy_otn(base):
    nsfd = k.open_tree(uapi.AT_FDCWD, base, OTN | uapi.AT_RECURSIVE)
    return in_child(lambda: (k.setns(nsfd, uapi.CLONE_NEWNS), _look("/"))[1])


def _copy_otn_foreign(base):
    def body():
        enter_userns()                 # the caller is now foreign to its mount ns
        nsfd = k.open_tree(uapi.AT_FDCWD, base, OTN | uapi.AT_RECURSIVE)
        k.setns(nsfd, uapi.CLONE_NEWNS)
        seen = _look("/")
        with raises_errno(errno.EINVAL):          # foreign copies are MNT_LOCKED
            k.umount2("/n", uapi.MNT_DETACH)
        return seen
    return in_child(body)


@pytest.mark.parametrize("copy", [
    pytest.param(_copy_unshare, id="unshare"),
    pytest.param(_copy_unshare_userns, id="unshare_userns"),
    pytest.param(_copy_otn, id="open_tree_namespace",
                 marks=pytest.mark.requires("open_tree_namespace")),
    pytest.param(_copy_otn_foreign, id="open_tree_namespace_foreign",
                 marks=pytest.mark.requires("open_tree_namespace")),
])
def test_namespace_copy_drops_mntns_file_keeps_net_bind(base, copy):
    """copy_tree without CL_COPY_MNT_NS_FILE (copy_mnt_ns, create_new_namespace):
    a recursive namespace copy leaves out mntns-file binds but keeps net-ns binds."""
    _enter()
    with waiting_child(lambda: k.unshare(uapi.CLONE_NEWNS)) as newer:
        _populate(base, newer)
        m, n = copy(base)
    assert n == uapi.NSFS_MAGIC, "the net-ns bind was not copied"
    assert m == uapi.TMPFS_MAGIC, "the mntns-file bind was copied into the new namespace"


@pytest.mark.parametrize("how", ["rbind", "move"])
@pytest.mark.parametrize("relation", ["peer", "slave"])
def test_propagated_copy_drops_mntns_file(base, relation, how):
    """propagate_mnt copies without CL_COPY_MNT_NS_FILE: a tree holding a mntns-file
    bind attached under a shared mount reaches its peers/slaves without that file
    (the net-ns bind next to it does propagate)."""
    _enter()
    tmpfs(base)
    a, b, x = f"{base}/a", f"{base}/b", f"{base}/x"
    for d in (a, b, x):
        os.mkdir(d)
    shared_pair(a, b, relation)
    os.mkdir(f"{a}/mp")
    with waiting_child(lambda: k.unshare(uapi.CLONE_NEWNS)) as newer:
        _populate(x, newer)
        if how == "rbind":
            k.mount(x, f"{a}/mp", None, uapi.MS_BIND | uapi.MS_REC)
        else:
            k.mount(x, f"{a}/mp", None, uapi.MS_MOVE)
        assert _look(f"{a}/mp") == (uapi.NSFS_MAGIC, uapi.NSFS_MAGIC)
        assert magic_at(f"{b}/mp/n") == uapi.NSFS_MAGIC, "the net-ns bind did not propagate"
        assert magic_at(f"{b}/mp/m") == uapi.TMPFS_MAGIC, f"the mntns file reached the {relation}"


def test_mntns_file_bind_onto_shared_mount_with_peer_refused(base):
    """copy_tree refuses (EINVAL) a propagated copy whose root is a mntns file:
    binding even a newer namespace's file where it would propagate fails."""
    _enter()
    tmpfs(base)
    k.mount(None, base, None, uapi.MS_SHARED)
    os.mkdir(f"{base}/peer")
    open(f"{base}/m", "w").close()
    k.mount(base, f"{base}/peer", None, uapi.MS_BIND)
    with waiting_child(lambda: k.unshare(uapi.CLONE_NEWNS)) as newer:
        with raises_errno(errno.EINVAL):
            k.mount(f"/proc/{newer}/ns/mnt", f"{base}/m", None, uapi.MS_BIND)
        k.mount(None, base, None, uapi.MS_PRIVATE)       # nothing to propagate to: allowed
        k.mount(None, f"{base}/peer", None, uapi.MS_PRIVATE)
        k.mount(f"/proc/{newer}/ns/mnt", f"{base}/m", None, uapi.MS_BIND)


def _file_of(whose, older_fd):
    if whose == "own":
        return "/proc/self/ns/mnt", None
    if whose == "older":
        return fd_path(older_fd), None
    cm = waiting_child(lambda: k.unshare(uapi.CLONE_NEWNS))
    pid = cm.__enter__()
    return f"/proc/{pid}/ns/mnt", cm


def _bind_rule(target, whose, older_fd):
    src, cm = _file_of(whose, older_fd)
    try:
        if whose == "newer":
            k.mount(src, target, None, uapi.MS_BIND)
        else:
            with raises_errno(errno.EINVAL):
                k.mount(src, target, None, uapi.MS_BIND)
    finally:
        if cm:
            cm.__exit__(None, None, None)


@pytest.mark.parametrize("whose", ["own", "older", "newer"])
def test_mntns_file_bind_rule(base, whose):
    """mnt_ns_loop: binding a mntns file needs a namespace newer than the caller's
    (own or older: EINVAL; newer: allowed)."""
    older = os.open("/proc/self/ns/mnt", os.O_RDONLY | os.O_CLOEXEC)
    _enter()
    tmpfs(base)
    open(f"{base}/t", "w").close()
    _bind_rule(f"{base}/t", whose, older)


def _bind_rule_errnos(base, older_cpu, newer_cpu):
    """Our namespace made on older_cpu, a newer one on newer_cpu: errnos of
    binding our (older) file inside the newer one, and its file in ours."""
    os.sched_setaffinity(0, {older_cpu})
    _enter()
    tmpfs(base)
    open(f"{base}/t", "w").close()
    older = f"/proc/{os.getpid()}/ns/mnt"

    def newer_ns():
        os.sched_setaffinity(0, {newer_cpu})
        k.unshare(uapi.CLONE_NEWNS)
        tmpfs("/mnt")
        open("/mnt/t", "w").close()
        return errno_of(k.mount, older, "/mnt/t", None, uapi.MS_BIND)

    with reporting_child(newer_ns) as (newer, older_in_newer):
        newer_in_older = errno_of(k.mount, f"/proc/{newer}/ns/mnt", f"{base}/t", None, uapi.MS_BIND)
    return errno.errorcode.get(older_in_newer, older_in_newer), errno.errorcode.get(newer_in_older, newer_in_older)


def test_mntns_file_bind_rule_across_cpus(base):
    """mnt_ns_loop across CPUs: a namespace created after the caller's, on
    another CPU, is newer: binding the caller's (older) file inside it is
    EINVAL, binding its file in the caller's namespace works -- with the two
    namespaces made on different CPUs in both orders. The harness pins each
    test to one CPU; here that is undone on purpose: ids handed out from
    per-CPU batches (kernel/nstree.c __ns_tree_gen_id(), 6.18) make "newer"
    depend on which CPU created each namespace, and one of the two orders
    then gets it wrong, whichever CPU's batch is ahead."""
    cpus = usable_cpus()
    if len(cpus) < 2:
        pytest.skip(f"needs at least 2 CPUs to create namespaces on; this machine offers {len(cpus)}")
    got = {f"cpu{a}_then_cpu{b}": in_child(_bind_rule_errnos, base, cpus[a], cpus[b])
           for a, b in ((0, 1), (1, 0))}
    assert got == {order: ("EINVAL", 0) for order in got}, \
        f"(older file bound in the newer namespace, newer file bound in the older) per order: {got}"


@pytest.mark.parametrize("whose", ["older", "newer"])
@pytest.mark.requires("open_tree_namespace")
def test_mntns_file_bind_rule_in_open_tree_namespace(base, whose):
    """Inside an OPEN_TREE_NAMESPACE namespace the creator's namespace is older:
    binding its file is refused (EINVAL), binding a newer namespace's file works.
    (/proc is rbound into the copied tree so the files have paths there.)"""
    _enter()
    tmpfs(base)
    os.mkdir(f"{base}/proc")
    k.mount("/proc", f"{base}/proc", None, uapi.MS_BIND | uapi.MS_REC)
    older = os.open("/proc/self/ns/mnt", os.O_RDONLY | os.O_CLOEXEC)
    nsfd = new_ns_fd("open_tree_namespace", base)
    k.setns(nsfd, uapi.CLONE_NEWNS)
    open("/t2", "w").close()
    _bind_rule("/t2", whose, older)


def _owner_attaches(chan, target):
    k.unshare(uapi.CLONE_NEWNS)
    chan.send("unshared")
    tfd_there = chan.recv()
    tfd = k.pidfd_getfd(k.pidfd_open(os.getppid()), tfd_there)
    with raises_errno(errno.ELOOP):      # the tree holds our own namespace's file
        k.move_mount(tfd, "", uapi.AT_FDCWD, target, uapi.MOVE_MOUNT_F_EMPTY_PATH)


@pytest.mark.parametrize("attacher", ["creator", "owner_of_file"])
def test_move_mount_detached_tree_with_mntns_file(base, attacher):
    """check_for_nsfs_mounts on move_mount of a detached tree: a tree holding a
    newer namespace's file attaches; attached by that namespace itself (the file is
    not newer than its ns) it fails with ELOOP."""
    _enter()
    tmpfs(base)
    for d in ("src", "dst"):
        os.mkdir(f"{base}/{d}")
    tmpfs(f"{base}/src")
    open(f"{base}/src/m", "w").close()
    child = Partner(_owner_attaches, f"{base}/dst")
    assert child.recv() == "unshared"
    k.mount(f"/proc/{child.pid}/ns/mnt", f"{base}/src/m", None, uapi.MS_BIND)
    tfd = k.open_tree(uapi.AT_FDCWD, f"{base}/src", CLONE_REC)
    if attacher == "creator":
        k.move_mount(tfd, "", uapi.AT_FDCWD, f"{base}/dst", uapi.MOVE_MOUNT_F_EMPTY_PATH)
        assert magic_at(f"{base}/dst/m") == uapi.NSFS_MAGIC
        child.kill()
    else:
        child.send(tfd)
        child.join()


def _owner_rbinds(chan, target):
    k.unshare(uapi.CLONE_NEWNS)
    chan.send("unshared")
    fd_there = chan.recv()
    fd = k.pidfd_getfd(k.pidfd_open(os.getppid()), fd_there)
    with raises_errno(errno.EINVAL):
        k.mount(fd_path(fd), target, None, uapi.MS_BIND | uapi.MS_REC)
    k.mount(fd_path(fd), target, None, uapi.MS_BIND)      # the nsfs mount alone is fine
    k.umount2(target, 0)


@pytest.mark.parametrize("stack", [["net"], ["net", "uts"], ["net", "uts", "ipc"]],
                         ids=["one_below", "two_below", "three_below"])
def test_rbind_containing_own_mntns_file_refused(base, stack):
    """check_for_nsfs_mounts on a recursive bind (7.x; 6.18 lets it through, see
    known-defects.toml): a foreign nsfs source with the caller's own mntns file
    stacked on top, however many nsfs binds down, cannot be rbound (EINVAL)."""
    _enter()
    tmpfs(base)
    x, y = f"{base}/x", f"{base}/y"
    open(x, "w").close()
    open(y, "w").close()
    k.mount(f"/proc/self/ns/{stack[0]}", x, None, uapi.MS_BIND)
    fd = os.open(x, os.O_PATH | os.O_CLOEXEC)
    for kind in stack[1:]:
        k.mount(f"/proc/self/ns/{kind}", x, None, uapi.MS_BIND)
    child = Partner(_owner_rbinds, y)
    assert child.recv() == "unshared"
    k.mount(f"/proc/{child.pid}/ns/mnt", x, None, uapi.MS_BIND)
    child.send(fd)
    child.join()


def _cover_where(kind, base):
    if kind == "plain":
        return base
    if kind == "userns":
        return base
    nsfd = new_ns_fd(kind, base)
    k.setns(nsfd, uapi.CLONE_NEWNS)
    return "/"


@pytest.mark.parametrize("where", [
    "plain", "userns",
    pytest.param("open_tree_namespace", marks=pytest.mark.requires("open_tree_namespace")),
    pytest.param("fsmount_namespace", marks=pytest.mark.requires("fsmount_namespace")),
])
def test_lazy_umount_keeps_held_tree_connected(base, where):
    """No knullfs cover inside a lazily unmounted tree: umount2(P, MNT_DETACH) with P
    held keeps C attached to P (observed on 7.3: P/covered still leads into C's
    tmpfs); covers only replace children unmounted from a held parent
    (mount_cover twins). Same in every kind of namespace."""
    # The userns variant, and any unprivileged run, mount only inside a user
    # namespace that owns its mount namespace.
    if where == "userns" or os.geteuid() != 0:
        setup_userns()
    tmpfs(base)
    root = _cover_where(where, base)
    p = f"{root.rstrip('/')}/p"
    os.mkdir(p)
    tmpfs(p)
    os.mkdir(f"{p}/covered")
    tmpfs(f"{p}/covered")
    fd = os.open(p, os.O_PATH | os.O_CLOEXEC)
    k.umount2(p, uapi.MNT_DETACH)
    cfd = os.open("covered", os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
    assert k.fstatfs(cfd).f_type == uapi.TMPFS_MAGIC, "the held tree lost its child"
    os.mkdir("x", dir_fd=cfd)                  # still C's writable tmpfs
