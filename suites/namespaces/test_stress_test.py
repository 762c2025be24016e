"""Twins of tools/testing/selftests/namespaces/stress_test.c: many namespaces
made and dropped, quickly or concurrently, leave no active reference behind
(see suites/namespaces/common.py for "active").

Upstream compares listns() counts before and after ("back to baseline"),
which any other process creating or dropping a namespace meanwhile breaks
(a parallel test run, a container starting). The twins have every child
report the ids of the namespaces it made and require exactly those to be
inactive afterwards (and, where upstream counts them while they live, every
one of them to be listed then).
"""
import itertools
import os
from contextlib import ExitStack

import pytest

from harness.upstream import upstream
from helpers import sys as k
from helpers import uapi
from helpers.ns import get_userns_fd, id_of, listns, listns_all, ns_get_id, setup_userns
from helpers.proc import in_child, reporting_child
from suites.namespaces.common import assert_active, assert_inactive

FILE = "namespaces/stress_test.c"

pytestmark = [pytest.mark.root, pytest.mark.userns, pytest.mark.requires("listns", "nsfs_file_handle"),
              pytest.mark.timeout(600)]


def user_and_mnt():
    setup_userns()
    return [id_of("user"), id_of("mnt")]


def user_and(*kinds):
    def make():
        ids = user_and_mnt()
        for kind in kinds:
            k.unshare(uapi.NS_TYPES[kind])
            ids.append(id_of(kind))
        return ids
    return make


def nested_users(depth=5):
    """depth user namespaces, each inside the last (upstream get_userns_fd()
    + setns(), mapping 0 to our uid, then 0 to 0)."""
    ids = []
    for level in range(depth):
        fd = get_userns_fd(0, os.getuid() if level == 0 else 0)
        k.setns(fd, uapi.CLONE_NEWUSER)
        os.close(fd)
        ids.append(id_of("user"))
    return ids


def flat(lists):
    return list(itertools.chain.from_iterable(lists))


def living(stack, count, make):
    """count children that ran make() and live until the stack closes; the
    ids each reported."""
    return [stack.enter_context(reporting_child(make))[1] for _ in range(count)]


@pytest.mark.parametrize("count,make", [
    pytest.param(100, user_and_mnt, id="user",
                 marks=upstream(FILE, "global.rapid_namespace_creation_destruction")),
    pytest.param(50, user_and("net", "uts", "ipc"), id="mixed",
                 marks=upstream(FILE, "global.rapid_mixed_namespace_creation")),
    pytest.param(20, nested_users, id="nested",
                 marks=upstream(FILE, "global.nested_namespace_stress")),
])
def test_namespaces_of_exited_children_are_inactive(count, make):
    """count children one after another, each making namespaces and exiting."""
    made = flat(in_child(make) for _ in range(count))
    assert len(set(made)) == len(made)
    assert_inactive(*made)


@upstream(FILE, "global.many_concurrent_namespaces")
def test_concurrent_user_namespaces_listed_then_inactive():
    with ExitStack() as stack:
        made = flat(living(stack, 50, user_and_mnt))
        assert_active(*made)
    assert_inactive(*made)


@upstream(FILE, "global.listns_pagination_stress")
def test_pages_of_five_list_every_user_namespace_once():
    """30 children in user namespaces; listns(CLONE_NEWUSER) five at a time
    returns no id twice, in increasing order, and all 30 of theirs."""
    with ExitStack() as stack:
        users = {ids[0] for ids in living(stack, 30, user_and_mnt)}
        pages = listns_all(uapi.CLONE_NEWUSER, batch=5)
        assert pages == sorted(set(pages))
        assert users <= set(pages)


@upstream(FILE, "global.concurrent_namespace_operations")
def test_workers_making_and_listing_namespaces_concurrently_leave_none_active():
    """20 workers at once, each 10 times: a new user namespace (held by an
    fd) and a listns() call, which must succeed."""
    def worker():
        made = []
        for _ in range(10):
            fd = get_userns_fd(0, os.getuid())
            made.append(ns_get_id(fd))
            listns(nr=512)
            os.close(fd)
        return made
    with ExitStack() as stack:
        made = flat(living(stack, 20, worker))
    assert_inactive(*made)


@upstream(FILE, "global.namespace_churn")
def test_batches_of_short_lived_namespaces_leave_none_active():
    """10 cycles of 10 children living at once, each in new user, net and
    uts namespaces; then every one of them is inactive."""
    made = []
    for _ in range(10):
        with ExitStack() as stack:
            made += flat(living(stack, 10, user_and("net", "uts")))
    assert_inactive(*made)
