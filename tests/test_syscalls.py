"""The syscall layer's contract: errors, statmount buffer growth, child results."""
import errno
import os

import pytest

from helpers import mounts, proc, uapi
from helpers import sys as k
from helpers.errors import raises_errno


def test_failure_raises_oserror_with_errno_strerror_and_call():
    with pytest.raises(OSError) as info:
        k.open_tree(uapi.AT_FDCWD, "/nonexistent/path", 0)
    assert info.value.errno == errno.ENOENT
    assert info.value.strerror == os.strerror(errno.ENOENT)
    assert "open_tree(" in str(info.value) and "ENOENT" in str(info.value)


def test_raises_errno_rejects_success_and_wrong_errno():
    with pytest.raises(AssertionError, match="succeeded"):
        with raises_errno(errno.EINVAL):
            pass
    with pytest.raises(AssertionError, match="expected EINVAL, got ENOENT"):
        with raises_errno(errno.EINVAL):
            k.open_tree(uapi.AT_FDCWD, "/nonexistent/path", 0)


@pytest.mark.requires("statmount")
def test_statmount_grows_buffer_on_eoverflow():
    root = k.mnt_id_unique("/")
    mask = uapi.STATMOUNT_MNT_BASIC | uapi.STATMOUNT_MNT_POINT | uapi.STATMOUNT_FS_TYPE
    with raises_errno(errno.EOVERFLOW):
        mounts.statmount_raw(mounts.mnt_id_req(root, mask), 512)
    sm = mounts.statmount(root, mask, bufsize=513)
    assert sm.mnt_id == root and sm.mnt_point == "/" and sm.fs_type


def test_in_child_returns_value_and_reraises():
    assert proc.in_child(os.getpid) != os.getpid()
    with pytest.raises(AssertionError, match="from the child"):
        proc.in_child(lambda: exec("assert False, 'from the child'"))
    with pytest.raises(OSError) as info:
        proc.in_child(k.open_tree, uapi.AT_FDCWD, "/nonexistent/path", 0)
    assert info.value.errno == errno.ENOENT


@pytest.mark.parametrize("code", [0, 3, "message"])
def test_in_child_sys_exit_is_an_error_not_a_result(code):
    import sys
    with pytest.raises(proc.ChildError, match=r"child called sys.exit\("):
        proc.in_child(sys.exit, code)


def test_clone3_runs_child_in_new_pid_namespace():
    if os.geteuid() != 0:
        pytest.skip("needs root: CLONE_NEWPID")
    pid_in_child, pidfd = proc.clone3(os.getpid, uapi.CLONE_NEWPID, pidfd=True)
    assert pid_in_child == 1 and pidfd >= 0


def test_blocked_step_names_the_step_still_running_at_the_deadline():
    import time
    steps = [("quick", lambda: None), ("slow", lambda: time.sleep(3))]
    name, seconds = proc.blocked_step(steps, 0.5)
    assert name == "slow" and 0 < seconds <= 1


def test_blocked_step_returns_none_when_every_step_returned_and_reraises():
    assert proc.blocked_step([("a", lambda: None), ("b", lambda: None)], 30) is None
    with pytest.raises(OSError) as info:
        proc.blocked_step([("open", lambda: os.open("/nonexistent/x", os.O_RDONLY))], 30)
    assert info.value.errno == errno.ENOENT
