"""`pytest --upstream-parity`: every upstream case has a twin, no twin names a
case that upstream does not have."""
import pathlib
import subprocess
import sys

import pytest

REPO = pathlib.Path(__file__).resolve().parent.parent
# Pure computation on a subprocess's output: run in the pytest process, so
# the module-scoped fixture is computed once instead of once per forked case.
pytestmark = pytest.mark.no_fork


@pytest.fixture(scope="module")
def parity():
    proc = subprocess.run([sys.executable, "-m", "pytest", "--upstream-parity", "-q"],
                          cwd=REPO, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def dir_line(out, directory):
    lines = [l for l in out.splitlines() if l.startswith(directory + "/  ")]
    assert lines, f"no parity line for {directory}:\n{out}"
    return lines[0].split()[-1]


@pytest.mark.parametrize("directory,total", [
    ("mount_setattr", 34), ("filesystems/statmount", 21), ("move_mount_set_group", 2),
    ("filesystems/nsfs", 7), ("filesystems/mntns_unbindable", 6),
    ("filesystems/open_tree_ns", 31), ("filesystems/fsmount_ns", 22),
    ("filesystems/fscontext_ns", 3), ("filesystems/empty_mntns", 36),
    ("filesystems/mount_cycle", 33), ("filesystems/umount_propagation", 8),
    ("filesystems/mount-notify", 14), ("filesystems/move_mount", 8),
    ("namespaces", 100),
])
def test_upstream_directory_fully_mirrored(parity, directory, total):
    assert dir_line(parity, directory) == f"{total}/{total}"


def test_no_twin_names_an_unknown_upstream_case(parity):
    assert "UNKNOWN upstream case" not in parity, parity
