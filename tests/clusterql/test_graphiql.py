"""GraphiQL's page and its pinned files, without a network (the browser test covers the rest)."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from clusterql import graphiql
from clusterql.graphiql import Asset, AssetError

CONTENT = b"console.log('pinned');\n"
FAKE = Asset("fake-lib", "1.0.0", "dist/fake.min.js", graphiql.sha384(CONTENT))


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


@pytest.fixture
def fake_assets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(graphiql, "ASSETS", (FAKE,))


def test_the_page_loads_every_pinned_file_from_here_with_its_digest() -> None:
    # when
    page = graphiql.local_page()
    # then
    for asset in graphiql.ASSETS:
        assert f'"{graphiql.STATIC_URL}/{asset.relative}"' in page
        assert f'integrity="sha384-{asset.sha384}"' in page
    assert 'src="http' not in page
    assert 'href="http' not in page
    assert "shouldPersistHeaders: false" in page  # the bearer secret stays out of localStorage


def test_without_the_files_the_page_says_how_to_fetch_them(tmp_path: Path) -> None:
    # when
    page = graphiql.page(tmp_path)
    # then
    assert graphiql.FETCH_COMMAND in page
    assert "graphiql@3.8.3/graphiql.min.js" in page


@pytest.mark.usefixtures("fake_assets")
def test_fetch_writes_a_file_that_matches_its_digest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given
    monkeypatch.setattr(graphiql, "_npm_pack", _fake_npm(CONTENT))
    # when
    fetched = graphiql.fetch(tmp_path)
    # then
    assert fetched == [FAKE]
    assert (tmp_path / FAKE.relative).read_bytes() == CONTENT
    assert graphiql.missing(tmp_path) == []


@pytest.mark.usefixtures("fake_assets")
def test_fetch_does_nothing_when_the_files_verify(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given
    (tmp_path / FAKE.relative).parent.mkdir(parents=True)
    (tmp_path / FAKE.relative).write_bytes(CONTENT)

    def no_npm(specs: list[str], dest: Path) -> dict[str, Path]:
        raise AssertionError("npm must not run")

    monkeypatch.setattr(graphiql, "_npm_pack", no_npm)
    # when / then
    assert graphiql.fetch(tmp_path) == []


@pytest.mark.usefixtures("fake_assets")
def test_fetch_refuses_a_file_with_another_digest_and_leaves_none(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given: a damaged copy on disk, and a registry that serves other bytes
    (tmp_path / FAKE.relative).parent.mkdir(parents=True)
    (tmp_path / FAKE.relative).write_bytes(b"damaged")
    monkeypatch.setattr(graphiql, "_npm_pack", _fake_npm(b"tampered"))
    # when
    with pytest.raises(AssetError, match="does not match the pinned"):
        graphiql.fetch(tmp_path)
    # then
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []


def test_the_fetch_command_exits_non_zero_on_failure(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # given
    def failing_fetch() -> list[Asset]:
        raise AssetError("npm is not installed: run scripts/system-deps")

    monkeypatch.setattr(graphiql, "fetch", failing_fetch)
    # when
    status = graphiql.main(["fetch"])
    # then
    assert status == 1
    assert "npm is not installed" in capsys.readouterr().err
