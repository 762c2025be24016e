"""Each feature the running release should have, checked on every run.

A kernel at or past a feature's first release (helpers/probes.py, `since`)
whose probe finds the feature missing FAILs here, naming the feature, the
release and the probe's answer: a regression that gives the old kernel's
answer (often EINVAL) to a probe is a FAIL of this check, not only a
directory of SKIPs. Older releases, releases that are not a version number
and probes that could not decide SKIP with the reason.
"""
import pytest

from helpers.probes import FEATURES

# Reads the probe results taken once per session: nothing to isolate.
pytestmark = pytest.mark.no_fork


@pytest.mark.parametrize("name", [f.name for f in FEATURES.values() if f.since])
def test_release_has_feature(name, feature_expectation):
    verdict, why = feature_expectation(name)
    if verdict == "skip":
        pytest.skip(why)
    if verdict == "fail":
        pytest.fail(why, pytrace=False)
    assert verdict == "pass", why
