"""The pages' pinned third-party files: fetched, verified, bundled into a build, offline."""

from __future__ import annotations

import io
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from clusterql import vendor_assets
from clusterql.vendor_assets import Asset, AssetError

CONTENT = b"console.log('pinned');\n"
FAKE = Asset("fake-lib", "1.0.0", "dist/fake.min.js", vendor_assets.sha384(CONTENT))
ASSETS_MODULE = Path(vendor_assets.__file__)


def _fake_npm(content: bytes) -> object:
    """A stand-in for `npm pack` that makes a tarball holding FAKE's file with `content`."""

    def pack(specs: list[str], dest: Path) -> dict[str, Path]:
        tarball = dest / "fake.tgz"
        with tarfile.open(tarball, "w:gz") as tar:
            info = tarfile.TarInfo(f"package/{FAKE.path}")
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
        return {FAKE.spec: tarball}

    return pack


def _no_npm(specs: list[str], dest: Path) -> dict[str, Path]:
    raise AssertionError("npm must not run")


def _put(root: Path, data: bytes) -> None:
    (root / FAKE.relative).parent.mkdir(parents=True, exist_ok=True)
    (root / FAKE.relative).write_bytes(data)


def _files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()]


@pytest.fixture
def fake_assets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(vendor_assets, "ASSETS", (FAKE,))


@pytest.mark.usefixtures("fake_assets")
def test_fetch_writes_a_file_that_matches_its_digest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given
    monkeypatch.setattr(vendor_assets, "_npm_pack", _fake_npm(CONTENT))
    # when
    fetched = vendor_assets.fetch(tmp_path)
    # then
    assert fetched == [FAKE]
    assert (tmp_path / FAKE.relative).read_bytes() == CONTENT
    assert vendor_assets.missing(tmp_path) == []


@pytest.mark.usefixtures("fake_assets")
def test_fetch_does_nothing_when_the_files_verify(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given
    _put(tmp_path, CONTENT)
    monkeypatch.setattr(vendor_assets, "_npm_pack", _no_npm)
    # when / then
    assert vendor_assets.fetch(tmp_path) == []


@pytest.mark.usefixtures("fake_assets")
def test_fetch_refuses_a_file_with_another_digest_and_leaves_none(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given: a damaged copy on disk, and a registry that serves other bytes
    _put(tmp_path, b"damaged")
    monkeypatch.setattr(vendor_assets, "_npm_pack", _fake_npm(b"tampered"))
    # when
    with pytest.raises(AssetError, match="does not match the pinned"):
        vendor_assets.fetch(tmp_path)
    # then
    assert _files(tmp_path) == []


def test_the_fetch_command_exits_non_zero_on_failure(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # given
    def failing_fetch() -> list[Asset]:
        raise AssetError("npm is not installed: run scripts/system-deps")

    monkeypatch.setattr(vendor_assets, "fetch", failing_fetch)
    # when
    status = vendor_assets.main(["fetch"])
    # then
    assert status == 1
    assert "npm is not installed" in capsys.readouterr().err


def test_without_npm_fetching_says_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given: a PATH on which there is no npm
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    # when
    with pytest.raises(AssetError) as raised:
        vendor_assets.fetch(tmp_path / "vendor")
    # then
    message = str(raised.value)
    assert message.startswith("npm is not installed")
    assert "apt-get install npm" in message
    assert "graphiql@3.8.3" in message
    assert not (tmp_path / "vendor").exists()


@pytest.mark.usefixtures("fake_assets")
def test_bundle_copies_verified_files_from_the_source_tree_without_npm(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given
    source, build = tmp_path / "source", tmp_path / "build"
    _put(source, CONTENT)
    monkeypatch.setattr(vendor_assets, "_npm_pack", _no_npm)
    # when
    fetched = vendor_assets.bundle(build, source)
    # then
    assert fetched == []
    assert (build / FAKE.relative).read_bytes() == CONTENT


@pytest.mark.usefixtures("fake_assets")
def test_bundle_fetches_what_the_source_tree_holds_damaged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given
    source, build = tmp_path / "source", tmp_path / "build"
    _put(source, b"damaged")
    monkeypatch.setattr(vendor_assets, "_npm_pack", _fake_npm(CONTENT))
    # when
    fetched = vendor_assets.bundle(build, source)
    # then
    assert fetched == [FAKE]
    assert (build / FAKE.relative).read_bytes() == CONTENT
    assert (source / FAKE.relative).read_bytes() == b"damaged"  # a build never writes there


@pytest.mark.usefixtures("fake_assets")
def test_bundle_puts_nothing_unverified_into_the_build(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given: neither the source tree nor the registry has the right bytes
    source, build = tmp_path / "source", tmp_path / "build"
    _put(source, b"damaged")
    monkeypatch.setattr(vendor_assets, "_npm_pack", _fake_npm(b"tampered"))
    # when
    with pytest.raises(AssetError, match="does not match the pinned"):
        vendor_assets.bundle(build, source)
    # then
    assert _files(build) == []


def test_the_module_needs_only_the_standard_library() -> None:
    # given: a Python that sees no installed package (-S), loading the file as setup.py does
    code = f"""
import importlib.util, sys
spec = importlib.util.spec_from_file_location("assets", {str(ASSETS_MODULE)!r})
module = importlib.util.module_from_spec(spec)
sys.modules["assets"] = module
spec.loader.exec_module(module)
loaded = {{name.partition(".")[0] for name in sys.modules}} - sys.stdlib_module_names
print(len(module.ASSETS), sorted(loaded - {{"assets", "__main__"}}))
"""
    # when
    result = subprocess.run(
        [sys.executable, "-I", "-S", "-c", code],
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )
    # then
    assert result.returncode == 0, result.stderr
    assert result.stdout == "9 []\n"  # no third-party module, and not the clusterql package
