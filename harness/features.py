"""Feature probes once per session; markers that SKIP (or FAIL) on them.

- @pytest.mark.requires("open_tree_namespace", ...): SKIP naming the missing
  feature. With --strict-features, a feature missing on a kernel whose release
  is at or past the one that introduced it (FIRST_RELEASE) is a FAIL instead.
- @pytest.mark.root: SKIP unless running as root.
- @pytest.mark.userns: SKIP unless user namespaces can be created.
- @pytest.mark.vm_only: SKIP unless the VM runner's boot record is present.
A probe that could not decide ("unknown") never skips: the test runs and
shows what the kernel really did.
"""
import json
import os

import pytest

from helpers import kernel, probes

# Feature -> the first kernel series observed to have it, from the probe
# matrix over Debian's 6.12 ... 7.3 kernels in VMs (docs/features.md).
# Features already present on 6.12, the oldest series tested, are listed as
# 6.12: strict mode only fails kernels at or past an observed release.
FIRST_RELEASE = {
    "open_tree": "6.12",
    "move_mount_set_group": "6.12",
    "move_mount_beneath": "6.12",
    "statmount": "6.12",
    "listmount": "6.12",
    "listmount_reverse": "6.12",
    "mnt_id_req_ns_id": "6.12",
    "ns_get_mntns_id": "6.12",
    "ns_mnt_get_info": "6.12",
    "mount_notify": "6.18",
    "open_tree_attr": "6.18",
    "statmount_supported_mask": "6.18",
    "detached_mount_trees": "6.18",
    "listns": "6.19",
    "nullfs_root": "7.0",
    "knullfs_covers": "7.3",
    "move_mount_beneath_root": "7.1",
    "move_mount_beneath_locked": "7.1",
    "open_tree_namespace": "7.0",
    "statmount_by_fd": "7.0",
    "fsmount_namespace": "7.1",
    "unshare_empty_mntns": "7.1",
    "clone_empty_mntns": "7.1",
}

_KEY = pytest.StashKey[dict]()


def pytest_addoption(parser):
    group = parser.getgroup("mntns", "mount-namespace conformance")
    group.addoption("--strict-features", action="store_true",
                    help="FAIL (not SKIP) when a feature is missing on a kernel release that should have it")
    group.addoption("--features-json", metavar="PATH",
                    help="write the feature probe results as JSON to PATH")


def features(config):
    if _KEY not in config.stash:
        # An xdist worker takes the controller's answers: same kernel, same
        # user, and probing again in every worker costs seconds under TCG.
        given = getattr(config, "workerinput", {}).get("mntns_features")
        config.stash[_KEY] = given if given is not None else probes.run_all()
    return config.stash[_KEY]


@pytest.hookimpl(tryfirst=True)
def pytest_sessionstart(session):
    # Probe once, before any test forks: a probe result cached in a forked
    # test dies with it.
    features(session.config)


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node):
    """xdist controller -> worker: hand over the probe results."""
    node.workerinput["mntns_features"] = features(node.config)


def pytest_configure(config):
    path = config.getoption("--features-json", None)
    if path and not hasattr(config, "workerinput"):
        with open(path, "w") as f:
            json.dump({"release": kernel.release(), "features": features(config)}, f, indent=1)


def pytest_report_header(config):
    found = features(config)
    width = max(map(len, found))
    lines = [f"kernel: {kernel.release()}  euid: {os.geteuid()}"]
    for name, value in found.items():
        shown = {True: "yes", False: "no"}.get(value, value)
        lines.append(f"  {name:<{width}}  {shown}")
    return lines


def _missing(config, name):
    value = features(config).get(name)
    if value is None:
        raise pytest.UsageError(f"unknown feature {name!r}; known: {', '.join(sorted(probes.PROBES))}")
    return value is False


_STRICT = pytest.StashKey[str]()


def _missing_feature(item):
    """The skip reason for the first required feature the kernel lacks;
    under --strict-features a feature missing at or past its first release
    is stashed to FAIL in the call phase instead (FAIL, not ERROR)."""
    config = item.config
    for mark in item.iter_markers("requires"):
        for name in mark.args:
            if not _missing(config, name):
                continue
            since = FIRST_RELEASE.get(name)
            doc = probes.PROBES[name].doc
            if config.getoption("--strict-features") and since and \
                    kernel.version() >= kernel.parse_version(since):
                item.stash[_STRICT] = (f"feature {name} ({doc}) missing on {kernel.release()}, "
                                       f"which is at or past {since}")
                return None
            return f"kernel lacks {name}: {doc}"
    return None


def skip_reason(item):
    """Why this item SKIPs here, decided from markers and probes alone
    (None: it runs). harness.isolation asks before forking, so a case that
    cannot run costs no process and no mount-namespace copy."""
    if item.get_closest_marker("root") and os.geteuid() != 0:
        return "needs root: CAP_SYS_ADMIN in the initial user namespace"
    if item.get_closest_marker("userns") and features(item.config)["userns"] is False:
        return "needs user namespaces: unshare(CLONE_NEWUSER) is refused for this user"
    if item.get_closest_marker("vm_only") and kernel.boot_record() is None:
        return "needs the VM runner's boot record (MNTNS_BOOT_RECORD): run with --kernel"
    return _missing_feature(item)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    reason = skip_reason(item)
    if reason:
        pytest.skip(reason)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_call(item):
    if _STRICT in item.stash:
        pytest.fail(item.stash[_STRICT], pytrace=False)
