"""The contract documents are served, as JSON, without authentication."""

from __future__ import annotations

import pytest

from pushsvc.contracts import ASYNCAPI, OPENAPI, load_document


@pytest.mark.parametrize("path, name", [("/api/v1/openapi.json", OPENAPI), ("/api/v1/asyncapi.json", ASYNCAPI)])
async def test_documents_are_served_without_auth(client, path, name):
    for _ in range(2):  # the second answer comes from the kept encoding
        response = await client.get(path)
        assert response.status == 200
        assert response.headers["Content-Type"] == "application/json; charset=utf-8"
        assert await response.json() == load_document(name)


async def test_served_document_ignores_a_bad_token(client):
    response = await client.get("/api/v1/openapi.json", headers={"Authorization": "Bearer nope"})
    assert response.status == 200


async def test_the_suites_traffic_is_checked(client, token, contracts):
    """The shared client validates what the app answers (the counts move)."""
    from ..wsclient import LiveClient

    before_rest, before_frames = sum(contracts.counts.rest.values()), sum(contracts.counts.received.values())
    assert (await client.get("/healthz")).status == 200
    live = await LiveClient.connect(client, token)
    await live.send({"type": "ping", "id": 1})
    assert (await live.expect("pong"))["id"] == 1
    assert sum(contracts.counts.rest.values()) >= before_rest + 2  # /healthz and the upgrade (101)
    assert sum(contracts.counts.received.values()) == before_frames + 2  # welcome and pong
