"""python -m vm list [--mirror URL]      -- what kernels exist
   python -m vm run PYTEST-ARGS...       -- same as pytest -p vm.plugin PYTEST-ARGS
   python -m vm kcidb RESULTS_DIR [-o F] -- a run's results as KCIDB v5 JSON (vm/kcidb.py)
   python -m vm bench --kernel K ...     -- the runner's speed in numbers (vm/bench.py)
   python -m vm exec --kernel K -- CMD   -- run CMD as root in a VM of kernel K (vm/exec.py)
   python -m vm diff BASELINE NEW        -- regressions and fixes between two runs (vm/diff.py)
   python -m vm bisect --good K --bad K [--fixed] PYTEST-ARGS...
                                         -- first point release where the verdict changes (vm/bisect.py)
   python -m vm html RESULTS_DIR [-o FILE] -- a run's test x kernel matrix as one HTML page (vm/html.py)"""
import sys


def main(argv):
    if argv[:1] == ["list"]:
        from .runner import list_kernels
        mirror = argv[argv.index("--mirror") + 1] if "--mirror" in argv else None
        return list_kernels(mirror)
    if argv[:1] == ["run"]:
        import pytest
        return pytest.main(["-p", "vm.plugin", *argv[1:]])
    if argv[:1] == ["kcidb"]:
        from .kcidb import main as kcidb
        return kcidb(argv[1:])
    if argv[:1] == ["bench"]:
        from .bench import main as bench
        return bench(argv[1:])
    if argv[:1] == ["bisect"]:
        from .bisect import main as bisect
        return bisect(argv[1:])
    if argv[:1] == ["exec"]:
        from .exec import main as exec_
        return exec_(argv[1:])
    if argv[:1] == ["diff"]:
        from .diff import main as diff
        return diff(argv[1:])
    if argv[:1] == ["html"]:
        from .html import main as html
        return html(argv[1:])
    print(__doc__)
    return 2


sys.exit(main(sys.argv[1:]))
