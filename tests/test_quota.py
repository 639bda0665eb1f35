"""The cross-process rate limiter and circuit breaker, over every storage backend."""
import calendar
import pickle
import textwrap

import pytest

from redis_fixture import run_workers
from vtpivot_app.quota import (NS_QUOTA, Budget, RateLimiter, Throttled, next_utc_midnight,
                               next_utc_month_start)


def utc(*fields):
    return float(calendar.timegm(fields + (0,) * (6 - len(fields))))


T0 = utc(2026, 12, 4, 16, 20, 0)


class Clock:
    """Injected clock and sleep: sleeping advances the clock."""

    def __init__(self, now=T0):
        self.now = now
        self.sleeps = []

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def clock():
    return Clock()


def limiter(backend, clock, **budget):
    return RateLimiter(backend, Budget(**budget), clock=clock, sleep=clock.sleep)


def test_budget_defaults_are_a_public_key():
    assert Budget() == Budget(per_minute=4, per_day=500, per_month=0)


def test_sliding_minute(state_backend, clock):
    lim = limiter(state_backend, clock, per_minute=4, per_day=500)
    for offset in (0, 10, 20, 30):
        clock.now = T0 + offset
        lim.acquire()
    clock.now = T0 + 40
    with pytest.raises(Throttled) as info:
        lim.acquire()
    exc = info.value
    assert exc.window == "minute" and exc.retry_at == pytest.approx(T0 + 60)
    assert exc.code == "VTP-E020" and str(exc).startswith("[VTP-E020] ")
    assert "4/4 calls in the last 60 s" in exc.message and "16:21:00 UTC" in exc.message
    clock.now = T0 + 60  # the first call left the window
    lim.acquire()
    clock.now = T0 + 61
    with pytest.raises(Throttled) as info:
        lim.acquire()
    assert info.value.retry_at == pytest.approx(T0 + 70)  # now the second call's turn
    assert clock.sleeps == []


def test_window_slides_across_a_minute_boundary(state_backend, clock):
    # A fixed clock-minute would allow 4 more at :00; VirusTotal would refuse them.
    lim = limiter(state_backend, clock, per_minute=4, per_day=500)
    clock.now = T0 - 1
    for _ in range(4):
        lim.acquire()
    clock.now = T0 + 1
    with pytest.raises(Throttled):
        lim.acquire()


def test_max_wait_waits_only_when_useful(state_backend, clock):
    lim = limiter(state_backend, clock, per_minute=4, per_day=500)
    for _ in range(4):
        lim.acquire()
    clock.now = T0 + 40
    with pytest.raises(Throttled):
        lim.acquire(max_wait=10)  # the slot frees in 20 s: waiting 10 s cannot help
    assert clock.sleeps == []
    lim.acquire(max_wait=30)  # frees in 20 s: wait, then take it
    assert len(clock.sleeps) == 1 and clock.sleeps[0] == pytest.approx(20, abs=0.01)
    assert clock.now == pytest.approx(T0 + 60, abs=0.01)
    assert lim.remaining()["minute"] == 3  # the four calls of T0 have left the window


def test_max_wait_never_waits_for_the_day(state_backend, clock):
    lim = limiter(state_backend, clock, per_minute=4, per_day=2)
    lim.acquire()
    lim.acquire()
    with pytest.raises(Throttled) as info:
        lim.acquire(max_wait=3600)
    assert info.value.window == "day" and clock.sleeps == []


def test_daily_limit_resets_at_utc_midnight(state_backend, clock):
    clock.now = utc(2026, 12, 4, 23, 59, 0)
    lim = limiter(state_backend, clock, per_minute=0, per_day=3)
    for _ in range(3):
        lim.acquire()
    with pytest.raises(Throttled) as info:
        lim.acquire()
    exc = info.value
    assert exc.window == "day" and exc.retry_at == utc(2026, 12, 5)
    assert exc.code == "VTP-E021"
    assert exc.message == ("VirusTotal budget spent: 3/3 calls today (UTC); refills at "
                           "2026-12-05 00:00 UTC")
    clock.now = utc(2026, 12, 4, 23, 59, 59)
    with pytest.raises(Throttled):
        lim.acquire()
    clock.now = utc(2026, 12, 5)
    lim.acquire()
    assert lim.remaining()["day"] == 2


def test_monthly_limit_and_year_rollover(state_backend, clock):
    clock.now = utc(2026, 12, 31, 23, 0, 0)
    lim = limiter(state_backend, clock, per_minute=0, per_day=0, per_month=2)
    lim.acquire()
    clock.now += 3600 - 10  # the other day's count does not matter, the month's does
    lim.acquire()
    with pytest.raises(Throttled) as info:
        lim.acquire()
    assert info.value.window == "month" and info.value.retry_at == utc(2027, 1, 1)
    assert "2/2 calls this month (UTC); refills at 2027-01-01 00:00 UTC" in str(info.value)
    clock.now = utc(2027, 1, 1)
    lim.acquire()
    r = lim.remaining()
    assert (r["minute"], r["day"], r["month"]) == (None, None, 1)


def test_unlimited_budget(state_backend, clock):
    lim = limiter(state_backend, clock, per_minute=0, per_day=0, per_month=0)
    for _ in range(50):
        lim.acquire()
    assert lim.remaining()["used"]["day"] == 50


def test_circuit_breaker(state_backend, clock):
    lim = limiter(state_backend, clock, per_minute=4, per_day=500)
    until = next_utc_midnight(clock.now)
    assert not lim.recent_quota_strike(within=900)
    lim.open_circuit(until, "VirusTotal QuotaExceededError (daily assumed)")
    with pytest.raises(Throttled) as info:
        lim.acquire(max_wait=86400)  # never waits for a circuit
    exc = info.value
    assert (exc.window, exc.retry_at, exc.code) == ("circuit", until, "VTP-E023")
    assert "QuotaExceededError (daily assumed)" in exc.message
    assert "2026-12-05 00:00 UTC" in exc.message and clock.sleeps == []
    r = lim.remaining()
    assert r["circuit_open_until"] == until and r["minute"] == 4
    assert lim.estimate(3)[0] == 0
    assert lim.recent_quota_strike(within=900)
    # A shorter circuit opened later does not shorten the open one.
    lim.open_circuit(clock.now + 60, "per-minute")
    assert lim.remaining()["circuit_open_until"] == until
    clock.now = until
    lim.acquire()  # closed by time
    assert lim.remaining()["circuit_open_until"] is None
    clock.now += 1000
    assert not lim.recent_quota_strike(within=900)


def test_close_circuit(state_backend, clock):
    lim = limiter(state_backend, clock)
    lim.open_circuit(clock.now + 3600, "test")
    lim.close_circuit()
    lim.acquire()


def test_remaining(state_backend, clock):
    lim = limiter(state_backend, clock, per_minute=4, per_day=500)
    r = lim.remaining()
    assert (r["minute"], r["day"], r["month"], r["circuit_open_until"]) == (4, 500, None, None)
    assert r["resets"] == {"minute": T0, "day": utc(2026, 12, 5), "month": utc(2027, 1, 1)}
    lim.acquire()
    clock.now += 15
    lim.acquire()
    r = lim.remaining()
    assert (r["minute"], r["day"]) == (2, 498)
    assert r["used"] == {"minute": 2, "day": 2, "month": 2}
    assert r["resets"]["minute"] == pytest.approx(T0 + 60)


def test_estimate(state_backend, clock):
    lim = limiter(state_backend, clock, per_minute=4, per_day=10)
    allowed, message = lim.estimate(3)
    assert allowed == 3 and message.startswith("budget ok: 3 calls needed")
    allowed, message = lim.estimate(9)
    assert allowed == 4 and "budget is short: 9 calls needed, 4 can be made now" in message
    assert "2 more minute(s) at 4 calls/minute" in message
    allowed, message = lim.estimate(25)
    assert allowed == 4
    assert "only 10 left this day" in message and "15 indicators will be throttled" in message
    assert "2026-12-05 00:00 UTC" in message


def test_separate_names_have_separate_counters(state_backend, clock):
    a = RateLimiter(state_backend, Budget(per_minute=1), clock=clock, name="key-a")
    b = RateLimiter(state_backend, Budget(per_minute=1), clock=clock, name="key-b")
    a.acquire()
    b.acquire()
    with pytest.raises(Throttled):
        a.acquire()


def test_unreadable_state_does_not_block_forever(state_backend, clock):
    state_backend.put_many(NS_QUOTA, {"default": '{"m":["x"],"d":7}'}, ttl=600)
    lim = limiter(state_backend, clock, per_minute=2)
    lim.acquire()
    assert lim.remaining()["minute"] == 1


def test_throttled_pickles():
    exc = pickle.loads(pickle.dumps(Throttled("spent", 123.0, "day")))
    assert (exc.message, exc.retry_at, exc.window, exc.code) == ("spent", 123.0, "day",
                                                                 "VTP-E021")


def test_utc_helpers():
    assert next_utc_midnight(utc(2026, 12, 4, 0, 0, 0)) == utc(2026, 12, 5)
    assert next_utc_midnight(utc(2026, 12, 4, 23, 59, 59) + 0.9) == utc(2026, 12, 5)
    assert next_utc_month_start(utc(2026, 12, 4)) == utc(2027, 1, 1)
    assert next_utc_month_start(utc(2028, 2, 29, 12)) == utc(2028, 3, 1)


def test_acquire_takes_the_budget_then_refuses(state_backend):
    """Uncontended: the taking (write) path until the day's budget is spent, then the
    refusing (read-only) path (their latency is measured by bench/bench_state.py)."""
    lim = RateLimiter(state_backend, Budget(per_minute=0, per_day=300))
    for _ in range(300):
        lim.acquire()
    for _ in range(3):
        with pytest.raises(Throttled):
            lim.acquire()
    assert lim.remaining()["day"] == 0


# ---- real processes ---------------------------------------------------------------------------

HAMMER = textwrap.dedent("""
    import json, sys, time
    from vtpivot_app.storage_backends import open_backend
    from vtpivot_app.quota import Budget, RateLimiter, Throttled
    args = json.loads(sys.argv[1])
    scale = args.get("scale", 1.0)
    warp = {"t0": time.time(), "last": None}

    def clock():
        # A time-warped clock (the same in every process) turns minutes into seconds; it
        # also keeps the time of the limiter's last reading: the moment a token was taken.
        warp["last"] = warp["t0"] + (time.time() - warp["t0"]) * scale
        return warp["last"]
    backend = open_backend(**args["backend"])
    lim = RateLimiter(backend, Budget(**args["budget"]), clock=clock,
                      sleep=lambda s: time.sleep(s / scale))
    backend.get_many("quota", ["warm-up"])  # connect before the start
    t0 = warp["t0"] = start_barrier()
    while time.time() < t0:
        time.sleep(0.0005)
    ok, throttled, errors, lat = [], 0, [], []
    refused_in_a_row, enough = 0, args.get("stop_after_refusals") or float("inf")
    at_least = t0 + args.get("min_duration", 0.0)
    while time.time() < t0 + args["duration"] and (
            refused_in_a_row < enough or time.time() < at_least):
        started = time.perf_counter()
        try:
            lim.acquire(max_wait=args.get("max_wait", 0.0))
            ok.append(warp["last"])
            refused_in_a_row = 0
        except Throttled:
            throttled += 1
            refused_in_a_row += 1
        except Exception as exc:  # counted: the test demands none
            errors.append(repr(exc))
        lat.append(time.perf_counter() - started)
    print(json.dumps({"t0": t0, "ok": ok, "throttled": throttled, "errors": errors[:5],
                      "n_errors": len(errors), "lat_ms": sorted(x * 1e3 for x in lat)}))
""")


def _figures(name, results):
    lat = sorted(x for r in results for x in r["lat_ms"])
    calls = len(lat)
    print("\n%s: %d processes, %d acquire() calls, %d taken, %d throttled, %d errors; "
          "latency median %.2f ms p99 %.2f ms" % (
              name, len(results), calls, sum(len(r["ok"]) for r in results),
              sum(r["throttled"] for r in results), sum(r["n_errors"] for r in results),
              lat[calls // 2], lat[int(calls * 0.99)]))


@pytest.mark.parametrize("per_minute", [20, 600])
def test_processes_share_one_budget(backend_factory, state_backend, per_minute):
    """7 processes hammer acquire() on one shared state for 3 s (longer if needed, until
    300 refusals in a row, at most 30 s: no slot frees within the minute): exactly the
    budget is taken.
    20/minute: refusals dominate (read path); 600/minute: hundreds of contended
    check-and-take writes."""
    payload = {"backend": backend_factory.options(state_backend.name),
               "budget": {"per_minute": per_minute, "per_day": 10000},
               "min_duration": 3.0, "duration": 30.0, "stop_after_refusals": 300}
    results = run_workers(HAMMER, [payload] * 7)
    _figures("hammer[%s] budget %d/minute" % (state_backend.name, per_minute), results)
    assert [e for r in results for e in r["errors"]] == []  # no "database is locked"
    assert sum(len(r["ok"]) for r in results) == per_minute
    assert all(r["throttled"] >= 300 for r in results)  # all competed to the end
    lim = RateLimiter(state_backend, Budget(per_minute=per_minute, per_day=10000))
    assert lim.remaining()["used"]["day"] == per_minute


def test_waiting_processes_never_exceed_the_sliding_window(backend_factory, state_backend):
    """4 processes (with Redis: 4 search heads of a cluster) under 140 s of time-warped load
    at 20 calls/minute, each waiting up to 30 s for a slot: no 60 s window ever holds more
    than 20 calls, and the budget is used, not starved."""
    scale = 20.0
    payload = {"backend": backend_factory.options(state_backend.name),
               "budget": {"per_minute": 20, "per_day": 10000},
               "duration": 140 / scale, "scale": scale, "max_wait": 30.0}
    results = run_workers(HAMMER, [payload] * 4)
    assert [e for r in results for e in r["errors"]] == []
    calls = sorted(t - r["t0"] for r in results for t in r["ok"])
    busiest = max(sum(1 for u in calls if t <= u < t + 60) for t in calls)
    per_minute = [sum(1 for t in calls if m * 60 <= t < (m + 1) * 60) for m in range(3)]
    print("\nwaiting[%s]: per process %s calls; per simulated minute %s; busiest sliding "
          "60 s window %d (budget 20)" % (state_backend.name, [len(r["ok"]) for r in results],
                                         per_minute, busiest))
    assert busiest <= 20
    assert 40 <= len(calls) <= 60
    assert sum(1 for r in results if r["ok"]) >= 2  # more than one process got calls
