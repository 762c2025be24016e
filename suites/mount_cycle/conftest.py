"""Fixtures shared by the mount_cycle twins and the tests beyond upstream."""
import os
import tempfile

import pytest

from helpers import uapi
from helpers import sys as k


@pytest.fixture
def base(request):
    """upstream mkdtemp("/tmp/<program>.XXXXXX"); detached and removed afterwards."""
    prefix = request.module.__name__.rsplit(".", 1)[-1].removeprefix("test_").removesuffix("_test")
    path = tempfile.mkdtemp(prefix=prefix + ".", dir="/tmp")
    yield path
    while True:
        try:
            k.umount2(path, uapi.MNT_DETACH)
        except OSError:
            break
    try:
        os.rmdir(path)
    except OSError:
        pass
