"""The documentation cites only files that are in the repository (issue 16).

bench/README.md and bench/NOTES.md once cited ``results/*.json`` files that a too broad
``results/`` pattern in .gitignore had kept out of git; this test reads the docs and checks every
cited ``bench/...`` path (and, in bench/'s own notes, every cited relative file) against
``git ls-files``, so an ignored or never committed file fails it even where it exists on disk.
"""

import itertools
import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# a path under bench/, in backticks or plain text; braces ({a,b}) and globs (*) allowed
BENCH_PATH = re.compile(r"(?<![\w./-])bench/[\w./{},*-]*")
# a relative file path in backticks, with a data/text extension: `results/x.json`, `NOTES.md`
RELATIVE_FILE = re.compile(r"`([\w{},*-][\w./{},*-]*\.(?:json|txt|log|md|py|csv|sh))`")


def _docs():
    docs = [ROOT / "README.md"]
    docs += sorted((ROOT / "bench").rglob("*.md"))
    docs += sorted((ROOT / "docs").glob("*.md"))
    docs += sorted((ROOT / "data" / "models").glob("*/README.md"))
    return [d for d in docs if d.is_file()]


@pytest.fixture(scope="module")
def tracked():
    try:
        out = subprocess.run(
            ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout")
    files = {f for f in out.decode().split("\0") if f}
    dirs = {str(p) for f in files for p in Path(f).parents if str(p) != "."}
    return files, dirs


def _expand_braces(path):
    """``a{1,2}b`` -> ``[a1b, a2b]`` (shell-style, no nesting)."""
    parts = re.split(r"(\{[^{}]*\})", path)
    options = [p[1:-1].split(",") if p.startswith("{") else [p] for p in parts]
    return ["".join(c) for c in itertools.product(*options)]


def _in_repo(path, tracked):
    files, dirs = tracked
    path = path.rstrip("/")
    if "*" in path:
        pattern = re.compile(re.escape(path).replace(r"\*", r"[^/]*") + r"(/.*)?")
        return any(pattern.fullmatch(f) for f in files)
    return path in files or path in dirs


def cited_paths(doc):
    """(cited text, [candidate repository paths]) for every path the doc cites."""
    text = doc.read_text(encoding="utf-8")
    rel_dir = doc.parent.relative_to(ROOT)
    for match in BENCH_PATH.finditer(text):
        cited = match.group(0).rstrip(".,")
        yield cited, [[p] for p in _expand_braces(cited)]
    if rel_dir.parts[:1] == ("bench",):
        # bench/'s notes cite their own files relative to themselves
        for match in RELATIVE_FILE.finditer(text):
            cited = match.group(1)
            if cited.startswith("bench/"):
                continue
            yield cited, [
                [str(rel_dir / p), p] for p in _expand_braces(cited)
            ]


def missing_citations(tracked):
    missing = []
    for doc in _docs():
        for cited, expansions in cited_paths(doc):
            for candidates in expansions:
                if not any(_in_repo(c, tracked) for c in candidates):
                    missing.append(f"{doc.relative_to(ROOT)}: {cited}")
    return missing


def test_docs_cite_only_files_in_the_repository(tracked):
    assert missing_citations(tracked) == []


def test_the_check_sees_a_missing_file(tracked, tmp_path, monkeypatch):
    """The scanner finds a cited bench/ file that is not tracked, and a relative one in bench/."""
    files, dirs = tracked
    doc = ROOT / "bench" / "NOTES.md"
    fake = "see `bench/results/h100_levers_{24,8}f.json` and `results/h100_run2_log.txt`\n"
    real_read = Path.read_text

    def read_text(self, *args, **kwargs):
        if self == doc:
            return fake
        return real_read(self, *args, **kwargs)

    monkeypatch.setattr(Path, "read_text", read_text)
    cited = [(c, e) for c, e in cited_paths(doc)]
    assert [c for c, _ in cited] == [
        "bench/results/h100_levers_{24,8}f.json",
        "results/h100_run2_log.txt",
    ]
    assert cited[1][1] == [["bench/results/h100_run2_log.txt", "results/h100_run2_log.txt"]]
    assert not any(_in_repo(p[0], tracked) for p in cited[0][1])
    assert _in_repo("bench/prior/", tracked)
    assert _in_repo("bench/prior/run*/train.log", tracked)


def test_results_is_ignored_only_at_the_top():
    """/results/ (the workflow's outputs) is ignored; bench/results/ is not."""
    def ignored(path):
        return subprocess.run(
            ["git", "check-ignore", "-q", "--no-index", path], cwd=ROOT
        ).returncode == 0

    try:
        subprocess.run(["git", "--version"], capture_output=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("no git")
    if not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    assert ignored("results/tables/summary.md")
    assert not ignored("bench/results/h100_zeroscope_24f.json")


def test_license_is_the_apache_2_0_text_pyproject_declares():
    import hashlib
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["license"] == {"text": "Apache-2.0"}
    text = (ROOT / "LICENSE").read_bytes()
    # md5 of https://www.apache.org/licenses/LICENSE-2.0.txt, byte for byte
    assert hashlib.md5(text).hexdigest() == "3b83ef96387f14655fc854ddc3c6bd57"


def test_make_test_quick_runs_the_fast_tests_and_the_readme_says_so():
    import shutil
    import tomllib

    if shutil.which("make") is None:
        pytest.skip("no make")
    dry = subprocess.run(["make", "-n", "test-quick"], cwd=ROOT, capture_output=True, text=True)
    assert dry.returncode == 0, dry.stderr
    assert 'pytest -q -m "not slow and not slurm"' in dry.stdout
    # the markers it deselects are the ones the tests declare
    markers = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]["markers"]
    assert {m.split(":")[0] for m in markers} >= {"slow", "slurm"}
    assert "make test-quick" in (ROOT / "README.md").read_text()
