"""Feature probes once per session; markers that SKIP (or FAIL) on them; the
per-release feature check; docs/features.md.

Each feature is declared once, in helpers/probes.py: its probe, the first
release expected to have it (`since`) and what it is.
- @pytest.mark.requires("open_tree_namespace", ...): SKIP naming the missing
  feature. With --strict-features, a feature missing on a kernel whose release
  is at or past its `since` is a FAIL instead.
- The `feature_expectation` fixture (suites/features): one case per feature
  that FAILs when the feature is absent on a release at or past its `since`,
  on every run, so such a kernel is never just a directory of SKIPs.
- @pytest.mark.root: SKIP unless running as root.
- @pytest.mark.userns: SKIP unless user namespaces can be created.
- @pytest.mark.vm_only: SKIP unless the VM runner's boot record is present.
A probe that could not decide ("unknown") never skips: the test runs and
shows what the kernel really did.

`python -m harness.features --markdown > docs/features.md` writes the feature
table from the declarations and docs/features-measured.json.
"""
import argparse
import json
import os
import pathlib
import sys

import pytest

from helpers import kernel, probes

MEASURED = pathlib.Path(__file__).resolve().parent.parent / "docs" / "features-measured.json"

_KEY = pytest.StashKey[dict]()


def pytest_addoption(parser):
    group = parser.getgroup("mntns", "mount-namespace conformance")
    group.addoption("--strict-features", action="store_true",
                    help="FAIL (not SKIP) the tests that require a feature missing on a release at or "
                         "past its first release (docs/features.md)")
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
        raise pytest.UsageError(f"unknown feature {name!r}; known: {', '.join(sorted(probes.FEATURES))}")
    return value is False


def _version(release):
    try:
        return kernel.version(release)
    except ValueError:
        return None


def expectation(name, found, release):
    """(verdict, why): does the probe's answer `found` (True, False or
    'unknown: ...') agree with what `release` should have? verdict is "pass",
    "fail" (absent at or past the feature's first release) or "skip" (nothing
    to expect, or a probe that could not decide)."""
    feature = probes.FEATURES[name]
    shown = {True: "present", False: "absent"}.get(found, found)
    version = _version(release)
    if version is None:
        return "skip", (f"kernel release {release!r} is not a version number: cannot tell whether "
                        f"it should have {name} (first release {feature.since}); probe: {shown}")
    if version < kernel.parse_version(feature.since):
        return "skip", (f"{release} is older than {feature.since}, the first release expected "
                        f"to have {name}: nothing to expect (probe: {shown})")
    if found is True:
        return "pass", f"{name} present on {release} (first release {feature.since})"
    if found is False:
        return "fail", (f"feature {name} ({feature.doc}) missing on {release}, which is at or "
                        f"past {feature.since}, its first release (probe: absent)")
    return "skip", (f"the probe for {name} could not decide on {release} ({found}); "
                    "the tests that require it run anyway")


@pytest.fixture
def feature_expectation(request):
    """name -> (verdict, why) for the running kernel (see expectation)."""
    found = features(request.config)
    return lambda name: expectation(name, found[name], kernel.release())


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
            feature = probes.FEATURES[name]
            if config.getoption("--strict-features") and feature.since:
                verdict, why = expectation(name, False, kernel.release())
                if verdict == "fail":
                    item.stash[_STRICT] = why
                    return None
            return f"kernel lacks {name}: {feature.doc}"
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


def markdown():
    """docs/features.md: the declarations in helpers/probes.py, then the
    measured matrix (docs/features-measured.json) they were taken from."""
    measured = json.loads(MEASURED.read_text())
    kernels = measured["kernels"]
    out = ["# Kernel features", "",
           "Generated by `python -m harness.features --markdown > docs/features.md` from the",
           "declarations in `helpers/probes.py` and the measurements in",
           "`docs/features-measured.json`; `tests/test_features.py` fails when it is out of date.",
           "",
           "*First release* is the first series in which the suite measured the feature on",
           "Debian's kernels (6.12 for anything present on 6.12, the oldest series tested;",
           "the later series for a feature that appeared between two tested ones). It drives:",
           "",
           "- `suites/features/test_release_features.py::test_release_has_feature[<feature>]`, every run:",
           "  PASS when the probe finds the feature on a release at or past its first release,",
           "  FAIL when it finds it missing there, SKIP (with the reason) on an older release, a",
           "  release that is not a version number, or a probe that could not decide;",
           "- `--strict-features`: a test that `requires` a feature missing on such a release",
           "  FAILs instead of SKIPping.",
           "",
           "| feature | first release | what it is |", "|---|---|---|"]
    settings = []
    for f in probes.FEATURES.values():
        if f.since is None:
            settings.append(f"- `{f.name}`: {f.doc} (a setting of the host, not of the release)")
        else:
            out.append(f"| `{f.name}` | {f.since} | {f.doc} |")
    out += ["", "Not tied to a release (probed, used by markers, never expected):", "", *settings,
            "", "## Measured on Debian's kernels", "", measured["how"], "",
            "| feature | " + " | ".join(kernels) + " |", "|---" * (len(kernels) + 1) + "|"]
    for name in sorted(probes.FEATURES):
        cells = [{True: "yes", False: "no"}.get(k.get(name), "-") for k in kernels.values()]
        out.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(out) + "\n"


def add_measured(path, into=MEASURED):
    """Merge probe results into docs/features-measured.json: a VM run's
    merged features.json ({kernel: {feature: answer}}) or one kernel's
    --features-json ({"release": ..., "features": {...}}). Only yes/no
    answers are kept; a kernel measured again is updated feature by feature."""
    data = json.loads(pathlib.Path(path).read_text())
    if isinstance(data.get("features"), dict):
        data = {data["release"]: data["features"]}
    measured = json.loads(into.read_text())
    for release, found in data.items():
        kernel.version(release)  # a kernel name, not a results directory
        row = measured["kernels"].setdefault(release, {})
        row.update({k: v for k, v in found.items() if isinstance(v, bool)})
    measured["kernels"] = dict(sorted(measured["kernels"].items(),
                                      key=lambda kv: kernel.version(kv[0])))
    into.write_text(json.dumps(measured, indent=1) + "\n")


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m harness.features",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--markdown", action="store_true", help="print docs/features.md")
    parser.add_argument("--add-measured", metavar="JSON",
                        help="merge probe results (pytest --features-json=JSON, with or without "
                             "--kernel) into docs/features-measured.json")
    args = parser.parse_args(argv)
    if not (args.markdown or args.add_measured):
        parser.error("nothing to do: use --markdown or --add-measured JSON")
    if args.add_measured:
        try:
            add_measured(args.add_measured)
        except (OSError, ValueError, KeyError, AttributeError) as e:
            parser.error(f"{args.add_measured}: not a features.json: {e}")
    if args.markdown:
        sys.stdout.write(markdown())


if __name__ == "__main__":
    main()
