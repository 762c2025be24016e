"""Upstream twins: @pytest.mark.upstream(file, case) and --upstream-parity.

`file` is the selftest source path under tools/testing/selftests/, `case` its
kselftest TAP name (global.<test>, <fixture>.<test>, <fixture>.<variant>.<test>;
the test description for ksft_test_result programs; the program name for plain
programs). upstream/<file>.cases lists every upstream case, one per line, so
parity is counted against the upstream tree, not against what we happened to port.
"""
import collections
import functools
import pathlib

import pytest

CASES_DIR = pathlib.Path(__file__).resolve().parent.parent / "upstream"


def pytest_addoption(parser):
    parser.getgroup("mntns").addoption(
        "--upstream-parity", action="store_true",
        help="print mirrored/total upstream cases per upstream file and exit without running tests")


@functools.cache
def _cases_of(file):
    path = CASES_DIR / f"{file}.cases"
    if not path.is_file():
        raise ValueError(f"no upstream case list {path.relative_to(CASES_DIR.parent)}")
    lines = (line.strip() for line in path.read_text().splitlines())
    return frozenset(line for line in lines if line and not line.startswith("#"))


def upstream(file, case):
    """The marker naming a test's upstream twin: `file` under
    tools/testing/selftests/, `case` exactly as upstream's TAP output prints it
    (no prefix added here). A case missing from upstream/<file>.cases fails
    collection, so a misspelt name cannot pass as a twin."""
    if case not in _cases_of(file):
        raise ValueError(f"{file}: no upstream case {case!r} in upstream/{file}.cases")
    return pytest.mark.upstream(file, case)


def upstream_cases():
    """{upstream file: [case ids]} from upstream/**/*.cases."""
    out = {}
    for path in sorted(CASES_DIR.rglob("*.cases")):
        lines = (line.strip() for line in path.read_text().splitlines())
        out[str(path.relative_to(CASES_DIR))[:-len(".cases")]] = [
            line for line in lines if line and not line.startswith("#")]
    return out


def twins(items):
    """{(file, case): [nodeids]} from the items' upstream markers."""
    found = collections.defaultdict(list)
    for item in items:
        for mark in item.iter_markers("upstream"):
            found[tuple(mark.args)].append(item.nodeid)
    return found


def parity_lines(items):
    cases, found = upstream_cases(), twins(items)
    lines, dir_totals = [], collections.defaultdict(lambda: [0, 0])
    for file, ids in cases.items():
        missing = [c for c in ids if (file, c) not in found]
        mirrored = len(ids) - len(missing)
        lines.append(f"{file}  {mirrored}/{len(ids)}")
        lines += [f"    missing: {c}" for c in missing]
        totals = dir_totals[file.rsplit("/", 1)[0]]
        totals[0] += mirrored
        totals[1] += len(ids)
    lines.append("")
    lines += [f"{d}/  {m}/{t}" for d, (m, t) in dir_totals.items()]
    unknown = sorted({key for key in found if key[1] not in cases.get(key[0], ())})
    lines += [f"UNKNOWN upstream case {f}: {c} (at {found[(f, c)][0]})" for f, c in unknown]
    beyond = collections.Counter(
        item.nodeid.split("/")[1] for item in items
        if not item.get_closest_marker("upstream") and item.nodeid.startswith("suites/"))
    lines.append("")
    lines += [f"beyond upstream: suites/{d}: {n}" for d, n in sorted(beyond.items())]
    lines.append(f"beyond upstream: total {sum(beyond.values())}")
    return lines


@pytest.hookimpl(tryfirst=True)
def pytest_runtestloop(session):
    if not session.config.getoption("--upstream-parity"):
        return None
    if session.config.pluginmanager.hasplugin("dsession"):
        raise pytest.UsageError("--upstream-parity does not run tests: drop -n")
    tr = session.config.pluginmanager.get_plugin("terminalreporter")
    tr.write_line("")
    for line in parity_lines(session.items):
        tr.write_line(line)
    return True
