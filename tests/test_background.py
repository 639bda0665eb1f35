"""Background enrichment (`| vtpivotqueue`, bin/vtpivot_app/background.py), the quota panel,
the popular-domain skip list, and the conf stanzas that ship them.

The queue is filled the way production fills it: the real lookup entry point
(bin/vt_lookup.py) meets a spent budget and queues the throttled indicators."""
import configparser
import os

import pytest

from splunk_chunked import command_argv, run_command, searchinfo
from lookup_helpers import REPO, lookup_env, lookup_rows
from vtpivot_app import background, popular_domains
from vtpivot_app.indicators import IndicatorPolicy, classify

DOMAINS = ["alpha.example", "beta.example", "mail.alpha.example", "parked-01.example",
           "parked-02.example", "parked-03.example"]




def lookup(kind, queries, env, cached=False):
    """{query: first output row} (the first row is the one that carries vt_status)."""
    return {r["query"]: r for r in lookup_rows(kind, queries, env, cached=cached)
            if r["vt_status"]}


@pytest.fixture
def world(fake_vt, tmp_path, monkeypatch):
    """A SPLUNK_HOME, the fake VT, and an environment factory for a given budget."""
    home = tmp_path / "splunk"
    monkeypatch.setenv("SPLUNK_HOME", str(home))
    for name in list(os.environ):
        if name.startswith(("VT_", "VTPIVOT_")):
            monkeypatch.delenv(name)

    def env(per_minute, **extra):
        return lookup_env(home, fake_vt.url, "test-premium-key", VTPIVOT_PER_MINUTE=per_minute,
                          VTPIVOT_MAX_WAIT=0, **extra)
    env.vt = fake_vt
    env.home = home
    return env


def fill_queue(world, per_minute=2):
    rows = lookup("domain", DOMAINS, world(per_minute))
    statuses = [rows[d]["vt_status"] for d in DOMAINS]
    assert statuses.count("throttled") == len(DOMAINS) - per_minute, statuses
    assert world.vt.total_calls == per_minute
    return [d for d in DOMAINS if rows[d]["vt_status"] == "throttled"]


def drain(world, per_minute, max_calls):
    return background.run("drain", environ=world(per_minute), max_calls=max_calls)


def summary(rows):
    assert rows[-1]["outcome"] == "summary"
    assert all(set(r) == set(background.DRAIN_FIELDS) for r in rows)
    return rows[-1]


# ---- drain ------------------------------------------------------------------------------------
def test_drain_within_max_calls_then_stops_at_throttled_then_lookups_hit(world):
    queued = fill_queue(world, per_minute=2)               # 4 queued, 2 calls spent
    status = background.run("status", environ=world(2))[0]
    assert status["queue_length"] == 4
    assert status["calls_left_minute"] == 0 and status["calls_used_minute"] == 2

    # Budget 5/minute (3 left): max_calls=2 bounds the run.
    rows = drain(world, per_minute=5, max_calls=2)
    done = [r for r in rows if r["outcome"] == "enriched"]
    assert len(done) == 2 and summary(rows)["calls_made"] == 2
    assert summary(rows)["queue_length"] == 2
    assert "max_calls reached" in summary(rows)["detail"]
    assert world.vt.total_calls == 4
    assert {r["indicator"] for r in done} <= set(queued)

    # Budget 4/minute, 4 used in the last 60 s: the first item is throttled, the run stops,
    # nothing is lost and no request leaves.
    rows = drain(world, per_minute=4, max_calls=3)
    assert [r["outcome"] for r in rows] == ["throttled", "summary"]
    assert rows[0]["vt_error"].startswith("[VTP-E020]")
    assert summary(rows)["calls_made"] == 0 and summary(rows)["queue_length"] == 2
    assert world.vt.total_calls == 4
    listed = background.run("list", environ=world(4))
    assert len(listed) == 2 and all(r["state"] == "waiting" for r in listed)

    # Enough budget: the queue empties.
    rows = drain(world, per_minute=50, max_calls=10)
    assert [r["outcome"] for r in rows[:-1]] == ["enriched", "enriched"]
    assert summary(rows)["queue_length"] == 0 and "queue empty" in summary(rows)["detail"]
    assert world.vt.total_calls == 6

    # Every drained indicator is now a cache hit for the lookups: no new call.
    rows = lookup("domain", DOMAINS, world(50))
    assert {rows[d]["vt_cache"] for d in DOMAINS} == {"hit"}
    assert {rows[d]["vt_status"] for d in DOMAINS} == {"ok"}
    assert world.vt.total_calls == 6
    assert background.run("status", environ=world(50))[0]["queue_length"] == 0


def test_drain_acks_items_already_cached_without_a_call(world):
    fill_queue(world, per_minute=2)
    # A later search enriched two of them meanwhile (cache warm, queue unchanged).
    queued = [r["indicator"] for r in background.run("list", environ=world(50))]
    lookup("domain", queued[:2], world(50))
    calls = world.vt.total_calls
    rows = drain(world, per_minute=50, max_calls=2)
    outcomes = {r["indicator"]: r["outcome"] for r in rows[:-1]}
    assert outcomes[queued[0]] == outcomes[queued[1]] == "already_cached"
    assert sum(1 for o in outcomes.values() if o == "enriched") == 2
    assert world.vt.total_calls == calls + 2               # the cached ones cost nothing


def test_drain_handles_failures_without_losing_items(world):
    fill_queue(world, per_minute=2)
    world.vt.inject("transient", count=1)                  # one 503 (no retries in a drain)
    rows = drain(world, per_minute=50, max_calls=4)
    outcomes = [r["outcome"] for r in rows[:-1]]
    assert outcomes.count("retry_later") == 1 and outcomes.count("enriched") == 3
    assert summary(rows)["calls_made"] == 4
    assert summary(rows)["queue_length"] == 1              # back, visible later
    listed = background.run("list", environ=world(50))
    assert listed[0]["state"] == "claimed"                 # not visible for RETRY_DELAY
    assert drain(world, per_minute=50, max_calls=4)[-1]["calls_made"] == 0


def test_drain_stops_on_a_bad_key_and_keeps_the_queue(world):
    fill_queue(world, per_minute=2)
    bad = world(50)
    bad["VT_API_KEY"] = "revoked-key-0000"
    rows = background.run("drain", environ=bad, max_calls=3)
    assert rows[0]["outcome"] == "stopped" and rows[0]["vt_error"].startswith("[VTP-E010]")
    assert summary(rows)["queue_length"] == 4 and summary(rows)["calls_made"] == 1


def test_drain_drops_what_may_no_longer_be_sent(world, tmp_path):
    fill_queue(world, per_minute=2)
    conf = tmp_path / "never.conf"
    conf.write_text("[indicators]\nnever_send_domains = *.example\n", encoding="utf-8")
    rows = background.run("drain", environ=world(50, VTPIVOT_CONF=str(conf)), max_calls=3)
    assert [r["outcome"] for r in rows[:-1]] == ["dropped"] * 4
    assert summary(rows)["calls_made"] == 0 and summary(rows)["queue_length"] == 0


def test_drain_needs_a_key(world):
    fill_queue(world, per_minute=2)
    env = world(50)
    del env["VT_API_KEY"]
    with pytest.raises(Exception) as info:
        background.run("drain", environ=env, max_calls=3)
    assert "VTP-E001" in str(info.value)
    # status and list need no key.
    assert background.run("status", environ=env)[0]["queue_length"] == 4


def test_status_reports_circuit_and_unlimited_windows(world):
    fill_queue(world, per_minute=2)
    settings, _, environ = background.connect(environ=world(2))
    enricher = background.build(settings, environ=environ)
    enricher.limiter.open_circuit(enricher.limiter.clock() + 600, "QuotaExceededError test")
    row = background.status(enricher, settings)
    assert set(row) == set(background.STATUS_FIELDS)
    assert row["circuit"] == "open" and "QuotaExceededError" in row["circuit_reason"]
    assert row["calls_left_month"] == "unlimited" and row["per_month"] == 0
    assert row["calls_left_day"] == settings.per_day - 2
    assert row["oldest_age_seconds"] >= 0 and row["queue_length"] == 4
    rows = background.run("drain", environ=world(50), max_calls=3)
    assert rows[-1]["calls_made"] == 0 and "VTP-E023" in rows[-1]["detail"]
    assert world.vt.total_calls == 2


# ---- the command, as splunkd runs it ----------------------------------------------------------------
def command_env(world, per_minute, key=True):
    env = world(per_minute)
    env["PYTHONPATH"] = ""
    if not key:
        del env["VT_API_KEY"]
    return env


@pytest.mark.parametrize("key", [True, False])
def test_command_status_through_the_chunked_protocol(world, key):
    fill_queue(world, per_minute=2)
    answer = run_command(command_argv("vtpivotqueue.py"), searchinfo(["action=status"]), [[]],
                         env=command_env(world, 2, key=key))
    assert answer.getinfo.get("generating") is True
    assert answer.getinfo.get("type") == "reporting", answer.getinfo
    assert not answer.errors(), (answer.errors(), answer.stderr[-2000:])
    (row,) = answer.records
    assert row["queue_length"] == "4" and row["calls_left_minute"] == "0"
    assert row["circuit"] == "closed"


def test_command_drain_and_list_through_the_chunked_protocol(world):
    fill_queue(world, per_minute=2)
    answer = run_command(command_argv("vtpivotqueue.py"),
                         searchinfo(["action=drain", "max_calls=3"]), [[]],
                         env=command_env(world, 50))
    assert not answer.errors(), (answer.errors(), answer.stderr[-2000:])
    outcomes = [r["outcome"] for r in answer.records]
    assert outcomes == ["enriched"] * 3 + ["summary"]
    assert world.vt.total_calls == 5
    answer = run_command(command_argv("vtpivotqueue.py"), searchinfo(["action=list"]), [[]],
                         env=command_env(world, 50))
    assert [r["kind"] for r in answer.records] == ["domain"]


@pytest.mark.parametrize("args,words", [
    (["action=explode"], "action"),
    (["max_calls=-1"], "max_calls"),
    (["record=t"], "record"),
])
def test_command_refuses_bad_options(world, args, words):
    answer = run_command(command_argv("vtpivotqueue.py"), searchinfo(args), [[]],
                         env=command_env(world, 50))
    assert any(words in e for e in answer.errors()), (answer.errors(), answer.stderr[-1500:])
    assert not answer.records


def test_command_without_key_outside_splunk_says_how_to_fix(world):
    answer = run_command(command_argv("vtpivotqueue.py"), searchinfo(["action=drain"]), [[]],
                         env=command_env(world, 50, key=False))
    assert any("VTP-E002" in e or "VTP-E001" in e for e in answer.errors()), answer.errors()


# ---- shipped conf ------------------------------------------------------------------------------
def _conf(name):
    """A .conf file as Splunk reads it: a trailing backslash continues the value."""
    with open(os.path.join(REPO, "default", name), encoding="utf-8") as handle:
        text = handle.read().replace("\\\n", "\n ")
    parser = configparser.RawConfigParser(strict=False, interpolation=None)
    parser.optionxform = str
    parser.read_string(text)
    return parser


def test_commands_searchbnf_and_saved_search_stanzas():
    commands = _conf("commands.conf")
    assert dict(commands.items("vtpivotqueue")) == {
        "filename": "vtpivotqueue.py", "chunked": "true", "python.version": "python3",
        "python.required": "3.9, 3.13"}
    assert commands.has_section("vtpivot")           # the other stanza is untouched
    bnf = _conf("searchbnf.conf")
    assert bnf.get("vtpivotqueue-command", "syntax").startswith("vtpivotqueue ")
    assert bnf.has_section("vtpivot-command")
    saved = dict(_conf("savedsearches.conf").items("vtpivot - Drain enrichment queue"))
    assert saved["search"] == "| vtpivotqueue action=drain max_calls=3"
    assert saved["cron_schedule"] == "*/5 * * * *"
    assert saved["enableSched"] == "1" and saved["disabled"] == "1"
    with open(os.path.join(REPO, "bin", "vtpivotqueue.py"), encoding="utf-8") as handle:
        source = handle.read()
    assert source.index("import vtpivot_bootstrap") < source.index("from splunklib")
    assert "##Syntax" in source and "##Example" in source


# ---- popular domains --------------------------------------------------------------------------
def test_shipped_popular_list():
    path = os.path.join(REPO, popular_domains.POPULAR_FILE)
    with open(path, encoding="utf-8") as handle:
        lines = handle.read().splitlines()
    assert lines[0] == "domain"
    names = lines[1:]
    assert 200 <= len(names) <= 1000 and len(set(names)) == len(names)
    for name in names:
        indicator = classify(name, "domain")
        assert indicator.status == "ok" and indicator.value == name, name
    # Platforms whose subdomains belong to their customers are never listed.
    for platform in ("blogspot.com", "github.io", "herokuapp.com", "azurewebsites.net",
                     "cloudfront.net", "amazonaws.com", "firebaseapp.com", "netlify.app",
                     "pages.dev", "workers.dev", "duckdns.org", "ngrok.io", "appspot.com",
                     "googleusercontent.com", "githubusercontent.com", "myshopify.com"):
        assert platform not in names


def test_is_popular_subdomains_and_lookalikes():
    root = REPO
    assert popular_domains.is_popular("google.com", root)
    assert popular_domains.is_popular("mail.google.com", root)
    assert popular_domains.is_popular("a.b.c.microsoft.com", root)
    for name in ("google.com.evil.example", "notgoogle.com", "goog1e.com", "com", "",
                 "evil-microsoft.com", "microsoft.com-login.example"):
        assert not popular_domains.is_popular(name, root), name


def test_popular_file_is_cached_and_reloaded(tmp_path):
    (tmp_path / "lookups").mkdir()
    path = tmp_path / "lookups" / "vtpivot_popular_domains.csv"
    assert not popular_domains.is_popular("acme.test", str(tmp_path))      # no file
    path.write_text("\ufeffrank,domain\r\n1,Acme.TEST\r\n# comment\r\n2,*.wild.test\r\n\r\n",
                    encoding="utf-8")
    assert popular_domains.is_popular("www.acme.test", str(tmp_path))
    assert popular_domains.is_popular("x.wild.test", str(tmp_path))
    first = popular_domains.popular_set(str(tmp_path))
    assert popular_domains.popular_set(str(tmp_path)) is first          # cached
    path.write_text("domain\nother.test\n", encoding="utf-8")
    os.utime(str(path), ns=(1, 1))                                       # a new version
    assert not popular_domains.is_popular("acme.test", str(tmp_path))
    assert popular_domains.is_popular("other.test", str(tmp_path))


def test_policy_skips_popular_domains_only_when_enabled():
    import types

    on = types.SimpleNamespace(never_send_domains="", api_url="https://x.test/api/v3",
                               skip_popular_domains=True)
    off = types.SimpleNamespace(never_send_domains="", api_url="https://x.test/api/v3",
                                skip_popular_domains=False)
    policy = IndicatorPolicy.from_settings(on, app_root=REPO)
    result = classify("https://Docs.Google.com/forms/x", "domain", policy)
    assert (result.status, result.reason, result.value) == (
        "skipped", "popular domain (skip list)", "docs.google.com")
    assert classify("evil.example.org.ru", "domain", policy).status == "ok"
    assert classify("8.8.8.8", None, policy).status == "ok"                 # domains only
    assert classify("docs.google.com", "domain",
                    IndicatorPolicy.from_settings(off, app_root=REPO)).status == "ok"
    assert classify("docs.google.com", "domain").status == "ok"             # default policy
    # never-send still wins, with its own reason.
    both = IndicatorPolicy(["*.google.com"], popular=lambda name: True)
    assert "never-send" in classify("mail.google.com", "domain", both).reason


def test_lookup_skips_popular_domains_without_a_call(world, tmp_path):
    conf = tmp_path / "popular.conf"
    conf.write_text("[indicators]\nskip_popular_domains = true\n", encoding="utf-8")
    rows = lookup("domain", ["www.google.com", "alpha.example"],
                  world(50, VTPIVOT_CONF=str(conf)))
    assert rows["www.google.com"]["vt_status"] == "skipped"
    assert "popular domain (skip list)" in rows["www.google.com"]["vt_error"]
    assert rows["alpha.example"]["vt_status"] == "ok"
    assert world.vt.calls("/domains/www.google.com") == 0
    assert world.vt.total_calls == 1
