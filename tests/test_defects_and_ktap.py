"""Known-defect matching by kernel release, and the KTAP writer's output."""
import pytest

from harness import defects

pytest_plugins = ["pytester"]


def test_defect_matches_series_and_point_release(tmp_path):
    path = tmp_path / "d.toml"
    path.write_text('[[defect]]\ntest = "t"\nkernels = ["6.18"]\nreason = "r"\nevidence = "e"\n'
                    '[[defect]]\ntest = "u"\nkernels = ["7.0.4"]\nreason = "r"\nevidence = "e"\n')
    assert [d["test"] for d in defects.load(path, (6, 18, 44))] == ["t"]
    assert [d["test"] for d in defects.load(path, (7, 0, 4))] == ["u"]
    assert defects.load(path, (7, 0, 13)) == []
    assert defects.load(path, (6, 1, 0)) == []


def test_ktap_lines(pytester):
    import pathlib
    repo = pathlib.Path(__file__).resolve().parent.parent
    pytester.makeconftest(f"import sys; sys.path.insert(0, {str(repo)!r})\n"
                          "pytest_plugins = ['harness.ktap']\n")
    pytester.makepyfile(test_k="import pytest\n"
                        "def test_a(): pass\n"
                        "def test_b(): assert 0\n"
                        "def test_c(): pytest.skip('why')\n")
    pytester.runpytest_subprocess("-p", "no:cacheprovider", "--ktap", "out.ktap")
    lines = (pytester.path / "out.ktap").read_text().splitlines()
    assert lines == ["KTAP version 1", "1..3", "ok 1 test_k.py::test_a", "not ok 2 test_k.py::test_b",
                     "ok 3 test_k.py::test_c # SKIP Skipped: why"]
