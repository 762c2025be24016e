"""Twins of tools/testing/selftests/namespaces/listns_permissions_test.c: what
listns(2) lets a caller see (kernel/nstree.c may_list_ns()).

A namespace is listed if the caller is in it (is_current_namespace()), or
if the caller may see all namespaces: CAP_SYS_ADMIN in the initial user
namespace *and* in the initial pid namespace (kernel/nscommon.c
may_see_all_namespaces()). CAP_SYS_ADMIN inside a user namespace shows
nothing more, with or without user_ns_id; and a user namespace is owned by
its parent, so it is never in its own user_ns_id list.

Upstream counts ("at least 4", "at least 3", "after <= before") pass for
the wrong reasons; the twins compare the exact lists:
- listns_cap_sys_admin_in_userns expects "net, uts, ipc and the user
  namespace itself"; the four it gets are mount, net, uts and ipc, all
  listed because the caller is in them.
- listns_current_user_permissions expects "user, net, uts"; it gets mount,
  net and uts.
- listns_drop_cap_sys_admin counts network namespaces its new user namespace
  owns: none, before and after dropping CAP_SYS_ADMIN (0 <= 0). The twin
  drops the capability where it matters: in the initial user namespace, where
  it hides another process's network namespace.
"""

import pytest

from harness.upstream import upstream
from helpers import sys as k
from helpers import uapi
from helpers.ns import caps_down, id_of, listns, listns_all, setup_userns
from helpers.proc import in_child, reporting_child

FILE = "namespaces/listns_permissions_test.c"

pytestmark = [pytest.mark.requires("listns"), pytest.mark.userns]


def ids_of(*kinds):
    return sorted(id_of(kind) for kind in kinds)


@upstream(FILE, "global.listns_unprivileged_current_only")
def test_in_a_user_namespace_only_our_network_namespace_is_listed():
    def body():
        setup_userns()
        k.unshare(uapi.CLONE_NEWNET)
        return ids_of("net"), listns_all(uapi.CLONE_NEWNET)
    ours, listed = in_child(body)
    assert listed == ours


@upstream(FILE, "global.listns_cap_sys_admin_in_userns")
def test_user_ns_id_of_our_user_namespace_lists_the_namespaces_we_are_in():
    def body():
        setup_userns()
        for flag in (uapi.CLONE_NEWNET, uapi.CLONE_NEWUTS, uapi.CLONE_NEWIPC):
            k.unshare(flag)
        return ids_of("mnt", "net", "uts", "ipc"), listns(user_ns_id=id_of("user"))
    owned, listed = in_child(body)
    assert listed == owned


@upstream(FILE, "global.listns_cannot_see_sibling_userns_namespaces")
@pytest.mark.root
def test_sibling_user_namespace_cannot_see_our_network_namespace():
    """A owns a new network namespace; B, a sibling user namespace, lists
    network namespaces: only the one it is in (the initial one), not A's."""
    def sibling_a():
        setup_userns()
        k.unshare(uapi.CLONE_NEWNET)
        return id_of("net")

    def sibling_b():
        setup_userns()
        return ids_of("net"), listns_all(uapi.CLONE_NEWNET)
    with reporting_child(sibling_a) as (_, net_a):
        ours, listed = in_child(sibling_b)
    assert net_a not in listed
    assert listed == ours


@upstream(FILE, "global.listns_current_user_permissions")
def test_current_user_lists_mount_net_and_uts_not_the_user_namespace():
    def body():
        setup_userns()
        k.unshare(uapi.CLONE_NEWNET)
        k.unshare(uapi.CLONE_NEWUTS)
        return ids_of("mnt", "net", "uts"), id_of("user"), listns(user_ns_id=uapi.LISTNS_CURRENT_USER)
    owned, user, listed = in_child(body)
    assert listed == owned
    assert user not in listed


@upstream(FILE, "global.listns_parent_userns_cap_sys_admin")
def test_parent_user_ns_id_lists_the_nested_user_namespace_we_are_in():
    """Nested user namespaces P > C (each with its own mount namespace), C
    with a new network namespace; listns(user_ns_id=P) lists C, which we are
    in, and not P's mount namespace, which we left."""
    def body():
        setup_userns()
        parent, parent_mnt = id_of("user"), id_of("mnt")
        setup_userns()
        k.unshare(uapi.CLONE_NEWNET)
        return id_of("user"), parent_mnt, listns(user_ns_id=parent)
    nested, parent_mnt, listed = in_child(body)
    assert listed == [nested]
    assert parent_mnt not in listed


@upstream(FILE, "global.listns_cap_sys_admin_inside_userns")
def test_global_user_listing_inside_a_user_namespace_is_our_own():
    def body():
        setup_userns()
        return ids_of("user"), listns_all(uapi.CLONE_NEWUSER)
    ours, listed = in_child(body)
    assert listed == ours


@upstream(FILE, "global.listns_drop_cap_sys_admin")
@pytest.mark.root
def test_dropping_cap_sys_admin_hides_other_network_namespaces():
    """Root lists a child's new network namespace; with no effective
    capabilities, only the network namespace it is in."""
    def new_netns():
        k.unshare(uapi.CLONE_NEWNET)
        return id_of("net")
    with reporting_child(new_netns) as (_, child_net):
        assert child_net in listns_all(uapi.CLONE_NEWNET)
        caps_down()
        assert listns_all(uapi.CLONE_NEWNET) == ids_of("net")
