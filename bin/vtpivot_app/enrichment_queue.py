"""Persistent queue of indicators that were throttled, drained later within the budget.

Lookups that hit the budget push their indicators here; a scheduled job pops batches,
enriches them (as far as the budget allows) and acks each one done. Shared by every process
through a storage backend.

- push is deduplicated: an indicator already queued (claimed or not) is not queued twice and
  keeps its first_queued_at and attempts.
- pop_batch claims items atomically: two drainers never get the same one. A claimed item
  that is not acked within `lease_seconds` (default 1 hour: the drainer died) is visible
  again; ``release()`` gives it back at once (e.g. the drainer was throttled itself).
- ack/release take the claim's token: a drainer whose lease ran out and whose item was
  claimed again by another cannot remove it from under the new owner.
"""
from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from collections.abc import Callable

DEFAULT_LEASE_SECONDS = 3600
DEFAULT_MAX_ITEMS = 100000  # bounds the state a flood of throttled rows can leave behind

_log = logging.getLogger("vtpivot.enrichment_queue")


@dataclass
class QueuedItem:
    kind: str
    value: str
    reason: str
    first_queued_at: float
    attempts: int  # how many times it was claimed
    visible_at: float = 0.0
    token: str | None = None  # set on items returned by pop_batch

    @property
    def key(self) -> str:
        return "%s:%s" % (self.kind, self.value)


class EnrichmentQueue:
    def __init__(self, backend, name: str = "enrichment",
                 lease_seconds: float = DEFAULT_LEASE_SECONDS,
                 max_items: int = DEFAULT_MAX_ITEMS, clock: Callable[[], float] = time.time,
                 logger: logging.Logger | None = None):
        self.backend = backend
        self.name = name
        self.lease_seconds = float(lease_seconds)
        self.max_items = int(max_items)
        self.clock = clock
        self.logger = logger or _log

    def push(self, kind: str, value: str, reason: str = "throttled") -> bool:
        """True when newly queued; False when already queued (or the queue is full, logged)."""
        payload = json.dumps({"kind": kind, "value": value, "reason": reason},
                             separators=(",", ":"))
        outcome = self.backend.queue_push(self.name, "%s:%s" % (kind, value), payload,
                                          self.clock(), self.max_items)
        if outcome == "full":
            self.logger.warning("queue_full queue=%s max_items=%d kind=%s "
                                "detail=\"indicator not queued\"", self.name, self.max_items,
                                kind)
        return outcome == "queued"

    def pop_batch(self, n: int) -> list[QueuedItem]:
        """Claims up to n visible items, oldest first."""
        if n <= 0:
            return []
        rows = self.backend.queue_claim(self.name, n, self.clock(), self.lease_seconds)
        return [self._item(row) for row in rows]

    def ack(self, item: QueuedItem) -> bool:
        """Removes a claimed item (done). False when the claim had expired and was taken."""
        return self.backend.queue_ack(self.name, item.key, item.token)

    def release(self, item: QueuedItem, delay: float = 0.0) -> bool:
        """Gives a claimed item back, visible again after `delay` seconds."""
        return self.backend.queue_release(self.name, item.key, item.token,
                                          self.clock() + delay)

    def length(self) -> int:
        """Items in the queue, claimed ones included."""
        return self.backend.queue_len(self.name)

    def __len__(self) -> int:
        return self.length()

    def __bool__(self) -> bool:  # an empty queue is still a queue (`if queue:`)
        return True

    def peek(self, n: int = 10) -> list[QueuedItem]:
        """The next items in drain order, without claiming them."""
        return [self._item(row) for row in self.backend.queue_peek(self.name, n)]

    @staticmethod
    def _item(row) -> QueuedItem:
        payload = json.loads(row.payload)
        return QueuedItem(payload["kind"], payload["value"], payload.get("reason", ""),
                          row.first_queued_at, row.attempts, row.visible_at, row.token)
