"""helpers/clone_flags.py must match the running kernel: every clone3 flag
bit above 31 (and UNSHARE_EMPTY_MNTNS for unshare) is accepted exactly when
the table says the release defines it. The "unknown flag" twins build their
flag from that table, so a wrong row would make them test the wrong thing.
Run on each VM kernel, this is also the evidence for the table's rows."""
import errno

import pytest

from helpers import clone_flags, uapi
from helpers.errors import name
from helpers.kernel import release


@pytest.mark.root
@pytest.mark.parametrize("bit", range(32, 40), ids=lambda b: f"1<<{b}")
def test_clone3_flag_bit_matches_table(bit):
    """clone3 with the bit (and its required companions) gets past the flag
    check (a child, or an error other than EINVAL, e.g. EBADF for
    CLONE_INTO_CGROUP without a cgroup fd) iff the table defines the bit for
    this release; an undefined bit is EINVAL."""
    flag = 1 << bit
    defined = bool(clone_flags.clone3_flags() & flag)
    err = clone_flags.clone3_accepts(flag)
    if defined:
        assert err != errno.EINVAL, f"{release()}: table defines {flag:#x} but clone3 says EINVAL"
    else:
        assert err == errno.EINVAL, f"{release()}: table lacks {flag:#x} but clone3 says {name(err)}"


@pytest.mark.root
def test_unknown_clone3_flag_is_the_lowest_undefined_bit():
    """unknown_clone3_flag() is rejected, and every lower bit above 31 is defined."""
    flag = clone_flags.unknown_clone3_flag()
    assert clone_flags.clone3_accepts(flag) == errno.EINVAL
    lower_high_bits = (flag - 1) & ~0xFFFFFFFF
    assert clone_flags.clone3_flags() & lower_high_bits == lower_high_bits


@pytest.mark.root
@pytest.mark.parametrize("flag", [uapi.UNSHARE_EMPTY_MNTNS, clone_flags.CLONE_DETACHED,
                                  0x80000000], ids=hex)
def test_unshare_flag_matches_table(flag):
    """unshare accepts the flag iff the table says this release does."""
    defined = bool(clone_flags.unshare_flags() & flag)
    err = clone_flags.unshare_accepts(flag)
    if defined:
        assert err == 0, f"{release()}: table has unshare {flag:#x} but unshare says {name(err)}"
    else:
        assert err == errno.EINVAL, f"{release()}: table lacks unshare {flag:#x} but unshare says {name(err)}"
