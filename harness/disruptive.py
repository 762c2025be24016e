"""The `disruptive` marker (the model is the kernel's selftests/net/lib/py
ksft_disruptive): a case that touches host-global devices or registrations
(zram0, md0, a zloop device, a configfs USB gadget, a binfmt_misc entry)
SKIPs on a host run, saying what it would touch, unless --disruptive is
given. Inside the VM runner's guests (the boot record is there:
helpers.kernel.boot_record()) it always runs: the machine is disposable.

    @pytest.mark.disruptive("/sys/block/zram0")
"""
import pytest

from helpers import kernel


def pytest_addoption(parser):
    parser.getgroup("mntns").addoption(
        "--disruptive", action="store_true",
        help="also run the cases marked disruptive (they touch host-global devices or "
             "registrations); VM guests always run them")


def runs_disruptive(config):
    return config.getoption("--disruptive") or kernel.boot_record() is not None


def skip_reason(mark):
    what = ", ".join(mark.args) or "host-global state"
    return f"disruptive: touches {what} on this host; pass --disruptive to run it (VM guests always do)"


def pytest_collection_modifyitems(config, items):
    if runs_disruptive(config):
        return
    for item in items:
        mark = item.get_closest_marker("disruptive")
        if mark is not None:
            item.add_marker(pytest.mark.skip(reason=skip_reason(mark)))
