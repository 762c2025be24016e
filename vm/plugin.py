"""pytest entry point of the VM runner: `pytest --kernel 7.3 --kernel 6.18 ...`
runs the same pytest selection inside one VM per kernel INSTEAD of on the
host.  Import-cheap and inert unless --kernel / --list-kernels is given."""
from __future__ import annotations

import pytest

# VM-runner options that take a value; they are removed from the arguments
# handed to the guest's pytest (everything else -- -k, -m, -n, --timeout,
# paths -- is passed through unchanged).
VALUE_OPTIONS = ["--kernel", "--results-dir", "--mirror", "--vm-timeout", "--vm-boot-timeout",
                 "--kernel-append", "--vm-cpu", "--vm-accel", "--vm-jobs", "--vm-memory",
                 # reports: with --kernel they name the merged result of all
                 # kernels; each guest writes its own into its results dir
                 "--junitxml", "--junit-xml", "--ktap", "--features-json", "--baseline",
                 "--vm-user"]
FLAG_OPTIONS = ["--list-kernels"]


def pytest_addoption(parser):
    g = parser.getgroup("vm", "VM runner (boot kernels in qemu and run the selection inside)")
    g.addoption("--kernel", action="append", default=[], metavar="K",
                help="run inside a VM of kernel K instead of on the host (repeatable): a version "
                     "('7.3' = newest 7.3.x, '7.0.4' = exact), 'all', a vmlinuz/bzImage path or a "
                     "kernel build tree")
    g.addoption("--list-kernels", action="store_true", help="list the packaged kernels and exit")
    g.addoption("--results-dir", default="results", help="where per-kernel results and the summary go")
    g.addoption("--mirror", default=None, metavar="URL",
                help="Debian archive URL (default: the one in the machine's apt sources)")
    g.addoption("--vm-timeout", type=float, default=3600, metavar="S",
                help="wall-clock limit per kernel, boot included (default 3600)")
    g.addoption("--vm-boot-timeout", type=float, default=120, metavar="S",
                help="a kernel that has not reached init this long after qemu started is an "
                     "ERROR (default 120)")
    g.addoption("--kernel-append", action="append", default=[], metavar="[K:]ARGS",
                help="extra kernel command line (repeatable); 'K:ARGS' applies only to the "
                     "kernel given as --kernel K (or whose release starts with K)")
    g.addoption("--vm-cpu", default=None, help="qemu -cpu model (default: vm/qemu.py DEFAULT_CPU)")
    g.addoption("--vm-accel", default="auto", choices=["auto", "kvm", "tcg"],
                help="auto tries KVM and falls back to TCG")
    g.addoption("--vm-jobs", type=int, default=None, help="VMs at once (default: from cores/RAM)")
    g.addoption("--vm-memory", type=int, default=2048, metavar="MiB", help="guest RAM (default 2048)")
    g.addoption("--vm-user", default=None, metavar="USER", type=_uid,
                help="run the guest's pytest as USER ('nobody' or a uid; its gid = uid) without "
                     "capabilities: the suite as an ordinary user, on the guest's kernel")
    g.addoption("--baseline", metavar="SUMMARY", default=None,
                help="an earlier run's summary.json (or results dir): exit non-zero only for "
                     "regressions against it (python -m vm diff; written to results/diff.json)")


def _uid(value: str) -> int:
    if value == "nobody":
        return 65534
    if value.isdigit() and int(value) > 0:
        return int(value)
    raise ValueError(f"--vm-user: 'nobody' or a non-zero uid, not {value!r}")


def strip_vm_args(args) -> list[str]:
    out, skip = [], False
    for a in args:
        if skip:
            skip = False
        elif a in VALUE_OPTIONS:
            skip = True
        elif a in FLAG_OPTIONS or any(a.startswith(o + "=") for o in VALUE_OPTIONS):
            pass
        else:
            out.append(a)
    return out


def _has_option(config, dest: str) -> bool:
    try:
        config.getoption(dest)
        return True
    except ValueError:
        return False


@pytest.hookimpl(tryfirst=True)
def pytest_cmdline_main(config):
    o = config.option
    if not (o.kernel or o.list_kernels):
        return None
    from . import qemu, runner  # heavy imports only when actually used
    if o.list_kernels:
        return runner.list_kernels(o.mirror)
    ktap = _has_option(config, "ktap")
    opts = runner.RunOptions(
        results_dir=o.results_dir, mirror=o.mirror, jobs=o.vm_jobs,
        vm=qemu.VMOptions(memory_mb=o.vm_memory, accel=o.vm_accel, cpu=o.vm_cpu,
                          timeout_s=o.vm_timeout, boot_timeout_s=o.vm_boot_timeout,
                          user=o.vm_user),
        kernel_append=o.kernel_append, junitxml=o.xmlpath, baseline=o.baseline,
        ktap=config.getoption("ktap") if ktap else None,
        features_json=config.getoption("features_json") if ktap else None)
    return runner.run(o.kernel, strip_vm_args(config.invocation_params.args),
                      str(config.invocation_params.dir), opts, ktap=ktap)
