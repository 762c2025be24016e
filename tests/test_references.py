"""Comments cite what a reader can follow: the kernel (function, file, commit,
first release) or the upstream selftest, never a document outside the
repository such as the upstream catalog the suite was first written from."""
import pathlib
import re
import subprocess

import pytest

REPO = pathlib.Path(__file__).resolve().parent.parent
# The word followed by a section number ("... 3.5", "... section 2.1"), or the
# file name after "upstream-".
OUTSIDE_DOCUMENT = re.compile(r"\bcatalog(?:ue)?\s+(?:section\s+)?\d|upstream-(?=catalog)", re.I)

pytestmark = pytest.mark.no_fork


def test_no_tracked_file_cites_the_catalog():
    files = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, check=True,
                           capture_output=True, text=True).stdout.split("\0")
    found = []
    for name in filter(None, files):
        path = REPO / name
        if not path.is_file():
            continue
        text = path.read_text(errors="replace")
        found += [f"{name}:{text.count(chr(10), 0, m.start()) + 1}: {m.group(0)!r}"
                  for m in OUTSIDE_DOCUMENT.finditer(text)]
    assert not found, "cite the kernel or the upstream selftest instead:\n" + "\n".join(found)
