"""Features declared once (helpers/probes.py): every release feature has a
first release and a description, docs/features.md is generated from them, the
measurements agree with them; the per-release feature check and the markers:
SKIP naming the feature; --strict-features FAILs only on a kernel at or past
the release that introduced it."""
import json
import pathlib
import re

import pytest

from harness import features
from helpers import kernel, probes

pytest_plugins = ["pytester"]
REPO = pathlib.Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("name", list(probes.FEATURES))
def test_feature_declares_first_release_and_description(name):
    feature = probes.FEATURES[name]
    assert feature.doc.strip(), f"{name}: no description"
    if feature.since is None:
        # Only host settings have no first release; a new kernel feature must
        # say when it appeared (add it here only if it is a setting too).
        assert name in {"userns"}, f"{name}: no first release"
    else:
        assert kernel.parse_version(feature.since) >= (5, 0, 0), f"{name}: since {feature.since!r}"


@pytest.mark.parametrize("since, doc", [(None, "x"), ("", "x"), ("7", "x"), ("7.1", "")])
def test_declaration_without_release_or_description_is_refused(since, doc):
    with pytest.raises(ValueError, match="feature new_probe: since must be a release"):
        probes.probe("new_probe", since=since, doc=doc)


def test_features_md_is_generated_from_the_declarations():
    text = (REPO / "docs" / "features.md").read_text()
    assert text == features.markdown(), \
        "docs/features.md is out of date: python -m harness.features --markdown > docs/features.md"


def test_measurements_agree_with_first_releases():
    """No measured kernel at or past a feature's first release lacks it, and
    a first release past the oldest measured series was measured absent on
    an older kernel (it is the first series observed, not a guess)."""
    kernels = json.loads(features.MEASURED.read_text())["kernels"]
    versions = {rel: kernel.version(rel) for rel in kernels}
    oldest = min(versions.values())[:2]
    for f in probes.FEATURES.values():
        if f.since is None:
            continue
        since = kernel.parse_version(f.since)
        seen = {rel: found[f.name] for rel, found in kernels.items() if f.name in found}
        assert all(v for rel, v in seen.items() if versions[rel] >= since), (f.name, seen)
        if since[:2] > oldest:
            assert any(v is False for rel, v in seen.items() if versions[rel] < since), (f.name, seen)


def test_every_probe_decides_on_this_kernel():
    undecided = {k: v for k, v in probes.run_all().items() if v not in (True, False)}
    assert not undecided


@pytest.mark.parametrize("found, release, verdict, why", [
    (True, "7.3.4+deb13-cloud-amd64", "pass", "nullfs_root present on 7.3.4+deb13-cloud-amd64"),
    (False, "7.0.13+deb13-cloud-amd64", "fail",
     "feature nullfs_root (nullfs beneath the namespace root) missing on 7.0.13+deb13-cloud-amd64, "
     "which is at or past 7.0, its first release (probe: absent)"),
    (False, "6.18.44", "skip", "6.18.44 is older than 7.0, the first release expected to have "
     "nullfs_root: nothing to expect (probe: absent)"),
    (True, "6.18.44", "skip", "(probe: present)"),
    (False, "custom-kernel", "skip", "kernel release 'custom-kernel' is not a version number"),
    ("unknown: statmount: EPERM", "7.3.4", "skip",
     "the probe for nullfs_root could not decide on 7.3.4 (unknown: statmount: EPERM)"),
])
def test_expectation_per_release(found, release, verdict, why):
    got, text = features.expectation("nullfs_root", found, release)
    assert (got, why in text) == (verdict, True), text


@pytest.fixture
def inner(pytester):
    """An inner run on a fake kernel release with a fake 'nullfs_root: no':
    one test that requires nullfs_root, and the per-release feature check."""
    def run(release, *args):
        pytester.makeconftest(
            f"import sys; sys.path.insert(0, {str(REPO)!r})\n"
            "from helpers import kernel, probes\n"
            f"kernel.release = lambda: {release!r}\n"
            "probes.FEATURES = {'nullfs_root': probes.FEATURES['nullfs_root']}\n"
            "probes.run_all = lambda: {'nullfs_root': False}\n"
            "pytest_plugins = ['harness.features']\n")
        pytester.makepyfile(test_f="import pytest\n"
                            "@pytest.mark.requires('nullfs_root')\n"
                            "def test_needs_nullfs(): pass\n")
        check = REPO / "suites" / "features" / "test_release_features.py"
        pytester.makepyfile(test_release_features=check.read_text())
        pytester.makeini("[pytest]\nmarkers =\n  no_fork\n  requires\n")
        return pytester.runpytest_subprocess("-p", "no:cacheprovider", "-rA", *args)
    return run


def test_missing_feature_skips_its_tests_and_fails_the_release_check(inner):
    result = inner("7.3.4")
    result.assert_outcomes(skipped=1, failed=1)
    out = result.stdout.str()
    assert "kernel lacks nullfs_root: nullfs beneath the namespace root" in out
    assert "FAILED test_release_features.py::test_release_has_feature[nullfs_root]" in out
    assert ("\nfeature nullfs_root (nullfs beneath the namespace root) missing on 7.3.4, which is "
            "at or past 7.0, its first release (probe: absent)\n") in out


def test_strict_mode_fails_missing_feature_on_release_that_should_have_it(inner):
    result = inner("7.3.4", "--strict-features")
    result.assert_outcomes(failed=2)
    out = result.stdout.str()
    assert "FAILED test_f.py::test_needs_nullfs" in out
    assert re.search(r"test_needs_nullfs _+\nfeature nullfs_root \(nullfs beneath the namespace "
                     r"root\) missing on 7\.3\.4", out)


@pytest.mark.parametrize("release", ["6.18.44", "custom-kernel"])
def test_older_or_unparsable_release_skips_even_in_strict_mode(inner, release):
    inner(release, "--strict-features").assert_outcomes(skipped=2)


@pytest.mark.parametrize("data", [
    {"7.4.1+deb14-cloud-amd64": {"nullfs_root": True, "listns": "unknown: EPERM"}},
    {"release": "7.4.1+deb14-cloud-amd64", "features": {"nullfs_root": True, "listns": "unknown: x"}},
])
def test_add_measured_merges_yes_no_answers_in_release_order(tmp_path, data):
    into = tmp_path / "measured.json"
    into.write_text(json.dumps({"how": "h", "kernels": {"7.3.4": {"nullfs_root": True},
                                                        "6.12.1": {"nullfs_root": False}}}))
    given = tmp_path / "features.json"
    given.write_text(json.dumps(data))
    features.add_measured(given, into)
    kernels = json.loads(into.read_text())["kernels"]
    assert list(kernels) == ["6.12.1", "7.3.4", "7.4.1+deb14-cloud-amd64"]
    assert kernels["7.4.1+deb14-cloud-amd64"] == {"nullfs_root": True}
