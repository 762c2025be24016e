"""python -m vm exec --kernel K [OPTIONS] -- CMD [ARGS...]

Boot kernel K exactly as the test runner does (kernel resolution and
download, pre-flight checks, KVM with its fall-back to TCG, the boot deadline,
the console checks, one retry of a TCG boot that dies before init) and run
CMD as root in the guest, in the current directory, instead of pytest. The
guest sees the host's "/" read-only; /tmp is a tmpfs, and the results
directory is writable. CMD's stdout and stderr are streamed here while it
runs and kept as DIR/<kernel>/stdout.txt and stderr.txt; DIR/<kernel>/exec.json
records the run (kernel, accel and why, status, exit status, wall time).
In the guest, MNTNS_VM_ACCEL says which accelerator the guest runs under
and MNTNS_VM_RESULTS names DIR/<kernel>, the one writable place CMD's files
can go that outlives the guest.

Exit status: CMD's own when the guest ran it to the end; otherwise the
runner's (vm/errors.py): 6 the kernel crashed or hung (panic, oops, WARN,
no init, no power-off within --vm-timeout), 4 usage error, 125
infrastructure failure, 130 interrupted.
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from . import errors, kernels, preflight, qemu, runner

STREAMS = {"stdout.txt": "stdout", "stderr.txt": "stderr"}
STATUS_EXIT = {"error": errors.KERNEL_CRASHED, "infra": errors.INFRA,
               "interrupted": errors.INTERRUPTED}


@dataclass
class ExecVM(qemu.VM):
    """A VM whose guest runs `command` and whose verdict accepts any exit status."""
    command: list[str] = field(default_factory=list)
    accel: str = ""

    def _boot(self, accel: str) -> qemu.VMResult:
        self.accel = accel  # guest.sh is written for each boot, with this boot's accel
        return super()._boot(accel)

    def guest_command(self) -> list[str]:
        r = shlex.quote(str(self.results))
        return ["/bin/sh", "-c", f'exec "$@" </dev/null >{r}/stdout.txt 2>{r}/stderr.txt',
                "sh", "env", f"MNTNS_VM_ACCEL={self.accel}", f"MNTNS_VM_RESULTS={self.results}",
                *self.command]

    def _exit_verdict(self, res: qemu.VMResult):
        return "ok", ""  # the guest ran CMD to its end: its status is CMD's

    def _clean_results(self, *extra: str):
        super()._clean_results("exec.json", *STREAMS, *extra)


class UsageParser(argparse.ArgumentParser):
    def error(self, message):
        raise errors.UsageError(message)


def parse_args(argv: list[str]) -> argparse.Namespace:
    if "--" not in argv:
        raise errors.UsageError("no command: python -m vm exec --kernel K [OPTIONS] -- CMD [ARGS...]")
    own, command = argv[:argv.index("--")], argv[argv.index("--") + 1:]
    if not command:
        raise errors.UsageError("no command after '--'")
    p = UsageParser(prog="python -m vm exec", allow_abbrev=False)
    p.add_argument("--kernel", required=True, metavar="K",
                   help="one kernel: '7.3' (newest 7.3.x), '7.0.4', a vmlinuz/bzImage or a build tree")
    p.add_argument("--results-dir", default="results", metavar="DIR")
    p.add_argument("--mirror", default=None, metavar="URL")
    p.add_argument("--vm-timeout", type=float, default=3600, metavar="S")
    p.add_argument("--vm-boot-timeout", type=float, default=120, metavar="S")
    p.add_argument("--vm-accel", default="auto", choices=["auto", "kvm", "tcg"])
    p.add_argument("--vm-cpu", default=None)
    p.add_argument("--vm-memory", type=int, default=2048, metavar="MiB")
    p.add_argument("--kernel-append", default="", metavar="ARGS")
    opts = p.parse_args(own)
    if opts.kernel == "all":
        raise errors.UsageError("--kernel all: vm exec boots one kernel")
    opts.command = command
    return opts


def main(argv: list[str]) -> int:
    if argv[:1] in (["-h"], ["--help"]):
        print(__doc__)
        return errors.OK
    try:
        return run(parse_args(argv))
    except errors.RunnerError as e:
        say(str(e))
        return e.exit_code


def say(line: str) -> None:
    print(f"vm exec: {line}", file=sys.stderr, flush=True)


def run(opts: argparse.Namespace) -> int:
    cwd = os.getcwd()
    results_dir = Path(cwd, opts.results_dir).resolve()
    fsd = preflight.check(cwd=cwd, results_dir=results_dir, python=sys.executable,
                          need_apt=not kernels.is_path(opts.kernel), mirror=opts.mirror)
    apt = runner._Apt(opts.mirror)
    (kernel,) = runner._resolve([opts.kernel], apt)
    initrd = runner.build_initrd()
    _, smp = runner.parallelism(1, 1, opts.vm_memory)
    vm_opts = qemu.VMOptions(memory_mb=opts.vm_memory, smp=smp, accel=opts.vm_accel, cpu=opts.vm_cpu,
                             timeout_s=opts.vm_timeout, boot_timeout_s=opts.vm_boot_timeout,
                             kernel_append=opts.kernel_append, ktap=False)
    vm = ExecVM(kernel, results_dir / kernel.name, sys.executable, cwd, [], initrd, vm_opts, fsd,
                command=opts.command)
    say(f"{opts.kernel}: booting, {smp} vCPU(s), {opts.vm_memory} MiB; results in {vm.results}")
    started = time.monotonic()
    interrupted = _drive(vm, apt)
    return _report(vm, interrupted, time.monotonic() - started)


def _drive(vm: ExecVM, apt) -> bool:
    """Run the VM in a thread and stream its output here. Ctrl-C or SIGTERM
    stop the guest (qemu runs in its own session) and return True."""
    done = threading.Event()

    def one():
        try:
            runner._one(vm, apt, say)
        finally:
            done.set()

    # Sleep-and-look, not Thread.join(timeout): a KeyboardInterrupt inside
    # join() can leave the thread marked finished while it still runs.
    worker = threading.Thread(target=one, daemon=True)
    followers = {name: Follower(vm.results / name, getattr(sys, s).buffer) for name, s in STREAMS.items()}
    old_term = signal.signal(signal.SIGTERM, runner._interrupt)
    worker.start()
    try:
        while not done.is_set():
            time.sleep(0.25)
            for f in followers.values():
                f.poll()
        return False
    except KeyboardInterrupt:
        say("interrupted: stopping the guest")
        vm.stop.set()
        while not done.is_set():
            time.sleep(0.1)
        return True
    finally:
        signal.signal(signal.SIGTERM, old_term)
        for f in followers.values():
            f.poll()
            f.close()


class Follower:
    """Copies what is appended to a file to `sink` (tail -F: a second boot
    writes the file anew)."""

    def __init__(self, path: Path, sink):
        self.path, self.sink, self.f, self.ino = path, sink, None, None

    def poll(self) -> None:
        try:
            ino = self.path.stat().st_ino
        except OSError:
            return
        if ino != self.ino:
            self.close()
            self.f, self.ino = open(self.path, "rb"), ino
        data = self.f.read()
        if data:
            self.sink.write(data)
            self.sink.flush()

    def close(self) -> None:
        if self.f:
            self.f.close()
            self.f = None


def _report(vm: ExecVM, interrupted: bool, wall_s: float) -> int:
    res = vm.result
    if interrupted:
        res.status = "interrupted"
    record = {"kernel": vm.kernel.name, "package": getattr(vm.kernel, "version", None),
              "command": vm.command, "cwd": vm.cwd, "status": res.status, "reason": res.reason or None,
              "exit_status": res.exit_status if res.status == "ok" else None,
              "accel": res.accel or None, "accel_reason": res.accel_reason or None,
              "retried": res.retried or None, "init_s": res.init_s, "wall_s": round(wall_s, 1)}
    if vm.results.is_dir():
        (vm.results / "exec.json").write_text(json.dumps(record, indent=2) + "\n")
    if res.status == "ok":
        say(f"{vm.kernel.name}: exit status {res.exit_status} ({res.accel}, {wall_s:.0f} s)")
        return res.exit_status
    say(f"{vm.kernel.name}: {res.status.upper()}: {res.reason}")
    err = vm.results / "error.txt"
    if res.status == "error" and err.exists():
        print("\n".join(err.read_text(errors="replace").splitlines()[:40]), file=sys.stderr)
    return STATUS_EXIT.get(res.status, errors.INFRA)
