"""The benchmark's stage: a private mount namespace (the host's mount table
is never touched), a scratch tmpfs, the prepared rootfs on its own tmpfs, and
filler mounts that grow the namespace's mount table to a given size.

Everything lives in the benchmark process's private copy of the mount
namespace, made rprivate first, so nothing propagates to the host; the
copies die with the process. The one host-side trace, the scratch mount
point under /tmp, is removed on the way out.
"""
from __future__ import annotations

import os
import tempfile

from helpers import sys as k
from helpers import uapi
from helpers.mounts import bind, tmpfs
from helpers.ns import new_mntns

# What a container image's root holds at the top, give or take.
ROOTFS_DIRS = ("bin", "dev", "etc", "home", "lib", "proc", "root", "run", "sbin", "sys", "tmp",
               "usr", "var")


def mount_count() -> int:
    with open("/proc/self/mountinfo") as f:
        return sum(1 for _ in f)


class Stage:
    def __init__(self):
        new_mntns()  # rprivate: nothing propagates to the host
        self.scratch = tempfile.mkdtemp(prefix="mntns-bench-")
        tmpfs(self.scratch, "mode=0755")
        self.rootfs = os.path.join(self.scratch, "rootfs")
        os.mkdir(self.rootfs)
        tmpfs(self.rootfs, "mode=0755")
        for d in ROOTFS_DIRS:
            os.mkdir(os.path.join(self.rootfs, d))
        with open(os.path.join(self.rootfs, "etc", "hostname"), "w") as f:
            f.write("container\n")
        self.rootfs_entries = sorted(os.listdir(self.rootfs))
        self.rootfs_dev = os.stat(self.rootfs).st_dev
        self.fillers = 0

    def inflate(self, target: int) -> int:
        """Self-bind filler directories until the namespace holds `target`
        mounts (never fewer than it has); returns the count reached."""
        fill = os.path.join(self.scratch, "fill")
        os.makedirs(fill, exist_ok=True)
        while mount_count() < target:
            n = max(1, target - mount_count())
            for _ in range(n):
                d = os.path.join(fill, str(self.fillers))
                os.mkdir(d)
                bind(d, d)
                self.fillers += 1
        return mount_count()

    def close(self) -> None:
        try:
            k.umount2(self.scratch, uapi.MNT_DETACH)
            os.rmdir(self.scratch)
        except OSError:
            pass
