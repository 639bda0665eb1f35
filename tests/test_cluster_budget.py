"""Search head clusters: one key's budget spent once by all members.

Members are separate processes running the real lookup entry point (bin/vt_lookup.py), each
with its own SPLUNK_HOME (its own disk, as on separate machines) and many distinct uncached
indicators. With `backend = redis` they share the object store, the rate limiter and the
queue through a real redis-server: the fake VirusTotal sees at most the per-minute budget
across all of them, and the rest is throttled and queued. Without a shared backend (sqlite:
Splunk Cloud has no Redis) each member spends a whole budget, unless `cluster_members`
divides it (cluster_budget.effective_budget).

The figure "calls per minute with N members" is the number of requests the fake server
received in the busiest 60 s window; it is printed (run pytest with -s to see it).
"""
import subprocess
import sys
import types

import pytest

from lookup_helpers import LOOKUP_SCRIPT, REPO, lookup_env, lookup_input, parse_output, \
    transforms_fields
from vtpivot_app import cluster_budget
from vtpivot_app.errors import ConfigError

BUDGET = 12           # calls per minute for the whole key
PER_MEMBER = 15       # distinct uncached indicators each member looks up


def member_env(tmp_path, name, vt, **extra):
    home = tmp_path / ("member-" + name)
    extra.setdefault("VTPIVOT_PER_DAY", 0)
    return lookup_env(home, vt.url, "test-premium-key", VTPIVOT_MAX_WAIT=0, **extra)


def run_members(envs_and_queries):
    """Start every member at once (one vt_lookup.py process each); their answers."""
    header = transforms_fields("vt_domain")
    procs = []
    for env, queries in envs_and_queries:
        proc = subprocess.Popen([sys.executable, LOOKUP_SCRIPT, "domain"],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, env=env, cwd=REPO)
        procs.append((proc, lookup_input(header, queries)))
    answers = []
    try:
        for proc, data in procs:
            out, err = proc.communicate(data, timeout=180)
            assert proc.returncode == 0, err.decode("utf-8", "replace")
            answers.append({r["query"]: r for r in parse_output(out)[1] if r["vt_status"]})
    finally:
        for proc, _ in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    return answers


def busiest_minute(vt):
    """Most requests the server received within any 60 s window."""
    times = sorted(r.time for r in vt.requests())
    best, start = 0, 0
    for end, at in enumerate(times):
        while at - times[start] >= 60:
            start += 1
        best = max(best, end - start + 1)
    return best


def queries_for(member):
    return ["m%s-%02d.example" % (member, i) for i in range(PER_MEMBER)]


def report(capsys, label, value):
    with capsys.disabled():
        print("\n[cluster budget] %s: %s" % (label, value))


# ---- Redis: one budget for the whole cluster ---------------------------------------------------
@pytest.mark.parametrize("members", [2, 4])
def test_redis_members_spend_one_budget(members, redis_url, fake_vt_factory, tmp_path, capsys):
    vt = fake_vt_factory()
    shared = dict(VTPIVOT_BACKEND="redis", VTPIVOT_REDIS_URL=redis_url,
                  VTPIVOT_PER_MINUTE=BUDGET)
    answers = run_members([(member_env(tmp_path, str(m), vt, **shared), queries_for(m))
                           for m in range(members)])
    statuses = [row["vt_status"] for answer in answers for row in answer.values()]
    assert len(statuses) == members * PER_MEMBER
    answered = sum(1 for s in statuses if s in ("ok", "not_found"))
    throttled = statuses.count("throttled")
    assert answered + throttled == len(statuses), set(statuses)
    # Demand (members * 15) is above the budget: exactly one budget is spent, in total.
    assert vt.total_calls == answered == BUDGET
    per_minute = busiest_minute(vt)
    assert per_minute <= BUDGET
    assert throttled == members * PER_MEMBER - BUDGET
    # The throttled rows wait in the one shared queue.
    from vtpivot_app.enrichment_queue import EnrichmentQueue
    from vtpivot_app.storage_backends import open_backend

    backend = open_backend("redis", redis_url=redis_url)
    try:
        assert EnrichmentQueue(backend).length() == throttled
    finally:
        backend.close()
    report(capsys, "calls per minute with %d member processes (redis, per_minute=%d, "
           "demand %d)" % (members, BUDGET, members * PER_MEMBER), per_minute)


def test_redis_object_store_is_shared(redis_url, fake_vt, tmp_path):
    shared = dict(VTPIVOT_BACKEND="redis", VTPIVOT_REDIS_URL=redis_url,
                  VTPIVOT_PER_MINUTE=BUDGET)
    (first,) = run_members([(member_env(tmp_path, "a", fake_vt, **shared), ["alpha.example"])])
    assert (first["alpha.example"]["vt_status"], first["alpha.example"]["vt_cache"]) == (
        "ok", "miss")
    (second,) = run_members([(member_env(tmp_path, "b", fake_vt, **shared),
                              ["alpha.example", "ALPHA.example."])])
    assert second["alpha.example"]["vt_cache"] == "hit"
    assert second["ALPHA.example."]["vt_cache"] == "hit"
    assert second["alpha.example"]["malicious"] == first["alpha.example"]["malicious"]
    assert fake_vt.calls("/domains/alpha.example") == 1
    assert fake_vt.total_calls == 1


# ---- sqlite (Splunk Cloud): each member alone, unless the budget is shared out -----------------
def test_sqlite_members_without_share_spend_a_budget_each(fake_vt_factory, tmp_path, capsys):
    vt = fake_vt_factory()
    members = 4
    answers = run_members([(member_env(tmp_path, str(m), vt, VTPIVOT_PER_MINUTE=BUDGET),
                            queries_for(m)) for m in range(members)])
    assert vt.total_calls == members * BUDGET                # the problem being solved
    assert sum(1 for a in answers for r in a.values() if r["vt_status"] == "throttled") == \
        members * (PER_MEMBER - BUDGET)
    report(capsys, "calls per minute with 4 member processes (sqlite, no share)",
           busiest_minute(vt))


def test_sqlite_members_with_budget_share_stay_within_the_key(fake_vt_factory, tmp_path,
                                                              capsys):
    vt = fake_vt_factory()
    members = 4
    settings = types.SimpleNamespace(per_minute=BUDGET, per_day=500, per_month=0,
                                     backend="sqlite", cluster_members=members)
    budget = cluster_budget.effective_budget(settings)
    assert (budget.per_minute, budget.per_day, budget.per_month) == (3, 125, 0)
    # What build_enricher does once it uses effective_budget: each member's limiter.
    answers = run_members([(member_env(tmp_path, str(m), vt,
                                       VTPIVOT_PER_MINUTE=budget.per_minute,
                                       VTPIVOT_PER_DAY=budget.per_day), queries_for(m))
                           for m in range(members)])
    assert vt.total_calls == members * budget.per_minute == BUDGET
    assert busiest_minute(vt) <= BUDGET
    assert sum(1 for a in answers for r in a.values() if r["vt_status"] == "throttled") == \
        members * PER_MEMBER - BUDGET
    report(capsys, "calls per minute with 4 member processes (sqlite, cluster_members=4)",
           busiest_minute(vt))


# ---- effective_budget ------------------------------------------------------------------------
def _settings(**values):
    base = dict(per_minute=4, per_day=500, per_month=0, backend="sqlite", cluster_members=1)
    base.update(values)
    return types.SimpleNamespace(**base)


@pytest.mark.parametrize("values,expected,over", [
    ({}, (4, 500, 0), False),                                          # standalone
    ({"cluster_members": 2}, (2, 250, 0), False),
    ({"cluster_members": 3, "per_month": 10000}, (1, 166, 3333), False),
    ({"cluster_members": 5}, (1, 100, 0), True),                        # 4/minute for 5
    ({"cluster_members": 4, "backend": "redis"}, (4, 500, 0), False),   # shared: no division
    ({"cluster_members": 4, "backend": "REDIS"}, (4, 500, 0), False),
    ({"cluster_members": 3, "per_minute": 0, "per_day": 0}, (0, 0, 0), False),  # 0 = no limit
    ({"cluster_members": "2"}, (2, 250, 0), False),
])
def test_effective_budget(values, expected, over):
    settings = _settings(**values)
    share = cluster_budget.share(settings)
    budget = cluster_budget.effective_budget(settings)
    assert (budget.per_minute, budget.per_day, budget.per_month) == expected
    assert share.oversubscribed is over
    # n members never spend more than the key, unless a limit is below n (flagged).
    members = share.members
    for limit, part in zip((settings.per_minute, settings.per_day, settings.per_month),
                           expected):
        if limit and not over:
            assert part * members <= limit
        assert (part == 0) == (limit == 0)
    assert share.describe()


def test_effective_budget_without_the_setting_and_bad_values():
    plain = types.SimpleNamespace(per_minute=4, per_day=500, per_month=0, backend="sqlite")
    assert cluster_budget.effective_budget(plain).per_minute == 4     # before settings know it
    for bad in (0, -1, 101, "two", 2.5):
        with pytest.raises(ConfigError):
            cluster_budget.effective_budget(_settings(cluster_members=bad))


def test_lookup_entry_point_uses_the_member_share(fake_vt_factory, tmp_path):
    """A member with cluster_members=2 and per_minute=4 spends 2 calls."""
    vt = fake_vt_factory()
    conf = tmp_path / "member.conf"
    conf.write_text("[limits]\nper_minute = 4\ncluster_members = 2\n", encoding="utf-8")
    env = member_env(tmp_path, "x", vt, VTPIVOT_CONF=str(conf))
    (answer,) = run_members([(env, queries_for("x")[:5])])
    assert vt.total_calls == 2
    assert sum(1 for r in answer.values() if r["vt_status"] == "throttled") == 3
