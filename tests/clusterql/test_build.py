"""What `python -m build` makes: a wheel carrying GraphiQL's verified files (setup.py's hook),
built as pip builds, in an isolated environment, from a copy of the source tree, with no npm."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

from clusterql import vendor_assets

REPOSITORY = Path(__file__).resolve().parents[2]
SOURCES = ("pyproject.toml", "setup.py", "README.md", "clusterql", "graph", "models", "rest_shim")
VENDOR = "clusterql/static/vendor"
BUILD_TIMEOUT_S = 300


def _source_tree(dest: Path, *, with_graphiql_files: bool) -> Path:
    """A copy of what the build reads, with or without the fetched files of this checkout."""
    skip = shutil.ignore_patterns("__pycache__", "static", "*.egg-info")
    dest.mkdir()
    for name in SOURCES:
        source = REPOSITORY / name
        if source.is_dir():
            shutil.copytree(source, dest / name, ignore=skip)
        else:
            shutil.copy2(source, dest / name)
    if with_graphiql_files:
        assert not vendor_assets.missing(), f"run {vendor_assets.FETCH_COMMAND} first"
        shutil.copytree(vendor_assets.VENDOR_DIR, dest / VENDOR)
    return dest


def _build(source: Path, outdir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`python -m build` with a PATH that holds this venv's tools and no npm."""
    path = str(Path(sys.executable).parent)
    assert shutil.which("npm", path=path) is None
    return subprocess.run(
        [sys.executable, "-m", "build", *args, "--outdir", str(outdir), str(source)],
        capture_output=True,
        text=True,
        env={**os.environ, "PATH": path},
        cwd=source,
        stdin=subprocess.DEVNULL,
        timeout=BUILD_TIMEOUT_S,
        check=False,
    )


def test_the_wheel_carries_the_seven_files_verified_copied_without_npm(tmp_path: Path) -> None:
    # given: a source tree that holds the verified files, and no npm
    source = _source_tree(tmp_path / "source", with_graphiql_files=True)
    # when
    result = _build(source, tmp_path / "dist", "--wheel")
    # then
    assert result.returncode == 0, result.stdout + result.stderr
    (wheel,) = (tmp_path / "dist").glob("clusterql-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        static = {n: archive.read(n) for n in names if n.startswith("clusterql/static/")}
        record = archive.read(next(n for n in names if n.endswith(".dist-info/RECORD")))
    expected = {f"{VENDOR}/{a.relative}": a for a in vendor_assets.ASSETS}
    assert static.keys() == expected.keys()
    for name, data in static.items():
        assert vendor_assets.sha384(data) == expected[name].sha384, name
        assert name.encode() in record  # pip checks every file against RECORD


def test_the_sdist_carries_the_hook_and_no_third_party_file(tmp_path: Path) -> None:
    # given: a source tree without the files (a fresh clone), and no npm
    source = _source_tree(tmp_path / "source", with_graphiql_files=False)
    # when: the sdist, then a wheel built from it, as `python -m build` does
    result = _build(source, tmp_path / "dist")
    # then: the sdist is made; the wheel from it runs the hook, which says what to install
    (sdist,) = (tmp_path / "dist").glob("clusterql-*.tar.gz")
    with tarfile.open(sdist) as archive:
        names = {n.partition("/")[2] for n in archive.getnames()}
    assert {"setup.py", "pyproject.toml", "clusterql/vendor_assets.py"} <= names
    assert not [n for n in names if n.startswith("clusterql/static")]
    assert result.returncode != 0
    said = result.stderr + result.stdout
    assert "error: The files of GraphiQL and /docs could not be bundled" in said
    assert "npm is not installed" in said
    assert "apt-get install npm" in said
    assert list((tmp_path / "dist").glob("*.whl")) == []
