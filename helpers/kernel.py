"""The running kernel: release string, numeric version, the VM boot record."""
import json
import os
import re


def release():
    return os.uname().release


def version(rel=None):
    """(major, minor, patch) from a release like '7.3.4+deb14-cloud-amd64'."""
    m = re.match(r"(\d+)\.(\d+)(?:\.(\d+))?", rel or release())
    if not m:
        raise ValueError(f"kernel release {rel or release()!r} does not start with a version number")
    return tuple(int(x or 0) for x in m.groups())


def parse_version(text):
    return tuple(int(x) for x in text.split(".")) + (0,) * (3 - len(text.split(".")))


def boot_record():
    """The VM runner's record of how init switched root, or None on a host."""
    path = os.environ.get("MNTNS_BOOT_RECORD")
    if not path or not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)
