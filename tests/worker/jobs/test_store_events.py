"""The events stream is bounded by age as well as by length; job ids are checked before
a key is built from them."""

from __future__ import annotations

import pytest
import redis

from certsms.config.settings import Settings
from certsms.worker.jobs.store import InvalidJobId, JobStore


def test_events_older_than_the_max_age_are_trimmed(
    redis_client: redis.Redis, settings: Settings
) -> None:
    """Entries older than events_max_age_s go; recent ones stay."""
    store = JobStore(redis_client, settings.model_copy(update={"events_max_age_s": 3600}))
    seconds, _ = redis_client.time()
    now = float(seconds)
    for n in range(300):  # old entries, ids two hours back (several stream nodes)
        redis_client.xadd(store.events_key, {"event": "old"}, id=f"{int((now - 7200) * 1000)}-{n}")
    store.append_event(None, "recent")
    assert store.trim_events(now=now) >= 200
    left = [e["event"] for e in store.events(count=1000)]
    assert "recent" in left and left.count("old") < 200


def test_store_refuses_keys_for_strings_that_are_not_job_ids(
    redis_client: redis.Redis, settings: Settings
) -> None:
    """An id with ':' builds no key (InvalidJobId) and reads as no job."""
    store = JobStore(redis_client, settings)
    store.create("job1", kind="send", payload={})
    store.add_to_inbox("job1", {"e": 1}, max_entries=10)
    with pytest.raises(InvalidJobId):
        store.job_key("job1:inbox")
    assert store.get("job1:inbox") is None and store.status("job1:inbox") is None
    assert store.get("job1") is not None
