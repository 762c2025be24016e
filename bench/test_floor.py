"""The benchmark's floor (`python -m vm bench`, docs/vm.md "Benchmark").

100 cases that cost nothing themselves, so what a VM run of this file takes
is what the runner and the harness cost: boot, pytest start-up, the feature
probes and, per case, the fork, the private mount-namespace copy and the
report's way back to the worker.

A benchmark input, not a project test: it lives outside testpaths (suites)
and tests/, so only an explicit `pytest bench/test_floor.py` collects it. The
root conftest.py still applies, so every case is forked and isolated exactly
like a suite case -- that isolation is what the floor measures.
"""
import pytest


@pytest.mark.parametrize("n", range(100))
def test_floor(n):
    assert 0 <= n < 100
