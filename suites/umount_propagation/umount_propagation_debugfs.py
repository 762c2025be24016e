"""debugfs + the tracefs automount below it (debugfs/tracing), which
shrink_submounts_test.c and locked_mount_test.c need."""
import errno
import os

import pytest

from helpers import sys as k
from helpers import uapi


def mount_debugfs(path, flags=0):
    """Mount debugfs on path, or SKIP naming it when the kernel has none."""
    try:
        k.mount("debugfs", path, "debugfs", flags)
    except OSError as e:
        if e.errno == errno.ENODEV:
            pytest.skip("needs debugfs (CONFIG_DEBUG_FS): mount -t debugfs gave ENODEV")
        raise


def tracefs_automount(dbg):
    """True when dbg/tracing is the tracefs automount point (a directory)."""
    try:
        st = os.stat("tracing", dir_fd=os.open(dbg, os.O_PATH | os.O_CLOEXEC), follow_symlinks=False)
    except FileNotFoundError:
        return False
    import stat
    return stat.S_ISDIR(st.st_mode)


def require_tracefs_automount(dbg):
    """Trigger the automount (stat dbg/tracing/.) or SKIP naming it."""
    if not tracefs_automount(dbg):
        pytest.skip("needs the tracefs automount under debugfs (CONFIG_TRACING): "
                    f"{dbg}/tracing is missing")
    try:
        os.stat(f"{dbg}/tracing/.")
    except OSError as e:
        if e.errno == errno.ENODEV:
            pytest.skip("needs tracefs (CONFIG_TRACING) for the debugfs/tracing automount: ENODEV")
        raise
    assert k.mnt_id_unique(f"{dbg}/tracing") != k.mnt_id_unique(dbg), "dbg/tracing did not automount"


def fs_type(path):
    from helpers.mounts import statmount
    return statmount(k.mnt_id_unique(path), uapi.STATMOUNT_FS_TYPE).fs_type
