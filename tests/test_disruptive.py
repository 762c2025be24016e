"""The disruptive marker (harness/disruptive.py): SKIP on a host unless
--disruptive; always run where the VM runner's boot record is."""
import json
import pathlib

import pytest

pytest_plugins = ["pytester"]
REPO = pathlib.Path(__file__).resolve().parent.parent

INNER = """
import pytest

@pytest.mark.disruptive("/dev/md0")
def test_touches_md0():
    pass
"""


@pytest.fixture
def inner(pytester, monkeypatch):
    monkeypatch.delenv("MNTNS_BOOT_RECORD", raising=False)
    pytester.makepyfile(test_inner=INNER)
    pytester.makeconftest(f"import sys; sys.path.insert(0, {str(REPO)!r})\n"
                          "pytest_plugins = ['harness.features', 'harness.isolation', 'harness.disruptive']\n")
    return pytester


def test_host_run_skips_naming_what_it_would_touch(inner):
    result = inner.runpytest_subprocess("-p", "no:cacheprovider", "-rs")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*disruptive: touches /dev/md0 on this host; pass --disruptive*"])


def test_option_runs_it(inner):
    inner.runpytest_subprocess("-p", "no:cacheprovider", "--disruptive").assert_outcomes(passed=1)


def test_vm_guest_runs_it(inner, tmp_path, monkeypatch):
    record = tmp_path / "boot.json"
    record.write_text(json.dumps({"switch_root": "nullfs"}))
    monkeypatch.setenv("MNTNS_BOOT_RECORD", str(record))
    inner.runpytest_subprocess("-p", "no:cacheprovider").assert_outcomes(passed=1)
