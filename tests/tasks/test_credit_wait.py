"""A send refused for lack of credit waits visibly and goes out by itself after a top-up."""

from __future__ import annotations

from typing import Any

import pytest

from certsms import tasks
from certsms.worker.guard import ProviderGuard
from certsms.worker.jobs import JobStatus
from tests.fixtures.jobs import record_of, wait_for, wait_status
from tests.fixtures.sandbox import send_params

INTERVAL_S = 1


@pytest.fixture
def credit_settings(jobs_settings):  # type: ignore[no-untyped-def]
    """Job settings that check the balance every second."""
    return jobs_settings.model_copy(update={"credit_check_interval_s": INTERVAL_S})


@pytest.fixture
def credit_runtime(credit_settings):  # type: ignore[no-untyped-def]
    """The broker set up with the credit settings (actors imported)."""
    from certsms.tasks.boot import setup

    return setup(credit_settings)


@pytest.fixture
def credit_worker(credit_runtime):  # type: ignore[no-untyped-def]
    """A real dramatiq worker on the credit settings."""
    import dramatiq

    worker = dramatiq.Worker(credit_runtime.broker, worker_threads=2, worker_timeout=100)
    worker.start()
    yield worker
    worker.stop(timeout=10_000)


@pytest.mark.parametrize("res", [0, -2, -7])
def test_send_short_of_credit_waits_then_goes_out_once_after_a_top_up(
    credit_settings: Any, credit_runtime: Any, credit_worker: Any, sandbox: Any, res: int
) -> None:
    """CreditosNecesarios (any Res) → waiting_credit with needed/available; nothing more is
    sent while short, no retry burned, nothing memoised; after a top-up it is sent once."""
    store = credit_runtime.store
    sandbox.configure(no_credit_res=res)
    sandbox.set_credits(5)
    job_id = tasks.enqueue_send(
        send_params(Mensaje="Su notificacion esta disponible"), settings=credit_settings
    )
    waiting = wait_status(store, job_id, "waiting_credit", "failed", "dead")
    assert waiting.status is JobStatus.WAITING_CREDIT
    assert (waiting.credits_needed, waiting.credits_available) == (18.0, 5.0)
    guard = ProviderGuard(credit_runtime.redis, credit_settings)
    snapshot = guard.snapshot()
    assert snapshot["memo"]["count"] == 0  # type: ignore[index]
    assert snapshot["rejections"]["count"] == 0  # type: ignore[index]
    assert guard.short_of_credit() is not None
    # two balance checks later (one GetCreditos per interval), still only the one send
    wait_for(lambda: len(sandbox.requests("GetCreditos")) >= 2, timeout_s=30)
    assert len(sandbox.requests("EnviarSMSCERTIFICADO")) == 1
    assert record_of(store, job_id).status is JobStatus.WAITING_CREDIT
    sandbox.add_credits(1000)
    sent = wait_status(store, job_id, "sent", "failed", "dead", timeout_s=30)
    assert sent.status is JobStatus.SENT and sent.idmensaje
    sends = sandbox.requests("EnviarSMSCERTIFICADO")
    assert len(sends) == 2 and sends[0]["outcome"] == "no_credit"
    assert sends[1]["epoch_s"] - sends[0]["epoch_s"] >= INTERVAL_S * 0.9
    assert sent.attempts == 2  # two posts, no dramatiq retry in between
    assert guard.short_of_credit() is None
    events = [e["event"] for e in store.job_events(job_id)]
    assert "credit_available" in events
