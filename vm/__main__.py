"""python -m vm list [--mirror URL]      -- what kernels exist
   python -m vm run PYTEST-ARGS...       -- same as pytest -p vm.plugin PYTEST-ARGS
   python -m vm kcidb RESULTS_DIR [-o F] -- a run's results as KCIDB v5 JSON (vm/kcidb.py)
   python -m vm bench --kernel K ...     -- the runner's speed in numbers (vm/bench.py)
   python -m vm exec --kernel K -- CMD   -- run CMD as root in a VM of kernel K (vm/exec.py)
   python -m vm diff BASELINE NEW        -- regressions and fixes between two runs (vm/diff.py)
   python -m vm bisect --good K --bad K [--fixed] PYTEST-ARGS...
                                         -- first point release where the verdict changes (vm/bisect.py)
   python -m vm html RESULTS_DIR [-o FILE] -- a run's test x kernel matrix as one HTML page (vm/html.py)"""
import importlib
import sys

# subcommands: vm/<name>.py's main(argv) runs each
COMMANDS = ("kcidb", "bench", "bisect", "exec", "diff", "html")


def main(argv):
    from .log import setup
    setup()  # every subcommand prints the runner's "vm: ..." messages
    if argv[:1] == ["list"]:
        from .runner import list_kernels
        mirror = argv[argv.index("--mirror") + 1] if "--mirror" in argv else None
        return list_kernels(mirror)
    if argv[:1] == ["run"]:
        import pytest
        return pytest.main(["-p", "vm.plugin", *argv[1:]])
    if argv and argv[0] in COMMANDS:
        return importlib.import_module(f"vm.{argv[0]}").main(argv[1:])
    print(__doc__)
    return 2


sys.exit(main(sys.argv[1:]))
