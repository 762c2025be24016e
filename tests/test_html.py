"""vm/html.py: the matrix page, built from a fabricated results directory
and read back from a real headless browser's DOM after its script ran."""
import json
import shutil
import subprocess
import sys
import textwrap
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import quote

import pytest

from vm import errors, html, report

OK, CRASHED, UNTESTED = ("7.3.4+deb13-cloud-amd64", "6.18.15+deb13-cloud-amd64",
                         "7.0.13+deb13-cloud-amd64")
NASTY = "suites/nullfs/test_a.py::test_odd[<i>x</i>&amp;]"  # ids and texts carry < > &
FAILING = "suites/nullfs/test_a.py::test_fails"
BLAMED = "suites/open_tree_ns/test_b.py::test_warns"
# the guest's console: the suite's marks around each test, then the kernel's WARNING
CONSOLE = textwrap.dedent(f"""\
    [   9.0] mntns-test: start {BLAMED} pid=9
    [   9.1] WARNING: CPU: 0 PID: 9 at fs/namespace.c:1234 do_umount+0x1f/0x80
    [   9.1] Call Trace:
    [   9.1]  path_umount+0x3c/0x90
    [   9.2] ---[ end trace 0000000000000000 ]---
    """)
JUNIT = textwrap.dedent("""\
    <?xml version="1.0"?><testsuites><testsuite name="pytest">
    <testcase classname="suites.nullfs.test_a" name="test_odd[&lt;i&gt;x&lt;/i&gt;&amp;amp;]"
      file="suites/nullfs/test_a.py" time="0.010"/>
    <testcase classname="suites.nullfs.test_a" name="test_fails" file="suites/nullfs/test_a.py" time="0.241">
      <properties><property name="harness_wall_s" value="2.0793"/></properties>
      <failure message="AssertionError: &lt;i&gt;EPERM&lt;/i&gt; &amp; not EINVAL">tb line 1
    E   assert &lt;i&gt;1&lt;/i&gt; == 2</failure></testcase>
    <testcase classname="suites.nullfs.test_a" name="test_skips" file="suites/nullfs/test_a.py" time="0">
      <skipped type="pytest.skip" message="kernel lacks nullfs_root: nullfs beneath the namespace root (7.0)">
    harness/features.py:146: kernel lacks nullfs_root: nullfs beneath the namespace root (7.0)</skipped></testcase>
    <testcase classname="suites.open_tree_ns.test_b" name="test_known" file="suites/open_tree_ns/test_b.py" time="0.1">
      <skipped type="pytest.xfail" message="known defect on 7.3: EINVAL from do_open_tree"/></testcase>
    <testcase classname="suites.open_tree_ns.test_b" name="test_fixed" file="suites/open_tree_ns/test_b.py" time="0.1">
      <failure message="[XPASS(strict)] known defect on 7.3: fixed"/></testcase>
    <testcase classname="suites.open_tree_ns.test_b" name="test_warns" file="suites/open_tree_ns/test_b.py" time="0.3">
      <error message="fixture 'tree' failed">setup tb</error></testcase>
    </testsuite></testsuites>""")
JUNIT_CRASHED = """<?xml version="1.0"?><testsuites><testsuite name="pytest">
<testcase classname="suites.nullfs.test_a" name="test_passes" file="suites/nullfs/test_a.py" time="0.2"/>
</testsuite></testsuites>"""
ERROR_TXT = "console: WARNING: CPU: 0 PID: 9\n\n--- console excerpt ---\n[ 9.1] WARNING: CPU: 0 <b>\n[ 9.2] Call Trace:\n"


@pytest.fixture
def results(tmp_path):
    """A run of three kernels: one ok with every status, one crashed after a
    few tests (summary.json's crash blames a test that never reported), one
    that could not be tested (no junit.xml, no crash key)."""
    d = tmp_path / "results"
    for k in (OK, CRASHED, UNTESTED):
        (d / k).mkdir(parents=True)
    (d / OK / "junit.xml").write_text(JUNIT)
    (d / CRASHED / "junit.xml").write_text(JUNIT_CRASHED)
    (d / CRASHED / "error.txt").write_text(ERROR_TXT)
    (d / CRASHED / "console.log").write_text(CONSOLE)
    (d / UNTESTED / "console.log").write_text("")
    runs = {OK: {"status": "ok", "accel": "tcg", "package": "7.3.4-1~bpo13+1", "dir": d / OK},
            CRASHED: {"status": "error", "reason": "console: WARNING: CPU: 0 PID: 9 at fs/namespace.c:1234",
                      "accel": "tcg", "dir": d / CRASHED},
            UNTESTED: {"status": "infra", "reason": "virtiofsd did not start", "dir": d / UNTESTED}}
    summary = report.summarize(runs)
    assert summary["kernels"][CRASHED]["crash"]["tests"] == [BLAMED]
    del summary["kernels"][UNTESTED]["crash"], summary["kernels"][UNTESTED]["crashes"]  # older runners
    (d / "summary.json").write_text(json.dumps(summary))
    return d


def test_write_default_path_and_escaping(results):
    page = html.write(results).read_text()
    assert html.write(results) == results / "matrix.html"
    assert "<i>" not in page  # every id and text from the results is escaped
    assert "&lt;i&gt;x&lt;/i&gt;&amp;amp;" in page
    assert "http" not in page.replace("http-equiv", "")  # nothing to load from a network
    assert "⚡ WARNING: in do_umount (fs/namespace.c)" in page  # the crash in its kernel's header


def test_group_of():
    assert html.group_of(FAILING) == "suites/nullfs"
    assert html.group_of("test_top.py::t") == "(top level)"


@pytest.mark.parametrize("bad", ["nothing", "empty"])
def test_bad_results_dir_is_a_usage_error(tmp_path, bad):
    d = tmp_path / "r"
    if bad == "empty":
        d.mkdir()
    with pytest.raises(errors.UsageError, match=str(d)):
        html.write(d)
    assert not (d / "matrix.html").exists()


def test_cli(results, tmp_path):
    run = lambda *a: subprocess.run([sys.executable, "-m", "vm", "html", *a], capture_output=True,
                                    text=True, cwd=Path(__file__).parents[1])
    out = tmp_path / "m.html"
    p = run(str(results), "-o", str(out))
    assert (p.returncode, p.stdout.strip()) == (0, f"vm: wrote {out}")
    p = run(str(tmp_path / "none"))
    assert p.returncode == errors.USAGE
    assert p.stderr.strip() == f"vm html: {tmp_path / 'none'}: no such results directory"


# --- in a real browser ---------------------------------------------------------

CHROMIUM = shutil.which("chromium")
browser = pytest.mark.skipif(not CHROMIUM, reason="needs Debian's chromium: run ./setup.sh "
                                                  "(apt-get install chromium)")


class Dom(HTMLParser):
    """The rows (node id -> hidden?), the cells' classes, the detail panel's
    text and every tag name of a dumped DOM."""

    def __init__(self, text):
        super().__init__()
        self.rows, self.cells, self.tags, self.detail = {}, {}, set(), None
        self._row = self._nid = self._in_detail = None
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags.add(tag)
        if tag == "tr" and "data-t" in a:
            self._row = [a.get("hidden") is not None, []]
        elif tag == "th" and self._row is not None and "title" in a:
            self.rows[a["title"]] = self._row[0]
            self._nid = a["title"]
        elif tag == "td" and self._row is not None:
            self.cells.setdefault(self._nid, []).append(a["class"])
        elif tag == "aside":
            self._in_detail, self.detail_hidden, self.detail = True, "hidden" in a, ""

    def handle_endtag(self, tag):
        if tag == "aside":
            self._in_detail = False
        elif tag == "tr":
            self._row = None

    def handle_data(self, data):
        if self._in_detail:
            self.detail += data + "\n"


def dom(page: Path, fragment: str, tmp_path) -> Dom:
    # The flags keep chromium off the network (it would wait on it here) and
    # out of anything a previous run left: a fresh profile each time.
    p = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                        "--no-first-run", "--disable-background-networking",
                        "--disable-component-update", "--disable-sync",
                        f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom",
                        page.as_uri() + "#" + fragment],
                       capture_output=True, text=True, timeout=180)
    assert p.returncode == 0, p.stderr
    return Dom(p.stdout)


def visible(d: Dom) -> set[str]:
    return {nid for nid, hidden in d.rows.items() if not hidden}


@browser
def test_page_in_browser_filters_from_the_url(results, tmp_path):
    page = html.write(results)
    everything = dom(page, "", tmp_path)
    assert set(everything.rows) == {NASTY, FAILING, "suites/nullfs/test_a.py::test_passes",
                                    "suites/nullfs/test_a.py::test_skips",
                                    "suites/open_tree_ns/test_b.py::test_known",
                                    "suites/open_tree_ns/test_b.py::test_fixed", BLAMED}
    assert visible(everything) == set(everything.rows)
    assert "i" not in everything.tags  # the <i> in ids and failure texts stayed text
    assert everything.detail_hidden
    # columns in summary order; the untested kernel has no result at all
    assert [c.split()[1] for c in everything.cells[FAILING]] == ["s-FAIL", "s-missing", "s-missing"]
    assert everything.cells[BLAMED] == ["c s-ERROR", "c s-missing x", "c s-missing"]
    assert visible(dom(page, "status=FAIL", tmp_path)) == {FAILING}
    assert visible(dom(page, "status=xpass,crash", tmp_path)) == {
        "suites/open_tree_ns/test_b.py::test_fixed", BLAMED}
    assert visible(dom(page, "q=" + quote("<i>x"), tmp_path)) == {NASTY}


@browser
def test_page_in_browser_opens_a_cell_from_the_url(results, tmp_path):
    page = html.write(results)
    d = dom(page, f"kernel={quote(OK, safe='')}&test={quote(FAILING, safe='')}", tmp_path)
    assert not d.detail_hidden
    assert "AssertionError: <i>EPERM</i> & not EINVAL" in d.detail
    assert "E   assert <i>1</i> == 2" in d.detail and "2.0793" in d.detail
    assert "i" not in d.tags
    d = dom(page, f"kernel={quote(CRASHED, safe='')}&test={quote(BLAMED, safe='')}", tmp_path)
    crash = json.loads((results / "summary.json").read_text())["kernels"][CRASHED]["crash"]
    assert crash["fingerprint"] in d.detail and "Call Trace:\npath_umount+0x3c/0x90" in d.detail
    assert "[ 9.1] WARNING: CPU: 0 <b>" in d.detail  # the console excerpt from error.txt
    d = dom(page, f"kernel={quote(UNTESTED, safe='')}", tmp_path)  # a kernel's header, opened
    assert "infra" in d.detail and "virtiofsd did not start" in d.detail
