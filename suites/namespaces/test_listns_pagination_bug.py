"""Twin of tools/testing/selftests/namespaces/listns_pagination_bug.c: paging
through listns(ns_type=CLONE_NEWUSER) from a user-namespace id (the KASAN
out-of-bounds fixed in kernel/nstree.c do_listns(): the resume lookup
searched the unified tree, ns_type 0, and could start the walk of the
user-namespace list on a namespace of another type).

Beyond upstream, which only asks the second call not to fail: the second
page holds only user namespaces, all after the first page's last id and in
increasing order, and all ten of our user namespaces are listed.
Root only: listns() shows other processes' namespaces only to
CAP_SYS_ADMIN in the initial user and pid namespaces (may_see_all_namespaces()).
"""
from contextlib import ExitStack

import pytest

from harness.upstream import upstream
from helpers import uapi
from helpers.ns import id_of, listns, setup_userns
from helpers.proc import waiting_child

FILE = "namespaces/listns_pagination_bug.c"
CHILDREN = 10

pytestmark = [pytest.mark.root, pytest.mark.userns, pytest.mark.requires("listns")]


@upstream(FILE, "global.pagination_with_type_filter")
def test_second_page_of_user_namespaces_resumes_in_the_user_list():
    with ExitStack() as stack:
        pids = [stack.enter_context(waiting_child(setup_userns)) for _ in range(CHILDREN)]
        ours = {id_of("user", pid) for pid in pids}
        first = listns(uapi.CLONE_NEWUSER, nr=3)
        assert len(first) == 3
        second = listns(uapi.CLONE_NEWUSER, last=first[2], nr=3)
        assert len(second) == 3
        every_userns = set(listns(uapi.CLONE_NEWUSER, nr=100000))
        pages = first + second
        assert pages == sorted(set(pages)), pages
        assert set(second) <= every_userns, (second, sorted(every_userns))
        assert ours <= every_userns
