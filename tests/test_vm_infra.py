"""Fast tests of the VM runner's infrastructure (no qemu, no network):
virtiofsd discovery and command lines, preflight checks, the kernel caches
keyed by what they hold, merged JUnit/KTAP reports and exit codes."""
import os
import struct
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from vm import apt, errors, initramfs, kernels, preflight, report, virtiofsd

# --- virtiofsd -------------------------------------------------------------

C_HELP = "usage: virtiofsd [options]\n    -o source=PATH             shared directory tree\n"
RUST_HELP = ("Usage: virtiofsd --shared-dir <SHARED_DIR> --socket-path <SOCKET_PATH> [OPTIONS]\n"
             "      --announce-submounts     Tell the guest which directories are mount points [default]\n"
             "      --no-announce-submounts  Do not tell the guest which directories are mount points\n")


def test_c_command_line():
    v = virtiofsd.Virtiofsd("/usr/lib/qemu/virtiofsd", "c")
    assert v.argv("/t/root.sock", "/t/root", "always") == [
        "/usr/lib/qemu/virtiofsd", "--socket-path=/t/root.sock", "-o", "source=/t/root",
        "-o", "sandbox=chroot", "-o", "cache=always"]
    assert v.argv("/t/r.sock", "/res", "none")[-1] == "cache=none"


def test_rust_command_line_maps_cache_names():
    v = virtiofsd.Virtiofsd("/usr/libexec/virtiofsd", "rust")
    assert v.argv("/t/r.sock", "/res", "none") == [
        "/usr/libexec/virtiofsd", "--socket-path", "/t/r.sock", "--shared-dir", "/res",
        "--sandbox", "chroot", "--cache", "never"]
    assert v.argv("/t/r.sock", "/t/root", "always")[-1] == "always"


def test_rust_that_announces_submounts_is_told_not_to():
    v = virtiofsd.Virtiofsd("/usr/libexec/virtiofsd", "rust", announces_submounts=True)
    assert v.argv("/s", "/d", "always")[-1] == "--no-announce-submounts"


def test_bad_cache_and_comma_path():
    with pytest.raises(ValueError):
        virtiofsd.Virtiofsd("/v", "rust").argv("/s", "/d", "never")
    with pytest.raises(errors.UsageError, match="','"):
        virtiofsd.Virtiofsd("/v", "c").argv("/s", "/a,b", "none")
    assert "/a,b" in virtiofsd.Virtiofsd("/v", "rust").argv("/s", "/a,b", "none")


@pytest.mark.parametrize("path, text, kind", [
    ("/usr/libexec/virtiofsd", C_HELP, "c"),       # what it says beats where it is
    ("/usr/lib/qemu/virtiofsd", RUST_HELP, "rust"),
    ("/x/virtiofsd", "virtiofsd version 7.2.22\nCopyright (c) 2003-2022 Fabrice Bellard and the QEMU Project", "c"),
    ("/usr/lib/qemu/virtiofsd", "", "c"),          # says nothing: the path decides
    ("/usr/libexec/virtiofsd", "", "rust"),
])
def test_kind_detection(path, text, kind):
    assert virtiofsd.kind_of(path, text) == kind


def fake_binary(path: Path, help_text: str) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"#!/bin/sh\ncat <<'EOF'\n{help_text}EOF\n")
    path.chmod(0o755)
    return str(path)


def test_find_prefers_c_then_rust_then_path(tmp_path, monkeypatch):
    c = fake_binary(tmp_path / "qemu/virtiofsd", C_HELP)
    rust = fake_binary(tmp_path / "libexec/virtiofsd", RUST_HELP)
    monkeypatch.setattr(virtiofsd, "C_PATH", c)
    monkeypatch.setattr(virtiofsd, "RUST_PATHS", [rust])
    monkeypatch.setattr(virtiofsd.shutil, "which", lambda name: None)
    assert virtiofsd.find() == virtiofsd.Virtiofsd(c, "c", False)
    monkeypatch.setattr(virtiofsd, "C_PATH", str(tmp_path / "absent"))
    assert virtiofsd.find() == virtiofsd.Virtiofsd(rust, "rust", True)
    monkeypatch.setattr(virtiofsd, "RUST_PATHS", [])
    on_path = fake_binary(tmp_path / "bin/virtiofsd", RUST_HELP.replace("--no-announce-submounts", ""))
    monkeypatch.setattr(virtiofsd.shutil, "which", lambda name: on_path)
    assert virtiofsd.find() == virtiofsd.Virtiofsd(on_path, "rust", False)


def test_find_nothing_names_the_package(tmp_path, monkeypatch):
    monkeypatch.setattr(virtiofsd, "candidates", lambda: [])
    monkeypatch.setattr(virtiofsd, "package_hint", lambda: "virtiofsd")
    with pytest.raises(errors.InfraError) as e:
        virtiofsd.find()
    assert str(e.value) == "virtiofsd not found: apt-get install virtiofsd"
    assert e.value.exit_code == errors.INFRA == 125


@pytest.mark.parametrize("os_release, package", [
    ('ID=debian\nVERSION_ID="12"\n', "qemu-system-x86"),
    ('ID=debian\nVERSION_ID="13"\n', "virtiofsd"),
    ("ID=debian\n", "virtiofsd"),                 # testing/sid: no VERSION_ID
    ('ID=ubuntu\nVERSION_ID="24.04"\n', "virtiofsd"),
])
def test_package_hint(tmp_path, os_release, package):
    (tmp_path / "os-release").write_text(os_release)
    assert virtiofsd.package_hint(str(tmp_path / "os-release")).split()[0] == package


# --- preflight -------------------------------------------------------------

def make_elf(path: Path, *ptypes: int, elf_class: int = 2) -> Path:
    """A minimal little-endian ELF file whose program headers have these types."""
    if elf_class == 2:
        head = bytearray(64)
        entsize, phoff = 56, 64
        struct.pack_into("<Q", head, 32, phoff)
        struct.pack_into("<HH", head, 54, entsize, len(ptypes))
    else:
        head = bytearray(52)
        entsize, phoff = 32, 52
        struct.pack_into("<I", head, 28, phoff)
        struct.pack_into("<HH", head, 42, entsize, len(ptypes))
    head[:6] = b"\x7fELF" + bytes([elf_class, 1])
    table = b"".join(struct.pack("<I", t) + bytes(entsize - 4) for t in ptypes)
    path.write_bytes(bytes(head) + table)
    return path


@pytest.mark.parametrize("elf_class", [1, 2])
def test_static_elf(tmp_path, elf_class):
    assert preflight.is_static_elf(make_elf(tmp_path / "s", 1, 1, 4, elf_class=elf_class))
    assert not preflight.is_static_elf(make_elf(tmp_path / "d", 6, 3, 1, elf_class=elf_class))
    (tmp_path / "sh").write_text("#!/bin/sh\n")
    assert not preflight.is_static_elf(tmp_path / "sh")


@pytest.fixture
def host(tmp_path, monkeypatch):
    """A machine on which every preflight check passes; tests break one thing."""
    monkeypatch.setattr(preflight.os, "geteuid", lambda: 0)
    tools = {"qemu-system-x86_64", "cpio", "apt-get", "dpkg-deb"}
    monkeypatch.setattr(preflight.shutil, "which", lambda n: f"/usr/bin/{n}" if n in tools else None)
    monkeypatch.setattr(virtiofsd, "find", lambda: virtiofsd.Virtiofsd("/usr/lib/qemu/virtiofsd", "c"))
    monkeypatch.setattr(initramfs, "BUSYBOX", make_elf(tmp_path / "busybox", 1))
    (tmp_path / "keyring.gpg").write_text("")
    monkeypatch.setattr(apt, "KEYRING", str(tmp_path / "keyring.gpg"))
    monkeypatch.setattr(apt, "system_mirror", lambda: "http://deb.debian.org/debian")
    (tmp_path / "proj").mkdir()
    kw = dict(cwd=str(tmp_path / "proj"), results_dir=tmp_path / "proj/results",
              python="/srv/venv/bin/python", need_apt=True, mirror=None)
    return tools, kw


def failure(kw, kind=errors.RunnerError) -> str:
    with pytest.raises(kind) as e:
        preflight.check(**kw)
    msg = str(e.value)
    assert "\n" not in msg  # one line
    return msg


def test_preflight_passes(host):
    _, kw = host
    preflight.check(**kw)
    assert kw["results_dir"].is_dir()


def test_not_root_first(host, monkeypatch):
    tools, kw = host
    monkeypatch.setattr(preflight.os, "geteuid", lambda: 1000)
    tools.clear()  # root is checked before anything else
    msg = failure(kw, errors.UsageError)
    assert "root" in msg and "sudo" in msg


@pytest.mark.parametrize("tool, package", [
    ("qemu-system-x86_64", "apt-get install qemu-system-x86"),
    ("cpio", "apt-get install cpio"),
    ("apt-get", "apt-get install apt"),
    ("dpkg-deb", "apt-get install dpkg"),
])
def test_missing_tool_names_its_package(host, tool, package):
    tools, kw = host
    tools.discard(tool)
    msg = failure(kw, errors.InfraError)
    assert msg == f"{tool} not found: {package}"


def test_apt_tools_only_when_needed(host, monkeypatch):
    tools, kw = host
    tools -= {"apt-get", "dpkg-deb"}
    monkeypatch.setattr(apt, "system_mirror", lambda: (_ for _ in ()).throw(RuntimeError("none")))
    preflight.check(**{**kw, "need_apt": False})


def test_virtiofsd_missing(host, monkeypatch):
    _, kw = host
    monkeypatch.setattr(virtiofsd, "find", lambda: (_ for _ in ()).throw(
        errors.InfraError("virtiofsd not found: apt-get install virtiofsd")))
    assert "apt-get install virtiofsd" in failure(kw, errors.InfraError)


def test_busybox_missing_or_dynamic(host, monkeypatch, tmp_path):
    _, kw = host
    monkeypatch.setattr(initramfs, "BUSYBOX", tmp_path / "nonexistent")
    assert "apt-get install busybox-static" in failure(kw, errors.InfraError)
    monkeypatch.setattr(initramfs, "BUSYBOX", make_elf(tmp_path / "dyn", 6, 3, 1))
    msg = failure(kw, errors.InfraError)
    assert "not statically linked" in msg and "busybox-static" in msg


def test_keyring_missing(host, monkeypatch, tmp_path):
    _, kw = host
    monkeypatch.setattr(apt, "KEYRING", str(tmp_path / "none.gpg"))
    assert "apt-get install debian-archive-keyring" in failure(kw, errors.InfraError)


def test_no_mirror_asks_for_one(host, monkeypatch):
    _, kw = host
    monkeypatch.setattr(apt, "system_mirror", lambda: (_ for _ in ()).throw(RuntimeError("none")))
    assert "--mirror URL" in failure(kw, errors.UsageError)
    preflight.check(**{**kw, "mirror": "http://mirror.example/debian"})


@pytest.mark.parametrize("path, prefix", [
    ("/proc/1/root/srv/x", "/proc"), ("/sys/fs/x", "/sys"), ("/dev/x", "/dev"), ("/dev", "/dev"),
    ("/dev/shm/x", None), ("/tmp/x", None), ("/var/tmp/x", None), ("/run/user/0/x", None),
    ("/device/x", None), ("/system", None), ("/root/x", None),
])
def test_guest_private(path, prefix):
    assert preflight.guest_private(path) == prefix


def test_guest_private_follows_symlinks(tmp_path):
    (tmp_path / "link").symlink_to("/sys/kernel")
    assert preflight.guest_private(str(tmp_path / "link")) == "/sys"


def test_project_under_proc_refused(host):
    _, kw = host
    msg = failure({**kw, "cwd": "/proc/self/cwd/proj"}, errors.UsageError)
    assert msg.startswith("the project directory /proc/self/cwd/proj is under /proc")
    assert "/root or /srv" in msg


def test_venv_and_interpreter_checked(host, tmp_path):
    _, kw = host
    msg = failure({**kw, "python": "/sys/venv/bin/python"}, errors.UsageError)
    assert msg.startswith("the Python environment /sys/venv is under /sys")
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin/python").symlink_to("/dev/python3")  # interpreter resolves into /dev
    msg = failure({**kw, "python": str(tmp_path / "bin/python")}, errors.UsageError)
    assert msg.startswith("the Python interpreter /dev/python3 is under /dev")


def test_results_dir_refused_or_unwritable(host, tmp_path):
    _, kw = host
    msg = failure({**kw, "results_dir": Path("/dev/results")}, errors.UsageError)
    assert "under /dev" in msg and "--results-dir" in msg
    (tmp_path / "file").write_text("")
    msg = failure({**kw, "results_dir": tmp_path / "file/results"}, errors.UsageError)
    assert "cannot be written" in msg and "--results-dir" in msg


def test_results_dir_with_comma_needs_rust_virtiofsd(host, monkeypatch, tmp_path):
    _, kw = host
    kw["results_dir"] = tmp_path / "a,b"
    assert "','" in failure(kw, errors.UsageError)
    monkeypatch.setattr(virtiofsd, "find", lambda: virtiofsd.Virtiofsd("/usr/libexec/virtiofsd", "rust"))
    preflight.check(**kw)


def test_preflight_error_exit_codes():
    assert errors.UsageError("x").exit_code == 4 and errors.InfraError("x").exit_code == 125


# --- kernel caches keyed by what they hold ----------------------------------

REL = "7.3.4+deb13-cloud-amd64"
BIN, MODS = f"linux-binary-{REL}", f"linux-modules-{REL}"
V1, V2 = "7.3.4-1~bpo13+1", "7.3.4-1~bpo13+2"  # a respin: same release, new version


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setattr(kernels, "depmod", lambda root, rel: None)
    return kernels.kernels_dir()


def extract(root: Path, release: str = REL) -> Path:
    (root / "boot").mkdir(parents=True)
    (root / f"boot/vmlinuz-{release}").write_text("image")
    (root / ".complete").touch()
    return root


class FakeApt:
    def __init__(self, version=V2, error=None):
        self.packages = {BIN: version, MODS: version}
        self.error, self.downloaded = error, []

    def kernel_packages(self):
        if self.error:
            raise RuntimeError(self.error)
        return self.packages

    def download(self, pins):
        self.downloaded += pins
        return [Path(f"/fake/{apt.deb_name(*p.split('=', 1))}") for p in pins]


def test_name_is_release_or_release_and_digest():
    assert kernels.Kernel("7.3", REL, version=V1).name == REL
    assert kernels.Kernel("/b", "7.3.4-dirty", digest="0123456789ab").name == "7.3.4-dirty@0123456789ab"


def test_available_carries_each_package_version():
    a = kernels.available({BIN: V1, MODS: V1})[0]
    assert (a.packages, a.versions) == ((BIN, MODS), (V1, V1))


def test_deb_file_name_like_apt():
    assert apt.deb_name("linux-image-x", "1:7.3-1") == "linux-image-x_1%3a7.3-1_amd64.deb"


def test_extracted_version_used(cache):
    extract(kernels.deb_dir(REL, V2))
    [k] = kernels.resolve(["7.3"], FakeApt(V2))
    assert (k.label, k.name, k.version, k.packages) == ("7.3", REL, V2, None)
    assert k.vmlinuz == kernels.deb_dir(REL, V2) / f"boot/vmlinuz-{REL}"


def test_respin_is_fetched_not_served_from_cache(cache):
    extract(kernels.deb_dir(REL, V1))
    [k] = kernels.resolve(["7.3.4"], FakeApt(V2))
    assert k.vmlinuz is None and k.packages == [f"{BIN}={V2}", f"{MODS}={V2}"]


def test_index_unreadable_uses_extracted_with_warning(cache, caplog):
    extract(kernels.deb_dir(REL, V1))
    [k] = kernels.resolve(["7.3"], FakeApt(error="apt-get update failed:\nE: no network"))
    assert (k.version, k.packages, k.label) == (V1, None, "7.3")
    (rec,) = [r for r in caplog.records if r.name == "vm"]
    out = rec.getMessage()
    assert rec.levelname == "WARNING" and "cannot read the kernel index" in out and "E: no network" in out


def test_index_unreadable_and_nothing_extracted(cache):
    with pytest.raises(errors.InfraError, match="cannot read the kernel index.*'7.3'"):
        kernels.resolve(["7.3"], FakeApt(error="no network"))


def test_dropped_from_archive_but_extracted(cache, caplog):
    extract(kernels.deb_dir("7.0.4+deb13-cloud-amd64", "7.0.4-1~bpo13+1"), "7.0.4+deb13-cloud-amd64")
    [k] = kernels.resolve(["7.0.4"], FakeApt())
    assert k.release == "7.0.4+deb13-cloud-amd64" and k.packages is None
    assert "not in the archive any more" in caplog.text
    with pytest.raises(LookupError, match="nearest available: 7.3.4"):
        kernels.resolve(["7.1.2"], FakeApt())


def test_cached_available_ignores_partial(cache):
    extract(kernels.deb_dir(REL, V1))
    extract(kernels.deb_dir(REL, V2).with_name(V2 + ".partial"))
    assert [(a.release, a.version) for a in kernels.cached_available()] == [(REL, V1)]


def put_debs(*names):
    d = apt.debs_dir()
    d.mkdir(parents=True, exist_ok=True)
    for n in names:
        (d / n).write_text("")


def test_old_layout_adopted_when_its_version_is_proven(cache):
    extract(cache / REL)
    put_debs(apt.deb_name(BIN, V2), apt.deb_name(MODS, V2))
    [k] = kernels.resolve(["7.3"], FakeApt(V2))
    assert k.packages is None and k.vmlinuz == kernels.deb_dir(REL, V2) / f"boot/vmlinuz-{REL}"
    assert not (cache / REL).exists()


def test_old_layout_of_another_version_ignored(cache):
    extract(cache / REL)
    put_debs(apt.deb_name(BIN, V1), apt.deb_name(MODS, V1))
    [k] = kernels.resolve(["7.3"], FakeApt(V2))
    assert k.packages == [f"{BIN}={V2}", f"{MODS}={V2}"]
    assert (cache / REL / ".complete").exists()  # left alone


def test_fetch_extracts_exact_version(cache, monkeypatch):
    def dpkg_deb(cmd, check):  # dpkg-deb -x DEB DIR: each fake .deb holds a vmlinuz
        (Path(cmd[3]) / "boot").mkdir(exist_ok=True)
        (Path(cmd[3]) / f"boot/vmlinuz-{REL}").write_text("image")
    monkeypatch.setattr(kernels.subprocess, "run", dpkg_deb)
    fake = FakeApt(V2)
    k = kernels.fetch(kernels.resolve(["7.3"], fake)[0], fake)
    assert fake.downloaded == [f"{BIN}={V2}", f"{MODS}={V2}"]
    assert (k.label, k.version, k.packages) == ("7.3", V2, None)
    assert k.vmlinuz == kernels.deb_dir(REL, V2) / f"boot/vmlinuz-{REL}"


def test_download_reuses_only_the_exact_version(tmp_path, monkeypatch):
    a = apt.PrivateApt("http://mirror.example/debian", root=tmp_path)
    monkeypatch.setattr(a, "update", lambda force=False: False)
    asked = []

    def run(tool, *args):
        asked.extend(args[1:])
        for pin in args[1:]:
            (a.debs / apt.deb_name(*pin.split("=", 1))).write_text("")
        return ""
    monkeypatch.setattr(a, "_run", run)
    a._setup()
    (a.debs / apt.deb_name(BIN, V1)).write_text("")  # the pre-respin file
    assert a.download([f"{BIN}={V2}"]) == [a.debs / apt.deb_name(BIN, V2)]
    assert asked == [f"{BIN}={V2}"]
    assert a.download([f"{BIN}={V1}"]) == [a.debs / apt.deb_name(BIN, V1)]
    assert asked == [f"{BIN}={V2}"]  # already there: not fetched again


def bzimage(path: Path, release: str, salt: bytes = b"") -> Path:
    img = bytearray(0x4000)
    img[0x202:0x206] = b"HdrS"
    img[0x20E:0x210] = (0x1000).to_bytes(2, "little")
    text = release.encode() + b" (me@host) #1 SMP\0"
    img[0x1200:0x1200 + len(text)] = text
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(bytes(img) + salt)
    return path


def test_two_images_with_one_release_both_run(cache, tmp_path):
    a = bzimage(tmp_path / "a/bzImage", "7.3.4-dirty", b"a")
    b = bzimage(tmp_path / "b/bzImage", "7.3.4-dirty", b"b")
    ks = kernels.resolve([str(a), str(b), str(a)])
    assert [k.release for k in ks] == ["7.3.4-dirty"] * 2
    assert len({k.name for k in ks}) == 2
    assert all(k.name == f"7.3.4-dirty@{kernels.image_digest(k.vmlinuz)}" for k in ks)
    assert len(ks[0].digest) == 12


def test_build_tree_modules_keyed_by_image_and_modules(cache, tmp_path, monkeypatch):
    tree = tmp_path / "linux"
    bzimage(tree / "arch/x86/boot/bzImage", "7.3.4-dirty")
    (tree / "fs").mkdir()
    (tree / "fs/m.ko").write_text("v1")
    (tree / "modules.order").write_text("fs/m.o\n")
    installs = []

    def make(cmd, capture_output, text):
        dest = Path(next(a for a in cmd if a.startswith("INSTALL_MOD_PATH=")).split("=", 1)[1])
        (dest / "lib/modules/7.3.4-dirty").mkdir(parents=True)
        installs.append(dest)
        return type("R", (), {"returncode": 0, "stderr": ""})()
    monkeypatch.setattr(kernels.subprocess, "run", make)
    k = kernels.from_path(str(tree))
    assert k.modules == cache / "build" / k.name / "lib/modules/7.3.4-dirty"
    kernels.from_path(str(tree))
    assert len(installs) == 1  # cached
    (tree / "fs/m.ko").write_text("v2, rebuilt by make modules")
    kernels.from_path(str(tree))
    assert len(installs) == 2  # modules changed, same bzImage: installed again


# --- reports -----------------------------------------------------------------

def summary(*kernels_):
    return {"kernels": {f"k{i}": {"status": s, "failed": f, "errors": e}
                        for i, (s, f, e) in enumerate(kernels_)}, "tests": {}}


@pytest.mark.parametrize("ks, code", [
    ([("ok", 0, 0)], 0),
    ([("ok", 1, 0), ("ok", 0, 0)], 1),
    ([("ok", 0, 1)], 1),
    ([("infra", 0, 0), ("ok", 0, 0)], 125),
    ([("infra", 0, 0), ("ok", 1, 0)], 1),           # a verdict beats no verdict
    ([("error", 0, 0), ("ok", 3, 0), ("infra", 0, 0)], 6),  # a crash beats all
])
def test_exit_codes(ks, code):
    assert report.exit_code(summary(*ks)) == code


JUNIT = """<?xml version="1.0"?><testsuites><testsuite name="pytest" tests="3">
<testcase classname="suites.test_x" name="test_ok" file="suites/test_x.py" time="0.5"/>
<testcase classname="suites.test_x.TestC" name="test_f" file="suites/test_x.py" time="1.5"><failure message="boom">tb</failure></testcase>
<testcase classname="suites.test_x" name="test_s" file="suites/test_x.py" time="0"><skipped type="pytest.skip" message="no"/></testcase>
</testsuite></testsuites>"""


@pytest.fixture
def runs(tmp_path):
    ok, crashed = tmp_path / "7.3.4+deb13-cloud-amd64", tmp_path / "6.18.15+deb13-cloud-amd64"
    ok.mkdir(), crashed.mkdir()
    (ok / "junit.xml").write_text(JUNIT)
    (ok / "ktap.txt").write_text("KTAP version 1\n1..3\nok 1 suites/test_x.py::test_ok\n"
                                 "not ok 2 suites/test_x.py::TestC::test_f\n"
                                 "ok 3 suites/test_x.py::test_s # SKIP no\n")
    (crashed / "ktap.txt").write_text("KTAP version 1\n1..3\nok 1 suites/test_x.py::test_ok\n")
    statuses = {ok.name: ("ok", ""), crashed.name: ("error", "console: Kernel panic - not syncing"),
                "7.0.13+deb13-cloud-amd64": ("infra", "apt-get download failed:\nE: no network")}
    return {ok.name: ok, crashed.name: crashed}, statuses


def test_merge_junit(runs, tmp_path):
    dirs, statuses = runs
    report.merge_junit(dirs, statuses, tmp_path / "out/junit.xml")
    root = ET.parse(tmp_path / "out/junit.xml").getroot()
    suites = {s.get("name"): s for s in root.iter("testsuite")}
    assert list(suites) == list(statuses)
    ok = suites["7.3.4+deb13-cloud-amd64"]
    assert [(c.get("classname"), c.get("name")) for c in ok.iter("testcase")] == [
        ("7_3_4+deb13-cloud-amd64.suites.test_x", "test_ok"),
        ("7_3_4+deb13-cloud-amd64.suites.test_x.TestC", "test_f"),
        ("7_3_4+deb13-cloud-amd64.suites.test_x", "test_s")]
    assert ok.find("testcase/failure").text == "tb"  # contents kept
    assert (ok.get("tests"), ok.get("failures"), ok.get("errors"), ok.get("skipped"), ok.get("time")) == (
        "3", "1", "0", "1", "2.000")
    crashed = suites["6.18.15+deb13-cloud-amd64"]
    [kc] = crashed.iter("testcase")  # no junit.xml: only the kernel's own case
    assert (kc.get("classname"), kc.get("name")) == ("6_18_15+deb13-cloud-amd64", "kernel")
    assert kc.find("error").get("message") == "console: Kernel panic - not syncing"
    infra = suites["7.0.13+deb13-cloud-amd64"]
    assert infra.find("testcase/error").get("type") == "kernel could not be tested"
    assert infra.find("properties/property").get("value") == "infra"
    assert (root.get("tests"), root.get("failures"), root.get("errors")) == ("5", "1", "2")


def test_merge_junit_keeps_tests_of_a_kernel_that_crashed_late(runs, tmp_path):
    dirs, statuses = runs
    (dirs["6.18.15+deb13-cloud-amd64"] / "junit.xml").write_text(JUNIT)
    report.merge_junit(dirs, statuses, tmp_path / "j.xml")
    suite = [s for s in ET.parse(tmp_path / "j.xml").getroot() if s.get("name").startswith("6.18")][0]
    assert [c.get("name") for c in suite.iter("testcase")] == ["test_ok", "test_f", "test_s", "kernel"]


def test_merge_ktap(runs, tmp_path):
    dirs, statuses = runs
    report.merge_ktap(dirs, statuses, tmp_path / "out/ktap.txt")
    assert (tmp_path / "out/ktap.txt").read_text().splitlines() == [
        "KTAP version 1",
        "1..3",
        "  KTAP version 1",
        "  1..3",
        "  ok 1 suites/test_x.py::test_ok",
        "  not ok 2 suites/test_x.py::TestC::test_f",
        "  ok 3 suites/test_x.py::test_s # SKIP no",
        "not ok 1 7.3.4+deb13-cloud-amd64",  # a failed test fails its kernel
        "  KTAP version 1",
        "  1..3",
        "  ok 1 suites/test_x.py::test_ok",
        "not ok 2 6.18.15+deb13-cloud-amd64 # ERROR console: Kernel panic - not syncing",
        "not ok 3 7.0.13+deb13-cloud-amd64 # SKIP apt-get download failed: E: no network",
    ]


def test_merge_ktap_nests_deeper_levels_and_passes_clean_kernels(tmp_path):
    d = tmp_path / "k"
    d.mkdir()
    (d / "ktap.txt").write_text("KTAP version 1\n1..1\n  KTAP version 1\n  1..1\n  ok 1 a\n\nok 1 group\n")
    report.merge_ktap({"k": d}, {"k": ("ok", "")}, tmp_path / "m.txt")
    assert (tmp_path / "m.txt").read_text().splitlines() == [
        "KTAP version 1", "1..1", "  KTAP version 1", "  1..1", "    KTAP version 1", "    1..1",
        "    ok 1 a", "", "  ok 1 group", "ok 1 k"]


def test_merge_ktap_ok_kernel_without_ktap_is_an_error(tmp_path):
    report.merge_ktap({"k": tmp_path / "none"}, {"k": ("ok", "")}, tmp_path / "m.txt")
    assert (tmp_path / "m.txt").read_text().splitlines()[-1] == "not ok 1 k # ERROR no ktap.txt from the guest"


def test_merge_interrupted_kernel_is_no_verdict(tmp_path):
    report.merge_ktap({}, {"k": ("interrupted", "not started")}, tmp_path / "m.txt")
    assert (tmp_path / "m.txt").read_text().splitlines()[-1] == "not ok 1 k # SKIP not started"
    report.merge_junit({}, {"k": ("interrupted", "not started")}, tmp_path / "j.xml")
    err = ET.parse(tmp_path / "j.xml").getroot().find("testsuite/testcase/error")
    assert (err.get("type"), err.get("message")) == ("run interrupted", "not started")
