"""Known kernel defects -> strict expected failures, for the project's own runs.

--known-defects FILE (TOML) lists cases that fail because a given kernel
really misbehaves, with the evidence. On a matching kernel they become
xfail(strict=True): still visible, and a fixed kernel shows up as XPASS(strict)
= FAIL. A plain `pytest` run, as distro QA uses it, ignores the list and shows
the FAILs.

    [[defect]]
    test = "suites/x/test_y.py::test_z"   # nodeid, or its prefix before "["
    kernels = ["6.18"]                    # series "6.18" or point release "6.18.44"
    reason = "..."
    evidence = "..."
    run = false        # optional: the case crashes or wedges the kernel (oops,
                       # deadlock): report it as an expected failure, NOTRUN
"""
import tomllib

import pytest

from helpers import kernel


def pytest_addoption(parser):
    parser.getgroup("mntns").addoption(
        "--known-defects", metavar="FILE",
        help="TOML list of known kernel defects to run as strict expected failures")


def _matches_kernel(spec, version):
    wanted = kernel.parse_version(spec)
    return version[:len(spec.split("."))] == wanted[:len(spec.split("."))]


def load(path, version=None):
    version = version or kernel.version()
    with open(path, "rb") as f:
        entries = tomllib.load(f).get("defect", [])
    return [e for e in entries if any(_matches_kernel(k, version) for k in e["kernels"])]


def pytest_collection_modifyitems(config, items):
    path = config.getoption("--known-defects")
    if not path:
        return
    for defect in load(path):
        marker = pytest.mark.xfail(strict=True, run=defect.get("run", True), reason=f"known defect on {kernel.release()}: "
                                   f"{defect['reason']} (evidence: {defect['evidence']})")
        for item in items:
            if item.nodeid == defect["test"] or item.nodeid.startswith(defect["test"] + "["):
                item.add_marker(marker)
