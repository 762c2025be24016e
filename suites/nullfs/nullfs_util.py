"""Shared pieces of the nullfs suite: entering an empty mount namespace from
the initial user namespace (real root) or from a user namespace (the raw
directory and mount-stack readers are helpers.readdir and helpers.mounts)."""
import os

import pytest

from helpers import sys as k
from helpers import uapi
from helpers.ns import enter_userns

# Where the caller's CAP_SYS_ADMIN comes from when it enters the empty mntns.
ROOT = pytest.param("init_userns", marks=pytest.mark.root, id="init_userns")
USERNS = pytest.param("userns", marks=pytest.mark.userns, id="userns")
CONTEXTS = [ROOT, USERNS]

SB_AND_TYPE = uapi.STATMOUNT_SB_BASIC | uapi.STATMOUNT_MNT_BASIC | uapi.STATMOUNT_FS_TYPE


def enter_empty(context=None):
    """unshare(UNSHARE_EMPTY_MNTNS), as real root ("init_userns") or after
    enter_userns() ("userns"). None: as root if we are, else from a user
    namespace -- the nullfs root is the same either way, and an ordinary
    user may only create the namespace from one it owns (may_mount())."""
    if context is None:
        context = "init_userns" if os.geteuid() == 0 else "userns"
    if context == "userns":
        enter_userns()
    elif context != "init_userns":
        raise ValueError(context)
    k.unshare(uapi.UNSHARE_EMPTY_MNTNS)
