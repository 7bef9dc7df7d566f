"""POST /callbacks/mensatek over real HTTP: auth, bounds, validation, durable queueing."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
import redis
import requests
from pydantic import SecretStr

from certsms.config.errors import ConfigError
from certsms.config.settings import Settings
from tests.fixtures.web import (
    CALLBACK_PASSWORD,
    CALLBACK_USER,
    WebServer,
    queued_callbacks,
    unreachable_redis,
)

AUTH = (CALLBACK_USER, CALLBACK_PASSWORD)
STATUS = {
    "Servicio": "SMSCERTIFICADO",
    "Resultado": "14",
    "Remitente": "TUEMPRESA",
    "Movil": "34600123456",
    "Fecha": "2020-12-03 11:14:24",
    "Segundos": "3",
    "idMensaje": "10573758",
    "Referencia": "ref-1",
    "idReport": "1234567890",
}


def _events(client: redis.Redis, settings: Settings) -> list[dict[str, str]]:
    rows = client.xrange(settings.key("events"))
    return [{k.decode(): v.decode() for k, v in data.items()} for _, data in rows]  # type: ignore[union-attr]


def test_json_callback_is_queued_then_answered(
    web_server: WebServer, redis_client: redis.Redis, web_settings: Settings
) -> None:
    """An authenticated JSON callback is a dramatiq message and a stream entry before 200."""
    response = requests.post(f"{web_server.url}/callbacks/mensatek", json=STATUS, auth=AUTH)
    assert response.status_code == 200, response.text
    [message] = queued_callbacks(redis_client, web_settings)
    assert message["actor_name"] == "certsms.process_callback"
    assert message["queue_name"] == "certsms.callbacks"
    assert message["kwargs"]["v"] == 1
    assert message["kwargs"]["fields"] == STATUS
    assert response.json()["id"] == message["message_id"]
    [event] = [e for e in _events(redis_client, web_settings) if e["event"] == "callback_received"]
    assert event["service"] == "SMSCERTIFICADO"
    assert json.loads(event["body"])["idMensaje"] == "10573758"


@pytest.mark.parametrize("encoding", ["urlencoded", "multipart"])
def test_form_callbacks_are_accepted(
    web_server: WebServer, redis_client: redis.Redis, web_settings: Settings, encoding: str
) -> None:
    """FORM callbacks (urlencoded and multipart/form-data) are queued like JSON ones."""
    url = f"{web_server.url}/callbacks/mensatek"
    if encoding == "urlencoded":
        response = requests.post(url, data=STATUS, auth=AUTH)
    else:
        files = {key: (None, value) for key, value in STATUS.items()}
        response = requests.post(url, files=files, auth=AUTH)
    assert response.status_code == 200, response.text
    [message] = queued_callbacks(redis_client, web_settings)
    assert message["kwargs"]["fields"] == STATUS


@pytest.mark.parametrize(
    "auth",
    [None, (CALLBACK_USER, "wrong"), ("someone", CALLBACK_PASSWORD), ("", "")],
    ids=["missing", "wrong-password", "wrong-user", "empty"],
)
def test_bad_credentials_are_401_and_nothing_is_queued(
    web_server: WebServer,
    redis_client: redis.Redis,
    web_settings: Settings,
    auth: tuple[str, str] | None,
) -> None:
    """Missing or wrong Basic credentials: 401 with a challenge; no message, no event."""
    response = requests.post(f"{web_server.url}/callbacks/mensatek", json=STATUS, auth=auth)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Basic ")
    assert queued_callbacks(redis_client, web_settings) == []
    assert _events(redis_client, web_settings) == []


def test_bearer_token_is_not_a_callback_credential(
    web_server: WebServer, redis_client: redis.Redis, web_settings: Settings
) -> None:
    """The intake token does not open the callback door."""
    response = requests.post(
        f"{web_server.url}/callbacks/mensatek",
        json=STATUS,
        headers={"Authorization": "Bearer intake-secret-456"},
    )
    assert response.status_code == 401
    assert queued_callbacks(redis_client, web_settings) == []


@pytest.mark.parametrize(
    ("kwargs", "status", "field"),
    [
        ({"data": b"{not json", "headers": {"Content-Type": "application/json"}}, 400, None),
        ({"json": ["a", "b"]}, 400, None),
        ({"data": b"<xml/>", "headers": {"Content-Type": "application/xml"}}, 415, None),
    ],
    ids=["bad-json", "json-array", "xml"],
)
def test_malformed_callbacks_are_4xx_with_a_reason(
    web_server: WebServer,
    redis_client: redis.Redis,
    web_settings: Settings,
    kwargs: dict[str, Any],
    status: int,
    field: str | None,
) -> None:
    """Unreadable bodies get 4xx naming why; nothing is queued."""
    response = requests.post(f"{web_server.url}/callbacks/mensatek", auth=AUTH, **kwargs)
    assert response.status_code == status
    assert response.json()["error"]
    if field:
        assert response.json()["field"] == field
    assert queued_callbacks(redis_client, web_settings) == []


@pytest.mark.parametrize(
    ("kwargs", "service", "warning"),
    [
        ({"json": {**STATUS, "Servicio": "SMSMASIVO"}}, "unrecognised", "unknown service"),
        ({"json": {k: v for k, v in STATUS.items() if k != "Movil"}}, "unrecognised", "Movil"),
        ({"json": {**STATUS, "Resultado": "catorce"}}, "unrecognised", "Resultado"),
        ({"data": {**STATUS, "idMensaje": "1x", "Referencia": ""}}, "unrecognised", "idMensaje"),
        ({"json": {**STATUS, "Segundos": ""}}, "SMSCERTIFICADO", None),
        ({"json": {**STATUS, "Segundos": "tres"}}, "SMSCERTIFICADO", "Segundos"),
        ({"json": {**STATUS, "Operador": "X"}}, "SMSCERTIFICADO", "operador"),
        ({"json": {**STATUS, "Fecha": "ayer"}}, "SMSCERTIFICADO", "Fecha"),
    ],
    ids=[
        "unknown-servicio",
        "missing-field",
        "nan",
        "form-nan",
        "empty-segundos",
        "odd-segundos",
        "extra-field",
        "odd-fecha",
    ],
)
def test_odd_authenticated_callbacks_are_kept_and_answered_200(
    web_server: WebServer,
    redis_client: redis.Redis,
    web_settings: Settings,
    kwargs: dict[str, Any],
    service: str,
    warning: str | None,
) -> None:
    """An authenticated notification is never lost: odd ones are queued with the raw body
    and a warning, answered 200."""
    response = requests.post(f"{web_server.url}/callbacks/mensatek", auth=AUTH, **kwargs)
    assert response.status_code == 200, response.text
    [message] = queued_callbacks(redis_client, web_settings)
    body = kwargs.get("json") or kwargs.get("data")
    assert message["kwargs"]["fields"] == {k: str(v) for k, v in body.items()}
    [event] = [e for e in _events(redis_client, web_settings) if e["event"] == "callback_received"]
    assert event["service"] == service
    assert json.loads(event["body"]) == message["kwargs"]["fields"]
    if warning:
        assert warning in event["warnings"]
    else:
        assert "warnings" not in event


@pytest.mark.parametrize("chunked", [False, True])
def test_oversized_body_is_413(
    web_server: WebServer, redis_client: redis.Redis, web_settings: Settings, chunked: bool
) -> None:
    """A body above CERTSMS_CALLBACK_MAX_BODY_BYTES is refused (declared or streamed)."""
    body = json.dumps({**STATUS, "CSV": "x" * (web_settings.callback_max_body_bytes + 1)})
    data: Any = body.encode()
    if chunked:
        data = iter([body[i : i + 4096].encode() for i in range(0, len(body), 4096)])
    response = requests.post(
        f"{web_server.url}/callbacks/mensatek",
        data=data,
        auth=AUTH,
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 413
    assert queued_callbacks(redis_client, web_settings) == []


def test_app_refuses_to_start_without_credentials(settings: Settings) -> None:
    """No callback credentials and no insecure opt-in: the app does not build."""
    from certsms.worker.web import create_app

    with pytest.raises(ConfigError) as info:
        create_app(settings)
    assert info.value.variable == "CERTSMS_CALLBACK_USER"


def test_insecure_opt_in_accepts_without_credentials(
    settings: Settings,
    redis_client: redis.Redis,
    web_runtime: Any,
    serve_app: Callable[[Any], WebServer],
) -> None:
    """With CERTSMS_CALLBACK_INSECURE=true and no credentials, callbacks need no auth."""
    from certsms.worker.web import create_app

    insecure = settings.model_copy(update={"callback_insecure": True})
    server = serve_app(create_app(insecure, redis_client))
    response = requests.post(f"{server.url}/callbacks/mensatek", json=STATUS)
    assert response.status_code == 200
    assert len(queued_callbacks(redis_client, insecure)) == 1


def test_redis_down_answers_503_so_the_provider_retries(
    web_settings: Settings, serve_app: Callable[[Any], WebServer]
) -> None:
    """When the callback cannot be queued the answer is 503, never 2xx."""
    from certsms.worker.web import create_app

    dead = unreachable_redis()

    def queue(fields: dict[str, str], received_at: str) -> str:
        dead.ping()
        return "never"

    server = serve_app(create_app(web_settings, dead, queue_callback=queue))
    response = requests.post(f"{server.url}/callbacks/mensatek", json=STATUS, auth=AUTH)
    assert response.status_code == 503


def test_password_from_settings_is_secret(web_settings: Settings) -> None:
    """The fixture's password is a SecretStr (never printed with the settings)."""
    assert isinstance(web_settings.callback_password, SecretStr)
    assert CALLBACK_PASSWORD not in repr(web_settings)


@pytest.mark.parametrize("opener", ["[", '{"a":'])
def test_deeply_nested_json_callback_is_400_not_500(
    web_server: WebServer, redis_client: redis.Redis, web_settings: Settings, opener: str
) -> None:
    """A JSON body nested too deeply to decode (under the size cap) is 400 with a reason."""
    body = (opener * 60000).encode()[: web_settings.callback_max_body_bytes]  # under the cap
    response = requests.post(
        f"{web_server.url}/callbacks/mensatek",
        data=body,
        auth=AUTH,
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 400, response.text
    assert "nested too deeply" in response.json()["error"]
    assert queued_callbacks(redis_client, web_settings) == []
