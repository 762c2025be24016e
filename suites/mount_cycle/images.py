"""Optional kernel pieces for loop_cycle (the holders of
filesystems/mount_cycle/loop_cycle_test.c): load them, or SKIP
naming exactly what is missing, plus the images and loop devices the cases use.

A piece is "missing" only when its own check fails after `modprobe <module>`
AND /sys/module/<module> does not exist (nothing built in or loaded): an
unexpected errno from the piece itself is never turned into a skip.
"""
import errno
import fcntl
import os
import shutil
import struct
import subprocess
import time

import pytest

from helpers import uapi
from helpers import sys as k


def modprobe(module):
    """Try to load a module; True if modprobe said yes. Silent otherwise."""
    tool = shutil.which("modprobe") or next(
        (p for p in ("/sbin/modprobe", "/usr/sbin/modprobe") if os.path.exists(p)), None)
    if not tool:
        return False
    return subprocess.run([tool, "-q", module], stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL).returncode == 0


def module_present(module):
    return os.path.isdir(f"/sys/module/{module.replace('-', '_')}")


def need(check, module, config, what):
    """SKIP unless check() holds, after trying to load `module`."""
    if check():
        return
    modprobe(module)
    if check():
        return
    if module_present(module):
        raise AssertionError(f"{module} is loaded but {what} is not there")
    pytest.skip(f"needs {module} ({config}): {what} missing and modprobe {module} did not provide it")


def filesystems():
    with open("/proc/filesystems") as f:
        return {line.split()[-1] for line in f if line.strip()}


def need_fs(name, module=None, config=None):
    need(lambda: name in filesystems(), module or name, config or f"CONFIG_{name.upper()}_FS",
         f"filesystem type {name!r} in /proc/filesystems")


def have_fs(name, module=None):
    if name in filesystems():
        return True
    modprobe(module or name)
    return name in filesystems()


def need_loop():
    need(lambda: os.path.exists("/dev/loop-control"), "loop", "CONFIG_BLK_DEV_LOOP",
         "/dev/loop-control")


def fat_type():
    """'vfat', else 'msdos', else SKIP (upstream NOFS): the image's filesystem."""
    for name in ("vfat", "msdos"):
        if have_fs(name):
            if name == "vfat":
                modprobe("nls_cp437"), modprobe("nls_iso8859-1")
            return name
    pytest.skip("requires the filesystem of the image (FAT): neither vfat nor msdos "
                "(CONFIG_VFAT_FS / CONFIG_MSDOS_FS) is available")


def minix_type():
    if have_fs("minix"):
        return "minix"
    pytest.skip("requires the filesystem of the image (minix, CONFIG_MINIX_FS): "
                "not in /proc/filesystems and modprobe minix did not provide it")


# --- images --------------------------------------------------------------------
def write_fat12(path, sectors=2880, sector_size=512, device=False):
    """An empty FAT12 volume: 1.44 MB floppy geometry, or 4 KiB sectors."""
    spc, reserved, nfats, root_entries = 1, 1, 2, 224 if sector_size == 512 else 256
    root_secs = (root_entries * 32 + sector_size - 1) // sector_size
    clusters_guess = sectors
    fat_secs = ((clusters_guess + 2) * 3 // 2 + sector_size - 1) // sector_size
    bs = bytearray(sector_size)
    bs[0:3] = b"\xeb\x3c\x90"
    bs[3:11] = b"MSWIN4.1"
    struct.pack_into("<HBHBHHBHHHII", bs, 11, sector_size, spc, reserved, nfats, root_entries,
                     sectors if sectors < 65536 else 0, 0xF0 if sector_size == 512 else 0xF8,
                     fat_secs, 18, 2, 0, sectors if sectors >= 65536 else 0)
    struct.pack_into("<BBBI11s8s", bs, 36, 0, 0, 0x29, 0x12345678, b"CYCLE      ", b"FAT12   ")
    bs[510:512] = b"\x55\xaa"
    media = bs[21]
    fat = bytearray(fat_secs * sector_size)
    fat[0:3] = bytes([media, 0xFF, 0xFF])
    with open(path, "r+b" if device else "wb") as f:
        if not device:
            f.truncate(sectors * sector_size)
        f.write(bs)
        for i in range(nfats):
            f.seek((reserved + i * fat_secs) * sector_size)
            f.write(fat)
        f.seek((reserved + nfats * fat_secs) * sector_size)
        f.write(bytes(root_secs * sector_size))
    return path


def write_fat12_dev(dev, sectors=None, sector_size=512):
    """A FAT12 volume on an existing block device (sized to it, at most 4084 clusters)."""
    with open(f"/sys/class/block/{os.path.basename(dev)}/size") as f:
        size = int(f.read()) * 512
    sectors = sectors or min(size // sector_size, 4000)
    return write_fat12(dev, sectors, sector_size, device=True)


def write_minix(path, blocks=1024, inodes=64):
    """An empty minix v1 (14-char names, magic 0x137f) filesystem."""
    bsz = 1024
    imap, zmap = 1, 1
    itable = (inodes * 32 + bsz - 1) // bsz
    first = 2 + imap + zmap + itable
    img = bytearray(blocks * bsz)
    struct.pack_into("<HHHHHHIHH", img, 1024, inodes, blocks, imap, zmap, first, 0,
                     268966912, 0x137F, 1)
    ib = 2 * bsz
    img[ib] = 0b11                                      # bit 0 reserved, inode 1 = root
    for bit in range(inodes + 1, imap * bsz * 8):       # past the end: in use
        img[ib + bit // 8] |= 1 << (bit % 8)
    zb = (2 + imap) * bsz
    img[zb] = 0b11                                      # bit 0 reserved, first zone = root dir
    for bit in range(blocks - first + 1, zmap * bsz * 8):
        img[zb + bit // 8] |= 1 << (bit % 8)
    it = (2 + imap + zmap) * bsz
    struct.pack_into("<HHIIBB9H", img, it, 0o40755, 0, 32, 0, 0, 2, first, *([0] * 8))
    d = first * bsz
    struct.pack_into("<H14s", img, d, 1, b".")
    struct.pack_into("<H14s", img, d + 16, 1, b"..")
    with open(path, "wb") as f:
        f.write(img)
    return path


# --- loop devices -------------------------------------------------------------
def loop_attach(image):
    """LOOP_CTL_GET_FREE + LOOP_SET_FD (retrying EBUSY up to 64 times): loop number."""
    ctl = os.open("/dev/loop-control", os.O_RDWR | os.O_CLOEXEC)
    img = os.open(image, os.O_RDWR | os.O_CLOEXEC)
    try:
        for _ in range(64):
            n = k.ioctl(ctl, uapi.LOOP_CTL_GET_FREE)
            dev = f"/dev/loop{n}"
            if not os.path.exists(dev):
                os.mknod(dev, 0o600 | 0o060000, os.makedev(7, n))
            fd = os.open(dev, os.O_RDWR | os.O_CLOEXEC)
            try:
                k.ioctl(fd, uapi.LOOP_SET_FD, img)
                return n
            except OSError as e:
                if e.errno != errno.EBUSY:
                    raise
            finally:
                os.close(fd)
        raise AssertionError("no free loop device after 64 tries")
    finally:
        os.close(img)
        os.close(ctl)


def loop_clear(n):
    try:
        fd = os.open(f"/dev/loop{n}", os.O_RDWR | os.O_CLOEXEC)
    except OSError:
        return
    try:
        k.ioctl(fd, uapi.LOOP_CLR_FD)
    except OSError:
        pass
    finally:
        os.close(fd)


def backing_file(n):
    try:
        with open(f"/sys/block/loop{n}/loop/backing_file") as f:
            return f.read().strip()
    except FileNotFoundError:
        return None


def mount_fat(dev, target, fstype):
    k.mount(dev, target, fstype, 0, None)


def dev_mounted_anywhere(n, major=7):
    """Is major:minor mounted in any /proc/*/mountinfo?"""
    needle = f" {major}:{n} "
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/mountinfo") as f:
                if any(needle in line for line in f):
                    return True
        except OSError:
            continue
    return False


def assert_loop_released(n):
    """upstream assert_loop_released(): exclusive open within 2 s, LOOP_CLR_FD,
    then backing_file gone within 5 s."""
    dev = f"/dev/loop{n}"
    fd = -1
    for _ in range(20):
        try:
            fd = os.open(dev, os.O_RDONLY | os.O_EXCL | os.O_CLOEXEC)
            break
        except OSError as e:
            if e.errno != errno.EBUSY:
                raise
            time.sleep(0.1)
    assert fd >= 0, f"{dev} still busy (held) 2 s after everything let go of it"
    os.close(fd)
    fd = os.open(dev, os.O_RDWR | os.O_CLOEXEC)
    try:
        k.ioctl(fd, uapi.LOOP_CLR_FD)
    finally:
        os.close(fd)
    for _ in range(50):
        if backing_file(n) is None:
            return
        time.sleep(0.1)
    raise AssertionError(f"{dev} still has backing file {backing_file(n)!r} 5 s after LOOP_CLR_FD")


def sysfs_write(path, text):
    with open(path, "w") as f:
        f.write(text)


def fd_nonblock(fd):
    fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) | os.O_NONBLOCK)
