"""Fixtures shared by the mount_cycle twins and the tests beyond upstream."""
import pytest

from helpers.cleanup import scratch_dir


@pytest.fixture
def base(request, defer):
    """upstream mkdtemp("/tmp/<program>.XXXXXX"); detached and removed afterwards."""
    prefix = request.module.__name__.rsplit(".", 1)[-1].removeprefix("test_").removesuffix("_test")
    return scratch_dir(defer, prefix=prefix + ".")
