"""Which clone3(2) and unshare(2) flags each kernel release defines.

"Unknown flag" tests must build their flag from this table for the running
kernel, never from a fixed constant: a bit that was free when a test was
written gets a meaning later (upstream clone3_empty_mntns's "unknown"
0x800000000 is CLONE_NNP on 7.x, include/uapi/linux/sched.h).

Evidence for the first releases is in FIRST_RELEASE_EVIDENCE: the new rows
were checked by suites/empty_mntns/test_clone_flags_table.py on Debian's cloud
kernels booted by the VM runner.
`python -m helpers.clone_flags` prints what the running kernel accepts.
"""
import errno
import os
import signal

from helpers import uapi
from helpers.flags import defined
from helpers.probes import FEATURES

# clone3 rejects CSIGNAL bits (the exit signal has its own field) except the
# one reused as CLONE_NEWTIME, and CLONE_DETACHED.
CSIGNAL = 0xFF
CLONE_DETACHED = 0x00400000
CLONE_THREAD = 0x00010000
CLONE_SIGHAND = 0x00000800
CLONE_SYSVSEM = 0x00040000

# (bit, name, first release whose clone3 accepts it)
CLONE3_FLAGS = [
    (0xFFFFFFFF & ~CSIGNAL & ~CLONE_DETACHED, "CLONE_* (legacy 32-bit flags)", "5.3"),
    (uapi.CLONE_NEWTIME, "CLONE_NEWTIME", "5.6"),
    (uapi.CLONE_CLEAR_SIGHAND, "CLONE_CLEAR_SIGHAND", "5.5"),
    (uapi.CLONE_INTO_CGROUP, "CLONE_INTO_CGROUP", "5.7"),
    (uapi.CLONE_AUTOREAP, "CLONE_AUTOREAP", "7.1"),
    (uapi.CLONE_NNP, "CLONE_NNP", "7.1"),
    (uapi.CLONE_PIDFD_AUTOKILL, "CLONE_PIDFD_AUTOKILL", "7.1"),
    # The mount-namespace flags are features: their release is declared once.
    (uapi.CLONE_EMPTY_MNTNS, "CLONE_EMPTY_MNTNS", FEATURES["clone_empty_mntns"].since),
]

# (bit, name, first release whose unshare(2) accepts it)
UNSHARE_FLAGS = [
    (CLONE_THREAD | uapi.CLONE_FS | uapi.CLONE_NEWNS | CLONE_SIGHAND | uapi.CLONE_VM
     | uapi.CLONE_FILES | CLONE_SYSVSEM | uapi.CLONE_NEWUTS | uapi.CLONE_NEWIPC
     | uapi.CLONE_NEWNET | uapi.CLONE_NEWUSER | uapi.CLONE_NEWPID, "legacy unshare flags", "3.8"),
    (uapi.CLONE_NEWCGROUP, "CLONE_NEWCGROUP", "4.6"),
    (uapi.CLONE_NEWTIME, "CLONE_NEWTIME", "5.6"),
    (uapi.UNSHARE_EMPTY_MNTNS, "UNSHARE_EMPTY_MNTNS", FEATURES["unshare_empty_mntns"].since),
]

# How each row above is known. "observed" rows were run on VM kernels with
# test_clone_flags_table.py; the others come from the release history.
FIRST_RELEASE_EVIDENCE = {
    # Debian cloud kernels 6.18.15, 6.19.14, 7.0.13, 7.1.13, 7.3.4 (newest point
    # release of each series), booted by the VM runner, running
    # suites/empty_mntns/test_clone_flags_table.py. Only those points were
    # observed: "7.1" means "absent in 7.0.13, present in 7.1.13".
    "CLONE_AUTOREAP": "observed: EINVAL on 6.18.15, 6.19.14, 7.0.13; accepted on 7.1.13, 7.3.4",
    "CLONE_NNP": "observed: EINVAL on 6.18.15, 6.19.14, 7.0.13; accepted on 7.1.13, 7.3.4",
    "CLONE_PIDFD_AUTOKILL": "observed: EINVAL on 6.18.15, 6.19.14, 7.0.13; accepted "
                            "(with CLONE_PIDFD|CLONE_AUTOREAP) on 7.1.13, 7.3.4",
    "CLONE_EMPTY_MNTNS": "observed: EINVAL on 6.18.15, 6.19.14, 7.0.13; accepted on 7.1.13, 7.3.4",
    "UNSHARE_EMPTY_MNTNS": "observed: EINVAL on 6.18.15, 6.19.14, 7.0.13; accepted on 7.1.13, 7.3.4",
    "bits 38, 39": "observed: EINVAL on all five",
    "CLONE_CLEAR_SIGHAND, CLONE_INTO_CGROUP, CLONE_NEWTIME, legacy": "release history "
        "(5.5, 5.7, 5.6, 5.3); observed accepted on all five",
}


def clone3_flags(ver=None):
    """Mask of every flag bit clone3(2) of kernel `ver` (default: running) defines."""
    return defined(CLONE3_FLAGS, ver)


def unshare_flags(ver=None):
    """Mask of every flag unshare(2) of kernel `ver` accepts."""
    return defined(UNSHARE_FLAGS, ver)


def unknown_clone3_flag(ver=None):
    """The lowest 64-bit flag bit above bit 31 that clone3 of `ver` does not
    define: a flag clone3 must refuse with EINVAL as unknown."""
    defined = clone3_flags(ver)
    for bit in range(32, 64):
        if not defined & (1 << bit):
            return 1 << bit
    raise AssertionError("every clone3 flag bit is defined")


def unknown_unshare_flag(ver=None):
    """The highest 32-bit unshare flag bit that `ver` does not accept."""
    defined = unshare_flags(ver)
    for bit in range(31, -1, -1):
        if not defined & (1 << bit):
            return 1 << bit
    raise AssertionError("every unshare flag bit is defined")


# --- measuring what the running kernel accepts --------------------------------
# A flag is "accepted" when some sensible combination with it makes clone3
# create a child. Unknown bits are EINVAL whatever else is set.
CLONE3_COMPANIONS = {
    uapi.CLONE_AUTOREAP: [(0, 0), (0, signal.SIGCHLD)],
    uapi.CLONE_NNP: [(0, signal.SIGCHLD), (0, 0)],
    uapi.CLONE_PIDFD_AUTOKILL: [(uapi.CLONE_PIDFD | uapi.CLONE_AUTOREAP, 0),
                                (uapi.CLONE_PIDFD | uapi.CLONE_AUTOREAP, signal.SIGCHLD),
                                (uapi.CLONE_PIDFD, signal.SIGCHLD)],
    uapi.CLONE_EMPTY_MNTNS: [(0, signal.SIGCHLD)],
    uapi.CLONE_CLEAR_SIGHAND: [(0, signal.SIGCHLD)],
}


def clone3_accepts(bit):
    """errno (0 = a child was created) of the best clone3 attempt with `bit`.
    Runs the attempts in a forked child; needs root for CLONE_EMPTY_MNTNS."""
    from helpers.proc import clone3, in_child
    from helpers.sys import SyscallError

    def attempt():
        errs = []
        for extra, sig in CLONE3_COMPANIONS.get(bit, [(0, signal.SIGCHLD)]):
            try:
                pidfd = bool(extra & uapi.CLONE_PIDFD)
                _, fd = clone3(lambda: 0, bit | (extra & ~uapi.CLONE_PIDFD), exit_signal=sig,
                               pidfd=pidfd)
                if fd is not None:
                    os.close(fd)
                return 0
            except ChildProcessError:
                return 0  # created, but not ours to wait for (autoreap / exit_signal 0)
            except SyscallError as e:
                errs.append(e.errno)
        # Prefer a non-EINVAL answer: it shows the flag was recognised.
        return next((e for e in errs if e != errno.EINVAL), errno.EINVAL)
    return in_child(attempt)


def unshare_accepts(bit):
    from helpers.errors import errno_of
    from helpers.proc import in_child
    from helpers.sys import unshare
    return in_child(errno_of, unshare, bit)


if __name__ == "__main__":
    for bit in range(32, 40):
        print(f"clone3 1<<{bit}: {errno.errorcode.get(clone3_accepts(1 << bit), 'accepted')}")
    print(f"unshare UNSHARE_EMPTY_MNTNS: "
          f"{errno.errorcode.get(unshare_accepts(uapi.UNSHARE_EMPTY_MNTNS), 'accepted')}")
