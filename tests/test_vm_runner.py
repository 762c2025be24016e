"""Fast tests of the VM runner (no qemu, no network)."""
import json
import textwrap
from pathlib import Path

import pytest

from vm import kernels, qemu, report
from vm.plugin import strip_vm_args
from vm.runner import append_for

FAKE_PACKAGES = {
    "linux-image-6.12.94+deb12-cloud-amd64": "6.12.94-1~bpo12+1",
    "linux-image-6.12.107+deb13-cloud-amd64": "6.12.107-1",
    "linux-image-6.18.15+deb13-cloud-amd64": "6.18.15-1~bpo13+1",
    "linux-binary-7.0.4+deb13-cloud-amd64": "7.0.4-1~bpo13+1",
    "linux-image-7.0.4+deb13-cloud-amd64": "7.0.4-1~bpo13+1",
    "linux-binary-7.0.13+deb13-cloud-amd64": "7.0.13-1~bpo13+1",
    "linux-binary-7.3-cloud-amd64": "7.3~rc7-1~exp1",
    "linux-modules-7.3-cloud-amd64": "7.3~rc7-1~exp1",
    "linux-binary-7.3.4+deb13-cloud-amd64": "7.3.4-1~bpo13+1",
    "linux-modules-7.3.4+deb13-cloud-amd64": "7.3.4-1~bpo13+1",
    "linux-binary-unsigned-7.3.4+deb13-cloud-amd64": "7.3.4-1~bpo13+1",
    "linux-image-cloud-amd64": "7.3.4-1~bpo13+1",  # meta package: not a kernel
}
AVAIL = kernels.available(FAKE_PACKAGES)


def releases(spec):
    return [a.release for a in kernels.resolve_versions(spec, AVAIL)]


def test_series_resolves_to_newest_point_release_not_rc():
    assert releases("7.3") == ["7.3.4+deb13-cloud-amd64"]
    assert releases("6.12") == ["6.12.107+deb13-cloud-amd64"]


def test_exact_point_release():
    assert releases("7.0.4") == ["7.0.4+deb13-cloud-amd64"]


def test_binary_preferred_and_modules_fetched():
    a = kernels.resolve_versions("7.3.4", AVAIL)[0]
    assert a.packages == ("linux-binary-7.3.4+deb13-cloud-amd64",
                          "linux-modules-7.3.4+deb13-cloud-amd64")
    assert kernels.resolve_versions("7.0.4", AVAIL)[0].packages == (
        "linux-binary-7.0.4+deb13-cloud-amd64",)
    assert a.versions == ("7.3.4-1~bpo13+1", "7.3.4-1~bpo13+1")  # fetched at exactly these


def test_all_is_newest_of_each_default_series_present():
    assert releases("all") == ["6.12.107+deb13-cloud-amd64", "6.18.15+deb13-cloud-amd64",
                               "7.0.13+deb13-cloud-amd64", "7.3.4+deb13-cloud-amd64"]


def test_unknown_version_lists_nearest():
    with pytest.raises(LookupError) as e:
        kernels.resolve_versions("7.0.5", AVAIL)
    msg = str(e.value)
    assert "7.0.5" in msg and "7.0.4" in msg and "7.0.13" in msg


def test_a_new_kernel_source_is_one_class(tmp_path, monkeypatch):
    """resolve() asks each source in turn; one claiming "url:" values is
    all it takes to add a way of getting kernels."""
    class Url(kernels.Source):
        name = "URL"

        def claims(self, spec):
            return spec.startswith("url:")

        def resolve(self, spec):
            return [kernels.Kernel(spec, "9.9.9-test", packages=[spec])]

        def fetch(self, k, apt):
            k.vmlinuz, k.packages = tmp_path / "vmlinuz", None  # "downloaded"
            return k

    monkeypatch.setattr(kernels, "sources", lambda apt=None: [Url(), kernels.ImageFile()])
    (k,) = kernels.resolve(["url:https://example.invalid/vmlinuz"])
    assert (k.release, k.label) == ("9.9.9-test", "url:https://example.invalid/vmlinuz")
    assert kernels.fetch(k, apt=None).vmlinuz == tmp_path / "vmlinuz"


def test_values_go_to_the_source_that_claims_them(tmp_path):
    srcs = kernels.sources()
    (tmp_path / "tree").mkdir()
    assert isinstance(kernels.source_of(str(tmp_path / "tree"), srcs), kernels.BuildTree)
    assert isinstance(kernels.source_of("/boot/vmlinuz-x", srcs), kernels.ImageFile)
    assert isinstance(kernels.source_of("7.3", srcs), kernels.DebianArchive)
    assert not kernels.is_path("all") and kernels.is_path("./vmlinuz")


def test_version_key_orders_rc_before_release():
    assert kernels.version_key("7.3~rc7") < kernels.version_key("7.3") < kernels.version_key("7.3.4")


def test_strip_vm_args_keeps_pytest_options():
    args = ["--kernel", "7.3", "--kernel=6.18", "-k", "pivot", "--list-kernels", "-n", "2",
            "--vm-timeout", "60", "--kernel-append=panic=-1", "--timeout", "30", "suites/x.py",
            "--results-dir", "out", "-m", "not slow"]
    assert strip_vm_args(args) == ["-k", "pivot", "-n", "2", "--timeout", "30", "suites/x.py",
                                   "-m", "not slow"]


def test_append_selector():
    k = kernels.Kernel("6.18", "6.18.15+deb13-cloud-amd64")
    assert append_for(k, ["6.18:init=/x", "7.3:panic", "loglevel=3"]) == "init=/x loglevel=3"


@pytest.mark.parametrize("line", [
    "[    3.1] Kernel panic - not syncing: Attempted to kill init! exitcode=0x00000100",
    "[    3.1] Oops: general protection fault, probably for non-canonical address",
    "[    3.1] BUG: kernel NULL pointer dereference, address: 0000000000000000",
    "[    3.1] WARNING: CPU: 0 PID: 1 at fs/namespace.c:123 do_thing+0x1/0x2",
    "[    3.1] kernel BUG at mm/slub.c:1!",
])
def test_console_errors_detected(line):
    assert qemu.console_errors(f"[ 0.1] ok line\n{line}\n") == [line]


def test_console_clean_and_own_lines_ignored():
    text = "[ 0.1] Run /init as init process\nmntns-init: FATAL: BUG: not a kernel line\n"
    assert qemu.console_errors(text) == []


def junit(cases: str) -> str:
    return f'<?xml version="1.0"?><testsuites><testsuite name="pytest">{cases}</testsuite></testsuites>'


def test_summary_shape(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(), b.mkdir()
    (a / "junit.xml").write_text(junit(textwrap.dedent("""
        <testcase classname="suites.test_x" name="test_ok" file="suites/test_x.py"/>
        <testcase classname="suites.test_x.TestC" name="test_f[1]" file="suites/test_x.py">
          <failure message="boom"/></testcase>
        <testcase classname="suites.test_x" name="test_s" file="suites/test_x.py">
          <skipped type="pytest.skip" message="no"/></testcase>
        <testcase classname="suites.test_x" name="test_xf" file="suites/test_x.py">
          <skipped type="pytest.xfail" message="known"/></testcase>
        <testcase classname="suites.test_x" name="test_e" file="suites/test_x.py">
          <error message="fixture"/></testcase>
        <testcase classname="suites.test_x" name="test_xp" file="suites/test_x.py">
          <failure message="[XPASS(strict)] known defect on 7.3: fixed"/></testcase>""")))
    (a / "boot.json").write_text(json.dumps({"nullfs_pivot_root": True}))
    (b / "console.log").write_text("[ 1.0] mntns-test: start suites/test_x.py::test_w pid=9\n"
                                   "[ 1.1] BUG: kernel NULL pointer dereference, address: 0000000000000098\n"
                                   "[ 1.1] RIP: 0010:down_write+0x1c/0x50\n")
    runs = {"7.3": {"status": "ok", "accel": "tcg", "boot_s": 4.0, "wall_s": 30.0, "dir": a},
            "6.18": {"status": "error", "accel": "tcg", "boot_s": None, "wall_s": 5.0, "dir": b}}
    s = report.summarize(runs)
    assert set(s) == {"kernels", "tests", "details"}
    assert s["kernels"]["7.3"] == {"status": "ok", "passed": 1, "failed": 1, "skipped": 2,
                                   "errors": 1, "boot_s": 4.0, "wall_s": 30.0, "accel": "tcg",
                                   "nullfs_pivot_root": True, "reason": None, "accel_reason": None,
                                   "init_s": None, "retried": None, "package": None, "xpassed": 1,
                                   "crash": None, "crashes": [], "flaky": 0}
    assert s["kernels"]["6.18"]["status"] == "error"
    crash = s["kernels"]["6.18"]["crash"]
    assert (crash["signature"], crash["tests"]) == (
        "BUG: kernel NULL pointer dereference in down_write", ["suites/test_x.py::test_w"])
    assert s["details"]["7.3"]["suites/test_x.py::TestC::test_f[1]"] == {"time": 0.0, "message": "boom"}
    assert s["details"]["7.3"]["suites/test_x.py::test_ok"] == {"time": 0.0}
    assert s["details"]["7.3"]["suites/test_x.py::test_s"]["message"] == "no"
    assert s["kernels"]["6.18"]["nullfs_pivot_root"] is None
    assert s["tests"] == {
        "suites/test_x.py::TestC::test_f[1]": {"7.3": "FAIL"},
        "suites/test_x.py::test_e": {"7.3": "ERROR"},
        "suites/test_x.py::test_ok": {"7.3": "PASS"},
        "suites/test_x.py::test_s": {"7.3": "SKIP"},
        "suites/test_x.py::test_xf": {"7.3": "XFAIL"},
        "suites/test_x.py::test_xp": {"7.3": "XPASS"},
    }
    assert report.exit_code(s) == 6  # a crashed kernel outranks failed tests
    s["kernels"]["6.18"]["status"] = "infra"
    assert report.exit_code(s) == 1  # failed tests outrank an untested kernel
    s["kernels"]["7.3"]["status"] = "infra"  # its ERROR was a collection failure: no verdict
    assert report.exit_code(s) == 125
    s["kernels"]["7.3"]["status"] = "ok"
    s["kernels"]["6.18"]["status"] = "error"
    report.write(s, tmp_path / "out", {"6.18": "console: Kernel panic"})
    assert json.loads((tmp_path / "out/summary.json").read_text()) == json.loads(json.dumps(s))
    md = (tmp_path / "out/summary.md").read_text()
    assert "| `suites/test_x.py::test_xf` | XFAIL | - |" in md


def test_exit_code_zero_when_all_ok():
    s = {"kernels": {"k": {"status": "ok", "failed": 0, "errors": 0}}, "tests": {}}
    assert report.exit_code(s) == 0


def test_bzimage_release(tmp_path):
    img = bytearray(0x4000)
    img[0x202:0x206] = b"HdrS"
    img[0x20E:0x210] = (0x1000).to_bytes(2, "little")
    img[0x1200:0x1220] = b"7.3.4-test (me@host) #1 SMP\0"
    (tmp_path / "bzImage").write_bytes(bytes(img))
    assert kernels.bzimage_release(tmp_path / "bzImage") == "7.3.4-test"


def test_fixed_known_defect_is_not_green():
    """XPASS(strict): the expectation is out of date; the run must not pass."""
    s = {"kernels": {"k": {"status": "ok", "failed": 0, "errors": 0, "xpassed": 1}}, "tests": {}}
    assert report.exit_code(s) == 1
