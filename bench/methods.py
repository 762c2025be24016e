"""The container set-up methods the benchmark compares, as bench/loop.c
numbers them, with the probe (helpers/probes.py) that says whether the
running kernel has each."""
from __future__ import annotations

from dataclasses import dataclass

from helpers import probes


@dataclass(frozen=True)
class Method:
    name: str
    index: int                  # bench/loop.c methods[]
    summary: str
    steps: tuple[str, ...]      # loop.c FAIL(n) -> steps[n - 1]
    probe: str | None = None    # the helpers/probes.py probe function
    copies_rootfs: bool = True  # False: the new root is a fresh, empty tmpfs


FLOOR = Method("floor", 0, "harness floor: clone(CLONE_VM|CLONE_VFORK) + _exit + waitpid, no set-up", ())
METHODS = [
    Method("classic", 1, "unshare(CLONE_NEWNS) + rprivate / + bind rootfs + pivot_root + umount2(old, MNT_DETACH)",
           ("unshare(CLONE_NEWNS)", "mount(/, MS_REC|MS_PRIVATE)", "mount(rootfs, MS_BIND|MS_REC)",
            "chdir(rootfs)", "pivot_root(., .)", "umount2(., MNT_DETACH)", "chdir(/)")),
    Method("open_tree_ns", 2, "open_tree(rootfs, OPEN_TREE_NAMESPACE) + setns",
           ("open_tree(OPEN_TREE_NAMESPACE)", "setns(CLONE_NEWNS)"), "open_tree_namespace"),
    Method("fsmount_ns", 3, "fsopen(tmpfs) + fsconfig(CREATE) + fsmount(FSMOUNT_NAMESPACE) + setns",
           ("fsopen(tmpfs)", "fsconfig(FSCONFIG_CMD_CREATE)", "fsmount(FSMOUNT_NAMESPACE)",
            "setns(CLONE_NEWNS)"), "fsmount_namespace", copies_rootfs=False),
    Method("empty_mntns", 4, "open_tree(rootfs, OPEN_TREE_CLONE) + unshare(UNSHARE_EMPTY_MNTNS) + "
           "move_mount onto / + fchdir + chroot",
           ("open_tree(OPEN_TREE_CLONE)", "unshare(UNSHARE_EMPTY_MNTNS)", "move_mount(fd, /)",
            "fchdir(rootfs)", "chroot(.)"), "unshare_empty_mntns"),
]
BY_NAME = {m.name: m for m in [FLOOR, *METHODS]}


def availability(method: Method) -> tuple[bool, str | None]:
    """(runs, why not). Only the probe's False (the exact answer an older
    kernel gives) makes a method unavailable; an unknown probe result runs
    the method, so a real error shows as one."""
    if method.probe is None:
        return True, None
    try:
        present = getattr(probes, method.probe)()
    except (probes.ProbeUnknown, OSError) as e:
        return True, f"probe {method.probe} unknown ({e}): run anyway"
    if present:
        return True, None
    return False, f"the kernel lacks it (probe {method.probe}: absent)"


def step_name(method: Method, step: int, err: int) -> str:
    import errno
    import os
    if step == -1:
        return f"clone: {os.strerror(err)}"
    if step == -2:
        return f"child died (wait status {err:#x})"
    what = method.steps[step - 1] if 0 < step <= len(method.steps) else f"step {step}"
    return f"{what}: [{errno.errorcode.get(err, err)}] {os.strerror(err)}"
