"""Beyond upstream: a LOCKED bind mount of a mount-namespace file
(/proc/<pid>/ns/mnt) and the copies that leave such files out.

copy_tree() without CL_COPY_MNT_NS_FILE (copy_mnt_ns() for unshare/clone
CLONE_NEWNS, create_new_namespace() for OPEN_TREE_NAMESPACE, propagate_mnt())
skips mntns-file mounts to avoid reference cycles. A MNT_LOCKED mount must not
be removed to show what it covers, so skipping a locked one would uncover its
mountpoint. 7.3 (fs/namespace.c copy_tree()) refuses the whole copy instead:
"Both a mount namespace file and locked" -> EPERM. Copies with
CL_COPY_MNT_NS_FILE (do_loopback() for MS_BIND|MS_REC, open_detached_copy()
for OPEN_TREE_CLONE|AT_RECURSIVE) keep it, and copy_tree() keeps its lock.

How such a mount comes about: MNT_LOCKED is set by lock_mnt_tree() on every
mount of a tree but its root, by copy_tree() from the source, and handed over
by attach_recursive_mnt()/path_pivot_root() to a mount taking a locked one's
place. path_pivot_root() and create_new_namespace() lock only a new root,
a directory, which a mntns file is not (pivot_root() looks the new root up
with LOOKUP_DIRECTORY, create_new_namespace() wants d_can_lookup()).
test_how_a_mntns_file_mount_gets_locked tries the other paths; on 7.3 one
works: attaching a tree that holds a mntns-file mount into a detached tree
owned by another user namespace (attach_recursive_mnt(): for an anonymous
target namespace the attacher's mntns user namespace is authoritative, and it
differs from the target's, so lock_mnt_tree(source) locks the mntns-file
submount). Before 7.2.13 MOVE_MOUNT_BENEATH under a locked mount is a second
(can_move_mount_beneath() did not yet refuse a mntns file).

Kernels before 7.2.13 (6.18.15, 7.1.13, 7.2.12 measured) have no such branch:
the copy drops the locked mount and shows the file it covered.
"""
import errno
import os

import pytest

from helpers import sys as k
from helpers import uapi
from helpers.errors import errno_of, name, raises_errno
from helpers.mounts import detached_fs, set_propagation, tmpfs
from helpers.ns import enter_userns, setup_userns, write_id_maps
from helpers.proc import Partner, clone3, fd_from_child, in_child, waiting_child
from suites.mount_cycle.cycle import magic_at

pytestmark = pytest.mark.userns
COVERED = "covered by the mntns-file mount"
CLONE_REC = uapi.OPEN_TREE_CLONE | uapi.AT_RECURSIVE | uapi.OPEN_TREE_CLOEXEC
OTN_REC = uapi.OPEN_TREE_NAMESPACE | uapi.AT_RECURSIVE | uapi.OPEN_TREE_CLOEXEC


def covered_file(path):
    with open(path, "w") as f:
        f.write(COVERED)


def bind_newer_mntns_file(target):
    """Bind the mntns file of a namespace newer than ours onto target
    (mnt_ns_loop() refuses our own or an older one)."""
    with waiting_child(lambda: k.unshare(uapi.CLONE_NEWNS)) as newer:
        k.mount(f"/proc/{newer}/ns/mnt", target, None, uapi.MS_BIND)
    assert magic_at(target) == uapi.NSFS_MAGIC


def state(path):
    """'absent' when path is no mntns file (the copy left the mount out),
    else 'unlocked' or 'locked' as umount2(path) succeeds or is EINVAL
    (do_umount(): MNT_LOCKED)."""
    if magic_at(path) != uapi.NSFS_MAGIC:
        return "absent"
    err = errno_of(k.umount2, path, 0)
    return {0: "unlocked", errno.EINVAL: "locked"}.get(err, name(err))


# --- the paths, each from a fresh user+mount namespace with base a tmpfs ---

def via_unshare_userns(base):
    covered_file(f"{base}/m")
    bind_newer_mntns_file(f"{base}/m")
    return in_child(lambda: (enter_userns(mntns=True), state(f"{base}/m"))[1])


def via_clone3_userns(base):
    covered_file(f"{base}/m")
    bind_newer_mntns_file(f"{base}/m")
    uid, gid = os.geteuid(), os.getegid()
    return clone3(lambda: (write_id_maps(uid, gid), state(f"{base}/m"))[1],
                  uapi.CLONE_NEWUSER | uapi.CLONE_NEWNS)[0]


def via_open_tree_namespace_from_userns(base):
    covered_file(f"{base}/m")
    bind_newer_mntns_file(f"{base}/m")

    def body():
        enter_userns()          # foreign to our mount namespace: the copy is locked
        k.setns(k.open_tree(uapi.AT_FDCWD, base, OTN_REC), uapi.CLONE_NEWNS)
        return state("/m")
    return in_child(body)


def _userns_reports(chan, path, rprivate=True):
    """In a new user+mount namespace (rprivate=False: our copies of shared
    mounts stay their slaves): say ready, wait for the parent's turn, then
    give state(path) as this namespace sees it."""
    setup_userns(rprivate=rprivate)
    chan.send("ready")
    chan.recv()
    return state(path)


def via_propagation_into_userns_namespace(base):
    os.mkdir(f"{base}/shared")
    tmpfs(f"{base}/shared")
    set_propagation(f"{base}/shared", uapi.MS_SHARED)
    os.mkdir(f"{base}/shared/mp")
    os.mkdir(f"{base}/src")
    tmpfs(f"{base}/src")
    covered_file(f"{base}/src/m")
    slave = Partner(_userns_reports, f"{base}/shared/mp/m", False)
    assert slave.recv() == "ready"
    bind_newer_mntns_file(f"{base}/src/m")
    k.mount(f"{base}/src", f"{base}/shared/mp", None, uapi.MS_BIND | uapi.MS_REC)
    slave.send()
    return slave.join()


def via_bind_after_setns_into_userns_namespace(base):
    covered_file(f"{base}/m")
    owner = Partner(_userns_reports, f"{base}/m")
    assert owner.recv() == "ready"
    nsfd = os.open(f"/proc/{owner.pid}/ns/mnt", os.O_RDONLY | os.O_CLOEXEC)
    in_child(lambda: (k.setns(nsfd, uapi.CLONE_NEWNS), bind_newer_mntns_file(f"{base}/m")))
    owner.send()
    return owner.join()


def via_move_beneath_locked_mount(base):
    for name_ in ("m", "cover", "plain", "plain_cover"):
        covered_file(f"{base}/{name_}")
    k.mount(f"{base}/cover", f"{base}/m", None, uapi.MS_BIND)
    k.mount(f"{base}/plain_cover", f"{base}/plain", None, uapi.MS_BIND)

    def beneath(tree, target):
        return errno_of(k.move_mount, tree, "", uapi.AT_FDCWD, target,
                        uapi.MOVE_MOUNT_F_EMPTY_PATH | uapi.MOVE_MOUNT_BENEATH)

    def body():
        setup_userns()          # both covers are now MNT_LOCKED
        # control: an ordinary file bind goes beneath a locked cover, so an
        # EINVAL below is about the mntns file
        err = beneath(k.open_tree(uapi.AT_FDCWD, f"{base}/plain", CLONE_REC), f"{base}/plain")
        if err:
            return f"control refused ({name(err)})"
        with waiting_child(lambda: k.unshare(uapi.CLONE_NEWNS)) as newer:
            tree = k.open_tree(uapi.AT_FDCWD, f"/proc/{newer}/ns/mnt",
                               uapi.OPEN_TREE_CLONE | uapi.OPEN_TREE_CLOEXEC)
        err = beneath(tree, f"{base}/m")
        return f"refused ({name(err)})" if err else "moved beneath the cover"
    return in_child(body)


def _foreign_detached_tmpfs():
    setup_userns()
    return detached_fs()


def lock_mntns_file(base):
    """A locked mntns-file mount at <base>/dst/d/m, in our namespace: a
    recursive clone of <base>/src (a tmpfs whose file m carries a newer
    namespace's mntns file) is attached at d in a detached tmpfs made in a
    child user namespace, which lock_mnt_tree()s it (attach_recursive_mnt()),
    and that tree is then moved to <base>/dst. Returns (<base>/dst, "d/m")."""
    os.mkdir(f"{base}/src")
    os.mkdir(f"{base}/dst")
    tmpfs(f"{base}/src")
    covered_file(f"{base}/src/m")
    foreign = fd_from_child(_foreign_detached_tmpfs)
    bind_newer_mntns_file(f"{base}/src/m")
    src = k.open_tree(uapi.AT_FDCWD, f"{base}/src", CLONE_REC)
    os.mkdir("d", dir_fd=foreign)
    k.move_mount(src, "", foreign, "d", uapi.MOVE_MOUNT_F_EMPTY_PATH)
    k.move_mount(foreign, "", uapi.AT_FDCWD, f"{base}/dst", uapi.MOVE_MOUNT_F_EMPTY_PATH)
    return f"{base}/dst", "d/m"


def via_attach_into_detached_tree_of_other_userns(base):
    top, rel = lock_mntns_file(base)
    return state(f"{top}/{rel}")


@pytest.mark.parametrize("path, expected", [
    pytest.param(via_unshare_userns, "absent", id="unshare_userns"),
    pytest.param(via_clone3_userns, "absent", id="clone3_userns"),
    pytest.param(via_open_tree_namespace_from_userns, "absent", id="open_tree_namespace_from_userns",
                 marks=pytest.mark.requires("open_tree_namespace")),
    pytest.param(via_propagation_into_userns_namespace, "absent", id="propagation_into_userns_namespace"),
    pytest.param(via_bind_after_setns_into_userns_namespace, "unlocked",
                 id="bind_after_setns_into_userns_namespace"),
    pytest.param(via_move_beneath_locked_mount, "refused (EINVAL)", id="move_beneath_locked_mount",
                 marks=pytest.mark.requires("move_mount_beneath_locked")),
    pytest.param(via_attach_into_detached_tree_of_other_userns, "locked",
                 id="attach_into_detached_tree_of_other_userns",
                 marks=pytest.mark.requires("detached_mount_trees")),
])
def test_how_a_mntns_file_mount_gets_locked(base, path, expected):
    """Each way a mntns-file mount could end up MNT_LOCKED, and what it gives:
    - copying with a new user namespace (unshare/clone3 CLONE_NEWUSER|CLONE_NEWNS:
      copy_mnt_ns(); OPEN_TREE_NAMESPACE from a child user namespace:
      create_new_namespace()) and propagating into a namespace of another user
      namespace (propagate_mnt()): copy_tree() leaves the file out before
      lock_mnt_tree() runs -> absent;
    - binding it inside a user namespace's mount namespace after setns(): the
      caller's own mount, attach_recursive_mnt() locks nothing -> unlocked;
    - MOVE_MOUNT_BENEATH under a locked mount, whose lock it would take over:
      refused by can_move_mount_beneath() -> EINVAL, where an ordinary file
      bind under a locked cover moves (the control); a kernel defect before
      7.2.13 (7.1.13 measured): it moves (see known-defects.toml);
    - attaching a tree holding it into a detached tree made in another user
      namespace: attach_recursive_mnt() lock_mnt_tree()s the attached tree
      -> locked."""
    setup_userns()
    tmpfs(base)
    got = path(base)
    assert got == expected, f"expected the mntns-file mount {expected}, got {got}"


def _peek(path):
    """What a copy shows at path: the mntns file, or the file it covered."""
    if magic_at(path) == uapi.NSFS_MAGIC:
        return "the mntns file"
    with open(path) as f:
        return f.read()


def copy_by_unshare(top, rel):
    return in_child(lambda: (k.unshare(uapi.CLONE_NEWNS), _peek(f"{top}/{rel}"))[1])


def copy_by_unshare_userns(top, rel):
    return in_child(lambda: (enter_userns(mntns=True), _peek(f"{top}/{rel}"))[1])


def copy_by_clone3(top, rel):
    return clone3(lambda: _peek(f"{top}/{rel}"), uapi.CLONE_NEWNS)[0]


def copy_by_open_tree_namespace(top, rel):
    nsfd = k.open_tree(uapi.AT_FDCWD, top, OTN_REC)
    return in_child(lambda: (k.setns(nsfd, uapi.CLONE_NEWNS), _peek(f"/{rel}"))[1])


@pytest.mark.requires("detached_mount_trees")
@pytest.mark.parametrize("copy", [
    pytest.param(copy_by_unshare, id="unshare"),
    pytest.param(copy_by_unshare_userns, id="unshare_userns"),
    pytest.param(copy_by_clone3, id="clone3"),
    pytest.param(copy_by_open_tree_namespace, id="open_tree_namespace",
                 marks=pytest.mark.requires("open_tree_namespace")),
])
def test_copy_refused_over_locked_mntns_file(base, copy):
    """A copy that leaves mntns files out, of a tree holding a locked one:
    EPERM (copy_tree(): "Both a mount namespace file and locked"), nothing
    uncovered. A kernel defect before 7.2.13: the copy is made, the locked
    mount left out and the file under it shown."""
    setup_userns()
    tmpfs(base)
    top, rel = lock_mntns_file(base)
    shown = []
    err = errno_of(lambda: shown.append(copy(top, rel)))
    assert err != 0 or not shown, \
        f"expected EPERM, but the copy left out the locked mntns-file mount and shows {shown[0]!r}"
    assert err == errno.EPERM, f"expected EPERM, got {name(err)}"


def rbind_copy(top, target):
    k.mount(top, target, None, uapi.MS_BIND | uapi.MS_REC)


def open_tree_clone_copy(top, target):
    tree = k.open_tree(uapi.AT_FDCWD, top, CLONE_REC)
    k.move_mount(tree, "", uapi.AT_FDCWD, target, uapi.MOVE_MOUNT_F_EMPTY_PATH)


@pytest.mark.requires("detached_mount_trees")
@pytest.mark.parametrize("copy", [rbind_copy, open_tree_clone_copy], ids=["rbind", "open_tree_clone"])
def test_copy_with_mntns_files_keeps_it_locked(base, copy):
    """mount(MS_BIND|MS_REC) and open_tree(OPEN_TREE_CLONE|AT_RECURSIVE) +
    move_mount copy with CL_COPY_MNT_NS_FILE: the locked mntns-file mount is
    in the copy and still locked (copy_tree() copies MNT_LOCKED); the
    original stays locked too."""
    setup_userns()
    tmpfs(base)
    top, rel = lock_mntns_file(base)
    os.mkdir(f"{base}/copy")
    copy(top, f"{base}/copy")
    assert state(f"{base}/copy/{rel}") == "locked"
    with raises_errno(errno.EINVAL):
        k.umount2(f"{top}/{rel}", uapi.MNT_DETACH)
