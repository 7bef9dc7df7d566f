"""The app's error handlers: Redis down → 503 with Retry-After, never 500; bad job ids → 404;
and the web process reconnects by itself when Redis comes back."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import requests

from certsms.config.settings import Settings
from certsms.worker.embedded_redis import EmbeddedRedis
from certsms.worker.redis_client import redis_client
from tests.fixtures.sandbox import send_params
from tests.fixtures.web import INTAKE_TOKEN, WebServer, unreachable_redis

AUTH = {"Authorization": f"Bearer {INTAKE_TOKEN}"}


def test_redis_down_answers_503_with_retry_after_on_every_route(
    web_settings: Settings, serve_app: Callable[[Any], WebServer]
) -> None:
    """Intake, job status and /healthz answer 503 with Retry-After while Redis is down."""
    from certsms.worker.web import create_app

    server = serve_app(create_app(web_settings, unreachable_redis()))
    answers = [
        requests.post(
            f"{server.url}/v1/jobs/send",
            json=send_params(Mensaje="Aviso"),
            headers=AUTH,
            timeout=10,
        ),
        requests.get(f"{server.url}/v1/jobs/0123456789abcdef", headers=AUTH, timeout=10),
        requests.get(f"{server.url}/healthz", timeout=10),
    ]
    for response in answers:
        assert response.status_code == 503, (response.request.url, response.text)
        assert int(response.headers["Retry-After"]) > 0
        assert response.json()


def test_web_reconnects_when_redis_comes_back(
    web_settings: Settings, web_runtime: Any, serve_app: Callable[[Any], WebServer]
) -> None:
    """Redis killed: 503; Redis started again on the same port: the next requests succeed
    with no restart of the web process."""
    from certsms.worker.web import create_app

    with EmbeddedRedis() as own:
        settings = web_settings.model_copy(update={"redis_url": own.url})
        client = redis_client(settings, retry_window_s=0.2)
        server = serve_app(create_app(settings, client))
        assert requests.get(f"{server.url}/healthz", timeout=10).status_code == 200
        own.kill()
        down = requests.get(f"{server.url}/v1/jobs/0123456789abcdef", headers=AUTH, timeout=10)
        assert down.status_code == 503 and down.headers["Retry-After"]
        own.start()
        assert requests.get(f"{server.url}/healthz", timeout=10).status_code == 200
        missing = requests.get(f"{server.url}/v1/jobs/0123456789abcdef", headers=AUTH, timeout=10)
        assert missing.status_code == 404


def test_job_ids_that_would_name_other_keys_are_404(web_server: WebServer) -> None:
    """``GET /v1/jobs/<id>:inbox`` (an id with ':') names no job: 404, not 500."""
    created = requests.post(
        f"{web_server.url}/v1/jobs/send",
        json=send_params(Mensaje="Aviso"),
        headers=AUTH,
        timeout=10,
    )
    assert created.status_code == 202, created.text
    job_id = created.json()["id"]
    for suffix in (":inbox", ":recipients"):
        response = requests.get(
            f"{web_server.url}/v1/jobs/{job_id}{suffix}", headers=AUTH, timeout=10
        )
        assert response.status_code == 404, response.text
    assert requests.get(f"{web_server.url}/v1/jobs/{job_id}", headers=AUTH, timeout=10).ok
