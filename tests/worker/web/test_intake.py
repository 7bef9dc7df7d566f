"""The HTTP intake over real HTTP: bearer auth, validation, idempotency, enqueueing."""

from __future__ import annotations

import json

import redis
import requests

from config.settings import Settings
from tests.fixtures.sandbox import send_params as _sandbox_send_params
from tests.fixtures.web import INTAKE_TOKEN, WebServer
from worker.dramatiq_keys import broker_namespace, messages_key


def send_params(**overrides: object) -> dict[str, object]:
    """A valid send payload (GSM-7 text)."""
    return _sandbox_send_params(**{"Mensaje": "Su notificacion esta disponible", **overrides})


BEARER = {"Authorization": f"Bearer {INTAKE_TOKEN}"}


def _queued_jobs(client: redis.Redis, settings: Settings, queue: str) -> list[dict[str, object]]:
    key = messages_key(broker_namespace(settings), queue)
    return [json.loads(raw) for raw in client.hvals(key)]


def test_intake_enqueues_and_answers_202(
    web_server: WebServer, redis_client: redis.Redis, web_settings: Settings
) -> None:
    """A valid send is recorded and queued; 202 with the job id; GET returns the record."""
    response = requests.post(f"{web_server.url}/v1/jobs/send", json=send_params(), headers=BEARER)
    assert response.status_code == 202, response.text
    body = response.json()
    assert body["status"] == "queued"
    [message] = _queued_jobs(redis_client, web_settings, "certsms.send")
    assert message["kwargs"]["job_id"] == body["job_id"]  # type: ignore[index]
    record = requests.get(f"{web_server.url}/v1/jobs/{body['job_id']}", headers=BEARER)
    assert record.status_code == 200
    assert record.json()["kind"] == "send"


def test_intake_dedupes_by_idempotency_key(
    web_server: WebServer, redis_client: redis.Redis, web_settings: Settings
) -> None:
    """The same Idempotency-Key twice → the same job id and one queued message."""
    headers = {**BEARER, "Idempotency-Key": "order-42"}
    first = requests.post(f"{web_server.url}/v1/jobs/send", json=send_params(), headers=headers)
    second = requests.post(f"{web_server.url}/v1/jobs/send", json=send_params(), headers=headers)
    assert first.status_code == second.status_code == 202
    assert first.json()["job_id"] == second.json()["job_id"]
    assert len(_queued_jobs(redis_client, web_settings, "certsms.send")) == 1
    other = requests.post(
        f"{web_server.url}/v1/jobs/send", json=send_params(Mensaje="otro"), headers=headers
    )
    assert other.status_code == 409


def test_intake_422_names_every_invalid_field(
    web_server: WebServer, redis_client: redis.Redis, web_settings: Settings
) -> None:
    """Several invalid fields → 422 naming each (provider and Python names); nothing queued."""
    payload = send_params(Remitente="A SENDER FAR TOO LONG", Destinatarios="12", Vpd="25")
    response = requests.post(f"{web_server.url}/v1/jobs/send", json=payload, headers=BEARER)
    assert response.status_code == 422
    fields = {problem["field"] for problem in response.json()["errors"]}
    assert {"Remitente", "Destinatarios", "Vpd"} <= fields
    assert all(p["python_name"] and p["error"] for p in response.json()["errors"])
    assert _queued_jobs(redis_client, web_settings, "certsms.send") == []


def test_intake_auth_kind_and_body_errors(
    web_server: WebServer, redis_client: redis.Redis, web_settings: Settings
) -> None:
    """No/wrong token 401; unknown kind 404; non-object body 400; unknown job 404."""
    url = f"{web_server.url}/v1/jobs/send"
    missing = requests.post(url, json=send_params())
    assert missing.status_code == 401 and "Bearer" in missing.headers["WWW-Authenticate"]
    wrong = requests.post(url, json=send_params(), headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    assert (
        requests.post(f"{web_server.url}/v1/jobs/explode", json={}, headers=BEARER).status_code
        == 404
    )
    assert requests.post(url, json=[1, 2], headers=BEARER).status_code == 400
    assert requests.post(url, data=b"{oops", headers=BEARER).status_code == 400
    assert requests.get(f"{web_server.url}/v1/jobs/nope", headers=BEARER).status_code == 404
    assert requests.get(f"{web_server.url}/v1/jobs/nope").status_code == 401
    assert _queued_jobs(redis_client, web_settings, "certsms.send") == []


def test_intake_deeply_nested_json_is_400_not_500(
    web_server: WebServer, redis_client: redis.Redis, web_settings: Settings
) -> None:
    """A JSON body nested too deeply to decode (under the intake cap) is 400 with a reason."""
    response = requests.post(
        f"{web_server.url}/v1/jobs/send",
        data=b"[" * 60000,
        headers={**BEARER, "Content-Type": "application/json"},
    )
    assert response.status_code == 400, response.text
    assert "nested too deeply" in response.json()["error"]
    assert _queued_jobs(redis_client, web_settings, "certsms.send") == []
