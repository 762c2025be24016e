"""Fixtures for the OPEN_TREE_NAMESPACE suites."""
import os

import pytest

from helpers.cleanup import scratch_dir
from helpers.mounts import tmpfs


@pytest.fixture
def tree(defer):
    """A tmpfs at a scratch dir D holding dir/, link -> dir, file, and two
    tmpfs submounts sub1/ and sub2/ (made by the test's root process)."""
    d = scratch_dir(defer, prefix="open_tree_ns.")
    tmpfs(d)
    os.mkdir(f"{d}/dir")
    os.symlink("dir", f"{d}/link")
    open(f"{d}/file", "w").close()
    for sub in ("sub1", "sub2"):
        os.mkdir(f"{d}/{sub}")
        tmpfs(f"{d}/{sub}")
    return d
