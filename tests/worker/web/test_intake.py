"""The HTTP intake over real HTTP: bearer auth, validation, idempotency, enqueueing."""

from __future__ import annotations

import json
from collections.abc import Callable

import redis
import requests

from certsms.config.settings import Settings
from certsms.worker.dramatiq_keys import broker_namespace, messages_key
from certsms.worker.web import create_app
from tests.fixtures.sandbox import send_params as _sandbox_send_params
from tests.fixtures.web import INTAKE_TOKEN, WebServer


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
    assert message["kwargs"]["job_id"] == body["id"]  # type: ignore[index]
    record = requests.get(f"{web_server.url}/v1/jobs/{body['id']}", headers=BEARER)
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
    assert first.json()["id"] == second.json()["id"]
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


def test_intake_lists_jobs_with_filters_and_cursor_pages(web_server: WebServer) -> None:
    """GET /v1/jobs pages through every job once, newest first, and filters by reference."""
    ids = []
    for n in range(5):
        answer = requests.post(
            f"{web_server.url}/v1/jobs/send",
            json=send_params(Referenciausuario=f"list-{n}"),
            headers=BEARER,
        )
        assert answer.status_code == 202, answer.text
        ids.append(answer.json()["id"])
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = requests.get(f"{web_server.url}/v1/jobs", params=params, headers=BEARER).json()
        seen += [job["id"] for job in page["jobs"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == list(reversed(ids))
    one = requests.get(
        f"{web_server.url}/v1/jobs", params={"reference": "list-3"}, headers=BEARER
    ).json()
    assert [job["id"] for job in one["jobs"]] == [ids[3]] and one["next_cursor"] is None
    queued = requests.get(
        f"{web_server.url}/v1/jobs", params={"status": "queued", "kind": "send"}, headers=BEARER
    ).json()
    assert len(queued["jobs"]) == 5


def test_intake_list_names_each_bad_filter(web_server: WebServer) -> None:
    """Bad filters are a 422 naming each one (status, idMensaje, limit, cursor, since)."""
    bad = {"status": "nope", "idMensaje": "12ab", "limit": "0"}
    answer = requests.get(f"{web_server.url}/v1/jobs", params=bad, headers=BEARER)
    assert answer.status_code == 422
    assert {p["field"] for p in answer.json()["errors"]} == {"status", "idMensaje", "limit"}
    for params, field in (({"cursor": "garbage"}, "cursor"), ({"since": "monday"}, "since")):
        answer = requests.get(f"{web_server.url}/v1/jobs", params=params, headers=BEARER)
        assert answer.status_code == 422 and answer.json()["errors"][0]["field"] == field


def test_intake_refuses_more_recipients_than_the_cap_naming_the_field(
    web_settings: Settings,
    redis_client: redis.Redis,
    web_runtime: object,
    serve_app: Callable[..., WebServer],
) -> None:
    """A send naming more than CERTSMS_MAX_RECIPIENTS_PER_SEND recipients is 422 on
    ``Destinatarios`` and nothing is queued; the cap itself is accepted."""
    settings = web_settings.model_copy(update={"max_recipients_per_send": 3})
    server = serve_app(create_app(settings, redis_client), edge_settings=settings)
    phones = [{"Movil": f"3460000000{n}"} for n in range(4)]
    response = requests.post(
        f"{server.url}/v1/jobs/send", json=send_params(Destinatarios=phones), headers=BEARER
    )
    assert response.status_code == 422
    (error,) = response.json()["errors"]
    assert error["field"] == "Destinatarios" and "at most 3" in error["error"]
    assert _queued_jobs(redis_client, settings, "certsms.send") == []
    accepted = requests.post(
        f"{server.url}/v1/jobs/send", json=send_params(Destinatarios=phones[:3]), headers=BEARER
    )
    assert accepted.status_code == 202, accepted.text


def test_intake_refuses_a_reference_another_send_holds(web_server: WebServer) -> None:
    """A second send with the same Referenciausuario is 422 on that field (callbacks are
    matched by it); the same request with its Idempotency-Key is still the first job."""
    first = requests.post(
        f"{web_server.url}/v1/jobs/send",
        json=send_params(Referenciausuario="order-42"),
        headers={**BEARER, "Idempotency-Key": "order-42-try"},
    )
    assert first.status_code == 202
    again = requests.post(
        f"{web_server.url}/v1/jobs/send",
        json=send_params(Referenciausuario="order-42"),
        headers={**BEARER, "Idempotency-Key": "order-42-try"},
    )
    assert again.status_code == 202 and again.json()["id"] == first.json()["id"]
    other = requests.post(
        f"{web_server.url}/v1/jobs/send",
        json=send_params(Referenciausuario="order-42", Mensaje="Segundo aviso"),
        headers=BEARER,
    )
    assert other.status_code == 422
    (error,) = other.json()["errors"]
    assert error["field"] == "Referenciausuario" and first.json()["id"] in error["error"]
