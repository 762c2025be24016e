"""The seven event scenarios shared by mount-notify_test.c and
mount-notify_test_ns.c (identical in both upstream programs; only the
fixture differs). `env` is the fixture: .watch (mount_notify_events.Watch)
and .root_id (unique id of the chroot's "/", a tmpfs)."""
import os

from helpers import sys as k
from helpers import uapi
from helpers.mounts import bind, detached_fs, make_rprivate
from helpers.proc import in_child
from helpers.fanotify import ATTACH, DETACH, MOVE
from suites.mount_notify.mount_notify_events import check_mounted


def bind_case(env):
    bind("/", "/")
    _, new = env.watch.expect(ATTACH)
    assert new != env.root_id
    check_mounted({env.root_id, new})
    k.umount2("/", 0)
    _, gone = env.watch.expect(DETACH)
    assert gone == new
    check_mounted({env.root_id})


def move_case(env):
    bind("/", "/a")
    _, x = env.watch.expect(ATTACH)
    assert x != env.root_id
    check_mounted({env.root_id, x})
    k.move_mount(uapi.AT_FDCWD, "/a", uapi.AT_FDCWD, "/b", 0)
    _, moved = env.watch.expect(MOVE)
    assert moved == x
    k.umount2("/b", 0)
    check_mounted({env.root_id})


def propagate_case(env):
    k.mount("", "/", None, uapi.MS_SHARED)
    for _ in range(4):
        bind("/", "/")
    attached = {mnt for _, mnt in env.watch.expect_n(15, ATTACH)}
    assert len(attached) == 15 and env.root_id not in attached
    check_mounted(attached | {env.root_id})
    k.umount2("/", uapi.MNT_DETACH)
    k.mount("", "/", None, uapi.MS_PRIVATE)
    detached = {mnt for _, mnt in env.watch.expect_n(15, DETACH)}
    assert detached == attached
    check_mounted({env.root_id})


def fsmount_case(env):
    fd = detached_fs(mount_flags=0)
    k.move_mount(fd, "", uapi.AT_FDCWD, "/a", uapi.MOVE_MOUNT_F_EMPTY_PATH)
    os.close(fd)
    _, new = env.watch.expect(ATTACH)
    assert new != env.root_id
    check_mounted({env.root_id, new})
    k.umount2("/a", 0)
    _, gone = env.watch.expect(DETACH)
    assert gone == new
    check_mounted({env.root_id})


def reparent_case(env):
    root = env.root_id
    bind("/", "/a")
    k.mount("", "/a", None, uapi.MS_SHARED)
    bind("/a", "/b")
    k.mount("", "/b", None, uapi.MS_SLAVE)
    a1, b2 = k.mnt_id_unique("/a"), k.mnt_id_unique("/b")
    assert {m for _, m in env.watch.expect_n(2, ATTACH)} == {a1, b2}
    check_mounted({root, a1, b2})

    bind("/", "/a")
    a3 = k.mnt_id_unique("/a")
    got = {m for _, m in env.watch.expect_n(2, ATTACH)}
    assert a3 in got
    (b4,) = got - {a3}
    check_mounted({root, a1, b2, a3, b4})

    bind("/", "/b")
    _, b5 = env.watch.expect(ATTACH)
    assert b5 == k.mnt_id_unique("/b")
    check_mounted({root, a1, b2, a3, b4, b5})

    k.umount2("/a", 0)
    events = {m: mask for mask, m in env.watch.expect_n(3)}
    assert events == {a3: DETACH, b4: DETACH, b5: MOVE}, {hex(m): hex(v) for m, v in events.items()}
    check_mounted({root, a1, b2, b5})

    for path in ("/b", "/a", "/b"):
        k.umount2(path, 0)
    assert {m for _, m in env.watch.expect_n(3, DETACH)} == {a1, b2, b5}
    check_mounted({root})


def rmdir_case(env):
    bind("/", "/a")
    bind("/", "/a/b")
    got = {m for _, m in env.watch.expect_n(2, ATTACH)}
    check_mounted(got | {env.root_id})
    os.chdir("/a")

    def child():
        os.chdir("/")
        k.unshare(uapi.CLONE_NEWNS)
        make_rprivate("/")
        k.umount2("/a", uapi.MNT_DETACH)
        os.rmdir("/a")
    in_child(child)
    assert {m for _, m in env.watch.expect_n(2, DETACH)} == got
    check_mounted({env.root_id})


def pivot_root_case(env):
    k.mount("tmpfs", "/a", "tmpfs")
    _, m2 = env.watch.expect(ATTACH)
    os.mkdir("/a/new")
    os.mkdir("/a/old")
    bind("/a", "/a/new")
    _, m1 = env.watch.expect(ATTACH)
    check_mounted({env.root_id, m1, m2})

    k.pivot_root("/a/new", "/a/new/old")
    moved = {m for _, m in env.watch.expect_n(2, MOVE)}
    assert moved == {env.root_id, m1}
    check_mounted({env.root_id, m1, m2})

    k.pivot_root("/old", "/old/a/new")
    k.umount2("/a/new", 0)
    k.umount2("/a", 0)
    check_mounted({env.root_id})


CASES = {
    "bind": bind_case, "move": move_case, "propagate": propagate_case,
    "fsmount": fsmount_case, "reparent": reparent_case, "rmdir": rmdir_case,
    "pivot_root": pivot_root_case,
}
