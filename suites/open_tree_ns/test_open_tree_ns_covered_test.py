"""Twins of tools/testing/selftests/filesystems/open_tree_ns/open_tree_ns_covered_test.c.

OPEN_TREE_NAMESPACE by a caller without privilege over the source mount
namespace ("foreign") must not reveal what a covering mount hides: the
non-recursive copy is refused (EINVAL), the recursive copy brings the cover
along (CL_COPY_UNBINDABLE, so even an unbindable cover) and locks it
(fs/namespace.c create_new_namespace, lock_mnt_tree).

Differences from upstream: the fixture's probe maps no errno to SKIP (feature
absence comes from @requires only); each child step is an assertion instead
of an exit code.
"""
import errno
import os

import pytest

from harness.upstream import upstream
from helpers.cleanup import scratch_dir
from helpers import uapi
from helpers import sys as k
from helpers.errors import raises_errno
from helpers.mounts import make_rprivate, tmpfs
from helpers.ns import enter_userns
from helpers.proc import in_child
from helpers.newns import setns_mnt

CLOEXEC, NS, REC = uapi.OPEN_TREE_CLOEXEC, uapi.OPEN_TREE_NAMESPACE, uapi.AT_RECURSIVE

FILE = "filesystems/open_tree_ns/open_tree_ns_covered_test.c"

pytestmark = [pytest.mark.requires("open_tree_namespace", "ns_get_mntns_id"), pytest.mark.userns]


@pytest.fixture
def covered(request, defer):
    """dir (tmpfs) with covered/under.txt, hidden by a tmpfs cover with the
    variant's propagation; made inside a user+mount namespace the test owns."""
    path = scratch_dir(defer, prefix="open_tree_ns_covered.")
    enter_userns(mntns=True)
    make_rprivate("/")
    tmpfs(path)
    os.close(k.open_tree(uapi.AT_FDCWD, path, NS | CLOEXEC))
    os.mkdir(f"{path}/covered")
    with open(f"{path}/covered/under.txt", "w") as f:
        f.write("hidden")
    tmpfs(f"{path}/covered")
    k.mount(None, f"{path}/covered", None, request.param)
    return path


def _foreign_child(path):
    enter_userns()  # nested user ns: no longer the owner of this mount ns
    with raises_errno(errno.EINVAL):
        k.open_tree(uapi.AT_FDCWD, path, NS | CLOEXEC)
    fd = k.open_tree(uapi.AT_FDCWD, path, NS | CLOEXEC | REC)
    setns_mnt(fd)
    os.stat("/covered")
    with raises_errno(errno.ENOENT):
        os.stat("/covered/under.txt")


@pytest.mark.parametrize("covered", [
    pytest.param(uapi.MS_PRIVATE, id="private_cover",
                 marks=upstream(FILE, "open_tree_ns_covered.private_cover.foreign_user_namespace")),
    pytest.param(uapi.MS_UNBINDABLE, id="unbindable_cover",
                 marks=upstream(FILE, "open_tree_ns_covered.unbindable_cover.foreign_user_namespace")),
], indirect=True)
def test_foreign_user_namespace(covered):
    """Foreign: non-recursive EINVAL; recursive copy keeps the cover, so
    under.txt stays hidden after setns. The owner may copy non-recursively."""
    in_child(_foreign_child, covered)
    os.close(k.open_tree(uapi.AT_FDCWD, covered, NS | CLOEXEC))
