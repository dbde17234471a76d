"""One suite, every store: memory://, sqlite:///, redis:// must behave the same."""

from __future__ import annotations

import multiprocessing
import sys
import threading
import time

import pytest

from otel_sentry_biz.rules.state import (
    StateStore,
    StateStoreError,
    StoreUnavailable,
    open_store,
    state_url_problem,
)
from otel_sentry_biz.rules.state.breaker import Breaker
from otel_sentry_biz.rules.state.memory import MemoryStore
from tests.rules import workers

#: fork is fast and safe here (the children only open their own store from its URL); other
#: platforms spawn, which costs an interpreter start per process.
_MP = multiprocessing.get_context("fork" if sys.platform == "linux" else "spawn")


@pytest.fixture
def store(store_url):
    opened = open_store(store_url)
    yield opened
    opened.close()


def test_every_store_is_a_state_store(store):
    assert isinstance(store, StateStore)


def test_incr_adds_per_field_and_returns_new_values(store):
    assert store.incr("k", {"sum": 2.5, "count": 1}, 60) == {"sum": 2.5, "count": 1.0}
    assert store.incr("k", {"sum": 4.0, "count": 1}, 60) == {"sum": 6.5, "count": 2.0}
    assert store.incr("k", {"other": 1}, 60) == {"other": 1.0}
    assert store.incr("k", {"sum": 0}, 60) == {"sum": 6.5}  # untouched fields survive


def test_keys_are_independent(store):
    store.incr("a", {"n": 1}, 60)
    assert store.incr("b", {"n": 1}, 60) == {"n": 1.0}


def test_add_once_is_true_only_the_first_time(store):
    assert store.add_once("seen", 60) is True
    assert store.add_once("seen", 60) is False
    assert store.add_once("other", 60) is True


def test_put_if_absent_keeps_the_first_value(store):
    assert store.put_if_absent("wr", "Ramirez", 60) == "Ramirez"
    assert store.put_if_absent("wr", "Novak", 60) == "Ramirez"


def test_get_reads_the_value_put_if_absent_stored(store):
    assert store.get("wr") is None
    store.put_if_absent("wr", "Ramirez", 60)
    store.put_if_absent("wr", "Novak", 60)
    assert store.get("wr") == "Ramirez"
    assert store.get("other") is None


def test_get_of_an_absent_key_writes_nothing(store):
    assert store.get("journey") is None
    # Nothing was left behind for the first writer to trip over.
    assert store.put_if_absent("journey", "signup", 60) == "signup"
    assert store.get("journey") == "signup"


def test_get_after_delete_is_none(store):
    store.put_if_absent("journey", "signup", 60)
    store.delete("journey")
    assert store.get("journey") is None
    assert store.put_if_absent("journey", "checkout", 60) == "checkout"


def test_get_sees_what_another_connection_stored(store_url):
    """Two stores on one URL, as two processes have; memory:// is one process's by design."""
    web = open_store(store_url)
    worker = web if store_url == "memory://" else open_store(store_url)
    try:
        web.put_if_absent("journey:42", '{"n": "signup"}', 60)
        assert worker.get("journey:42") == '{"n": "signup"}'
        worker.delete("journey:42")
        assert web.get("journey:42") is None
    finally:
        web.close()
        worker.close()


def test_delete_forgets_counters_and_marks(store):
    store.incr("streak", {"n": 3}, 60)
    store.add_once("mark", 60)
    store.delete("streak")
    store.delete("mark")
    store.delete("never-set")
    assert store.incr("streak", {"n": 1}, 60) == {"n": 1.0}
    assert store.add_once("mark", 60) is True


def test_windows_expire(store):
    store.incr("window", {"n": 5}, 0.3)
    store.add_once("mark", 0.3)
    store.put_if_absent("first", "a", 0.3)
    time.sleep(0.45)
    assert store.get("first") is None
    assert store.incr("window", {"n": 1}, 60) == {"n": 1.0}
    assert store.add_once("mark", 60) is True
    assert store.put_if_absent("first", "b", 60) == "b"


def test_writes_push_a_records_expiry(store):
    store.incr("live", {"n": 1}, 0.5)
    time.sleep(0.3)
    store.incr("live", {"m": 1}, 0.5)  # any write refreshes the whole record
    time.sleep(0.3)
    assert store.incr("live", {"n": 1, "m": 0}, 60) == {"n": 2.0, "m": 1.0}


def test_concurrent_increments_add_up_exactly(store_url):
    """Four writers (processes, or threads for the per-process memory store), one total."""
    writers, times, amount = 4, 150, 2.5
    if store_url.startswith("memory"):
        shared = open_store(store_url)

        def add() -> None:
            for _ in range(times):
                shared.incr("shared-total", {"sum": amount, "count": 1.0}, 60.0)

        threads = [threading.Thread(target=add) for _ in range(writers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        reader = shared
    else:
        procs = [
            _MP.Process(target=workers.add_to_total, args=(store_url, times, amount))
            for _ in range(writers)
        ]
        for proc in procs:
            proc.start()
        for proc in procs:
            proc.join(timeout=60)
            assert proc.exitcode == 0
        reader = open_store(store_url)
    totals = reader.incr("shared-total", {"sum": 0.0, "count": 0.0}, 60.0)
    reader.close()
    assert totals == {"sum": writers * times * amount, "count": float(writers * times)}


def test_processes_sharing_a_store_report_a_crossed_limit_once(store_url):
    """Many processes add to one daily total: exactly one of them reports the breach."""
    if store_url.startswith("memory"):
        pytest.skip("memory:// is per process by design; see the thread test above")
    with _MP.Pool(3) as pool:
        results = pool.starmap(workers.bill_lines, [(store_url, 40, 100.0, 10_000.0)] * 3)
    assert [errors for _raised, errors in results] == [0, 0, 0]
    # 120 lines of 100 = 12,000 > 10,000: one process crossed it, the others saw it crossed.
    assert sum(raised for raised, _errors in results) == 1


def test_memory_store_is_bounded():
    store = MemoryStore(max_keys=100)
    for number in range(250):
        store.add_once(f"k{number}", 60)
    assert len(store) == 100
    assert store.evicted == 150
    assert store.add_once("k249", 60) is False  # the most recent keys are kept


def test_breaker_turns_failures_into_unavailable_and_cools_down():
    class Failing:
        calls = 0

        def incr(self, key, amounts, ttl):
            self.calls += 1
            raise ConnectionError("refused")

        def close(self):
            pass

    now = [0.0]
    inner = Failing()
    breaker = Breaker(inner, cooldown=5, clock=lambda: now[0])
    with pytest.raises(StoreUnavailable):
        breaker.incr("k", {"n": 1}, 60)
    with pytest.raises(StoreUnavailable, match="cooling down"):
        breaker.incr("k", {"n": 1}, 60)
    assert inner.calls == 1  # the open circuit did not touch the store
    now[0] = 6.0
    with pytest.raises(StoreUnavailable):
        breaker.incr("k", {"n": 1}, 60)
    assert inner.calls == 2


def test_an_open_breaker_answers_get_like_every_operation_without_the_store():
    class FailingReads:
        calls = 0

        def get(self, key):
            self.calls += 1
            raise ConnectionError("refused")

        def put_if_absent(self, key, value, ttl):
            self.calls += 1
            return value

        def close(self):
            pass

    inner = FailingReads()
    breaker = Breaker(inner, cooldown=5, clock=lambda: 0.0)
    with pytest.raises(StoreUnavailable, match="refused"):
        breaker.get("journey")
    with pytest.raises(StoreUnavailable, match="cooling down"):
        breaker.get("journey")
    with pytest.raises(StoreUnavailable, match="cooling down"):
        breaker.put_if_absent("journey", "signup", 60)
    assert inner.calls == 1


def test_unreachable_redis_is_unavailable_not_slow():
    pytest.importorskip("redis", reason="pip install redis to run the Redis store tests")
    store = open_store("redis://127.0.0.1:1/0?timeout=0.2")
    started = time.monotonic()
    with pytest.raises(StoreUnavailable):
        store.incr("k", {"n": 1}, 60)
    with pytest.raises(StoreUnavailable):
        store.add_once("k", 60)
    with pytest.raises(StoreUnavailable):
        store.get("k")
    assert time.monotonic() - started < 1.0


@pytest.mark.parametrize(
    ("url", "fix"),
    [
        ("postgres://db/x", "use memory://, sqlite:////path/to/rules.db or redis://"),
        ("sqlite://", "use sqlite:///relative.db or sqlite:////abs/path.db"),
        ("memory://?max_keys=-1", "max_keys must be a positive integer"),
        ("sqlite:////no/such/dir/rules.db", "check the directory exists"),
    ],
)
def test_bad_store_urls_name_the_fix(url, fix):
    with pytest.raises(StateStoreError) as caught:
        open_store(url)
    assert fix in str(caught.value)


def test_an_object_that_is_not_a_store_is_refused_naming_what_it_lacks():
    class RulesOnly:  # a store written before get joined the protocol
        def incr(self, key, amounts, ttl):
            return {}

        add_once = put_if_absent = delete = incr

        def close(self):
            pass

    assert not isinstance(RulesOnly(), StateStore)
    with pytest.raises(StateStoreError, match="RulesOnly is not a state store: add get"):
        open_store(RulesOnly())  # type: ignore[arg-type]


def test_state_url_problem_checks_form_without_connecting():
    assert state_url_problem("redis://nowhere.invalid:6379/0") is None
    assert state_url_problem("sqlite:////tmp/x.db") is None
    assert "unknown state store URL" in state_url_problem("mongodb://x")
