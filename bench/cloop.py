"""The C inner loop (bench/loop.c) through cffi's API mode, compiled at the
benchmark's first run.

Why API mode and C here, unlike helpers/sys.py: a container set-up is 2 to
8 syscalls of a few microseconds each; a Python loop around cffi's ABI calls
costs about as much again per container and would flatten the differences
the benchmark is after (the floor method shows what is left: clone + exit +
wait).

Why at first run, not at install time: the conformance suite itself needs
no compiler (README, "Why cffi's ABI mode"); only the benchmark does, so only
running it needs gcc and the Python headers. The module is built next to the
sources in bench/_build/<hash of the C source, the uapi values, the
interpreter>/, like helpers/_uapi_ffi.py, so a VM guest (which sees the
host's tree read-only) uses the build made on the host (`python -m bench
--build`). Where that directory cannot be written and holds no build, it is
built in a temporary directory for this process (slow under TCG, but right).
"""
from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import sys
import sysconfig
import tempfile
from pathlib import Path

from helpers import uapi

HERE = Path(__file__).resolve().parent
SOURCE = HERE / "loop.c"
BUILD = HERE / "_build"
MODULE = "_bench_loop"

CTX = """
struct bench_ctx {
    const char *rootfs;
    int step;
    int err;
    long done;
};
"""
CDEF = CTX + """
int bench_one(int method, struct bench_ctx *ctx);
long long bench_loop(int method, long n, long long max_ns, struct bench_ctx *ctx);
"""
SYSCALLS = ["unshare", "mount", "umount2", "pivot_root", "open_tree", "setns", "fsopen",
            "fsconfig", "fsmount", "move_mount"]
FLAGS = ["CLONE_NEWNS", "MS_REC", "MS_PRIVATE", "MS_BIND", "MNT_DETACH", "AT_FDCWD",
         "OPEN_TREE_CLONE", "OPEN_TREE_NAMESPACE", "OPEN_TREE_CLOEXEC", "FSOPEN_CLOEXEC",
         "FSCONFIG_CMD_CREATE", "FSMOUNT_NAMESPACE", "FSMOUNT_CLOEXEC", "UNSHARE_EMPTY_MNTNS",
         "MOVE_MOUNT_F_EMPTY_PATH"]


def prelude() -> str:
    """System headers first, then this project's numbers over theirs."""
    # (cffi includes Python.h first, which defines _GNU_SOURCE)
    lines = ["#include <sched.h>", "#include <fcntl.h>", CTX]
    for name in SYSCALLS:
        lines.append(f"#define NR_{name} {uapi.NR[name]}")
    for name in FLAGS:
        lines += [f"#undef {name}", f"#define {name} ({getattr(uapi, name)}L)"]
    return "\n".join(lines) + "\n"


def source() -> str:
    return prelude() + SOURCE.read_text()


def digest() -> str:
    key = source() + sys.version + sysconfig.get_platform()
    return hashlib.sha256(key.encode()).hexdigest()[:16]


def _import(directory: Path):
    matches = sorted(directory.glob(f"{MODULE}*.so"))
    if not matches:
        return None
    spec = importlib.util.spec_from_file_location(MODULE, matches[0])
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


class BuildError(RuntimeError):
    """The C loop could not be compiled (one line)."""


def _compile(directory: Path) -> None:
    from cffi import FFI, VerificationError
    builder = FFI()
    builder.cdef(CDEF)
    builder.set_source(MODULE, source(), extra_compile_args=["-O2", "-Wall", "-Werror"])
    directory.mkdir(parents=True, exist_ok=True)
    # cffi writes the .c/.o next to the .so: a per-process scratch dir, then
    # one rename, so two first runs at once do not trip over each other.
    scratch = tempfile.mkdtemp(dir=directory.parent, prefix=".tmp-")
    try:
        so = builder.compile(tmpdir=scratch, verbose=False)
        os.replace(so, directory / Path(so).name)
    except VerificationError as e:
        raise BuildError(f"compiling {SOURCE} failed (needs gcc and python3-dev): "
                         f"{str(e).splitlines()[0]}") from None
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def load():
    """The compiled module (lib.bench_one, lib.bench_loop, ffi); built if needed."""
    directory = BUILD / digest()
    mod = _import(directory)
    if mod:
        return mod
    try:
        _compile(directory)
    except OSError:  # a read-only tree (a VM guest): build for this process
        directory = Path(tempfile.mkdtemp(prefix="mntns-bench-build-")) / digest()
        _compile(directory)
    return _import(directory)
