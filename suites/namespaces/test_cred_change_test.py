"""Twins of tools/testing/selftests/namespaces/cred_change_test.c: credential
changes inside a user namespace keep its active reference count balanced
(kernel/cred.c commit_creds() -> switch_cred_namespaces(), 6.19), so the
namespace is listed while its process lives and not once it has exited.

A child setns()es into a fresh user namespace mapping ids 0..N-1 to ours
(upstream get_userns_fd()), then changes its credentials. Upstream ignores
EPERM (after setuid(1) the process has no capabilities left in the
namespace); the twins require every change to succeed or be EPERM, and at
least one to succeed, so a new cred was really committed. Root only:
mapping more than one id needs CAP_SETUID, and seeing another process's
user namespace in listns() needs CAP_SYS_ADMIN in the initial namespaces.
"""
import errno
import os

import pytest

from harness.upstream import upstream
from helpers import sys as k
from helpers import uapi
from helpers.ns import get_userns_fd, id_of, listns_all
from helpers.proc import reporting_child

FILE = "namespaces/cred_change_test.c"

pytestmark = [pytest.mark.root, pytest.mark.userns, pytest.mark.requires("listns")]


def enter_new_userns(count, hostid=None):
    fd = get_userns_fd(0, os.getuid() if hostid is None else hostid, count)
    k.setns(fd, uapi.CLONE_NEWUSER)
    os.close(fd)
    return id_of("user")


def attempt(calls):
    """Run each (fn, *args); how many succeeded (the rest must be EPERM)."""
    done = 0
    for fn, *args in calls:
        try:
            fn(*args)
            done += 1
        except PermissionError:
            pass
    return done


def fs_ids(n):
    # setfsuid()/setfsgid() report nothing but the previous id: success is
    # read back from the next call's return value.
    k.libc.setfsuid(n)
    k.libc.setfsgid(n)
    if k.libc.setfsuid(0xFFFFFFFF) != n:
        raise PermissionError(errno.EPERM, f"setfsuid({n}) did not take")


CHANGES = {
    "setuid": (10, [(os.setuid, i % 10) for i in range(50)]),
    "setgid": (10, [(os.setgid, i % 10) for i in range(50)]),
    "setresuid": (10, [(os.setresuid, i % 5, (i + 1) % 5, (i + 2) % 5) for i in range(30)]),
    "rapid": (100, [[(os.setuid, i % 50), (os.setgid, i % 50),
                     (os.setreuid, i % 50, (i + 1) % 50), (os.setregid, i % 50, (i + 1) % 50),
                     (os.setresuid, i % 50, (i + 1) % 50, (i + 2) % 50),
                     (os.setresgid, i % 50, (i + 1) % 50, (i + 2) % 50)][i % 6] for i in range(200)]),
    "setfsuid": (10, [(fs_ids, i % 10) for i in range(50)]),
}


@pytest.mark.parametrize("change", [
    pytest.param("setuid", marks=upstream(FILE, "global.setuid_preserves_active_refs")),
    pytest.param("setgid", marks=upstream(FILE, "global.setgid_preserves_active_refs")),
    pytest.param("setresuid", marks=upstream(FILE, "global.setresuid_preserves_active_refs")),
    pytest.param("rapid", marks=upstream(FILE, "global.rapid_cred_changes_no_leak")),
    pytest.param("setfsuid", marks=upstream(FILE, "global.setfsuid_preserves_active_refs")),
])
def test_user_namespace_active_across_cred_changes_then_inactive(change):
    count, calls = CHANGES[change]

    def child():
        userns = enter_new_userns(count)
        return userns, attempt(calls)
    with reporting_child(child) as (_, (userns, done)):
        assert done >= 1, f"no {change} call succeeded"
        assert userns in listns_all(uapi.CLONE_NEWUSER)
    assert userns not in listns_all(uapi.CLONE_NEWUSER)


@upstream(FILE, "global.cred_change_nested_userns")
def test_nested_user_namespaces_active_then_both_inactive():
    def child():
        outer = enter_new_userns(1)
        inner = enter_new_userns(1, hostid=0)
        os.setuid(0)
        os.setgid(0)
        return outer, inner
    with reporting_child(child) as (_, (outer, inner)):
        assert {outer, inner} <= set(listns_all(uapi.CLONE_NEWUSER))
    listed = set(listns_all(uapi.CLONE_NEWUSER))
    assert outer not in listed and inner not in listed
