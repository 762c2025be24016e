"""Which flags each kernel release defines for the mount-API syscalls.

"Invalid flag" tests must build their value from these tables for the running
kernel, never from a fixed constant: a bit that is free today gets a meaning
in a later release (0x2 was "undefined" for open_tree and fsmount until
OPEN_TREE_NAMESPACE / FSMOUNT_NAMESPACE).

Tables (bit, name, first release that accepts it):
- OPEN_TREE_FLAGS        open_tree(2) `flags` (vfs_open_tree checks them first)
- FSMOUNT_FLAGS          fsmount(2) `flags`
- FSMOUNT_ATTR_FLAGS     fsmount(2) `attr_flags` (no IDMAP: mount_setattr only)
- MOUNT_SETATTR_ATTRS    mount_setattr(2) attr_set/attr_clr bits
- MOUNT_SETATTR_PROPAGATION  mount_setattr(2) `propagation` values
- MOVE_MOUNT_FLAGS       move_mount(2) `flags` (MOVE_MOUNT__MASK on 7.3)
- STATMOUNT_FLAGS, LISTMOUNT_FLAGS  statmount(2)/listmount(2) `flags`

First releases: the new-mount-API base is 5.2; MOUNT_ATTR_IDMAP and
mount_setattr 5.12; MOUNT_ATTR_NOSYMFOLLOW 5.14; MOVE_MOUNT_SET_GROUP 5.15;
MOVE_MOUNT_BENEATH 6.5. OPEN_TREE_NAMESPACE and FSMOUNT_NAMESPACE are
features of their own: their rows take the release from the feature's one
declaration in helpers/probes.py (and the tests using them are behind
`requires` markers, so a wrong row shows up as a FAIL, not a silent skip).
"""
from helpers import uapi
from helpers.kernel import parse_version, version
from helpers.probes import FEATURES

OPEN_TREE_FLAGS = [
    (uapi.OPEN_TREE_CLONE, "OPEN_TREE_CLONE", "5.2"),
    (uapi.OPEN_TREE_CLOEXEC, "OPEN_TREE_CLOEXEC", "5.2"),
    (uapi.AT_SYMLINK_NOFOLLOW, "AT_SYMLINK_NOFOLLOW", "5.2"),
    (uapi.AT_NO_AUTOMOUNT, "AT_NO_AUTOMOUNT", "5.2"),
    (uapi.AT_EMPTY_PATH, "AT_EMPTY_PATH", "5.2"),
    (uapi.AT_RECURSIVE, "AT_RECURSIVE", "5.2"),
    (uapi.OPEN_TREE_NAMESPACE, "OPEN_TREE_NAMESPACE", FEATURES["open_tree_namespace"].since),
]

FSMOUNT_FLAGS = [
    (uapi.FSMOUNT_CLOEXEC, "FSMOUNT_CLOEXEC", "5.2"),
    (uapi.FSMOUNT_NAMESPACE, "FSMOUNT_NAMESPACE", FEATURES["fsmount_namespace"].since),
]

_ATTR_BASE = [
    (uapi.MOUNT_ATTR_RDONLY, "MOUNT_ATTR_RDONLY"),
    (uapi.MOUNT_ATTR_NOSUID, "MOUNT_ATTR_NOSUID"),
    (uapi.MOUNT_ATTR_NODEV, "MOUNT_ATTR_NODEV"),
    (uapi.MOUNT_ATTR_NOEXEC, "MOUNT_ATTR_NOEXEC"),
    (uapi.MOUNT_ATTR__ATIME, "MOUNT_ATTR__ATIME"),
    (uapi.MOUNT_ATTR_NODIRATIME, "MOUNT_ATTR_NODIRATIME"),
]

FSMOUNT_ATTR_FLAGS = [(bit, name, "5.2") for bit, name in _ATTR_BASE] + [
    (uapi.MOUNT_ATTR_NOSYMFOLLOW, "MOUNT_ATTR_NOSYMFOLLOW", "5.14"),
]

MOUNT_SETATTR_ATTRS = [(bit, name, "5.12") for bit, name in _ATTR_BASE] + [
    (uapi.MOUNT_ATTR_IDMAP, "MOUNT_ATTR_IDMAP", "5.12"),
    (uapi.MOUNT_ATTR_NOSYMFOLLOW, "MOUNT_ATTR_NOSYMFOLLOW", "5.14"),
]

# mount_setattr(2) `propagation`: one of the four types (fs/namespace.c
# build_mount_kattr(): anything else is EINVAL).
MOUNT_SETATTR_PROPAGATION = [
    (uapi.MS_UNBINDABLE, "MS_UNBINDABLE", "5.12"),
    (uapi.MS_PRIVATE, "MS_PRIVATE", "5.12"),
    (uapi.MS_SLAVE, "MS_SLAVE", "5.12"),
    (uapi.MS_SHARED, "MS_SHARED", "5.12"),
]

MOVE_MOUNT_FLAGS = [
    (uapi.MOVE_MOUNT_F_SYMLINKS, "MOVE_MOUNT_F_SYMLINKS", "5.2"),
    (uapi.MOVE_MOUNT_F_AUTOMOUNTS, "MOVE_MOUNT_F_AUTOMOUNTS", "5.2"),
    (uapi.MOVE_MOUNT_F_EMPTY_PATH, "MOVE_MOUNT_F_EMPTY_PATH", "5.2"),
    (uapi.MOVE_MOUNT_T_SYMLINKS, "MOVE_MOUNT_T_SYMLINKS", "5.2"),
    (uapi.MOVE_MOUNT_T_AUTOMOUNTS, "MOVE_MOUNT_T_AUTOMOUNTS", "5.2"),
    (uapi.MOVE_MOUNT_T_EMPTY_PATH, "MOVE_MOUNT_T_EMPTY_PATH", "5.2"),
    (uapi.MOVE_MOUNT_SET_GROUP, "MOVE_MOUNT_SET_GROUP", "5.15"),
    (uapi.MOVE_MOUNT_BENEATH, "MOVE_MOUNT_BENEATH", "6.5"),
]

# statmount(2)/listmount(2) `flags` (SYSCALL_DEFINE4(statmount): flags &
# ~STATMOUNT_BY_FD, SYSCALL_DEFINE4(listmount): flags & ~LISTMOUNT_REVERSE).
STATMOUNT_FLAGS = [
    (uapi.STATMOUNT_BY_FD, "STATMOUNT_BY_FD", FEATURES["statmount_by_fd"].since),
]

LISTMOUNT_FLAGS = [
    (uapi.LISTMOUNT_REVERSE, "LISTMOUNT_REVERSE", FEATURES["listmount_reverse"].since),
]

TABLES = {
    "open_tree": OPEN_TREE_FLAGS,
    "fsmount": FSMOUNT_FLAGS,
    "fsmount_attr": FSMOUNT_ATTR_FLAGS,
    "mount_setattr": MOUNT_SETATTR_ATTRS,
    "mount_setattr_propagation": MOUNT_SETATTR_PROPAGATION,
    "move_mount": MOVE_MOUNT_FLAGS,
    "statmount": STATMOUNT_FLAGS,
    "listmount": LISTMOUNT_FLAGS,
}


def _rows(table, ver=None):
    """(bit, name) of the rows defined on kernel `ver` (default: running);
    `table` is a name in TABLES or a list of (bit, name, since) rows."""
    ver = ver or version()
    rows = TABLES[table] if isinstance(table, str) else table
    return [(bit, name) for bit, name, since in rows if ver >= parse_version(since)]


def defined(table, ver=None):
    """OR of every bit `table` defines on kernel `ver` (default: running kernel)."""
    out = 0
    for bit, _ in _rows(table, ver):
        out |= bit
    return out


def names(table, ver=None):
    """{bit: name} of the single-bit flags defined on `ver` (masks expanded)."""
    out = {}
    for bit, name in _rows(table, ver):
        for i in range(64):
            if bit & (1 << i):
                out[1 << i] = name
    return out


def undefined_bits(table, ver=None, width=32):
    """Every single bit below 1<<width that `table` does not define on `ver`."""
    mask = defined(table, ver)
    return [1 << i for i in range(width) if not mask & (1 << i)]


def invalid(table, ver=None, width=32):
    """One undefined bit (the lowest), for "an unknown flag gives EINVAL"."""
    bits = undefined_bits(table, ver, width)
    if not bits:
        raise ValueError(f"{table}: every bit below 1<<{width} is defined")
    return bits[0]


def all_bits(table, ver=None, width=32):
    """[(bit, name or None)] for every bit below 1<<width: None means undefined."""
    known = names(table, ver)
    return [(1 << i, known.get(1 << i)) for i in range(width)]


if __name__ == "__main__":
    from helpers.kernel import release
    print(f"kernel {release()}")
    for table in TABLES:
        print(f"  {table:<14} defined {defined(table):#010x}  first undefined {invalid(table):#x}")
