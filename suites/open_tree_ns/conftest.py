"""Fixtures for the OPEN_TREE_NAMESPACE suites."""
import os

import pytest

from helpers import uapi
from helpers import sys as k
from helpers.mounts import scratch_dir, tmpfs


@pytest.fixture
def tree():
    """A tmpfs at a scratch dir D holding dir/, link -> dir, file, and two
    tmpfs submounts sub1/ and sub2/ (made by the test's root process)."""
    with scratch_dir(prefix="open_tree_ns.") as d:
        tmpfs(d)
        os.mkdir(f"{d}/dir")
        os.symlink("dir", f"{d}/link")
        open(f"{d}/file", "w").close()
        for sub in ("sub1", "sub2"):
            os.mkdir(f"{d}/{sub}")
            tmpfs(f"{d}/{sub}")
        yield d
        k.umount2(d, uapi.MNT_DETACH)
