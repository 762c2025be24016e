"""Known-defect matching by kernel release (the KTAP writer: tests/test_ktap.py)."""
from harness import defects


def test_defect_matches_series_and_point_release(tmp_path):
    path = tmp_path / "d.toml"
    path.write_text('[[defect]]\ntest = "t"\nkernels = ["6.18"]\nreason = "r"\nevidence = "e"\n'
                    '[[defect]]\ntest = "u"\nkernels = ["7.0.4"]\nreason = "r"\nevidence = "e"\n')
    assert [d["test"] for d in defects.load(path, (6, 18, 44))] == ["t"]
    assert [d["test"] for d in defects.load(path, (7, 0, 4))] == ["u"]
    assert defects.load(path, (7, 0, 13)) == []
    assert defects.load(path, (6, 1, 0)) == []
