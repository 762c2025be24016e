"""The kernel's own KTAP parser, tools/testing/kunit/kunit_parser.py, taken
from Debian's linux-source package: a parser that is not the project's, for
tests/test_ktap.py.

Fetched once with apt's own tools through the project's private apt state
(vm/apt.py, the machine's mirror) and kept under
~/.cache/mntns-conformance/kunit/linux-source-7.3_<version>/; only
tools/testing/kunit is unpacked, the source tarball streamed out of the
.deb, and the .deb is removed afterwards (it is 160 MB; the directory kept
is under 400 KB). Measured here: 47 s the first time (the private index's
update, the download, the unpacking), 0.3 s after.
"""
from __future__ import annotations

import fcntl
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from vm import apt

PACKAGE = "linux-source-7.3"
KUNIT = "tools/testing/kunit/"


def cache() -> Path:
    return apt.cache_root() / "kunit"


def cached() -> Path | None:
    """An already unpacked tools/testing/kunit, newest package version first."""
    found = sorted(cache().glob(f"{PACKAGE}_*/{KUNIT}kunit_parser.py"), reverse=True)
    return found[0].parent if found else None


# dpkg-deb's data tar -> the source tarball in it -> tools/testing/kunit of
# that: streams through pipes, so only the kunit directory touches the disk
# (tar, like dpkg-deb, is what the package's own tools use; GNU tar refuses
# member names with "..").
UNPACK = ("set -o pipefail; dpkg-deb --fsys-tarfile \"$1\" | tar -xOf - \"./usr/src/$2.tar.xz\""
          " | tar -xJf - -C \"$3\" --wildcards \"$2/$4*\"")


def _unpack(deb: Path, dest: Path) -> None:
    run = subprocess.run(["bash", "-c", UNPACK, "unpack", str(deb), PACKAGE, str(dest), KUNIT],
                         capture_output=True, text=True)
    if run.returncode:
        raise RuntimeError(f"unpacking {KUNIT} from {deb.name} failed: {run.stderr.strip()}")


def kunit_dir() -> Path:
    """tools/testing/kunit of Debian's newest linux-source-7.3, fetched on
    first use; concurrent callers (xdist workers) wait for one fetch."""
    cache().mkdir(parents=True, exist_ok=True)
    with open(cache() / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (found := cached()) is not None:
            return found
        deb = apt.PrivateApt().download_candidate(PACKAGE)
        with tempfile.TemporaryDirectory(dir=cache()) as tmp:
            _unpack(deb, Path(tmp))
            [top] = Path(tmp).iterdir()  # linux-source-7.3/
            if not (top / KUNIT / "kunit_parser.py").is_file():
                raise RuntimeError(f"{deb.name}: no {KUNIT}kunit_parser.py in {PACKAGE}.tar.xz")
            version = deb.name.split("_")[1]
            top.rename(cache() / f"{PACKAGE}_{version}")
        deb.unlink()
        return cached()


# Runs in its own interpreter, so the kernel's modules stay out of the pytest
# process (7.3's API: parse_run_tests(lines, Printer)).
KUNIT_RUN = r"""
import json, sys
sys.path.insert(0, sys.argv[1])
import kunit_parser, kunit_printer
lines = open(sys.argv[2]).read().splitlines()
def tree(t):
    return {"name": t.name, "status": t.status.name, "counts": vars(t.counts), "log": t.log,
            "subtests": [tree(s) for s in t.subtests]}
test = kunit_parser.parse_run_tests(lines, kunit_printer.Printer(print=False))
json.dump(tree(test), open(sys.argv[3], "w"))
"""


def parse(kunit: Path, ktap: Path) -> dict:
    """kunit_parser's test tree of a KTAP file: name, status, counts, log, subtests."""
    out = ktap.with_name(ktap.name + ".kunit.json")
    run = subprocess.run([sys.executable, "-c", KUNIT_RUN, str(kunit), str(ktap), str(out)],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    return json.loads(out.read_text())


if __name__ == "__main__":  # fetch it (or find it) and say where
    print(kunit_dir())
