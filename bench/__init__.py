"""Benchmarks that print numbers (never asserted in timed tests).

`python -m bench`: container root set-up by the classic and the new
mount-namespace methods (bench/__main__.py). bench/test_floor.py is the
input of `python -m vm bench`, the runner's own speed (vm/bench.py).
"""
