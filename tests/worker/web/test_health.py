"""/healthz and /openapi.json over real HTTP."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import redis
import requests

from certsms.config.settings import Settings
from tests.fixtures.web import WebServer, unreachable_redis


def test_healthz_ok_with_redis(web_server: WebServer) -> None:
    """Redis answers PING: 200 with the breaker state (or "unknown")."""
    response = requests.get(f"{web_server.url}/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok" and body["redis"] == "ok"
    assert isinstance(body["breaker"], str) and body["breaker"]


def test_healthz_503_without_redis(
    web_settings: Settings, serve_app: Callable[[Any], WebServer]
) -> None:
    """Redis unreachable: 503."""
    from certsms.worker.web import create_app

    dead = unreachable_redis()
    server = serve_app(create_app(web_settings, dead))
    response = requests.get(f"{server.url}/healthz")
    assert response.status_code == 503
    assert response.json()["redis"] == "unreachable"


def test_openapi_describes_every_route(web_server: WebServer, web_settings: Settings) -> None:
    """Every API route the app serves is in the OpenAPI 3.1 document, with its method and an
    operationId (one path per job kind; the console's HTML pages are not API)."""
    from certsms.mensatek.requests import KINDS
    from certsms.worker.web import create_app

    document = requests.get(f"{web_server.url}/openapi.json").json()
    assert document["openapi"].startswith("3.1")
    app = create_app(web_settings, redis.Redis())
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static" or rule.endpoint.startswith("console."):
            continue
        path = rule.rule.replace("<job_id>", "{id}").replace("<", "{").replace(">", "}")
        paths = [path.replace("{kind}", kind) for kind in KINDS] if "{kind}" in path else [path]
        for method in rule.methods - {"HEAD", "OPTIONS"}:  # type: ignore[operator]
            operations = [
                document["paths"][p][method.lower()]
                for p in paths
                if method.lower() in document["paths"].get(p, {})
            ]
            assert operations, (path, method)
            assert all(op["operationId"] for op in operations)
