"""The console's doors over real HTTP: logins, roles, CSRF, masking, throttling, paging."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
import redis
import requests
from pydantic import SecretStr

from certsms.config.errors import ConfigError
from certsms.config.settings import Settings, load_settings
from certsms.worker.jobs.store import JobStore
from certsms.worker.web.console.data import SearchError, decode_cursor, encode_cursor, smart_query
from certsms.worker.web.console.users import authenticate, hash_password, parse_users
from tests.fixtures.web import WebServer

PHONE = "34600000123"


@pytest.fixture
def console(
    web_settings: Settings,
    redis_client: redis.Redis,
    web_runtime: Any,
    serve_app: Callable[..., WebServer],
) -> tuple[WebServer, Settings]:
    """The web app with one operator (olga) and one viewer (vera)."""
    from certsms.worker.web import create_app

    users = f"olga=operator:{hash_password('pw-olga')},vera=viewer:{hash_password('pw-vera')}"
    settings = web_settings.model_copy(update={"console_users": SecretStr(users)})
    return serve_app(create_app(settings, redis_client)), settings


def _csrf(text: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', text)
    assert found, "no CSRF token on the page"
    return found.group(1)


def _login(server: WebServer, name: str, password: str) -> requests.Session:
    session = requests.Session()
    page = session.get(server.url + "/console/login", timeout=10)
    answer = session.post(
        server.url + "/console/login",
        data={"username": name, "password": password, "csrf_token": _csrf(page.text)},
        timeout=10,
        allow_redirects=False,
    )
    assert answer.status_code == 302, answer.text
    return session


def _job_with_recipient(settings: Settings, client: redis.Redis, reference: str) -> str:
    store = JobStore(client, settings)
    job_id = "a" * 31 + reference[-1]
    store.create(job_id, kind="send", payload={"Referenciausuario": reference}, reference=reference)
    store.update_recipient(
        job_id, PHONE, result_code=11, status_class="delivered", at=datetime.now(UTC), source="test"
    )
    return job_id


def test_console_sends_anonymous_visitors_to_the_login_page(console: Any) -> None:
    """Every page redirects to the login form until someone logs in."""
    server, _ = console
    answer = requests.get(server.url + "/console/jobs", timeout=10, allow_redirects=False)
    assert answer.status_code == 302 and "/console/login" in answer.headers["Location"]


def test_console_refuses_a_wrong_password_and_throttles_a_name(console: Any) -> None:
    """A wrong password is a 401; the sixth try within the window is refused with 429."""
    server, _ = console
    session = requests.Session()
    token = _csrf(session.get(server.url + "/console/login", timeout=10).text)
    codes = [
        session.post(
            server.url + "/console/login",
            data={"username": "olga", "password": "nope", "csrf_token": token},
            timeout=10,
        ).status_code
        for _ in range(6)
    ]
    assert codes == [401] * 5 + [429]


def test_console_rejects_a_post_without_the_csrf_token(console: Any) -> None:
    """An action without the session's CSRF token is refused (400) and changes nothing."""
    server, _ = console
    session = _login(server, "olga", "pw-olga")
    answer = session.post(server.url + "/console/guard/reset", data={}, timeout=10)
    assert answer.status_code == 400 and "csrf_token" in answer.text


def test_console_viewer_sees_masked_phones_and_may_not_act(
    console: Any, redis_client: redis.Redis
) -> None:
    """A viewer sees ********123 and gets 403 on the guard reset; an operator sees the number."""
    server, settings = console
    job_id = _job_with_recipient(settings, redis_client, "ref-1")
    viewer = _login(server, "vera", "pw-vera")
    page = viewer.get(f"{server.url}/console/jobs/{job_id}", timeout=10).text
    assert PHONE not in page and "********123" in page
    token = _csrf(page)
    denied = viewer.post(
        server.url + "/console/guard/reset", data={"csrf_token": token}, timeout=10
    )
    assert denied.status_code == 403
    operator = _login(server, "olga", "pw-olga")
    assert PHONE in operator.get(f"{server.url}/console/jobs/{job_id}", timeout=10).text


def test_console_finds_jobs_by_reference_phone_digits_and_status(
    console: Any, redis_client: redis.Redis
) -> None:
    """The search box finds a job by its reference and by the visible digits of a phone."""
    server, settings = console
    job_id = _job_with_recipient(settings, redis_client, "ref-7")
    session = _login(server, "olga", "pw-olga")
    for query in ("ref-7", "********123"):
        page = session.get(server.url + "/console/jobs", params={"q": query}, timeout=10).text
        assert job_id[:12] in page, query
    missing = session.get(server.url + "/console/jobs", params={"q": "ref-none"}, timeout=10)
    assert job_id[:12] not in missing.text
    bad = session.get(server.url + "/console/jobs", params={"since": "yesterday"}, timeout=10)
    assert bad.status_code == 400 and "since:" in bad.text


def test_console_is_off_without_users(
    web_settings: Settings, redis_client: redis.Redis, web_runtime: Any, serve_app: Any
) -> None:
    """Without CERTSMS_CONSOLE_USERS every console URL is a 404 saying how to turn it on."""
    from certsms.worker.web import create_app

    server = serve_app(create_app(web_settings, redis_client))
    answer = requests.get(server.url + "/console/", timeout=10)
    assert answer.status_code == 404 and "CERTSMS_CONSOLE_USERS" in answer.text


def test_console_users_setting_names_the_bad_entry() -> None:
    """A malformed CERTSMS_CONSOLE_USERS stops the process naming the variable."""
    with pytest.raises(ConfigError, match="CERTSMS_CONSOLE_USERS"):
        load_settings(console_users="olga:operator")
    with pytest.raises(ConfigError, match="role must be viewer or operator"):
        load_settings(console_users="olga=admin:scrypt:1$a$b")


def test_console_users_authenticate_only_the_right_password() -> None:
    """The parser keeps roles; only the right password authenticates its user."""
    users = parse_users(f"olga=operator:{hash_password('pw')}")
    assert users["olga"].may_act and users["olga"].sees_phones
    assert authenticate(users, "olga", "pw") == users["olga"]
    assert authenticate(users, "olga", "PW") is None
    assert authenticate(users, "nobody", "pw") is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0123456789abcdef0123456789abcdef", {"job_id": "0123456789abcdef0123456789abcdef"}),
        ("10000001", {"idmensaje": "10000001"}),
        ("34600000001", {"phone": "34600000001"}),
        ("********001", {"phone": "********001"}),
        ("order-8812", {"reference": "order-8812"}),
        ("  ", {}),
    ],
)
def test_console_smart_query_reads_the_search_box(text: str, expected: dict[str, str]) -> None:
    """Job ids, idMensajes, phones and references are told apart."""
    assert smart_query(text) == expected


def test_console_cursor_round_trips_and_rejects_garbage() -> None:
    """A cursor decodes to its position; anything else names the cursor field."""
    assert decode_cursor(encode_cursor((1.5, "abc"))) == (1.5, "abc")
    with pytest.raises(SearchError) as raised:
        decode_cursor("not-a-cursor")
    assert raised.value.field == "cursor"


def test_console_overview_shows_jobs_by_status_over_time(
    console: Any, redis_client: redis.Redis
) -> None:
    """The overview counts jobs by the 3-hour slot in which they entered their status."""
    from certsms.worker.jobs.status import JobStatus
    from certsms.worker.web.console.data import overview
    from certsms.worker.web.context import WebContext

    server, settings = console
    store = JobStore(redis_client, settings)
    now = datetime.now(UTC).timestamp()
    store.create("h" * 32, kind="send", payload={}, now=now - 10 * 3600)  # slot 5 of 8
    store.create("i" * 32, kind="send", payload={}, now=now - 60)  # last slot
    store.create("j" * 32, kind="send", payload={}, now=now - 30)
    store.transition("j" * 32, JobStatus.FAILED, now=now - 20)  # left queued: counted as failed
    view = overview(WebContext(settings=settings, redis=redis_client), now_s=now)
    assert view.history == {"queued": [0, 0, 0, 0, 1, 0, 0, 1], "failed": [0] * 7 + [1]}
    session = _login(server, "vera", "pw-vera")
    page = session.get(server.url + "/console/", timeout=10).text
    assert 'id="status-history"' in page and "−24 h" in page and "−3 h" in page
    assert "<title>Overview · certsms console</title>" in page  # the table is in the body
    assert page.index('id="status-history"') > page.index("<h1>Overview</h1>")
