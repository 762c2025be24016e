"""Twins of tools/testing/selftests/namespaces/listns_test.c: listns(2)
(kernel/nstree.c, 6.19) lists the ids of active namespaces, in increasing
order, filtered by type (ns_type, a CLONE_NEW* mask) and owner (user_ns_id),
resuming after ns_id.

Most upstream cases only check that the call does not fail; the twins check
what it lists against the ids of namespaces they made (NS_GET_ID).
listns() shows namespaces the caller is not in only to CAP_SYS_ADMIN in the
initial user and pid namespaces (may_see_all_namespaces()): cases that look
for another process's namespaces are root only.

Upstream is wrong in listns_filter_by_type: its handles carry handle_type 0,
and ns_type CLONE_NEWNET with ns_inum 0; nsfs_fh_to_dentry() refuses both
(only FILEID_NSFS decodes; ns_type and ns_inum are set together or not at
all), so every open_by_handle_at() fails and its NS_GET_NSTYPE check never
runs. The twin opens FILEID_NSFS handles by id alone and requires the opens
to succeed.
"""
import errno
import os

import pytest

from harness.upstream import upstream
from helpers import sys as k
from helpers import uapi
from helpers.errors import raises_errno
from helpers.ns import id_of, listns, listns_all, ns_get_id, ns_id_req, open_ns_by_id, setup_userns
from helpers.proc import reporting_child

FILE = "namespaces/listns_test.c"

pytestmark = pytest.mark.requires("listns")


def increasing(ids):
    return all(a < b for a, b in zip(ids, ids[1:]))


@upstream(FILE, "global.listns_basic_unified")
def test_lists_our_namespaces_of_every_type_in_increasing_order():
    ids = listns_all()
    assert ids and 0 not in ids and increasing(ids), ids
    ours = {kind: id_of(kind) for kind in uapi.NS_TYPES}
    assert set(ours.values()) <= set(ids), ours


@upstream(FILE, "global.listns_filter_by_type")
@pytest.mark.requires("nsfs_file_handle")
def test_type_filter_lists_only_network_namespaces():
    """The first five listed ids open (FILEID_NSFS handle by id, from
    FD_NSFS_ROOT) as network namespaces with those ids; ours is listed. One
    that no longer opens (ESTALE) must have died meanwhile: it is no longer
    listed."""
    ids = listns_all(uapi.CLONE_NEWNET)
    assert id_of("net") in ids, ids
    for ns_id in ids[:5]:
        try:
            fd = open_ns_by_id(ns_id)
        except OSError as e:
            assert e.errno == errno.ESTALE, e
            assert ns_id not in listns_all(uapi.CLONE_NEWNET), f"{ns_id} listed, but ESTALE"
            continue
        assert k.ioctl(fd, uapi.NS_GET_NSTYPE) == uapi.CLONE_NEWNET
        assert ns_get_id(fd) == ns_id
        os.close(fd)


@upstream(FILE, "global.listns_pagination")
def test_second_page_starts_after_the_first():
    first = listns(nr=2)
    assert len(first) == 2, first
    second = listns(last=first[-1], nr=2)
    assert second and increasing(first + second), (first, second)


@upstream(FILE, "global.listns_current_user")
@pytest.mark.root
def test_current_user_lists_our_other_namespaces_not_our_user_namespace():
    """As root in the initial namespaces (upstream's setting): the namespaces
    we are in are owned by our user namespace and listed under
    LISTNS_CURRENT_USER; our user namespace is not (its owner is none)."""
    if os.stat("/proc/self/ns/user").st_ino != uapi.INIT_NS_INO["user"]:
        pytest.skip("needs the initial user namespace (the runner put us in another)")
    listed = set(listns_all(user_ns_id=uapi.LISTNS_CURRENT_USER))
    assert {id_of(kind) for kind in uapi.NS_TYPES if kind != "user"} <= listed
    assert id_of("user") not in listed


@upstream(FILE, "global.listns_only_active")
@pytest.mark.root
def test_network_namespace_listed_while_its_process_lives():
    """A child's new network namespace is listed while the child lives and
    not once it has exited (its last active reference is dropped in
    exit_task_namespaces(), before the parent can reap it)."""
    def new_netns():
        k.unshare(uapi.CLONE_NEWNET)
        return id_of("net")
    with reporting_child(new_netns) as (_, net_id):
        assert net_id in listns_all(uapi.CLONE_NEWNET)
    assert net_id not in listns_all(uapi.CLONE_NEWNET)


@upstream(FILE, "global.listns_specific_userns")
@pytest.mark.root
@pytest.mark.userns
def test_user_ns_id_lists_what_that_user_namespace_owns():
    """A child in a new user namespace with its own mount, net and uts
    namespaces: listns(user_ns_id=its user namespace) lists exactly those."""
    def child():
        setup_userns()
        k.unshare(uapi.CLONE_NEWNET)
        k.unshare(uapi.CLONE_NEWUTS)
        return id_of("user"), sorted(id_of(kind) for kind in ("mnt", "net", "uts"))
    with reporting_child(child) as (_, (user_id, owned)):
        assert listns(user_ns_id=user_id) == owned


@upstream(FILE, "global.listns_multiple_types")
def test_type_mask_lists_network_and_uts_namespaces_only():
    ids = set(listns_all(uapi.CLONE_NEWNET | uapi.CLONE_NEWUTS))
    assert {id_of("net"), id_of("uts")} <= ids
    others = {id_of(kind) for kind in uapi.NS_TYPES if kind not in ("net", "uts")}
    assert not others & ids


@upstream(FILE, "global.listns_hierarchical_visibility")
@pytest.mark.root
@pytest.mark.userns
def test_nested_user_namespaces_are_both_listed():
    def child():
        setup_userns()
        parent = id_of("user")
        setup_userns()
        return parent, id_of("user")
    with reporting_child(child) as (_, (parent, nested)):
        assert {parent, nested} <= set(listns_all(uapi.CLONE_NEWUSER))


@pytest.mark.parametrize("call,err", [
    pytest.param(lambda ids: k.listns(ns_id_req(), ids, 10, 0xFFFF), errno.EINVAL, id="flags",
                 marks=upstream(FILE, "global.listns_error_cases")),
    pytest.param(lambda ids: k.listns(ns_id_req(), None, 10), errno.EFAULT, id="null-buffer",
                 marks=upstream(FILE, "global.listns_error_cases")),
    pytest.param(lambda ids: k.listns(ns_id_req(spare=1), ids, 10), errno.EINVAL, id="spare",
                 marks=upstream(FILE, "global.listns_error_cases")),
    pytest.param(lambda ids: k.listns(ns_id_req(), ids, 2000000), errno.EOVERFLOW, id="count",
                 marks=upstream(FILE, "global.listns_error_cases")),
    # Beyond upstream: copy_ns_id_req()'s other refusals.
    pytest.param(lambda ids: k.listns(ns_id_req(size=24), ids, 10), errno.EINVAL, id="size-below-ver0"),
    pytest.param(lambda ids: k.listns(ns_id_req(size=8192), ids, 10), errno.E2BIG, id="size-above-page"),
    pytest.param(lambda ids: k.listns(ns_id_req(ns_type=1), ids, 10), errno.EOPNOTSUPP, id="unknown-type"),
])
def test_bad_request_is_refused(call, err):
    """Upstream's four refusals with their exact errno (it asks EINVAL of
    two and any failure of the NULL buffer and the 2000000 count; SYSCALL
    listns() answers EFAULT and EOVERFLOW)."""
    with raises_errno(err):
        call(k.ffi.new("uint64_t[]", 10))
