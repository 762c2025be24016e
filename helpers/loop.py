"""Loop block devices (drivers/block/loop.c): attach an image, detach,
and check that nothing holds a device any more."""
import errno
import os
import time

from helpers import modules, uapi
from helpers import sys as k

LOOP_MAJOR = 7


def need():
    """SKIP unless the loop driver is there (after modprobe loop)."""
    modules.need(lambda: os.path.exists("/dev/loop-control"), "loop", "CONFIG_BLK_DEV_LOOP",
                 "/dev/loop-control")


def attach(image):
    """LOOP_CTL_GET_FREE + LOOP_SET_FD, retrying when another process takes
    the free device first (EBUSY, up to 64 times); the device node is made
    if udev has not. Returns the loop number: pair it with defer(detach, n)."""
    ctl = os.open("/dev/loop-control", os.O_RDWR | os.O_CLOEXEC)
    img = os.open(image, os.O_RDWR | os.O_CLOEXEC)
    try:
        for _ in range(64):
            n = k.ioctl(ctl, uapi.LOOP_CTL_GET_FREE)
            dev = f"/dev/loop{n}"
            if not os.path.exists(dev):
                os.mknod(dev, 0o600 | 0o060000, os.makedev(LOOP_MAJOR, n))
            fd = os.open(dev, os.O_RDWR | os.O_CLOEXEC)
            try:
                k.ioctl(fd, uapi.LOOP_SET_FD, img)
                return n
            except OSError as e:
                if e.errno != errno.EBUSY:
                    raise
            finally:
                os.close(fd)
        raise AssertionError("no free loop device after 64 tries (all raced away)")
    finally:
        os.close(img)
        os.close(ctl)


def detach(n):
    """LOOP_CLR_FD. On a device still in use (mounted) the kernel turns it
    into autoclear: the device is freed with its last user. ENXIO (nothing
    attached any more) is done already."""
    fd = os.open(f"/dev/loop{n}", os.O_RDWR | os.O_CLOEXEC)
    try:
        k.ioctl(fd, uapi.LOOP_CLR_FD)
    except OSError as e:
        if e.errno != errno.ENXIO:
            raise
    finally:
        os.close(fd)


def backing_file(n):
    """The attached file's path, None when nothing is attached."""
    try:
        with open(f"/sys/block/loop{n}/loop/backing_file") as f:
            return f.read().strip()
    except FileNotFoundError:
        return None


def mounted_anywhere(n, major=LOOP_MAJOR):
    """Is major:n mounted in any /proc/*/mountinfo?"""
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


def assert_released(n):
    """upstream loop_cycle_test.c assert_loop_released(): exclusive open
    within 2 s, LOOP_CLR_FD, then backing_file gone within 5 s."""
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
