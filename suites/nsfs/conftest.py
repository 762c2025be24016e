"""Fixtures for the nsfs suites."""
import os

import pytest

from helpers import uapi


@pytest.fixture
def init_pidns():
    """NS_MNT_GET_NEXT/PREV answer EPERM outside the initial pid namespace (a
    container, or a runner that starts pytest in its own pid ns): that is a
    property of the environment, not of the kernel under test
    (fs/nsfs.c may_use_nsfs_ioctl(): may_see_all_namespaces())."""
    if os.stat("/proc/self/ns/pid").st_ino != uapi.PROC_PID_INIT_INO:
        pytest.skip("needs the initial pid namespace: NS_MNT_GET_NEXT/PREV are EPERM elsewhere")
