"""Internal idempotency keys live apart from the producers' keys."""

from __future__ import annotations

from certsms.worker.jobs.idempotency import IdempotencyKeys
from certsms.worker.runtime import Runtime

CERT = {"Idmensaje": 10000001, "Telefono": "34600000001"}
KEY = "certificate:10000001:34600000001"


def test_producer_key_spelling_an_internal_one_cannot_block_a_download(
    jobs_runtime: Runtime,
) -> None:
    """A producer's ``Idempotency-Key: certificate:<idMensaje>:<phone>`` claims its own key;
    the real download (an internal key of the same text) still gets its own job."""
    producer = jobs_runtime.producer
    planted = producer.enqueue("certificate", CERT, idempotency_key=KEY)
    real = producer.enqueue_follow_up("certificate", CERT, KEY)
    assert real != planted
    assert producer.enqueue_follow_up("certificate", CERT, KEY) == real  # still once
    keys = IdempotencyKeys(jobs_runtime.redis, jobs_runtime.settings)
    assert keys.lookup(KEY) == planted and keys.lookup(KEY, internal=True) == real


def test_internal_keys_carry_no_phone_in_their_redis_name(jobs_runtime: Runtime) -> None:
    """No Redis key name written for a certificate download contains the phone number."""
    jobs_runtime.producer.enqueue_follow_up("certificate", CERT, KEY)
    names = [k.decode() for k in jobs_runtime.redis.scan_iter(match="*", count=1000)]
    assert names and not [n for n in names if "34600000001" in n]
