"""Twins of tools/testing/selftests/namespaces/regression_pidfd_setns_test.c:
setns(pidfd, CLONE_NEWUTS|CLONE_NEWIPC) into a child's namespaces while the
child exits (the race fixed by 1c465d0518dc "ns: handle setns(pidfd, ...)
cleanly": a task exiting between prepare_nsset() and commit_nsset() left its
namespaces inactive, and the next active reference underflowed, with a WARN).

Upstream only logs setns()'s return value. Here each outcome is checked:
setns either succeeds and this process is then in the child's uts and ipc
namespaces, or fails with ESRCH (kernel/nsproxy.c pidfd_nsset(): the task is
gone, or has dropped its nsproxy in exit_task_namespaces()); either way the
kernel logs no WARN (helpers/kmsg.py). Beyond upstream: once the child is
reaped, setns(pidfd) is ESRCH every time.
"""
import errno
import os
import select
import signal

import pytest

from harness.upstream import upstream
from helpers import sys as k
from helpers import uapi
from helpers.errors import raises_errno
from helpers.kmsg import no_new_warnings
from helpers.proc import clone3_nowait

FILE = "namespaces/regression_pidfd_setns_test.c"
NEW_NS = uapi.CLONE_NEWUTS | uapi.CLONE_NEWIPC | uapi.CLONE_NEWNET | uapi.CLONE_NEWUSER
JOIN = uapi.CLONE_NEWUTS | uapi.CLONE_NEWIPC

pytestmark = [pytest.mark.root, pytest.mark.userns]


def ns_inodes():
    return {kind: os.stat(f"/proc/self/ns/{kind}").st_ino for kind in ("uts", "ipc")}


def setns_racing_exit(pidfd, child_inodes):
    """setns(pidfd, UTS|IPC) while the child may be exiting: success puts us
    in its namespaces, failure is ESRCH."""
    try:
        k.setns(pidfd, JOIN)
    except OSError as e:
        assert e.errno == errno.ESRCH, e
        return
    assert ns_inodes() == child_inodes


@upstream(FILE, "global.simple_pidfd_setns")
def test_setns_pidfd_into_child_that_unshared_and_exits():
    """The child unshare()s UTS|IPC|NET|USER, says so and exits at once
    (SIGCHLD ignored: reaped by the kernel); we setns(pidfd) right away."""
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)
    rfd, wfd = os.pipe()

    def child():
        os.close(rfd)
        k.unshare(NEW_NS)
        inodes = ns_inodes()
        os.write(wfd, f"{inodes['uts']} {inodes['ipc']}".encode())

    with no_new_warnings():
        _, pidfd = clone3_nowait(child, 0, pidfd=True)
        os.close(wfd)
        uts, ipc = map(int, os.read(rfd, 64).split())
        setns_racing_exit(pidfd, {"uts": uts, "ipc": ipc})
        os.close(pidfd)


@upstream(FILE, "global.simple_pidfd_setns_clone")
def test_setns_pidfd_into_child_cloned_into_new_namespaces():
    """clone3(CLONE_NEWUSER|NEWUTS|NEWIPC|NEWNET|CLONE_PIDFD); while the child
    lives (upstream: sleep(2); here: until we release it) setns(pidfd,
    UTS|IPC) succeeds and we are in its namespaces."""
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)
    rfd, wfd = os.pipe()
    with no_new_warnings():
        def child():
            os.close(wfd)
            os.read(rfd, 1)

        pid, pidfd = clone3_nowait(child, NEW_NS, pidfd=True)
        child_inodes = {kind: os.stat(f"/proc/{pid}/ns/{kind}").st_ino for kind in ("uts", "ipc")}
        k.setns(pidfd, JOIN)
        assert ns_inodes() == child_inodes
        os.close(wfd)
        os.close(pidfd)


def test_setns_pidfd_of_reaped_child_is_esrch():
    """The regression's end state made certain: the child has exited and been
    reaped before setns(pidfd): ESRCH (pid_task() finds no task), no WARN."""
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)
    with no_new_warnings():
        _, pidfd = clone3_nowait(lambda: None, NEW_NS, pidfd=True)
        select.select([pidfd], [], [])  # readable once the child has exited
        before = ns_inodes()
        with raises_errno(errno.ESRCH):
            k.setns(pidfd, JOIN)
        assert ns_inodes() == before
        os.close(pidfd)
