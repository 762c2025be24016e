"""setns(CLONE_NEWNS) into a namespace made by one call, open_tree(OPEN_TREE_NAMESPACE)
(7.0) or fsmount(FSMOUNT_NAMESPACE) (7.1): the checks of fs/namespace.c
mntns_install() in the order it makes them:

1. EPERM unless the caller has CAP_SYS_ADMIN over the namespace's owner (the
   user namespace that made it: create_new_namespace() allocates it for
   current_user_ns()) and CAP_SYS_CHROOT and CAP_SYS_ADMIN in its own;
2. EINVAL for an anonymous namespace (is_anon_ns()): not these, whose
   alloc_mnt_ns(user_ns, anon=false) gives them a real nsfs inode;
3. EINVAL when the caller's fs_struct is shared (current->fs->users != 1);
then "/" and "." become the top of the mount stack on the namespace's root
(vfs_path_lookup(..., "/", LOOKUP_DOWN), set_fs_root/set_fs_pwd).
kernel/nsproxy.c setns() passes the fd's own type through (prepare_nsset
uses the caller's fs_struct itself for CLONE_NEWNS alone).
"""
import errno
import os
import threading

import pytest

from helpers import sys as k
from helpers import uapi
from helpers.errors import errno_of
from helpers.mounts import tmpfs
from helpers.newns import ONE_CALL, feature_params, fs_context, new_ns_fd, ns_table, root_ns_id, setns_mnt
from helpers.ns import enter_userns, get_userns_fd, ns_id, own_mntns_id, setup_userns
from helpers.proc import clone3, fd_from_child, in_child

pytestmark = [pytest.mark.requires("statmount", "listmount", "ns_get_mntns_id", "mnt_id_req_ns_id")]
KINDS = feature_params(*ONE_CALL)
USERNS = pytest.mark.userns


def _tree(base="/tmp"):
    """A tmpfs at base/tree holding a marker file: the open_tree source."""
    tree = f"{base}/tree"
    os.mkdir(tree)
    tmpfs(tree)
    open(f"{tree}/marker", "w").close()
    return tree


def _admin_in_userns():
    """A user + mount namespace of our own (every copied mount locked) with a
    fresh tmpfs on /tmp: the caller owns what it makes there."""
    setup_userns()
    tmpfs("/tmp")


def _top_mount(nsid):
    """The id of the mount a namespace lists at "/" (the copy's or new fs's top)."""
    return [m for m, sm in ns_table(nsid).items() if sm.mnt_point == "/"][0]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("where", [pytest.param("init_userns", marks=pytest.mark.root),
                                   pytest.param("own_userns", marks=USERNS)])
def test_creator_lands_on_top_mount(kind, where):
    """The creator's setns succeeds and puts both "/" and "." on the mount the
    namespace lists at "/" (a tmpfs), not on the nullfs root beneath it:
    mntns_install() looks "/" up with LOOKUP_DOWN, then set_fs_root/set_fs_pwd."""
    if where == "own_userns":
        _admin_in_userns()
    else:
        tmpfs("/tmp")
    fd = new_ns_fd(kind, _tree())
    top = _top_mount(ns_id(fd))

    def body():
        setns_mnt(fd)
        return k.mnt_id_unique("/"), k.mnt_id_unique("."), k.statfs("/").f_type
    assert in_child(body) == (top, top, uapi.TMPFS_MAGIC)


@USERNS
@pytest.mark.parametrize("kind", KINDS)
def test_namespace_is_not_anonymous(kind):
    """The fd's nsfs inode is the namespace's own proc inum, neither
    MNT_NS_ANON_INO nor the caller's namespace's: create_new_namespace()
    allocates it with alloc_mnt_ns(user_ns, false), so mntns_install()'s
    is_anon_ns() EINVAL cannot apply to it (test_creator_lands_on_top_mount
    enters it)."""
    _admin_in_userns()
    fd = new_ns_fd(kind, _tree())
    ino = os.fstat(fd).st_ino
    assert ino not in (uapi.MNT_NS_ANON_INO, os.stat("/proc/self/ns/mnt").st_ino), hex(ino)


# --- who may enter: CAP_SYS_ADMIN over the owning user namespace ----------------------
def _setns_from(caller, fd, users):
    """Become `caller` relative to the owner U1 (users = {"U1": fd, "U2": fd},
    U2 a sibling of U1, both children of our user namespace U0), then try
    setns; returns (errno, namespace id of "/" afterwards)."""
    if caller in ("owner", "child_of_owner"):
        k.setns(users["U1"], uapi.CLONE_NEWUSER)
    if caller == "child_of_owner":
        enter_userns()
    if caller == "sibling":
        k.setns(users["U2"], uapi.CLONE_NEWUSER)
    return errno_of(setns_mnt, fd), root_ns_id()


@USERNS
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("caller,allowed", [("owner", True), ("ancestor_root", True),
                                            ("sibling", False), ("child_of_owner", False)],
                         ids=["owner-ok", "ancestor_root-ok", "sibling-EPERM", "child_of_owner-EPERM"])
def test_setns_needs_cap_sys_admin_over_owner(kind, caller, allowed):
    """A namespace made inside user namespace U1 (owned by U1): U1's root and
    the root of U1's parent U0 enter it; root of a sibling U2 or of a child of
    U1 (full capabilities in its own namespace, none over U1) gets EPERM and
    stays where it was (mntns_install(): ns_capable(mnt_ns->user_ns, CAP_SYS_ADMIN))."""
    _admin_in_userns()                        # we are U0's root
    tree = _tree()
    fsfd = fs_context()                       # made in U0: U1 does not own our mount ns
    users = {"U1": get_userns_fd(0, 0), "U2": get_userns_fd(0, 0)}

    def make():
        k.setns(users["U1"], uapi.CLONE_NEWUSER)
        return new_ns_fd(kind, tree, fsfd)
    fd = fd_from_child(make)
    expected = (0, ns_id(fd)) if allowed else (errno.EPERM, own_mntns_id())
    assert in_child(_setns_from, caller, fd, users) == expected


# --- what the caller needs in its own user namespace -----------------------------------
@USERNS
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("cap,expected", [(uapi.CAP_SYS_CHROOT, errno.EPERM), (uapi.CAP_SYS_ADMIN, errno.EPERM),
                                          (uapi.CAP_SYS_PTRACE, 0)],
                         ids=["drop_sys_chroot-EPERM", "drop_sys_admin-EPERM", "drop_sys_ptrace-ok"])
def test_setns_needs_sys_chroot_and_sys_admin(kind, cap, expected):
    """The owner with one capability cleared from its effective set:
    without CAP_SYS_CHROOT or CAP_SYS_ADMIN setns is EPERM (mntns_install():
    ns_capable(user_ns, CAP_SYS_CHROOT), ns_capable(user_ns, CAP_SYS_ADMIN)
    on the caller's own user namespace); an unrelated one (CAP_SYS_PTRACE)
    changes nothing."""
    _admin_in_userns()
    fd = new_ns_fd(kind, _tree())

    def body():
        k.capdrop_effective(cap)
        return errno_of(setns_mnt, fd)
    assert in_child(body) == expected


def _setns_beside_thread(fd):
    """setns while a second thread (pthread_create: CLONE_FS) is alive."""
    release = threading.Event()
    other = threading.Thread(target=release.wait)
    other.start()
    try:
        return errno_of(setns_mnt, fd)
    finally:
        release.set()
        other.join()


def _setns_in_clone_fs_child(fd):
    """setns in a clone3(CLONE_FS) child while its parent waits for it."""
    return clone3(lambda: errno_of(setns_mnt, fd), uapi.CLONE_FS)[0]


@USERNS
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("sharing", [_setns_beside_thread, _setns_in_clone_fs_child],
                         ids=["thread", "clone_fs_child"])
def test_shared_fs_struct_is_einval(kind, sharing):
    """The owner, with every capability, but sharing its fs_struct with
    another task (a thread, or a CLONE_FS child and its parent): setns is
    EINVAL (mntns_install(): current->fs->users != 1, after the capability
    checks), since switching root and cwd would switch them for the other
    task too."""
    _admin_in_userns()
    fd = new_ns_fd(kind, _tree())
    assert in_child(sharing, fd) == errno.EINVAL
