"""Cross-process rate limiter and circuit breaker for the VirusTotal budget.

One token is one HTTP call to VirusTotal; a cache hit costs none (the caller does not call
acquire). Every process of the search head (and every cluster member, with Redis) shares the
counters through a storage backend, and check-and-take is atomic: one ``update()`` of one
small state document (SQLite: one IMMEDIATE transaction; Redis: WATCH/MULTI; files: an OS
lock), so N processes never spend more than one budget between them.

Windows, as VirusTotal counts them:
- per minute: a SLIDING 60 s window (a fixed minute would let 8 calls through in 2 s across
  a minute boundary with a 4/minute key);
- per day: the fixed UTC day (VT's quota resets at 00:00 UTC);
- per month: the calendar month, UTC.
A limit of 0 means no limit for that window.

The circuit breaker: when VirusTotal itself answers QuotaExceededError (the key is shared
with other tools, or the budget settings are higher than the key's real quota), the client
calls ``open_circuit(until, reason)`` and no call leaves any process until then.

Why not pyrate-limiter (with requests-ratelimiter): its buckets are rolling windows, not
the fixed UTC day and calendar month VT resets on; it checks several rates but does not take
from all windows in one atomic step across processes with one shared reason for refusal; it
has no notion of a circuit opened by the server; and it would bring its own SQLite/Redis
storage besides the backends the cache and queue already share. The whole policy here is
one pure function (``_take``) over a small JSON document, tested once for every backend.
"""
from __future__ import annotations

import bisect
import json
import math
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from collections.abc import Callable

from .errors import VTPivotError

MINUTE = 60.0
NS_QUOTA = "quota"
STATE_TTL = 40 * 86400  # outlives the month window; the document is rewritten on each call
WAKE_MARGIN = 0.005  # sleep a little past the moment a minute slot frees
MAX_STRIKES = 20

_WINDOW_CODES = {"minute": "VTP-E020", "day": "VTP-E021", "month": "VTP-E022",
                 "circuit": "VTP-E023"}


@dataclass(frozen=True)
class Budget:
    per_minute: int = 4
    per_day: int = 500
    per_month: int = 0  # 0 = no limit (for every window)

    @classmethod
    def from_settings(cls, settings) -> "Budget":
        return cls(int(settings.per_minute), int(settings.per_day), int(settings.per_month))


class Throttled(VTPivotError):
    """No call may leave now. ``str(exc)`` is "[VTP-E02x] <message>"; ``message`` is the
    human text alone, saying when the budget refills."""

    def __init__(self, message: str, retry_at: float, window: str):
        super().__init__(message, code=_WINDOW_CODES.get(window))
        self.message = message
        self.retry_at = retry_at
        self.window = window  # "minute" | "day" | "month" | "circuit"

    def __reduce__(self):  # picklable across multiprocessing
        return (Throttled, (self.message, self.retry_at, self.window))


def next_utc_midnight(now: float) -> float:
    return float((int(now // 86400) + 1) * 86400)


def _day_start(now):
    return float(int(now // 86400) * 86400)


def _month_start(now):
    t = time.gmtime(now)
    return datetime(t.tm_year, t.tm_mon, 1, tzinfo=timezone.utc).timestamp()


def next_utc_month_start(now: float) -> float:
    t = time.gmtime(now)
    year, month = (t.tm_year + 1, 1) if t.tm_mon == 12 else (t.tm_year, t.tm_mon + 1)
    return datetime(year, month, 1, tzinfo=timezone.utc).timestamp()


def _utc(ts, seconds=False):
    return time.strftime("%Y-%m-%d %H:%M:%S UTC" if seconds else "%Y-%m-%d %H:%M UTC",
                         time.gmtime(ts))


# ---- the policy: a pure function of (state document, now, budget) ---------------------------
# Document: {"m": [call times in the last 60 s], "d": [day start, calls], "mo": [month start,
# calls], "c": [circuit open until, reason] | null, "s": [times of QuotaExceeded strikes]}

class _State:
    __slots__ = ("minute", "day", "month", "circuit", "strikes")

    def __init__(self, raw, now):
        try:
            self._load(json.loads(raw) if raw else {}, now)
        except (ValueError, TypeError, KeyError, IndexError, AttributeError):
            self._load({}, now)  # unreadable: start the windows afresh, never block forever

    def _load(self, doc, now):
        self.minute = sorted(float(t) for t in doc.get("m") or () if now - float(t) < MINUTE)
        self.day = self._window(doc.get("d"), _day_start(now))
        self.month = self._window(doc.get("mo"), _month_start(now))
        circuit = doc.get("c")
        self.circuit = ([float(circuit[0]), str(circuit[1])]
                        if circuit and float(circuit[0]) > now else None)
        self.strikes = [float(s) for s in doc.get("s") or () if now - float(s) < 86400]

    @staticmethod
    def _window(stored, start):
        # A start later than ours (a cluster member's clock ahead past midnight) is kept and
        # counted: counting too much is safe, forgetting calls is not.
        if stored and float(stored[0]) >= start:
            return [float(stored[0]), int(stored[1])]
        return [start, 0]

    def dump(self):
        return json.dumps({"m": self.minute, "d": self.day, "mo": self.month, "c": self.circuit,
                           "s": self.strikes[-MAX_STRIKES:]}, separators=(",", ":"))

    def verdict(self, budget, now):
        """None when a call may leave now, else (window, retry_at, message)."""
        if self.circuit:
            until = float(self.circuit[0])
            return ("circuit", until, "VirusTotal refused further calls (%s); no call is sent "
                    "until %s" % (self.circuit[1], _utc(until, seconds=until % 60 != 0)))
        if budget.per_month and self.month[1] >= budget.per_month:
            at = next_utc_month_start(now)
            return ("month", at, "VirusTotal budget spent: %d/%d calls this month (UTC); "
                    "refills at %s" % (self.month[1], budget.per_month, _utc(at)))
        if budget.per_day and self.day[1] >= budget.per_day:
            at = next_utc_midnight(now)
            return ("day", at, "VirusTotal budget spent: %d/%d calls today (UTC); refills at "
                    "%s" % (self.day[1], budget.per_day, _utc(at)))
        if budget.per_minute and len(self.minute) >= budget.per_minute:
            at = self.minute[len(self.minute) - budget.per_minute] + MINUTE
            return ("minute", at, "VirusTotal budget spent: %d/%d calls in the last 60 s; the "
                    "next call is possible at %s (in %d s)" % (
                        len(self.minute), budget.per_minute, _utc(at, seconds=True),
                        max(1, math.ceil(at - now))))
        return None


def _take(raw, now, budget):
    """update() function: takes one token from every window, or refuses."""
    state = _State(raw, now)
    verdict = state.verdict(budget, now)
    if verdict is not None:
        return None, verdict
    # Full precision (rounding down would free a slot early); kept sorted even when a
    # cluster member's clock is a little behind, so the trim below drops the oldest.
    bisect.insort(state.minute, now)
    # Only the newest per_minute calls matter to the sliding window.
    state.minute = state.minute[-budget.per_minute:] if budget.per_minute else []
    state.day[1] += 1
    state.month[1] += 1
    return state.dump(), None


class RateLimiter:
    def __init__(self, backend, budget: Budget = Budget(), clock: Callable[[], float] = time.time,
                 sleep: Callable[[float], None] = time.sleep, name: str = "default"):
        """`name` scopes the counters (one per API key, should two keys ever be used)."""
        self.backend = backend
        self.budget = budget
        self.clock = clock
        self.sleep = sleep
        self.name = name

    def _raw(self):
        return self.backend.get_many(NS_QUOTA, [self.name]).get(self.name)

    def _try_take(self):
        """(now, None) when a token was taken at `now`, else (now, verdict)."""
        now = self.clock()
        # Lock-free pre-check: counts only grow within a window, so a snapshot that is
        # already over budget is over budget now; refusals then take no write lock.
        verdict = _State(self._raw(), now).verdict(self.budget, now)
        if verdict is not None:
            return now, verdict
        clock, budget = self.clock, self.budget

        def fn(raw):
            # Read the clock inside the critical section: a time read before waiting for
            # the lock would be stale, and entries pruned meanwhile by processes with
            # later times would let a stale-timed take exceed the sliding window.
            inner_now = clock()
            new, verdict = _take(raw, inner_now, budget)
            return new, (inner_now, verdict)
        return self.backend.update(NS_QUOTA, self.name, fn, STATE_TTL)

    def acquire(self, max_wait: float = 0.0) -> None:
        """Takes one token for one HTTP call to VirusTotal, or raises Throttled.

        Waits (in total at most about `max_wait` seconds) only when waiting can help: the
        per-minute window frees a slot within the time left. Day, month and circuit refusals
        are raised at once.
        """
        waited = 0.0
        while True:
            now, verdict = self._try_take()
            if verdict is None:
                return
            window, retry_at, message = verdict
            wait = retry_at - now
            if window == "minute" and wait <= max_wait - waited:
                pause = max(0.0, wait) + WAKE_MARGIN
                self.sleep(pause)
                waited += pause
                continue  # another process may have taken the slot: check again
            raise Throttled(message, retry_at, window)

    def remaining(self) -> dict:
        now = self.clock()
        state = _State(self._raw(), now)
        b = self.budget

        def left(limit, used):
            return max(0, limit - used) if limit else None
        return {
            "minute": left(b.per_minute, len(state.minute)),
            "day": left(b.per_day, state.day[1]),
            "month": left(b.per_month, state.month[1]),
            "used": {"minute": len(state.minute), "day": state.day[1],
                     "month": state.month[1]},
            # minute: when the oldest call in the window leaves it (now when none)
            "resets": {"minute": state.minute[0] + MINUTE if state.minute else now,
                       "day": next_utc_midnight(now), "month": next_utc_month_start(now)},
            "circuit_open_until": float(state.circuit[0]) if state.circuit else None,
            "circuit_reason": state.circuit[1] if state.circuit else None,
        }

    def open_circuit(self, until: float, reason: str) -> None:
        """No call leaves any process until `until` (epoch). Also records a strike for
        recent_quota_strike(). A circuit already open longer stays open longer."""
        now = self.clock()
        reason = str(reason)[:200]

        def fn(raw):
            state = _State(raw, now)
            if not state.circuit or float(state.circuit[0]) < until:
                state.circuit = [float(until), reason]
            state.strikes.append(round(now, 3))
            return state.dump(), None
        self.backend.update(NS_QUOTA, self.name, fn, STATE_TTL)

    def close_circuit(self) -> None:
        """Admin override (e.g. after replacing a spent key)."""
        now = self.clock()

        def fn(raw):
            state = _State(raw, now)
            state.circuit = None
            return state.dump(), None
        self.backend.update(NS_QUOTA, self.name, fn, STATE_TTL)

    def recent_quota_strike(self, within: float) -> bool:
        """Whether open_circuit() was called in the last `within` seconds (vt_client's
        two-strike rule: a second QuotaExceededError soon after the first means the day is
        spent, not the minute)."""
        now = self.clock()
        return any(now - s < within for s in _State(self._raw(), now).strikes)

    def estimate(self, calls_needed: int) -> tuple[int, str]:
        """(calls that may leave right now, message) for the pre-flight warning."""
        r = self.remaining()
        b = self.budget
        calls_needed = max(0, int(calls_needed))
        if r["circuit_open_until"]:
            return 0, ("VirusTotal refused further calls (%s): none of the %d calls needed can "
                       "be made before %s" % (r["circuit_reason"], calls_needed,
                                              _utc(r["circuit_open_until"], seconds=True)))
        limits = [v for v in (r["minute"], r["day"], r["month"]) if v is not None]
        allowed_now = min(limits + [calls_needed])
        long_left = [v for v in (r["day"], r["month"]) if v is not None]
        before_refill = min(long_left) if long_left else None
        if calls_needed <= allowed_now:
            return allowed_now, "budget ok: %d calls needed, %s" % (calls_needed, _left_text(r))
        if before_refill is None or calls_needed <= before_refill:
            extra = calls_needed - allowed_now
            minutes = math.ceil(extra / b.per_minute) if b.per_minute else 0
            return allowed_now, ("budget is short: %d calls needed, %d can be made now; the "
                                 "rest need about %d more minute(s) at %d calls/minute (%s)" % (
                                     calls_needed, allowed_now, minutes, b.per_minute,
                                     _left_text(r)))
        window = "month" if r["month"] is not None and r["month"] == before_refill else "day"
        refill = r["resets"][window]
        return allowed_now, ("budget is short: %d calls needed but only %d left this %s "
                             "(UTC, refills at %s); %d indicators will be throttled and queued"
                             % (calls_needed, before_refill, window, _utc(refill),
                                calls_needed - before_refill))


def _left_text(r):
    parts = []
    for window, label in (("minute", "this minute"), ("day", "today"), ("month", "this month")):
        if r[window] is not None:
            parts.append("%d left %s" % (r[window], label))
    return ", ".join(parts) or "no limits set"
