"""The dashboard page as the read model serves it, without a browser: the page and its
files, the Content-Security-Policy, and nothing of it in the OpenAPI document."""

from __future__ import annotations

import re

import httpx

from stanceline.readmodel.app import create_app
from stanceline.readmodel.page import STATIC


def _client() -> httpx.AsyncClient:
    # No lifespan: the page needs no database, and nothing here connects to one.
    app = create_app(database_url="postgresql+asyncpg://nobody@127.0.0.1:1/none")
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")


async def test_the_page_comes_with_a_policy_that_refuses_inline_and_foreign_script() -> None:
    async with _client() as client:
        response = await client.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    policy = dict(
        part.strip().split(" ", 1)
        for part in response.headers["content-security-policy"].split(";")
    )
    assert policy["script-src"] == "'self'"
    assert policy["default-src"] == "'none'"
    assert policy["connect-src"] == "'self'"
    assert "<script>" not in response.text  # every script is a file: nothing inline
    assert not re.search(r"\son[a-z]+=", response.text)  # and no inline handlers


async def test_every_file_the_page_names_is_served() -> None:
    async with _client() as client:
        page = (await client.get("/")).text
        named = re.findall(r'(?:src|href)="(/static/[^"]+)"', page)
        modules = [f"/static/js/{p.name}" for p in (STATIC / "js").glob("*.js")]
        assert "/static/vendor/chart-4.6.2.umd.min.js" in named
        for path in [*named, *modules]:
            response = await client.get(path)
            assert response.status_code == 200, path
            assert response.content == (STATIC / path.removeprefix("/static/")).read_bytes()
    assert (STATIC / "vendor" / "chart-4.6.2.LICENSE.md").read_text().startswith("The MIT License")


async def test_the_page_is_not_part_of_the_api_schema() -> None:
    async with _client() as client:
        paths = (await client.get("/openapi.json")).json()["paths"]
    assert paths, "the schema lists the API"
    assert not [p for p in paths if not p.startswith(("/v1/", "/healthz", "/readyz"))]
