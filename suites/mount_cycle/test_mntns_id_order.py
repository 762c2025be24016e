"""Mount namespace ids follow creation order, on every CPU.

mnt_ns_loop() (fs/namespace.c) lets a task bind a mount-namespace file only if
that namespace is newer than its own, judged by comparing namespace ids: a
newer namespace cannot yet hold a reference to ours, so no cycle can form.
That is only sound if a namespace created later always gets a larger id. Ids
handed out from per-CPU batches break it: a namespace made later on another
CPU can get a smaller id, and the bind rule then refuses a newer namespace or,
worse, admits an older one (a reference cycle that is never freed).
"""
import os

import pytest

from helpers import uapi
from helpers import sys as k
from helpers.ns import own_mntns_id
from helpers.proc import in_child, usable_cpus

ROUNDS = 8


def _new_mntns_id_on(cpu):
    os.sched_setaffinity(0, {cpu})
    k.unshare(uapi.CLONE_NEWNS)
    return own_mntns_id()


@pytest.mark.root
@pytest.mark.requires("ns_get_mntns_id")
def test_mntns_ids_increase_in_creation_order_across_cpus():
    # The harness pins each test to one CPU; this test alternates on purpose.
    cpus = usable_cpus()
    if len(cpus) < 2:
        pytest.skip(f"needs at least 2 CPUs to alternate between; this machine offers {len(cpus)}")
    created = [(cpu, in_child(_new_mntns_id_on, cpu)) for cpu in cpus[:2] * (ROUNDS // 2)]
    ids = [ns_id for _, ns_id in created]
    assert ids == sorted(ids) and len(set(ids)) == len(ids), \
        f"(cpu, mount ns id) in creation order: {created}"
