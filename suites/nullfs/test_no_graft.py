"""The nullfs root is never grafted onto a mountpoint by userspace: the
"never grafted" half of SB_NOUSER (fs/nullfs.c nullfs_init_fs_context sets
it; the reconfigure half is test_no_userspace_mount.py).

Set-up: an empty mount namespace, an O_PATH fd kept on its nullfs root "/",
then a tmpfs moved onto "/" and entered (fchdir + chroot) so there is a
directory /x to graft onto; the nullfs root is reached through the fd (or
"." after fchdir to it: a trailing "." does not follow the tmpfs stacked on
it).

Verdict on the open_tree() copies (a kernel defect on 7.1.13, 7.2.13, 7.3.4):
the kernel means an SB_NOUSER superblock never to be mounted by userspace,
old mount API or new, and the new-API copy paths miss the check:

- fs/namespace.c graft_tree(): `if (mnt->mnt.mnt_sb->s_flags & SB_NOUSER)
  return -EINVAL;` -- every mount(2) graft (do_loopback() for MS_BIND,
  do_add_mount() for new mounts) is refused;
- fs/namespace.c fsmount(): the same check on the new API's own fresh mount
  (`if (new_mnt->mnt_sb->s_flags & SB_NOUSER)` -> EINVAL, in 7.3's source):
  the new API is meant to honour SB_NOUSER as the old one does;
- do_move_mount() and create_new_namespace() attach with
  attach_recursive_mnt()/attach_mnt() and never look at SB_NOUSER: they
  rely on whoever made the detached tree. open_detached_copy() and
  create_new_namespace() make it with __do_loopback(), whose only gate is
  may_copy_tree(); that names the two pseudo filesystems whose objects are
  meant to be copied (nsfs, which drops SB_NOUSER in nsfs_init(), and pidfs)
  and otherwise admits any mount of the caller's own namespace (check_mnt()).
  Before nullfs an SB_NOUSER superblock had a mount in a user-visible
  namespace only through that named pidfs exception (kern_mount() instances
  are MNT_NS_INTERNAL, not is_mounted()), so check_mnt() implied "not
  SB_NOUSER" otherwise. The nullfs root is the bottom mount of every
  namespace and passes it: open_tree(OPEN_TREE_CLONE) +
  move_mount() and open_tree(OPEN_TREE_NAMESPACE) graft what mount(MS_BIND)
  of the same path refuses. (The pidfs exception is the one SB_NOUSER graft
  the kernel means, through exactly this path: selftests/pidfd/
  pidfd_bind_mount.c; mount(MS_BIND) of a pidfd is EINVAL as well. nullfs
  has no such exception.)

On those kernels the grafted mount is a second mount of the nullfs
superblock: NULL_FS_MAGIC, empty, mkdir in it ENOENT (S_IMMUTABLE empty dir)
-- harmless in itself, but not what SB_NOUSER promises.

Moving the nullfs root itself is refused on every kernel that has one, before SB_NOUSER
matters: it has no parent to be detached from (do_move_mount():
`!mnt_has_parent(old)` -> EINVAL)."""
import errno
import os

import pytest

from helpers import sys as k
from helpers import uapi
from helpers.errors import errno_of, name
from helpers.mounts import mount_stack, tmpfs_onto_root
from suites.nullfs.nullfs_util import CONTEXTS, enter_empty

pytestmark = pytest.mark.requires("unshare_empty_mntns")

TARGET = "/x"
CLONE = uapi.OPEN_TREE_CLONE | uapi.OPEN_TREE_CLOEXEC | uapi.AT_EMPTY_PATH


def nullfs_root_under_tmpfs(context):
    """Enter an empty mount namespace, keep an O_PATH fd on its nullfs root,
    then stack a tmpfs on "/" and chroot into it; returns the fd."""
    enter_empty(context)
    nullfs_root = os.open("/", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    tmpfs_onto_root(enter=True)
    os.chdir("/")
    os.mkdir(TARGET)
    assert k.fstatfs(nullfs_root).f_type == uapi.NULL_FS_MAGIC
    assert k.statfs(TARGET).f_type == uapi.TMPFS_MAGIC
    return nullfs_root


def fs_types_at(path):
    return [sm.fs_type for sm in mount_stack(path)]


@pytest.mark.parametrize("context", CONTEXTS)
@pytest.mark.parametrize("flags", [
    pytest.param(uapi.MS_BIND, id="bind"),
    pytest.param(uapi.MS_BIND | uapi.MS_REC, id="rbind"),
])
def test_bind_of_nullfs_root_is_einval(context, flags):
    """mount(".", "/x", MS_BIND[|MS_REC]) with "." the nullfs root: EINVAL
    from graft_tree() (SB_NOUSER); /x keeps its tmpfs."""
    nullfs_root = nullfs_root_under_tmpfs(context)
    before = k.mnt_id_unique(TARGET)
    os.fchdir(nullfs_root)
    got = errno_of(k.mount, ".", TARGET, None, flags)
    assert k.mnt_id_unique(TARGET) == before, f"mount(MS_BIND) grafted: {fs_types_at(TARGET)}"
    assert got == errno.EINVAL, f"expected EINVAL, got {name(got)}"


def clone_and_attach(nullfs_root, recursive):
    tree = k.open_tree(nullfs_root, "", CLONE | (uapi.AT_RECURSIVE if recursive else 0))
    k.move_mount(tree, "", uapi.AT_FDCWD, TARGET, uapi.MOVE_MOUNT_F_EMPTY_PATH)


@pytest.mark.parametrize("context", CONTEXTS)
@pytest.mark.parametrize("recursive", [False, True], ids=["clone", "clone_recursive"])
def test_clone_of_nullfs_root_is_never_attached(context, recursive):
    """open_tree(nullfs root, OPEN_TREE_CLONE[|AT_RECURSIVE]) then
    move_mount(clone, "/x"): EINVAL at one of the two steps, as for
    mount(MS_BIND), and /x is untouched. A kernel defect where the graft
    succeeds (7.1.13, 7.2.13, 7.3.4: /x becomes a nullfs mount; see the
    module docstring for the source)."""
    nullfs_root = nullfs_root_under_tmpfs(context)
    before = k.mnt_id_unique(TARGET)
    got = errno_of(clone_and_attach, nullfs_root, recursive)
    assert k.mnt_id_unique(TARGET) == before, \
        f"open_tree(OPEN_TREE_CLONE) + move_mount grafted the nullfs root: {TARGET} is now {fs_types_at(TARGET)}"
    assert got == errno.EINVAL, f"expected EINVAL, got {name(got)}"


@pytest.mark.requires("open_tree_namespace")
@pytest.mark.parametrize("context", CONTEXTS)
def test_open_tree_namespace_of_nullfs_root_is_einval(context):
    """open_tree(nullfs root, OPEN_TREE_NAMESPACE): EINVAL. A kernel defect
    where it succeeds (7.1.13, 7.2.13, 7.3.4): create_new_namespace() copies
    the nullfs root with __do_loopback() and attach_mnt()s it onto the new
    namespace's own nullfs root, a graft no SB_NOUSER check sees."""
    nullfs_root = nullfs_root_under_tmpfs(context)
    got = errno_of(k.open_tree, nullfs_root, "", uapi.OPEN_TREE_NAMESPACE
                   | uapi.OPEN_TREE_CLOEXEC | uapi.AT_EMPTY_PATH)
    assert got == errno.EINVAL, \
        f"open_tree(OPEN_TREE_NAMESPACE) grafted the nullfs root: expected EINVAL, got {name(got)}"


def move_by_fd(nullfs_root):
    k.move_mount(nullfs_root, "", uapi.AT_FDCWD, TARGET, uapi.MOVE_MOUNT_F_EMPTY_PATH)


def move_by_ms_move(nullfs_root):
    os.fchdir(nullfs_root)
    k.mount(".", TARGET, None, uapi.MS_MOVE)


@pytest.mark.parametrize("context", CONTEXTS)
@pytest.mark.parametrize("move", [move_by_fd, move_by_ms_move], ids=["move_mount", "ms_move"])
def test_move_of_nullfs_root_is_einval(context, move):
    """move_mount(nullfs root fd, "/x") and mount(".", "/x", MS_MOVE):
    EINVAL, the nullfs root has no parent (do_move_mount(): !mnt_has_parent);
    it stays "/"'s parent and /x keeps its tmpfs."""
    nullfs_root = nullfs_root_under_tmpfs(context)
    before = k.mnt_id_unique(TARGET)
    got = errno_of(move, nullfs_root)
    assert k.mnt_id_unique(TARGET) == before, f"the nullfs root moved: {fs_types_at(TARGET)}"
    assert got == errno.EINVAL, f"expected EINVAL, got {name(got)}"
    assert fs_types_at("/") == ["tmpfs", "nullfs"]
