"""Crash attribution (vm/crash.py): which tests were running when a guest
kernel complained, and a fingerprint that survives point releases."""
import pytest

from vm import crash

MARKS = """\
[   10.000000] mntns-test: start suites/fscontext_ns/test_f.py::test_create pid=321
[   10.100000] mntns-test: start suites/nullfs/test_a.py::test_b pid=322
"""
WARN_OLD = """\
[   10.200000] ------------[ cut here ]------------
[   10.200001] WARNING: CPU: 1 PID: 400 at fs/binfmt_misc.c:956 bm_fill_super+0x1d5/0x200 [binfmt_misc]
[   10.200004] RIP: 0010:bm_fill_super+0x1d5/0x200 [binfmt_misc]
[   10.200005] Call Trace:
[   10.200007]  ? __warn+0x89/0x130
[   10.200008]  get_tree_keyed+0x5c/0xa0
[   10.200011] ---[ end trace 0000000000000000 ]---
"""
# the same WARN_ON on a later release: another line number, the newer format
WARN_NEW = "[   7.5] WARNING: fs/binfmt_misc.c:971 at bm_fill_super+0x1e1/0x210, CPU#0: python3/401\n"
SLEEP_IN_RCU = """\
[   12.0] BUG: scheduling while atomic: rcuc/0/17/0x00000002
[   12.1] Call Trace:
[   12.1]  <TASK>
[   12.1]  dump_stack_lvl+0x5d/0x80
[   12.1]  __schedule_bug+0x52/0x70
[   12.1]  __schedule+0x10e2/0x1420
[   12.1]  schedule+0x27/0xf0
[   12.1]  fsnotify_destroy_marks+0x12/0x30
"""
NULL_DEREF = """\
[   12.2] BUG: kernel NULL pointer dereference, address: 0000000000000098
[   12.2] RIP: 0010:down_write+0x1c/0x50
"""


def test_a_warn_is_blamed_on_every_test_running_when_it_began():
    (c,) = crash.complaints(MARKS + WARN_OLD)
    assert c["kind"] == "WARNING"
    assert c["signature"] == "WARNING: in bm_fill_super (fs/binfmt_misc.c)"
    assert c["tests"] == ["suites/fscontext_ns/test_f.py::test_create", "suites/nullfs/test_a.py::test_b"]
    assert "during suites/fscontext_ns/test_f.py::test_create" in crash.describe(c)


def test_a_test_that_ended_is_not_blamed():
    ended = "[   10.15] mntns-test: end suites/nullfs/test_a.py::test_b pid=322\n"
    (c,) = crash.complaints(MARKS + ended + WARN_OLD)
    assert c["tests"] == ["suites/fscontext_ns/test_f.py::test_create"]


def test_a_complaint_between_tests_names_the_one_before():
    ends = ("[ 11.0] mntns-test: end suites/nullfs/test_a.py::test_b pid=322\n"
            "[ 11.1] mntns-test: end suites/fscontext_ns/test_f.py::test_create pid=321\n")
    (c,) = crash.complaints(MARKS + ends + SLEEP_IN_RCU)
    assert (c["tests"], c["after"]) == ([], "suites/fscontext_ns/test_f.py::test_create")
    assert c["signature"] == "BUG: scheduling while atomic in fsnotify_destroy_marks"
    assert "after suites/fscontext_ns/test_f.py::test_create" in crash.describe(c)


def test_the_fingerprint_survives_line_numbers_and_the_warning_format():
    (old,) = crash.complaints(WARN_OLD)
    (new,) = crash.complaints(WARN_NEW)
    assert old["fingerprint"] == new["fingerprint"]
    assert len(crash.complaints(WARN_OLD + WARN_NEW)) == 1  # one complaint, seen twice


@pytest.mark.parametrize("text, signature", [
    (NULL_DEREF, "BUG: kernel NULL pointer dereference in down_write"),
    ("[ 1.0] kernel BUG at fs/namespace.c:1234!\n[ 1.0] RIP: 0010:umount_tree+0x3/0x9\n",
     "BUG: in umount_tree (fs/namespace.c)"),
    ("[ 1.0] Oops: int3: 0000 [#1] PREEMPT SMP NOPTI\n[ 1.0] RIP: 0010:sched_clock_cpu+0x1/0x9\n",
     "Oops: int3 in sched_clock_cpu"),
    ("[ 2.0] Kernel panic - not syncing: Attempted to kill init! exitcode=0x00000100\n",
     "Kernel panic: Attempted to kill init!"),
])
def test_signatures(text, signature):
    (c,) = crash.complaints(text)
    assert c["signature"] == signature
    assert c["after"] is None and c["tests"] == []
    assert "before any test started" in crash.describe(c)


def test_one_complaint_does_not_take_the_next_ones_frames():
    cs = crash.complaints(SLEEP_IN_RCU + NULL_DEREF)
    assert [c["signature"] for c in cs] == ["BUG: scheduling while atomic in fsnotify_destroy_marks",
                                          "BUG: kernel NULL pointer dereference in down_write"]


def test_marks_and_init_lines_are_not_complaints():
    text = ("[ 1.0] mntns-test: start suites/x.py::test_BUG:_WARNING: pid=1\n"
            "[ 1.0] mntns-init: WARNING: no modules\n")
    assert crash.complaints(text) == []


STUCK = ("[ 40.0] mntns-test: stuck suites/u/test_s.py::test_watched pid 812 (state D, wchan put_mnt_ns) "
         "did not exit 10 s after SIGKILL: stuck in the kernel\n")


def test_a_test_process_stuck_in_the_kernel_is_a_hang_blamed_on_its_test():
    (c,) = crash.complaints(MARKS + STUCK)
    assert c["kind"] == "hang"
    assert c["signature"] == "hang: test process stuck in the kernel"
    assert c["tests"] == ["suites/u/test_s.py::test_watched"]
    assert crash.describe(c).startswith("test process stuck in the kernel: pid 812 (state D, wchan "
                                        "put_mnt_ns) did not exit")
    assert crash.describe(c).endswith("during suites/u/test_s.py::test_watched")
    assert [crash.is_complaint(line) for line in (MARKS + STUCK).splitlines()] == [False, False, True]


def test_a_warn_then_the_stuck_processes_are_two_complaints_the_first_stuck_one_blamed():
    later = STUCK.replace("test_watched pid 812", "test_next pid 813").replace("put_mnt_ns", "copy_mnt_ns")
    cs = crash.complaints(MARKS + WARN_NEW + STUCK + later)
    assert [(c["kind"], c["tests"]) for c in cs] == [
        ("WARNING", ["suites/fscontext_ns/test_f.py::test_create", "suites/nullfs/test_a.py::test_b"]),
        ("hang", ["suites/u/test_s.py::test_watched"])]


def test_running_names_the_tests_a_hung_guest_never_ended():
    ended = "[ 11.0] mntns-test: end suites/nullfs/test_a.py::test_b pid=322\n"
    assert crash.running(MARKS + ended) == ["suites/fscontext_ns/test_f.py::test_create"]
    assert crash.running(MARKS + ended + "[ 12.0] mntns-test: end suites/fscontext_ns/test_f.py::"
                                          "test_create pid=321\n") == []
