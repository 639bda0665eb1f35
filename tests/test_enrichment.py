"""Enricher with the real object store, rate limiter and queue (SQLite in a tmp state folder)
against the fake VirusTotal server. Request counts come from the server itself."""
import threading

import pytest

from lookup_helpers import FakeClock, SleepRecorder
from vtpivot_app.enrichment import Enricher, build_enricher
from vtpivot_app.enrichment_queue import EnrichmentQueue
from vtpivot_app.indicators import IndicatorPolicy, classify
from vtpivot_app.object_store import ObjectStore
from vtpivot_app.quota import Budget, RateLimiter
from vtpivot_app.settings import Settings, validate
from vtpivot_app.storage_backends import open_backend
from vtpivot_app.vt_client import VTClient

PUBLIC = "test-public-key"
PREMIUM = "test-premium-key"
POLICY = IndicatorPolicy(allow_documentation=True)  # the basic dataset uses .example / TEST-NETs
FILE = {"md5": "4dcba584d81e0e01451b9509cb07d87f",
        "sha1": "632a1983bfe662d8e7d7b6add143790a266a8659",
        "sha256": "1420de7b56a70aa9a5ed4a0d215641fe62b284769b863a0710c9d0546e41dbe8"}
SIX_DOMAINS = ["alpha.example", "beta.example", "google.com", "mail.alpha.example",
               "www.alpha.example", "parked-01.example"]


class Wired:
    """build_enricher's wiring, with one injected clock (store, limiter, client, enricher)
    and sleeps recorded instead of slept."""

    def __init__(self, url, tmp_path, key=PREMIUM, live=True, clock=None, **overrides):
        values = dict(api_url=url, state_dir=str(tmp_path / "state"), tier="premium",
                      per_minute=0, per_day=0, max_retries=1, backoff_base=0.01)
        values.update(overrides)
        self.settings = s = validate(Settings(**values))
        self.clock = clock or FakeClock()
        self.limiter_sleep = SleepRecorder(self.clock)  # "sleeping" moves the clock on
        self.client_sleep = SleepRecorder(self.clock)
        backend = open_backend("sqlite", s.resolved_state_dir)
        self.store = ObjectStore(backend, ttl_seconds={"domain": s.ttl_domain, "ip": s.ttl_ip,
                                                       "file": s.ttl_file},
                                 not_found_ttl=s.ttl_not_found, stale_max_age=s.stale_max_age,
                                 clock=self.clock)
        self.limiter = RateLimiter(backend, Budget.from_settings(s), clock=self.clock,
                                   sleep=self.limiter_sleep)
        self.queue = EnrichmentQueue(backend, clock=self.clock)
        self.factory_calls = 0

        def factory():
            self.factory_calls += 1
            return VTClient(s, key, limiter=self.limiter, sleep=self.client_sleep,
                            clock=self.clock)

        self.enricher = Enricher(s, self.store, limiter=self.limiter, queue=self.queue,
                                 client_factory=factory, live=live, clock=self.clock)

    def resolve(self, raw_values, kind="domain"):
        return self.enricher.resolve([classify(v, kind, POLICY) for v in raw_values])


def values_of(results):
    return {value: res for (_, value), res in results.items()}


def test_a_batch_is_deduplicated_before_any_call(fake_vt, tmp_path):
    w = Wired(fake_vt.url, tmp_path)
    results = w.resolve(["alpha.example", "ALPHA.example", "alpha[.]example",
                         "https://alpha.example/x", "beta.example", "beta.example"])
    assert set(values_of(results)) == {"alpha.example", "beta.example"}
    assert fake_vt.total_calls == 2
    assert fake_vt.calls("/domains/alpha.example") == 1
    assert all(r.status == "ok" and r.cache == "miss" for r in results.values())
    assert w.limiter.remaining()["used"]["day"] == 2  # one token per request


def test_cache_hit_costs_no_request_and_no_token(fake_vt, tmp_path):
    w = Wired(fake_vt.url, tmp_path, per_minute=100)
    w.resolve(["alpha.example"])
    used = w.limiter.remaining()["used"]["day"]
    again = values_of(w.resolve(["alpha.example", "Alpha.Example"]))
    assert again["alpha.example"].cache == "hit" and again["alpha.example"].status == "ok"
    assert again["alpha.example"].record["id"] == "alpha.example"
    assert fake_vt.total_calls == 1
    assert w.limiter.remaining()["used"]["day"] == used == 1
    assert w.enricher.stats.hits == 1
    # another enricher (another process) over the same state folder hits too
    other = Wired(fake_vt.url, tmp_path, clock=w.clock)
    assert values_of(other.resolve(["alpha.example"]))["alpha.example"].cache == "hit"
    assert other.factory_calls == 0 and fake_vt.total_calls == 1


def test_not_found_is_cached_with_the_shorter_ttl(fake_vt, tmp_path):
    w = Wired(fake_vt.url, tmp_path, ttl_not_found=3600, ttl_domain=86400)
    first = values_of(w.resolve(["nowhere-zz.example", "alpha.example"]))
    assert (first["nowhere-zz.example"].status, first["nowhere-zz.example"].cache) == \
        ("not_found", "miss")
    assert "VTP-E013" in first["nowhere-zz.example"].error
    assert fake_vt.total_calls == 2
    second = values_of(w.resolve(["nowhere-zz.example"]))
    assert (second["nowhere-zz.example"].status, second["nowhere-zz.example"].cache) == \
        ("not_found", "hit")
    assert fake_vt.total_calls == 2
    w.clock.advance(3601)  # past the not-found TTL, well within the domain TTL
    third = values_of(w.resolve(["nowhere-zz.example", "alpha.example"]))
    assert third["nowhere-zz.example"].cache == "miss"
    assert third["alpha.example"].cache == "hit"
    assert fake_vt.calls("/domains/nowhere-zz.example") == 2 and fake_vt.total_calls == 3


def test_file_hash_aliases_one_request_for_md5_sha1_sha256(fake_vt, tmp_path):
    w = Wired(fake_vt.url, tmp_path)
    by_md5 = values_of(w.resolve([FILE["md5"]], kind="hash"))[FILE["md5"]]
    assert by_md5.status == "ok" and by_md5.cache == "miss"
    assert by_md5.record["id"] == FILE["sha256"]
    by_sha1 = values_of(w.resolve([FILE["sha1"].upper()], kind="hash"))[FILE["sha1"]]
    by_sha256 = values_of(w.resolve([FILE["sha256"]], kind="hash"))[FILE["sha256"]]
    assert by_sha1.cache == by_sha256.cache == "hit"
    assert by_sha1.record["id"] == by_sha256.record["id"] == FILE["sha256"]
    assert fake_vt.total_calls == 1 and fake_vt.calls("/files/" + FILE["md5"]) == 1


def test_stale_if_error(fake_vt, tmp_path):
    w = Wired(fake_vt.url, tmp_path, ttl_domain=600, max_retries=1)
    w.resolve(["alpha.example"])
    w.clock.advance(601)
    fake_vt.inject("transient", count=None)
    res = values_of(w.resolve(["alpha.example"]))["alpha.example"]
    assert (res.status, res.cache) == ("ok", "stale")
    assert res.record["id"] == "alpha.example"
    assert res.error.startswith("[VTP-E030]")
    assert fake_vt.total_calls == 1 + 2  # the first fetch, then 503 + one retry
    assert w.enricher.stats.stale == 1


def test_error_without_a_stale_entry_is_an_error_row(fake_vt, tmp_path):
    w = Wired(fake_vt.url, tmp_path, max_retries=0)
    fake_vt.inject("transient", count=None)
    res = values_of(w.resolve(["alpha.example"]))["alpha.example"]
    assert (res.status, res.cache) == ("error", "miss") and res.error.startswith("[VTP-E030]")
    assert w.queue.length() == 0  # errors are not throttling: not queued


def test_public_budget_throttles_and_queues_without_waiting(fake_vt, tmp_path):
    w = Wired(fake_vt.url, tmp_path, key=PUBLIC, tier="public", per_minute=4, per_day=500,
              max_wait_seconds=0)
    results = values_of(w.resolve(SIX_DOMAINS))
    statuses = [results[d].status for d in SIX_DOMAINS]
    assert statuses.count("ok") == 4 and statuses.count("throttled") == 2
    assert fake_vt.total_calls == 4
    throttled = [d for d in SIX_DOMAINS if results[d].status == "throttled"]
    for d in throttled:
        assert results[d].error.startswith("[VTP-E020]")
        assert "next call is possible at" in results[d].error and " UTC" in results[d].error
        assert "queued" in results[d].error
    queued = {(item.kind, item.value) for item in w.queue.peek(10)}
    assert queued == {("domain", d) for d in throttled}
    assert w.limiter_sleep.delays == [] and w.client_sleep.delays == []
    assert w.enricher.stats.throttled == 2


def test_throttled_call_waits_at_most_max_wait(fake_vt, tmp_path):
    """max_wait_seconds=3 (the default): a minute slot frees in ~60 s, more than 3 s away,
    so nothing waits; then, one minute later on the injected clock, the queue's two
    indicators go through."""
    w = Wired(fake_vt.url, tmp_path, key=PUBLIC, tier="public", per_minute=4, per_day=500,
              max_wait_seconds=3)
    results = values_of(w.resolve(SIX_DOMAINS))
    assert sum(1 for r in results.values() if r.status == "throttled") == 2
    assert sum(w.limiter_sleep.delays) <= 3
    w.clock.advance(57.5)  # 2.5 s before the window frees: waiting is worth it
    fake_vt.advance_clock(60)
    later = values_of(w.resolve([i.value for i in w.queue.peek(10)]))
    assert [r.status for r in later.values()] == ["ok", "ok"]
    assert 0 < sum(w.limiter_sleep.delays) <= 3
    assert fake_vt.total_calls == 6


def _track_inflight(fake):
    """Wrap the fake server's latency step (every API request passes through it) to count
    requests in flight at once."""
    lock = threading.Lock()
    state = {"now": 0, "max": 0}
    original = fake._apply_latency

    def tracked(path):
        with lock:
            state["now"] += 1
            state["max"] = max(state["max"], state["now"])
        try:
            original(path)
        finally:
            with lock:
                state["now"] -= 1
    fake._apply_latency = tracked
    return state


def test_premium_misses_run_concurrently(fake_vt, tmp_path):
    fake_vt.set_latency(100)
    inflight = _track_inflight(fake_vt)
    w = Wired(fake_vt.url, tmp_path, tier="premium", concurrency=4)
    domains = SIX_DOMAINS + ["parked-02.example", "parked-03.example"]
    results = values_of(w.resolve(domains))
    assert all(results[d].status == "ok" for d in domains)
    assert fake_vt.total_calls == 8
    assert 2 <= inflight["max"] <= 4  # overlapping, and bounded by concurrency


def test_public_misses_run_one_at_a_time(fake_vt, tmp_path):
    fake_vt.set_latency(20)
    inflight = _track_inflight(fake_vt)
    w = Wired(fake_vt.url, tmp_path, key=PUBLIC, tier="public", concurrency=4, per_minute=4)
    w.resolve(SIX_DOMAINS[:4])
    assert fake_vt.total_calls == 4 and inflight["max"] == 1


def test_cache_only_enricher_makes_no_request(fake_vt, tmp_path):
    live = Wired(fake_vt.url, tmp_path, ttl_domain=600)
    live.resolve(["alpha.example"])
    assert fake_vt.total_calls == 1
    live.clock.advance(601)
    cached = Wired(fake_vt.url, tmp_path, live=False, clock=live.clock, ttl_domain=600)
    results = values_of(cached.resolve(["alpha.example", "beta.example"]))
    assert (results["alpha.example"].status, results["alpha.example"].cache) == ("ok", "stale")
    assert results["alpha.example"].error.startswith("[VTP-E080]")
    assert (results["beta.example"].status, results["beta.example"].cache) == \
        ("skipped", "miss")
    assert results["beta.example"].error.startswith("[VTP-E080]")
    assert [(i.kind, i.value) for i in cached.queue.peek(10)] == [("domain", "beta.example")]
    assert fake_vt.total_calls == 1 and cached.factory_calls == 0


def test_no_api_key_every_miss_is_e001_and_no_request(fake_vt, tmp_path):
    settings = validate(Settings(api_url=fake_vt.url, state_dir=str(tmp_path / "state")))
    enricher = build_enricher(settings, environ={})  # no VT_API_KEY, no SPLUNK_HOME
    results = values_of(enricher.resolve([classify(d, "domain", POLICY)
                                          for d in SIX_DOMAINS[:3]]))
    assert len(results) == 3
    for res in results.values():
        assert res.status == "error" and res.error.startswith("[VTP-E001]")
        assert "setup page" in res.error or "VT_API_KEY" in res.error
    assert fake_vt.total_calls == 0


def test_build_enricher_wires_a_working_enricher(fake_vt, tmp_path):
    settings = validate(Settings(api_url=fake_vt.url, state_dir=str(tmp_path / "state"),
                                 tier="premium", per_minute=0, per_day=0))
    enricher = build_enricher(settings, environ={"VT_API_KEY": PREMIUM})
    first = values_of(enricher.resolve([classify("alpha.example", "domain", POLICY)]))
    assert first["alpha.example"].status == "ok" and first["alpha.example"].cache == "miss"
    again = build_enricher(settings, environ={"VT_API_KEY": PREMIUM})
    second = values_of(again.resolve([classify("alpha.example", "domain", POLICY)]))
    assert second["alpha.example"].cache == "hit" and fake_vt.total_calls == 1


@pytest.mark.parametrize("fault, code", [("quota", "VTP-E023"), ("malformed", "VTP-E033"),
                                         ("drop", "VTP-E031")])
def test_failures_become_row_statuses(fake_vt, tmp_path, fault, code):
    w = Wired(fake_vt.url, tmp_path, max_retries=0)
    fake_vt.inject(fault, count=None)
    res = values_of(w.resolve(["alpha.example"]))["alpha.example"]
    assert res.error.startswith(f"[{code}]")
    assert res.status == ("throttled" if fault == "quota" else "error")
    if fault == "quota":
        assert [i.value for i in w.queue.peek(10)] == ["alpha.example"]
        # the breaker is open: the next miss does not leave
        before = fake_vt.total_calls
        nxt = values_of(w.resolve(["beta.example"]))["beta.example"]
        assert nxt.status == "throttled" and nxt.error.startswith("[VTP-E023]")
        assert fake_vt.total_calls == before


def test_one_file_named_three_ways_in_one_batch_is_one_request(fake_vt, tmp_path):
    w = Wired(fake_vt.url, tmp_path, key=PUBLIC, tier="public", per_minute=4, per_day=500)
    results = values_of(w.resolve([FILE["md5"], FILE["sha1"], FILE["sha256"]], kind="hash"))
    assert {r.record["id"] for r in results.values()} == {FILE["sha256"]}
    assert fake_vt.total_calls == 1


def test_debug_level_logs_one_answer_per_indicator_hits_included(fake_vt, tmp_path, caplog):
    import logging

    w = Wired(fake_vt.url, tmp_path, key=PREMIUM, tier="premium")
    w.resolve(["alpha.example", "beta.example"])
    with caplog.at_level(logging.DEBUG, logger="vtpivot"):
        w.resolve(["alpha.example", "ALPHA.example", "beta.example"])
    answers = [r for r in caplog.records if r.getMessage() == "vt_answer"]
    assert sorted((r.kv["indicator"], r.kv["cache"], r.kv["status"]) for r in answers) == [
        ("alpha.example", "hit", "ok"), ("beta.example", "hit", "ok")]
