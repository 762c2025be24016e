"""Twin of filesystems/mount_cycle/loop_cycle_test.c.

A submount whose filesystem (or device) holds a file on its parent mount must
not keep that parent alive once both are unreachable: after the parent is
detached by another namespace's rmdir (or its detached tree dissolved), the
loop device backing the parent must be released (exclusive open within 2 s,
backing_file gone after LOOP_CLR_FD). Optional pieces SKIP naming the exact
module / CONFIG option / node that is missing (helpers.modules).
"""
import errno
import os
import struct

import pytest

from harness.upstream import upstream
from helpers import uapi
from helpers import sys as k
from helpers.mounts import make_rprivate, tmpfs
from helpers import loop
from helpers.modules import have_fs, modprobe, module_present, need, need_fs
from helpers.ns import write_file, write_id_maps
from helpers.proc import Partner
from suites.mount_cycle import images
from suites.mount_cycle.cycle import wait_until

FILE = "filesystems/mount_cycle/loop_cycle_test.c"
pytestmark = [pytest.mark.root, pytest.mark.timeout(300)]


class Fixture:
    pass


@pytest.fixture
def lc(base, defer):
    """.base: a private tmpfs at the scratch dir; .defer: the test's cleanups
    (loop devices, the holders' host-global devices)."""
    loop.need()
    f = Fixture()
    f.base, f.defer = base, defer
    k.unshare(uapi.CLONE_NEWNS)
    make_rprivate("/")
    tmpfs(base)
    return f


def _released_everywhere(n):
    assert not loop.mounted_anywhere(n), f"loop{n} is still mounted somewhere"
    loop.assert_released(n)


# --- the three plain cycles ---------------------------------------------------
def _detached_child(chan, base, fstype):
    k.unshare(uapi.CLONE_NEWNS)
    vol = f"{base}/vol"
    tmpfs(vol)
    n = loop.attach(images.write_fat12(f"{vol}/img"))
    chan.send(n)
    os.mkdir(f"{vol}/mnt")
    k.mount(f"/dev/loop{n}", f"{vol}/mnt", fstype)
    chan.send("ready")
    chan.recv()


@upstream(FILE, "loop_cycle.detached_loop_mount_released")
def test_detached_loop_mount_released(lc):
    fstype = images.fat_type()
    os.mkdir(f"{lc.base}/vol")
    child = Partner(_detached_child, lc.base, fstype)
    n = child.recv()
    lc.defer(loop.detach, n)
    assert child.recv() == "ready"
    assert "/vol/img" in loop.backing_file(n)
    os.rmdir(f"{lc.base}/vol")          # our namespace has no mount there
    child.send("exit")
    child.join()
    assert not os.path.exists(f"{lc.base}/vol")
    _released_everywhere(n)


@pytest.mark.requires("detached_mount_trees")  # move_mount() into a detached tree
@upstream(FILE, "loop_cycle.dissolved_tree_loop_mount_released")
def test_dissolved_tree_loop_mount_released(lc):
    fstype = None
    for name in ("vfat", "msdos"):
        if have_fs(name):
            fstype = name
            break
    if fstype is None:
        pytest.skip("requires a FAT filesystem: neither vfat nor msdos (CONFIG_VFAT_FS / "
                    "CONFIG_MSDOS_FS) is available")
    vol = f"{lc.base}/vol"
    os.mkdir(vol)
    tmpfs(vol)
    tfd = k.open_tree(uapi.AT_FDCWD, vol, uapi.OPEN_TREE_CLONE | uapi.OPEN_TREE_CLOEXEC)
    img = os.open("img", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600, dir_fd=tfd)
    images.write_fat12(f"/proc/self/fd/{img}")
    n = loop.attach(f"/proc/self/fd/{img}")
    lc.defer(loop.detach, n)
    os.close(img)
    os.mkdir("mnt", dir_fd=tfd)
    fsfd = k.fsopen(fstype, uapi.FSOPEN_CLOEXEC)
    k.fsconfig(fsfd, uapi.FSCONFIG_SET_STRING, "source", f"/dev/loop{n}")
    k.fsconfig(fsfd, uapi.FSCONFIG_CMD_CREATE)
    mfd = k.fsmount(fsfd, uapi.FSMOUNT_CLOEXEC)
    os.close(fsfd)
    k.move_mount(mfd, "", tfd, "mnt", uapi.MOVE_MOUNT_F_EMPTY_PATH)
    os.close(mfd)
    assert "img" in loop.backing_file(n)
    os.close(tfd)                        # dissolves the tree
    _released_everywhere(n)


def _crossed_child(chan, base, fstype):
    k.unshare(uapi.CLONE_NEWNS)
    vol, vol2 = f"{base}/vol", f"{base}/vol2"
    tmpfs(vol), tmpfs(vol2)
    a = loop.attach(images.write_fat12(f"{vol2}/img"))
    b = loop.attach(images.write_fat12(f"{vol}/img"))
    chan.send((a, b))
    os.mkdir(f"{vol}/mnt"), os.mkdir(f"{vol2}/mnt")
    k.mount(f"/dev/loop{a}", f"{vol}/mnt", fstype)
    k.mount(f"/dev/loop{b}", f"{vol2}/mnt", fstype)
    chan.send("ready")
    chan.recv()


@upstream(FILE, "loop_cycle.crossed_images_released")
def test_crossed_images_released(lc):
    fstype = images.fat_type()
    os.mkdir(f"{lc.base}/vol"), os.mkdir(f"{lc.base}/vol2")
    child = Partner(_crossed_child, lc.base, fstype)
    a, b = child.recv()
    lc.defer(loop.detach, a)
    lc.defer(loop.detach, b)
    assert child.recv() == "ready"
    os.rmdir(f"{lc.base}/vol")
    os.rmdir(f"{lc.base}/vol2")
    child.send("exit")
    child.join()
    _released_everywhere(a)
    _released_everywhere(b)


# --- holders: C's filesystem or device keeps a file on P ----------------------
class Holder:
    image = "fat"          # "fat", "fat4k" or "minix"
    disruptive = None      # what host-global thing it touches (the disruptive marker)

    def check(self, lc):
        """In the parent, before the child: SKIP when a piece is missing."""

    def setup(self, chan, lc, p, c):
        """In the child, P mounted at p, C = p/c made."""
        raise NotImplementedError

    def let_go(self, lc):
        """In the parent after the child left: True once the holder let go."""
        return True


def _holder_child(chan, lc, holder, fstype):
    k.unshare(uapi.CLONE_NEWNS)
    img = f"{lc.base}/img"
    tmpfs(img)
    if holder.image == "minix":
        images.write_minix(f"{img}/p.img")
    elif holder.image == "fat4k":
        images.write_fat12(f"{img}/p.img", sectors=3072, sector_size=4096)
    else:
        images.write_fat12(f"{img}/p.img")
    n = loop.attach(f"{img}/p.img")
    chan.send(("loop", n))
    p = f"{lc.base}/p"
    k.mount(f"/dev/loop{n}", p, fstype)
    c = f"{p}/c"
    os.mkdir(c)
    holder.setup(chan, lc, p, c)
    chan.send("ready")
    chan.recv()


def holder_cycle(lc, holder):
    fstype = images.minix_type() if holder.image == "minix" else images.fat_type()
    holder.check(lc)
    os.mkdir(f"{lc.base}/img"), os.mkdir(f"{lc.base}/p")
    child = Partner(_holder_child, lc, holder, fstype)
    while (msg := child.recv()) != "ready":
        kind, value = msg
        assert kind == "loop", msg
        lc.defer(loop.detach, value)
        n = value
    os.rmdir(f"{lc.base}/p")
    child.send("leave")
    child.join()
    assert wait_until(lambda: holder.let_go(lc), 50, 0.1), f"{type(holder).__name__} never let go"
    loop.assert_released(n)


class Autofs(Holder):
    image = "minix"

    def check(self, lc):
        need_fs("autofs", "autofs4", "CONFIG_AUTOFS_FS")

    def setup(self, chan, lc, p, c):
        os.mkfifo(f"{p}/pipe")
        rfd = os.open(f"{p}/pipe", os.O_RDONLY | os.O_NONBLOCK)
        wfd = os.open(f"{p}/pipe", os.O_WRONLY)
        k.mount("cycle", c, "autofs", 0,
                f"fd={wfd},pgrp={os.getpgrp()},minproto=5,maxproto=5")
        os.close(wfd), os.close(rfd)


class ZramWriteback(Holder):
    image = "minix"
    disruptive = "/sys/block/zram0 (zram0's backing device and size)"

    def check(self, lc):
        need(lambda: os.path.exists("/sys/block/zram0"), "zram", "CONFIG_ZRAM",
                    "/sys/block/zram0")
        if not os.access("/sys/block/zram0/backing_dev", os.W_OK):
            pytest.skip("needs zram writeback (CONFIG_ZRAM_WRITEBACK): "
                        "/sys/block/zram0/backing_dev missing")
        with open("/sys/block/zram0/initstate") as f:
            if f.read().strip() != "0":
                pytest.skip("zram0 is in use (initstate != 0): left alone")
        images.fat_type()
        lc.defer(write_file, "/sys/block/zram0/reset", "1")

    def setup(self, chan, lc, p, c):
        wb_img = f"{lc.base}/img/wb.img"
        with open(wb_img, "wb") as f:
            f.truncate(4 << 20)
        m = loop.attach(wb_img)
        chan.send(("loop", m))
        os.mknod(f"{p}/wbdev", 0o600 | 0o060000, os.makedev(7, m))
        write_file("/sys/block/zram0/backing_dev", f"{p}/wbdev")
        write_file("/sys/block/zram0/disksize", str(4 << 20))
        images.write_fat12_dev("/dev/zram0")
        k.mount("/dev/zram0", c, images.fat_type())

    def let_go(self, lc):
        try:
            write_file("/sys/block/zram0/reset", "1")
        except OSError as e:
            if e.errno == errno.EBUSY:
                return False
            raise
        with open("/sys/block/zram0/initstate") as f:
            return f.read().strip() == "0"


class Binfmt(Holder):
    disruptive = "a binfmt_misc registration"
    def check(self, lc):
        need_fs("binfmt_misc", "binfmt_misc", "CONFIG_BINFMT_MISC")
        os.mkdir(f"{lc.base}/bm")

    def setup(self, chan, lc, p, c):
        interp = f"{p}/interp"
        with open(interp, "w") as f:
            f.write("#!/bin/sh\n")
        os.chmod(interp, 0o755)
        try:
            k.unshare(uapi.CLONE_NEWUSER | uapi.CLONE_NEWNS)
        except OSError as e:
            if e.errno in (errno.EINVAL, errno.ENOSPC, errno.EPERM):
                pytest.skip(f"needs user namespaces: unshare(CLONE_NEWUSER|CLONE_NEWNS): {e}")
            raise
        write_id_maps(0, 0)
        bm = f"{lc.base}/bm"
        k.mount("binfmt_misc", bm, "binfmt_misc")
        write_file(f"{bm}/register", f":cycle:E::cyc::{interp}:F")


class Fuse(Holder):
    def check(self, lc):
        need(lambda: os.path.exists("/dev/fuse"), "fuse", "CONFIG_FUSE_FS", "/dev/fuse")
        need_fs("fuse", "fuse", "CONFIG_FUSE_FS")

    def setup(self, chan, lc, p, c):
        open(f"{p}/backing", "w").close()
        dev = os.open("/dev/fuse", os.O_RDWR | os.O_CLOEXEC)
        k.mount("cycle", c, "fuse", 0, f"fd={dev},rootmode=40000,user_id=0,group_id=0")
        req = os.read(dev, 1 << 20)
        length, opcode, unique = struct.unpack_from("<IIQ", req)
        assert opcode == 26, f"expected FUSE_INIT, got opcode {opcode}"
        major, minor = struct.unpack_from("<II", req, 40)
        init_ext, passthrough = 1 << 30, 1 << (37 - 32)
        out = struct.pack("<IIIIHHIIHHIIH22x", 7, min(minor, 45), 0, init_ext, 1, 1, 4096, 1,
                          1, 0, passthrough, 1, 0)
        os.write(dev, struct.pack("<IiQ", 16 + len(out), 0, unique) + out)
        bfd = os.open(f"{p}/backing", os.O_RDWR | os.O_CLOEXEC)
        arg = k.ffi.new("char[]", struct.pack("<iIQ", bfd, 0, 0))
        try:
            k.ioctl(dev, uapi.FUSE_DEV_IOC_BACKING_OPEN, arg)
        except OSError as e:
            if e.errno == errno.ENOTTY:
                pytest.skip("needs FUSE_DEV_IOC_BACKING_OPEN (CONFIG_FUSE_PASSTHROUGH): ENOTTY")
            if e.errno == errno.EOPNOTSUPP:
                pytest.skip("needs fuse passthrough (CONFIG_FUSE_PASSTHROUGH): EOPNOTSUPP")
            raise
        os.close(bfd)
        self.keep = dev


class Ecryptfs(Holder):
    def check(self, lc):
        need_fs("ecryptfs", "ecryptfs", "CONFIG_ECRYPT_FS")
        # A missing CONFIG_KEYS SKIPs in setup(), on add_key ENOSYS. (A keyctl
        # probe stood here, guarded by `"keyctl" in uapi.NR`, which never held:
        # it never ran, so dropping it when keyctl got its number keeps the
        # case's behaviour and skip reason exactly as they were.)
        modprobe("aes")

    def setup(self, chan, lc, p, c):
        os.mkdir(f"{p}/lower")
        sig = b"0123456789abcdef"
        # struct ecryptfs_auth_tok, password type (ecryptfs-utils layout)
        tok = bytearray(1024)
        struct.pack_into("<HHI", tok, 0, 0x0409, 0, 0)          # version, ECRYPTFS_PASSWORD, flags
        off = 8 + 4 + 4 + 4 + 64 + 64 + 32                      # session_key + reserved
        struct.pack_into("<iiIII", tok, off, 16, 0, 65536, 16, 0)
        tok[off + 20:off + 20 + 16] = bytes(range(16))          # session key encryption key
        tok[off + 20 + 64:off + 20 + 64 + 16] = sig
        try:
            k.add_key("user", sig, bytes(tok), uapi.KEY_SPEC_USER_KEYRING)
        except OSError as e:
            if e.errno == errno.ENOSYS:
                pytest.skip("needs keys (CONFIG_KEYS): add_key ENOSYS")
            raise
        opts = (f"ecryptfs_sig={sig.decode()},ecryptfs_cipher=aes,ecryptfs_key_bytes=16,"
                "ecryptfs_unlink_sigs")
        try:
            k.mount(f"{p}/lower", c, "ecryptfs", 0, opts)
        except OSError as e:
            if e.errno == errno.EINVAL and "aes" not in open("/proc/crypto").read():
                pytest.skip("needs the aes cipher (CONFIG_CRYPTO_AES): not in /proc/crypto")
            raise


class Zloop(Holder):
    image = "fat4k"
    disruptive = "/dev/zloop-control (creates zloop0)"

    def check(self, lc):
        need(lambda: os.path.exists("/dev/zloop-control"), "zloop", "CONFIG_BLK_DEV_ZONED_LOOP",
                    "/dev/zloop-control")
        if os.path.exists("/sys/block/zloop0"):
            pytest.skip("zloop0 already exists: left alone")
        lc.defer(self.remove)

    @staticmethod
    def remove():
        if os.path.exists("/sys/block/zloop0"):
            write_file("/dev/zloop-control", "remove id=0")

    def setup(self, chan, lc, p, c):
        os.makedirs(f"{p}/zl/0")
        write_file("/dev/zloop-control", "add id=0,capacity_mb=8,zone_size_mb=4,"
                           f"conv_zones=1,base_dir={p}/zl")
        images.write_fat12_dev("/dev/zloop0", sectors=2048, sector_size=4096)
        k.mount("/dev/zloop0", c, images.fat_type())

    def let_go(self, lc):
        if not os.path.exists("/sys/block/zloop0"):
            return True
        try:
            write_file("/dev/zloop-control", "remove id=0")
        except OSError as e:
            if e.errno in (errno.EBUSY, errno.ENODEV):
                return False
            raise
        return not os.path.exists("/sys/block/zloop0")


class MassStorage(Holder):
    image = "fat4k"
    disruptive = "a configfs USB gadget bound to dummy_udc.0"
    CONFIGFS = "/sys/kernel/config"

    def check(self, lc):
        if not os.path.isdir(f"{self.CONFIGFS}/usb_gadget"):
            need_fs("configfs", "configfs", "CONFIG_CONFIGFS_FS")
            if not os.path.ismount(self.CONFIGFS):
                k.mount("configfs", self.CONFIGFS, "configfs")
            need(lambda: os.path.isdir(f"{self.CONFIGFS}/usb_gadget"), "libcomposite",
                        "CONFIG_USB_LIBCOMPOSITE", f"{self.CONFIGFS}/usb_gadget")
        need(lambda: os.path.exists("/sys/class/udc/dummy_udc.0"), "dummy_hcd",
                    "CONFIG_USB_DUMMY_HCD", "/sys/class/udc/dummy_udc.0")
        modprobe("usb_f_mass_storage"), modprobe("usb-storage"), modprobe("sd_mod")
        self.g = f"{self.CONFIGFS}/usb_gadget/kselftest_cycle_{os.getpid()}"
        lc.defer(self.remove)

    def remove(self):
        """Undo what setup() got to, in reverse; what is not there was not made."""
        g = self.g
        self.unbind()
        for path, op in ((f"{g}/configs/c.1/mass_storage.0", os.unlink),
                         (f"{g}/configs/c.1/strings/0x409", os.rmdir), (f"{g}/configs/c.1", os.rmdir),
                         (f"{g}/functions/mass_storage.0", os.rmdir), (f"{g}/strings/0x409", os.rmdir),
                         (g, os.rmdir)):
            if os.path.lexists(path):
                op(path)

    def unbind(self):
        """An empty UDC unbinds the gadget; ENODEV: it was not bound
        (drivers/usb/gadget/configfs.c unregister_gadget())."""
        if not os.path.exists(f"{self.g}/UDC"):
            return
        try:
            write_file(f"{self.g}/UDC", "\n")
        except OSError as e:
            if e.errno != errno.ENODEV:
                raise

    def setup(self, chan, lc, p, c):
        g = self.g
        lun = f"{p}/lun.img"
        images.write_fat12(lun, sectors=3072, sector_size=4096)
        os.mkdir(g)
        write_file(f"{g}/idVendor", "0x1d6b"), write_file(f"{g}/idProduct", "0x0104")
        os.mkdir(f"{g}/strings/0x409")
        os.mkdir(f"{g}/configs/c.1")
        try:
            os.mkdir(f"{g}/functions/mass_storage.0")
        except FileNotFoundError:
            pytest.skip("needs the mass-storage gadget function (CONFIG_USB_CONFIGFS_MASS_STORAGE)")
        write_file(f"{g}/functions/mass_storage.0/lun.0/file", lun)
        os.symlink(f"{g}/functions/mass_storage.0", f"{g}/configs/c.1/mass_storage.0")
        try:
            write_file(f"{g}/UDC", "dummy_udc.0")
        except OSError as e:
            if e.errno == errno.EBUSY:
                pytest.skip("dummy_udc.0 is busy: left alone")
            raise
        disk = None

        def find():
            nonlocal disk
            for d in os.listdir("/sys/block"):
                try:
                    with open(f"/sys/block/{d}/device/model") as f:
                        if f.read().strip() == "File-Stor Gadget":
                            disk = d
                            return True
                except OSError:
                    pass
            return False
        if not wait_until(find, 300, 0.1):
            if not (module_present("usb_storage") and module_present("sd_mod")):
                pytest.skip("needs usb-storage and sd (CONFIG_USB_STORAGE, CONFIG_BLK_DEV_SD): "
                            "the gadget's disk never appeared")
            raise AssertionError("the gadget's disk never appeared")
        k.mount(f"/dev/{disk}", c, images.fat_type())

    def let_go(self, lc):
        self.unbind()
        return True


class MdBitmap(Holder):
    disruptive = "/dev/md0 (creates and stops the array)"
    def check(self, lc):
        need(lambda: os.path.exists("/proc/mdstat"), "md_mod", "CONFIG_BLK_DEV_MD", "/proc/mdstat")
        need(lambda: "[raid1]" in open("/proc/mdstat").read(), "raid1", "CONFIG_MD_RAID1",
                    "[raid1] in /proc/mdstat")
        if not os.path.exists("/dev/md0"):
            os.mknod("/dev/md0", 0o600 | 0o060000, os.makedev(9, 0))
        try:
            with open("/sys/block/md0/md/array_state") as f:
                if f.read().strip() not in ("clear", "inactive"):
                    pytest.skip("md0 is in use: left alone")
        except FileNotFoundError:
            pass
        lc.defer(self.stop_if_running)

    def setup(self, chan, lc, p, c):
        disk_img = f"{lc.base}/img/md.img"
        with open(disk_img, "wb") as f:
            f.truncate(8 << 20)
        m = loop.attach(disk_img)
        chan.send(("loop", m))
        bitmap = f"{p}/bitmap"
        sectors = (8 << 20) // 512
        chunk = 64 << 10
        sb = struct.pack("<II16sQQQIIIIII", 0x6D746962, 4, b"\0" * 16, 0, 0, sectors, 0,
                         chunk, 5, 0, 0, 0)
        with open(bitmap, "wb") as f:
            f.write(sb.ljust(256, b"\0") + b"\xff" * 4096)
        md = os.open("/dev/md0", os.O_RDWR | os.O_CLOEXEC)
        info = struct.pack("<18i", 0, 90, 0, 0, 1, (8 << 20) // 1024, 1, 1, 0, 1, 0, 0, 1, 1, 0, 0,
                           0, chunk)
        try:
            k.ioctl(md, uapi.MD_SET_ARRAY_INFO, k.ffi.new("char[]", info))
        except OSError as e:
            if e.errno == errno.EBUSY:
                pytest.skip("md0 is in use (SET_ARRAY_INFO EBUSY): left alone")
            raise
        k.ioctl(md, uapi.MD_ADD_NEW_DISK, k.ffi.new("char[]", struct.pack("<5i", 0, 7, m, 0, 6)))
        bfd = os.open(bitmap, os.O_RDWR | os.O_CLOEXEC)
        try:
            k.ioctl(md, uapi.MD_SET_BITMAP_FILE, bfd)
        except OSError as e:
            if e.errno == errno.EINVAL:
                pytest.skip("needs md bitmap files (CONFIG_MD_BITMAP_FILE): SET_BITMAP_FILE EINVAL")
            raise
        os.close(bfd)
        k.ioctl(md, uapi.MD_RUN_ARRAY, k.ffi.new("char[]", 12))
        images.write_fat12_dev("/dev/md0")
        k.mount("/dev/md0", c, images.fat_type())
        os.close(md)

    def stop(self):
        fd = os.open("/dev/md0", os.O_RDWR | os.O_CLOEXEC)
        try:
            k.ioctl(fd, uapi.MD_STOP_ARRAY)
        finally:
            os.close(fd)

    def stop_if_running(self):
        """STOP_ARRAY; ENODEV/ENXIO: no array is running (never started, or let_go stopped it)."""
        try:
            self.stop()
        except OSError as e:
            if e.errno not in (errno.ENODEV, errno.ENXIO):
                raise

    def let_go(self, lc):
        try:
            self.stop_if_running()
        except OSError as e:
            if e.errno == errno.EBUSY:
                return False
            raise
        return True


HOLDERS = [
    ("autofs_pipe_on_dead_mount_released", Autofs),
    ("zram_writeback_node_on_dead_mount_released", ZramWriteback),
    ("ecryptfs_lower_on_dead_mount_released", Ecryptfs),
    ("binfmt_misc_interpreter_on_dead_mount_released", Binfmt),
    ("fuse_backing_file_on_dead_mount_released", Fuse),
    ("zloop_zone_files_on_dead_mount_released", Zloop),
    ("mass_storage_lun_on_dead_mount_released", MassStorage),
    ("md_bitmap_file_on_dead_mount_released", MdBitmap),
]


@pytest.mark.parametrize("holder", [
    pytest.param(cls, id=name, marks=[upstream(FILE, f"loop_cycle.{name}")]
                 + ([pytest.mark.timeout(120)] if cls is MassStorage else [])
                 + ([pytest.mark.disruptive(cls.disruptive)] if cls.disruptive else []))
    for name, cls in HOLDERS])
def test_holder_on_dead_mount_released(lc, holder):
    holder_cycle(lc, holder())
