"""GraphiQL's page, without a network (its files: test_vendor_assets; the rest: the browser)."""

from __future__ import annotations

from pathlib import Path

from clusterql import graphiql, pages, vendor_assets


def test_the_page_loads_every_pinned_file_from_here_with_its_digest() -> None:
    # when
    page = graphiql.local_page()
    # then
    for asset in vendor_assets.GRAPHIQL:
        assert f'"{pages.url(asset)}"' in page
        assert f'integrity="sha384-{asset.sha384}"' in page
    assert 'src="http' not in page
    assert 'href="http' not in page
    assert "shouldPersistHeaders: false" in page  # the bearer secret stays out of localStorage


def test_without_the_files_the_page_says_how_to_fetch_them(tmp_path: Path) -> None:
    # when
    page = graphiql.page(tmp_path)
    # then
    assert vendor_assets.FETCH_COMMAND in page
    assert "graphiql@3.8.3/graphiql.min.js" in page
