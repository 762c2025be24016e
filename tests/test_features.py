"""Feature markers: SKIP naming the feature; --strict-features FAILs only on a
kernel at or past the release that introduced it."""
import pathlib

import pytest

from harness.features import FIRST_RELEASE
from helpers import probes

pytest_plugins = ["pytester"]
REPO = pathlib.Path(__file__).resolve().parent.parent


def test_first_release_table_names_real_probes():
    assert set(FIRST_RELEASE) <= set(probes.PROBES)


def test_every_probe_decides_on_this_kernel():
    undecided = {k: v for k, v in probes.run_all().items() if v not in (True, False)}
    assert not undecided


@pytest.fixture
def inner(pytester):
    """An inner run on a fake kernel release with a fake 'nullfs_root: no'."""
    def run(release, *args):
        pytester.makeconftest(
            f"import sys; sys.path.insert(0, {str(REPO)!r})\n"
            "from helpers import kernel, probes\n"
            f"kernel.version = lambda rel=None: {release!r}\n"
            "kernel.release = lambda: 'fake'\n"
            "probes.PROBES = {'nullfs_root': probes.PROBES['nullfs_root']}\n"
            "probes.run_all = lambda: {'nullfs_root': False}\n"
            "pytest_plugins = ['harness.features']\n")
        pytester.makepyfile(test_f="import pytest\n"
                            "@pytest.mark.requires('nullfs_root')\n"
                            "def test_needs_nullfs(): pass\n")
        return pytester.runpytest_subprocess("-p", "no:cacheprovider", "-rA", *args)
    return run


def test_missing_feature_skips_with_its_name(inner):
    result = inner((7, 3, 4))
    result.assert_outcomes(skipped=1)
    assert "kernel lacks nullfs_root" in result.stdout.str()


def test_strict_mode_fails_missing_feature_on_release_that_should_have_it(inner):
    result = inner((7, 3, 4), "--strict-features")
    result.assert_outcomes(failed=1)
    assert "missing on fake, which is at or past 7.0" in result.stdout.str()


def test_strict_mode_still_skips_on_older_release(inner):
    inner((6, 18, 44), "--strict-features").assert_outcomes(skipped=1)
