"""Both outboxes (memory, SQLite): bounded by count and bytes, transactions dropped before
errors, drops counted. Every test runs against each."""

from __future__ import annotations

import threading

import pytest

from otel_sentry_biz.sentry.outbox import QUEUE_OVERFLOW, MemoryOutbox, OutboxEntry
from otel_sentry_biz.sentry.sqlite_outbox import SQLiteOutbox


@pytest.fixture(params=["memory", "sqlite"])
def make(request: pytest.FixtureRequest, tmp_path) -> object:
    """A factory of empty outboxes of the parametrized kind, with the given bounds."""
    made = []

    def factory(**bounds: int):
        if request.param == "memory":
            return MemoryOutbox(**bounds)
        outbox = SQLiteOutbox(tmp_path / f"outbox{len(made)}.sqlite3", **bounds)
        made.append(outbox)
        return outbox

    yield factory
    for outbox in made:
        outbox.close()


def entry(category: str, name: str, size: int = 10) -> OutboxEntry:
    return OutboxEntry.new(event_id=name, category=category, payload=b"x" * size)


def err(name: str, size: int = 10) -> OutboxEntry:
    return entry("error", name, size)


def tx(name: str, size: int = 10) -> OutboxEntry:
    return entry("transaction", name, size)


def queued(outbox) -> list[str]:
    """Every queued event id in take order (errors first); released again afterwards."""
    taken = outbox.take(10_000)
    outbox.release(taken)
    return [e.event_id for e in taken]


@pytest.mark.parametrize(("items", "size"), [(0, 10), (10, 0), (-1, 10)])
def test_bounds_must_be_positive(items: int, size: int, make) -> None:
    with pytest.raises(ValueError, match="positive"):
        make(max_items=items, max_bytes=size)


def test_bounded_by_count_dropping_the_oldest(make) -> None:
    outbox = make(max_items=3)
    assert all(outbox.put(err(f"e{i}")) for i in range(3))
    assert outbox.put(err("e3")) is False  # kept, but something older had to go
    assert len(outbox) == 3
    assert queued(outbox) == ["e1", "e2", "e3"]
    assert outbox.drops() == {(QUEUE_OVERFLOW, "error"): 1}


def test_bounded_by_bytes_dropping_the_oldest(make) -> None:
    outbox = make(max_bytes=100)
    assert outbox.put(tx("t0", 40))
    assert outbox.put(tx("t1", 40))
    assert outbox.size_bytes == 80
    assert outbox.put(tx("t2", 40)) is False
    assert outbox.size_bytes == 80
    assert queued(outbox) == ["t1", "t2"]
    assert outbox.put(tx("t3", 100)) is False  # needs the whole budget: both older ones go
    assert queued(outbox) == ["t3"]
    assert outbox.size_bytes == 100
    assert outbox.drops() == {(QUEUE_OVERFLOW, "transaction"): 3}


def test_when_full_the_oldest_transactions_go_before_any_error(make) -> None:
    outbox = make(max_items=4)
    for each in (err("e1"), tx("t1"), err("e2"), tx("t2")):
        assert outbox.put(each)
    assert outbox.put(err("e3")) is False
    assert queued(outbox) == ["e1", "e2", "e3", "t2"]
    assert outbox.put(err("e4")) is False
    assert queued(outbox) == ["e1", "e2", "e3", "e4"]  # both transactions gone, no error yet
    assert outbox.drops() == {(QUEUE_OVERFLOW, "transaction"): 2}
    assert outbox.put(err("e5")) is False  # no transaction left: now the oldest error goes
    assert queued(outbox) == ["e2", "e3", "e4", "e5"]
    assert outbox.drops() == {(QUEUE_OVERFLOW, "transaction"): 2, (QUEUE_OVERFLOW, "error"): 1}


def test_a_transaction_never_pushes_an_error_out(make) -> None:
    outbox = make(max_items=2)
    outbox.put(err("e1"))
    outbox.put(err("e2"))
    assert outbox.put(tx("t1")) is False
    assert queued(outbox) == ["e1", "e2"]
    assert outbox.drops() == {(QUEUE_OVERFLOW, "transaction"): 1}


def test_a_new_transaction_replaces_the_oldest_one(make) -> None:
    outbox = make(max_items=3)
    for each in (err("e1"), tx("t1"), tx("t2")):
        outbox.put(each)
    assert outbox.put(tx("t3")) is False
    assert queued(outbox) == ["e1", "t2", "t3"]


def test_an_entry_bigger_than_the_whole_budget_is_refused_without_evicting_anything(make) -> None:
    outbox = make(max_bytes=100)
    outbox.put(tx("t1", 40))
    outbox.put(err("e1", 40))
    assert outbox.put(err("huge", 101)) is False
    assert queued(outbox) == ["e1", "t1"]  # nothing was sacrificed for an entry that can't fit
    assert outbox.size_bytes == 80 <= 100
    assert outbox.drops() == {(QUEUE_OVERFLOW, "error"): 1}
    empty = make(max_bytes=100)
    assert empty.put(tx("huge", 101)) is False
    assert len(empty) == 0
    assert empty.size_bytes == 0
    assert empty.drops() == {(QUEUE_OVERFLOW, "transaction"): 1}


def test_take_leases_errors_first_and_at_most_max_items(make) -> None:
    outbox = make()
    for each in (tx("t1"), err("e1"), tx("t2"), err("e2")):
        outbox.put(each)
    first = outbox.take(3)
    assert [e.event_id for e in first] == ["e1", "e2", "t1"]
    assert all(e.attempts == 1 for e in first)
    assert len(outbox) == 4  # leased entries still count
    assert [e.event_id for e in outbox.take(3)] == ["t2"]  # a lease is never handed out twice
    assert outbox.take(3) == []


def test_take_skips_the_categories_it_is_told_to(make) -> None:
    outbox = make()
    for each in (tx("t1"), err("e1"), tx("t2")):
        outbox.put(each)
    assert [e.event_id for e in outbox.take(10, lambda c: c == "transaction")] == ["e1"]
    assert outbox.take(10, lambda c: c == "transaction") == []
    assert [e.event_id for e in outbox.take(10, lambda c: c == "error")] == ["t1", "t2"]


def test_ack_forgets_delivered_entries_and_their_bytes(make) -> None:
    outbox = make()
    outbox.put(err("e1", 30))
    outbox.put(err("e2", 20))
    taken = outbox.take(1)
    outbox.ack(taken)
    assert len(outbox) == 1
    assert outbox.size_bytes == 20
    outbox.ack(taken)  # twice is harmless
    assert outbox.size_bytes == 20
    outbox.ack([outbox.take(1)[0]])
    assert len(outbox) == 0
    assert outbox.size_bytes == 0
    assert outbox.drops() == {}


def test_ack_of_an_entry_not_leased_does_nothing(make) -> None:
    outbox = make()
    queued_entry = err("e1")
    outbox.put(queued_entry)
    outbox.ack([queued_entry])
    assert queued(outbox) == ["e1"]
    assert outbox.size_bytes == 10


def test_release_puts_entries_back_in_front_in_their_order(make) -> None:
    outbox = make()
    for each in (err("e1"), err("e2"), tx("t1"), tx("t2")):
        outbox.put(each)
    taken = outbox.take(10)
    outbox.put(err("e3"))
    outbox.put(tx("t3"))
    outbox.release(taken)
    assert len(outbox) == 6
    assert outbox.size_bytes == 60
    again = outbox.take(10)
    assert [e.event_id for e in again] == ["e1", "e2", "e3", "t1", "t2", "t3"]
    assert [e.attempts for e in again] == [2, 2, 1, 2, 2, 1]
    assert outbox.drops() == {}


def test_drop_forgets_leased_entries_and_counts_them_by_reason_and_category(make) -> None:
    outbox = make()
    for each in (err("e1"), err("e2"), tx("t1")):
        outbox.put(each)
    taken = outbox.take(10)
    outbox.drop(taken[:2], "send_error")
    outbox.drop(taken[2:], "ratelimit_backoff")
    assert len(outbox) == 0
    assert outbox.size_bytes == 0
    assert outbox.drops() == {("send_error", "error"): 2, ("ratelimit_backoff", "transaction"): 1}
    outbox.drop(taken, "send_error")  # already gone: not counted twice
    assert outbox.drops()[("send_error", "error")] == 2


def test_unreported_drops_are_reported_once(make) -> None:
    outbox = make(max_items=1)
    outbox.put(err("e1"))
    outbox.put(err("e2"))  # e1 overflows
    outbox.drop(outbox.take(1), "send_error")
    assert outbox.take_unreported_drops() == {
        (QUEUE_OVERFLOW, "error"): 1,
        ("send_error", "error"): 1,
    }
    assert outbox.take_unreported_drops() == {}
    outbox.put(tx("t1"))
    outbox.put(tx("t2"))
    assert outbox.take_unreported_drops() == {(QUEUE_OVERFLOW, "transaction"): 1}
    assert outbox.drops() == {  # the running total is kept
        (QUEUE_OVERFLOW, "error"): 1,
        ("send_error", "error"): 1,
        (QUEUE_OVERFLOW, "transaction"): 1,
    }


def test_leased_entries_are_never_evicted(make) -> None:
    outbox = make(max_items=2)
    outbox.put(tx("t1"))
    outbox.put(tx("t2"))
    taken = outbox.take(2)  # on their way to Sentry
    assert outbox.put(err("e1"))
    assert outbox.drops() == {}
    outbox.ack(taken)
    assert queued(outbox) == ["e1"]


def test_concurrent_puts_respect_the_bound_and_count_every_drop(make) -> None:
    outbox = make(max_items=50)
    per_thread, threads = 500, 4

    def produce(n: int) -> None:
        for i in range(per_thread):
            outbox.put((err if i % 3 == 0 else tx)(f"{n}-{i}"))

    workers = [threading.Thread(target=produce, args=(n,)) for n in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert len(outbox) == 50
    assert outbox.size_bytes == 50 * 10
    assert sum(outbox.drops().values()) == per_thread * threads - 50
    assert all(reason == QUEUE_OVERFLOW for reason, _ in outbox.drops())
