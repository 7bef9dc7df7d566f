"""The generated OpenAPI document: valid, true to the examples, and to the live intake
(schemathesis fuzzes it over real HTTP: no 5xx, every 4xx names its field)."""

from __future__ import annotations

import json
from dataclasses import fields
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from openapi_spec_validator import validate

from certsms.mensatek.payloads import field_specs
from certsms.mensatek.requests import KINDS
from certsms.worker.jobs.record import JobRecord
from certsms.worker.web.openapi import openapi_document
from certsms.worker.web.schemas import FIELD_TYPES, Job
from tests.fixtures.web import INTAKE_TOKEN, WebServer

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"
BEARER = {"Authorization": f"Bearer {INTAKE_TOKEN}"}


def _validator(schema_name: str) -> jsonschema.Draft202012Validator:
    document = openapi_document()
    schema = {"$ref": f"#/components/schemas/{schema_name}", **document}
    return jsonschema.Draft202012Validator(schema)


def test_openapi_document_is_valid_openapi_3_1() -> None:
    """openapi-spec-validator accepts the document, and every operation has an operationId."""
    document = openapi_document()
    validate(document)
    operations = [op for path in document["paths"].values() for op in path.values()]
    ids = [op["operationId"] for op in operations]
    assert len(ids) == len(set(ids)) == len(operations)


@pytest.mark.parametrize("name", sorted(p.name for p in EXAMPLES.glob("*.json")))
def test_openapi_accepts_every_example(name: str) -> None:
    """Every examples/*.json is a SendPayload by the document (invalid.json breaks rules,
    not the shape: the live intake refuses it field by field, see below)."""
    payload = json.loads((EXAMPLES / name).read_text())
    errors = list(_validator("SendPayload").iter_errors(payload))
    assert errors == [], [e.message for e in errors]


def test_openapi_refuses_a_body_with_an_unknown_key_and_a_wrong_type() -> None:
    """The document is exact: unknown keys and wrong types do not validate."""
    payload = json.loads((EXAMPLES / "send.json").read_text())
    assert list(_validator("SendPayload").iter_errors({**payload, "Remitent": "typo"}))
    assert list(_validator("SendPayload").iter_errors({**payload, "Mensaje": ["x"]}))


def test_openapi_payload_models_cover_every_field_the_reader_knows() -> None:
    """Each kind's schema lists exactly the reader's fields, by the provider's names."""
    schemas = openapi_document()["components"]["schemas"]
    for kind in KINDS:
        title = "".join(part.title() for part in kind.split("_")) + "Payload"
        expected = {spec.provider for spec in field_specs(kind)}
        assert set(schemas[title]["properties"]) == expected, kind
        assert {spec.python for spec in field_specs(kind)} <= set(FIELD_TYPES)


def test_openapi_job_schema_names_every_record_field() -> None:
    """The Job schema has every JobRecord field, ``id`` (not job_id) first among them."""
    record_fields = {f.name for f in fields(JobRecord)} - {"other"}
    assert record_fields <= set(Job.model_fields)
    assert "job_id" not in Job.model_fields


def test_intake_refuses_the_invalid_example_naming_each_field(web_server: WebServer) -> None:
    """examples/invalid.json is a 422 whose errors name the provider's fields."""
    payload = json.loads((EXAMPLES / "invalid.json").read_text())
    response = requests.post(f"{web_server.url}/v1/jobs/send", json=payload, headers=BEARER)
    assert response.status_code == 422
    named = {p["field"] for p in response.json()["errors"]}
    assert {"Remitente", "Destinatarios", "Contacto", "Telcontacto"} <= named


def test_intake_fuzzed_never_fails_and_names_the_field(web_server: WebServer) -> None:
    """schemathesis, from the live document, over real HTTP: no generated request to /v1/
    gets a 5xx, and every 400/422 names the field at fault."""
    schema = schemathesis.openapi.from_url(f"{web_server.url}/openapi.json")
    checked: dict[str, int] = {}
    for result in schema.get_all_operations():
        operation = result.ok()
        if not operation.path.startswith("/v1/"):
            continue

        @given(case=operation.as_strategy())
        @settings(max_examples=20, deadline=None, suppress_health_check=list(HealthCheck))
        def exercise(case: Any) -> None:
            response = case.call(headers=BEARER)
            key = f"{case.method} {case.path}"
            checked[key] = checked.get(key, 0) + 1
            assert response.status_code < 500, (key, case.body, response.text)
            if response.status_code == 422:
                body = response.json()
                assert body["errors"] and all(p["field"] for p in body["errors"]), body
            elif response.status_code == 400:
                assert response.json().get("field"), response.text

        exercise()
    assert len(checked) == len(KINDS) + 2  # every enqueue path, the list and the job
