"""Twin of tools/testing/selftests/namespaces/init_ino_test.c: the initial
namespaces have fixed nsfs inode numbers (include/uapi/linux/nsfs.h, enum
init_ns_ino).

ipc, uts, user, pid and cgroup have had theirs since they became nsfs files
(include/linux/proc_ns.h PROC_*_INIT_INO), time since it was added (5.6); net
and mnt got fixed numbers in 6.18's namespace rework, together with NS_GET_ID,
whose probe stands in for them (the number itself is what the test checks).

Upstream reads /proc/1/ns/<type>: pid 1 is taken to live in the initial
namespaces. Where this process may not look at pid 1's namespace files
(ptrace access check: EACCES, e.g. a sandboxed host), the case SKIPs saying so.
"""
import os

import pytest

from harness.upstream import upstream
from helpers import uapi

FILE = "namespaces/init_ino_test.c"
SINCE_6_18 = pytest.mark.requires("ns_get_id")


@upstream(FILE, "global.init_namespace_inodes")
@pytest.mark.parametrize("kind", [
    "ipc", "uts", "user", "pid", "cgroup", "time",
    pytest.param("net", marks=SINCE_6_18), pytest.param("mnt", marks=SINCE_6_18)])
def test_initial_namespace_has_fixed_inode(kind):
    """stat("/proc/1/ns/<kind>").st_ino == <KIND>_NS_INIT_INO."""
    try:
        st = os.stat(f"/proc/1/ns/{kind}")
    except FileNotFoundError:
        pytest.skip(f"no {kind} namespaces in this kernel (/proc/1/ns/{kind}: ENOENT)")
    except PermissionError:
        pytest.skip(f"/proc/1/ns/{kind}: EACCES, pid 1 fails this process's ptrace access check")
    assert st.st_ino == uapi.INIT_NS_INO[kind], f"{kind}: {st.st_ino:#x}"
