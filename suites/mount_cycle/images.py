"""The images loop_cycle mounts (test set-up): an empty FAT12 or minix
volume written byte by byte, and the filesystem to mount it with (or a SKIP
naming it). Kernel access (modules, loop devices) is helpers.modules and
helpers.loop."""
import os
import struct

import pytest

from helpers.modules import have_fs, modprobe


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
