"""pytest plugin: while this project's Vagrant machines run, `pytest` on
the host runs the selection inside each of them (one per kernel) instead of
on the live kernel, and reports like the VM runner (vm/report.py).

Import-cheap and inert unless the project's .vagrant directory records a
created machine (a file check; only then is `vagrant status` asked) or
--vagrant is given. Never active with --kernel (the direct runner), inside
a guest (MNTNS_VM=1), with --no-vagrant, or for paths outside suites/ (the
project's own tests run on the host); not by itself in a pytest started by
a running test (PYTEST_CURRENT_TEST set: the project's own tests run the
suites on this kernel)."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

OWN_VALUE_OPTIONS = ["--vagrant-timeout"]
OWN_FLAGS = ["--vagrant", "--no-vagrant", "--live"]
# Options after which pytest does not run tests at all.
NOT_A_RUN = ("help", "version", "collectonly", "markers", "showfixtures", "fixtures_per_test",
             "upstream_parity", "list_kernels")


def pytest_addoption(parser):
    g = parser.getgroup("vagrant", "Vagrant machines (this project's Vagrantfile, one per kernel)")
    g.addoption("--vagrant", action="store_true",
                help="run inside this project's Vagrant machines (the default while one is "
                     "running); a machine that is not running is an ERROR for its kernel")
    g.addoption("--no-vagrant", "--live", dest="no_vagrant", action="store_true",
                help="run on the live kernel even while this project's Vagrant machines run")
    g.addoption("--vagrant-timeout", type=float, default=3600, metavar="S",
                help="wall-clock limit of the run inside each machine (default 3600)")


def created_on_disk(root: Path) -> list[str]:
    """Machines Vagrant has an id for (vagrant-libvirt writes
    .vagrant/machines/NAME/libvirt/id at create, removes it at destroy)."""
    dotfile = Path(root, os.environ.get("VAGRANT_DOTFILE_PATH", ".vagrant"))
    return sorted(p.parent.parent.name for p in dotfile.glob("machines/*/libvirt/id"))


def under_suites(config) -> bool:
    suites = config.rootpath / "suites"
    inv = config.invocation_params.dir
    for arg in config.args:
        path = Path(inv, arg.split("::")[0]).resolve()
        if not (path == suites or suites in path.parents):
            return False
    return True


def eligible(config) -> bool:
    o = config.option
    return not (os.environ.get("MNTNS_VM") == "1" or getattr(o, "kernel", None) or o.no_vagrant
                or any(getattr(o, n, False) for n in NOT_A_RUN) or not under_suites(config))


@pytest.hookimpl(tryfirst=True)
def pytest_cmdline_main(config):
    o = config.option
    if not eligible(config):
        if o.vagrant:
            raise pytest.UsageError("--vagrant runs suites/ inside the machines: not with "
                                    "--kernel, --no-vagrant, or paths outside suites/")
        return None
    if not o.vagrant and ("PYTEST_CURRENT_TEST" in os.environ
                          or not created_on_disk(config.rootpath)):
        return None
    from . import run  # python-vagrant and the runner's modules: only now
    return run.main(config, forced=o.vagrant)


def pytest_report_header(config):
    if config.option.no_vagrant and created_on_disk(config.rootpath):
        names = ", ".join(created_on_disk(config.rootpath))
        return f"vagrant: --live: testing the live kernel, not this project's Vagrant machines ({names})"
    return None
