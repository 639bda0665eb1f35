"""The persistent queue of throttled indicators, over every storage backend."""
import logging
import textwrap

import pytest

from lookup_helpers import FakeClock
from redis_fixture import run_workers
from vtpivot_app.enrichment_queue import EnrichmentQueue

T0 = 1_796_400_000.0


@pytest.fixture
def clock():
    return FakeClock(T0)


@pytest.fixture
def queue(state_backend, clock):
    return EnrichmentQueue(state_backend, clock=clock)


def test_empty(queue):
    assert len(queue) == 0 and queue.length() == 0
    assert bool(queue)  # an empty queue is still truthy: `if queue:` means "configured"
    assert queue.pop_batch(10) == [] and queue.peek(10) == []
    assert queue.pop_batch(0) == []


def test_push_is_deduplicated(queue, clock):
    assert queue.push("domain", "example.com")
    clock.now += 100
    assert not queue.push("domain", "example.com", reason="throttled again")
    assert queue.push("ip", "example.com")  # another kind is another indicator
    assert len(queue) == 2
    [first] = [i for i in queue.peek(10) if i.kind == "domain"]
    assert (first.value, first.reason, first.first_queued_at, first.attempts) == (
        "example.com", "throttled", T0, 0)


def test_fifo_claim_and_ack(queue, clock):
    for i in range(5):
        queue.push("domain", "d%d.example" % i)
        clock.now += 1
    batch = queue.pop_batch(3)
    assert [i.value for i in batch] == ["d0.example", "d1.example", "d2.example"]
    assert all(i.attempts == 1 and i.token for i in batch)
    assert [i.value for i in queue.pop_batch(10)] == ["d3.example", "d4.example"]
    assert queue.pop_batch(10) == []  # all claimed
    assert len(queue) == 5  # claimed items stay until acked
    assert all(queue.ack(i) for i in batch)
    assert not queue.ack(batch[0])  # twice: nothing left to remove
    assert len(queue) == 2


def test_claimed_items_come_back_after_an_hour(queue, clock):
    queue.push("file", "a" * 64)
    [item] = queue.pop_batch(5)
    clock.now += 3599
    assert queue.pop_batch(5) == []
    clock.now += 2  # the drainer died: visible again
    [again] = queue.pop_batch(5)
    assert (again.value, again.attempts, again.first_queued_at) == ("a" * 64, 2, T0)
    assert not queue.ack(item)  # the stale claim cannot remove the new owner's item
    assert queue.ack(again) and len(queue) == 0


def test_release_and_repush_while_claimed(queue, clock):
    queue.push("ip", "8.8.8.8")
    [item] = queue.pop_batch(1)
    assert not queue.push("ip", "8.8.8.8")  # still queued (claimed): not twice
    assert queue.release(item, delay=60)
    assert queue.pop_batch(1) == []
    clock.now += 60
    [again] = queue.pop_batch(1)
    assert again.attempts == 2
    assert not queue.release(item)  # an old token is refused


def test_peek_does_not_claim(queue):
    queue.push("domain", "a.example")
    queue.push("domain", "b.example")
    assert [i.value for i in queue.peek(1)] == ["a.example"]
    assert all(i.token is None for i in queue.peek(5))
    assert len(queue.pop_batch(5)) == 2


def test_max_items(state_backend, clock, caplog):
    q = EnrichmentQueue(state_backend, max_items=2, clock=clock)
    assert q.push("domain", "a.example") and q.push("domain", "b.example")
    with caplog.at_level(logging.WARNING, logger="vtpivot.enrichment_queue"):
        assert not q.push("domain", "c.example")
    assert "queue_full" in caplog.text
    assert not q.push("domain", "a.example")  # a duplicate is not "full"
    assert len(q) == 2


def test_unicode_values_and_separate_queues(state_backend, clock):
    a = EnrichmentQueue(state_backend, name="a", clock=clock)
    b = EnrichmentQueue(state_backend, name="b", clock=clock)
    a.push("domain", "b\u00fccher.example", reason="cache-only lookup miss")
    assert len(a) == 1 and len(b) == 0
    [item] = a.pop_batch(1)
    assert (item.value, item.reason, item.key) == (
        "b\u00fccher.example", "cache-only lookup miss", "domain:b\u00fccher.example")


DRAINER = textwrap.dedent("""
    import json, sys, time
    from vtpivot_app.storage_backends import open_backend
    from vtpivot_app.enrichment_queue import EnrichmentQueue
    args = json.loads(sys.argv[1])
    q = EnrichmentQueue(open_backend(**args["backend"]))
    len(q)  # connect before the start
    start_at = start_barrier()
    while time.time() < start_at:
        time.sleep(0.0005)
    got, acked = [], 0
    while True:
        batch = q.pop_batch(args["batch"])
        if not batch:
            break
        got.extend(i.value for i in batch)
        acked += sum(q.ack(i) for i in batch)
    print(json.dumps({"got": got, "acked": acked}))
""")


def test_concurrent_drainers_never_share_an_item(backend_factory, state_backend):
    q = EnrichmentQueue(state_backend)
    values = ["host%03d.example" % i for i in range(300)]
    for v in values:
        q.push("domain", v)
    payload = {"backend": backend_factory.options(state_backend.name), "batch": 7}
    results = run_workers(DRAINER, [payload] * 4)
    got = [v for r in results for v in r["got"]]
    print("\nqueue[%s]: 4 drainers took %s items" % (state_backend.name,
                                                    [len(r["got"]) for r in results]))
    assert sorted(got) == sorted(values)  # each exactly once
    assert sum(r["acked"] for r in results) == 300
    assert len(q) == 0
