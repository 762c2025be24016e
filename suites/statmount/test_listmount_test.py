"""Twins of tools/testing/selftests/filesystems/statmount/listmount_test.c
(fs/namespace.c listmount, do_listmount): paging through listmount(LSMT_ROOT) in the caller's own
mount namespace, 10 ids per call, forwards and with LISTMOUNT_REVERSE.
Any user may do this; as root the test runs in a private copy of the host's
namespace, otherwise in the host's namespace itself.

Beyond upstream (which only checks order within a batch): the order holds
across batches too, i.e. the whole walk is strictly monotonic, since each
call continues after the `last` id it is given.
"""
import pytest

from harness.upstream import upstream
from helpers import uapi
from helpers.mounts import listmount

FILE = "filesystems/statmount/listmount_test.c"


def walk(flags):
    """Page through listmount(LSMT_ROOT) 10 ids at a time; all ids in order."""
    ids, last = [], 0
    while True:
        got = listmount(uapi.LSMT_ROOT, last=last, nr=10, flags=flags)
        if not got:
            return ids
        ids += got
        last = got[-1]


@upstream(FILE, "global.listmount_forward")
@pytest.mark.requires("listmount")
def test_listmount_pages_forward_in_increasing_id_order():
    ids = walk(0)
    assert ids, "listmount(LSMT_ROOT) returned nothing: the root mount itself is always listed"
    assert all(a < b for a, b in zip(ids, ids[1:])), ids


@upstream(FILE, "global.listmount_backward")
@pytest.mark.requires("listmount", "listmount_reverse")
def test_listmount_reverse_pages_in_decreasing_id_order():
    ids = walk(uapi.LISTMOUNT_REVERSE)
    assert ids
    assert all(a > b for a, b in zip(ids, ids[1:])), ids
    assert ids == walk(0)[::-1]
