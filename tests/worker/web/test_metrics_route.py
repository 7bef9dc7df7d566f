"""/metrics over real HTTP: callbacks counted, breaker state read from Redis."""

from __future__ import annotations

import requests

from certsms.config.settings import Settings
from certsms.worker.guard import ProviderGuard
from tests.fixtures.web import WebServer


def _sample(text: str, name: str, **labels: str) -> float:
    """The value of one sample in an exposition text (0 when absent)."""
    wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        if line.startswith(name) and not line.startswith("#"):
            head, _, value = line.rpartition(" ")
            inner = head[len(name) :].strip("{}")
            if ",".join(sorted(inner.split(","))) == wanted:
                return float(value)
    return 0.0


def test_metrics_count_unauthorized_callbacks(web_server: WebServer) -> None:
    """An unauthenticated callback increments certsms_callbacks_total{outcome=unauthorized}."""
    before = _sample(
        requests.get(f"{web_server.url}/metrics").text,
        "certsms_callbacks_total",
        outcome="unauthorized",
        servicio="?",
    )
    response = requests.post(f"{web_server.url}/callbacks/mensatek", json={"Servicio": "X"})
    assert response.status_code == 401
    after = _sample(
        requests.get(f"{web_server.url}/metrics").text,
        "certsms_callbacks_total",
        outcome="unauthorized",
        servicio="?",
    )
    assert after == before + 1


def test_metrics_report_the_shared_breaker_state(
    web_server: WebServer, web_settings: Settings, redis_client
) -> None:  # type: ignore[no-untyped-def]
    """The breaker gauge follows the breaker in Redis: 2 after an auth failure opens it."""
    guard = ProviderGuard(redis_client, web_settings)
    text = requests.get(f"{web_server.url}/metrics").text
    assert _sample(text, "certsms_breaker_state") == 0.0
    guard.breaker.record_auth_failure(None, function="send")
    text = requests.get(f"{web_server.url}/metrics").text
    assert _sample(text, "certsms_breaker_state") == 2.0
