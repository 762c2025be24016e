"""The selection in every created machine of the project, in parallel,
reported like the direct runner: results/<release>/{junit.xml, ktap.txt,
console.log, pytest.log, error.txt}, summary.json/.md, the matrix, its exit
codes (vm/runner.py's report, vm/report.py)."""
from __future__ import annotations

import contextlib
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from .. import errors, runner
from ..plugin import strip_vm_args
from . import plugin
from .machines import Machines, Runner


def guest_args(args) -> list[str]:
    """The user's pytest arguments minus the runner's and this plugin's own."""
    out, skip = [], False
    for a in strip_vm_args(args):
        if skip:
            skip = False
        elif a in plugin.OWN_VALUE_OPTIONS:
            skip = True
        elif a in plugin.OWN_FLAGS or any(a.startswith(o + "=") for o in plugin.OWN_VALUE_OPTIONS):
            pass
        else:
            out.append(a)
    return out


def main(config, forced: bool, out=print) -> int | None:
    root = config.rootpath
    results_dir = Path(config.invocation_params.dir, config.option.results_dir).resolve()
    results_dir.mkdir(parents=True, exist_ok=True)
    ms = Machines(root, log=results_dir / "vagrant.log")
    try:
        created = ms.created()
    except (subprocess.CalledProcessError, OSError, RuntimeError) as e:
        if not forced:
            out(f"vagrant: `vagrant status` failed ({e}; see {results_dir / 'vagrant.log'}): "
                "testing the live kernel")
            return None
        out(f"vagrant: `vagrant status` failed: {e}; see {results_dir / 'vagrant.log'}")
        return errors.INFRA
    running = [m for m in created if m.state == "running"]
    if not running and not forced:
        if created:
            out("vagrant: this project's machines are not running ("
                + ", ".join(f"{m.name}: {m.state}" for m in created) + "): testing the live kernel")
        return None
    if not created:
        out("vagrant: --vagrant, but no machine of this project is created: vagrant up")
        return errors.USAGE
    args = guest_args(config.invocation_params.args)
    if "--disruptive" not in args and config.pluginmanager.hasplugin("harness.disruptive"):
        # a machine of this project is a disposable VM, as the runner's guests
        # (which run the disruptive cases by their boot record)
        args.append("--disruptive")
    cwd = str(config.invocation_params.dir)
    try:
        runner.warm_caches(cwd, args)  # bad arguments: one line, before any ssh
    except errors.RunnerError as e:
        out(f"vagrant: {e}")
        return e.exit_code
    out(f"vagrant: running the selection inside this project's Vagrant machines "
        f"{', '.join(m.name for m in created)} over ssh (--no-vagrant: on the live kernel "
        f"instead); results in {results_dir}")
    return _run_all(ms, created, cwd, args, config, results_dir, out)


def _run_all(ms, machines, cwd, args, config, results_dir: Path, out) -> int:
    ktap = config.pluginmanager.hasplugin("harness.ktap")
    r = Runner(ms, cwd, args, ktap, config.option.vagrant_timeout)
    started = time.time()
    interrupted = False
    with contextlib.closing(r), ThreadPoolExecutor(len(machines)) as pool:
        futures = {pool.submit(r.run, m, results_dir): m for m in machines}
        try:
            for f in futures:
                f.result()
                m = futures[f]
                out(f"vagrant: {m.name} ({m.kernel.name}): {m.result.status}"
                    + (f": {m.result.reason}" if m.result.reason else ""))
        except KeyboardInterrupt:
            interrupted = True
            out("vagrant: interrupted: writing a partial summary (the machines keep running)")
    opts = runner.RunOptions(results_dir=results_dir, junitxml=config.option.xmlpath,
                             ktap=config.getoption("ktap", None) if ktap else None,
                             features_json=config.getoption("features_json", None) if ktap else None)
    # vm/runner.py's report: it reads .kernel, .result and .results of each
    # machine as of a VM (vm/qemu.py).
    return runner.report_runs(machines, results_dir, opts, out, interrupted, started)
