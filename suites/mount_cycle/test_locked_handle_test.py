"""Twin of filesystems/mount_cycle/locked_handle_test.c (fs/fhandle.c may_decode_fh,
fs/namespace.c has_locked_children).

open_by_handle_at() for root in a user namespace (no CAP_DAC_READ_SEARCH in the
initial namespace) must refuse (EPERM) a handle below a mount whose locked
children obstruct it, and the refusal must hold while that mount is lazily
unmounted or its detached tree dissolved: never a single successful decode.
"""
import errno
import os
import random
import threading
import time

import pytest

from harness.upstream import upstream
from helpers import uapi
from helpers import sys as k
from helpers.errors import errno_of, raises_errno
from helpers.mounts import make_rprivate, tmpfs
from helpers.ns import setup_userns
from helpers.proc import in_child

FILE = "filesystems/mount_cycle/locked_handle_test.c"
ROUNDS, RACERS, EXTRA_BINDS, MAX_DELAY_US, TAIL_US = 100, 3, 64, 3000, 2000
DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY
pytestmark = [pytest.mark.root, pytest.mark.userns]


class Fixture:
    pass


@pytest.fixture
def lh(base):
    f = Fixture()
    f.base, f.h, f.plain, f.w = base, f"{base}/h", f"{base}/plain", f"{base}/w"
    k.unshare(uapi.CLONE_NEWNS)
    make_rprivate("/")
    tmpfs(base)
    for d in (f.h, f.plain, f.w):
        os.mkdir(d)
    os.mkdir(f"{f.plain}/inner")
    f.uncovered, _ = k.name_to_handle_at(uapi.AT_FDCWD, f"{f.plain}/inner")
    tmpfs(f.h)
    os.makedirs(f"{f.h}/top/secret/inner")
    f.inner, _ = k.name_to_handle_at(uapi.AT_FDCWD, f"{f.h}/top/secret/inner")
    os.mkdir(f"{f.h}/empty")
    tmpfs(f"{f.h}/top/secret")                           # the cover
    for i in range(EXTRA_BINDS):
        os.mkdir(f"{f.h}/c{i}")
        k.mount(f"{f.h}/empty", f"{f.h}/c{i}", None, uapi.MS_BIND)
    return f


def _decode(dfd, handle):
    fd = k.open_by_handle_at(dfd, handle, DIR_FLAGS)
    os.close(fd)


def _race(dfd, handle, let_go):
    """RACERS threads decode while let_go() unmounts; returns how many decodes succeeded."""
    stop, decoded = threading.Event(), []

    def racer():
        while not stop.is_set():
            if errno_of(lambda: _decode(dfd, handle)) == 0:
                decoded.append(1)

    threads = [threading.Thread(target=racer) for _ in range(RACERS)]
    for t in threads:
        t.start()
    time.sleep(random.randrange(MAX_DELAY_US) / 1e6)
    let_go()
    time.sleep(TAIL_US / 1e6)
    stop.set()
    for t in threads:
        t.join()
    return len(decoded)


@upstream(FILE, "locked_handle.lazy_umount")
def test_lazy_umount_never_decodes_covered_handle(lh):
    def child():
        setup_userns()                                   # the cover is now MNT_LOCKED
        for rnd in range(ROUNDS):
            k.mount(lh.h, lh.w, None, uapi.MS_BIND | uapi.MS_REC)
            dfd = os.open(lh.w, DIR_FLAGS)
            with raises_errno(errno.EPERM):
                _decode(dfd, lh.inner)
            n = _race(dfd, lh.inner, lambda: k.umount2(lh.w, uapi.MNT_DETACH))
            assert n == 0, f"round {rnd}: {n} decodes succeeded while the mount was going away"
            assert errno_of(lambda: _decode(dfd, lh.inner)) != 0, \
                f"round {rnd}: decoded through the unmounted mount"
            os.close(dfd)
    in_child(child)


@upstream(FILE, "locked_handle.dissolve")
def test_dissolved_tree_never_decodes_covered_handle(lh):
    def child():
        setup_userns()
        for rnd in range(ROUNDS):
            tfd = k.open_tree(uapi.AT_FDCWD, lh.h, uapi.OPEN_TREE_CLONE | uapi.AT_RECURSIVE
                              | uapi.OPEN_TREE_CLOEXEC)
            dfd = os.open(".", DIR_FLAGS, dir_fd=tfd)
            with raises_errno(errno.EPERM):
                _decode(dfd, lh.inner)
            n = _race(dfd, lh.inner, lambda: os.close(tfd))
            assert n == 0, f"round {rnd}: {n} decodes succeeded while the tree dissolved"
            assert errno_of(lambda: _decode(dfd, lh.inner)) != 0, \
                f"round {rnd}: decoded through the dissolved tree"
            os.close(dfd)
    in_child(child)


@upstream(FILE, "locked_handle.allowed_use")
def test_unobstructed_handle_decodes_until_unmounted(lh):
    def child():
        setup_userns()
        k.mount(lh.plain, lh.w, None, uapi.MS_BIND | uapi.MS_REC)
        dfd = os.open(lh.w, DIR_FLAGS)
        _decode(dfd, lh.uncovered)                      # nothing covers it: allowed
        k.umount2(lh.w, uapi.MNT_DETACH)
        with raises_errno(errno.EPERM):
            _decode(dfd, lh.uncovered)
    in_child(child)
