"""The cache of summarized VirusTotal objects, over every storage backend."""
import logging
import os
import stat
import time

import pytest

from lookup_helpers import FakeClock
from vtpivot_app.object_store import NS_OBJECT, CachedObject, ObjectStore
from vtpivot_app.storage_backends import open_backend

T0 = 1_796_400_000.0  # 2026-12-04 (UTC)
TTL = {"domain": 3600, "ip": 3600, "file": 7200}
MD5, SHA1, SHA256 = "d41d8cd98f00b204e9800998ecf8427e", \
    "da39a3ee5e6b4b0d3255bfef95601890afd80709", \
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


@pytest.fixture
def clock():
    return FakeClock(T0)


@pytest.fixture
def store(state_backend, clock):
    return ObjectStore(state_backend, ttl_seconds=TTL, not_found_ttl=600, stale_max_age=86400,
                       clock=clock)


def record(name, size=0):
    return {"kind": "domain", "id": name,
            "fields": {"malicious": 3, "tags": ["phishing"], "pad": "x" * size},
            "relationships": {"resolutions": [{"id": "1.2.3.4", "kind": "ip"}]}}


def test_miss_then_hit(store):
    assert store.get("domain", "example.com") is None
    assert store.get_many("domain", ["example.com"]) == {}
    entry = store.put("domain", "example.com", record("example.com"))
    hit = store.get("domain", "example.com")
    assert hit == entry
    assert (hit.kind, hit.id, hit.status, hit.record) == (
        "domain", "example.com", "ok", record("example.com"))
    assert (hit.fetched_at, hit.expires_at) == (T0, T0 + 3600)
    assert hit.is_fresh(T0 + 1)
    assert store.get("ip", "example.com") is None  # kinds are separate


def test_keys_are_case_insensitive_and_echoed(store):
    store.put("domain", "example.com", record("example.com"))
    got = store.get_many("domain", ["EXAMPLE.com", "example.com", "other.example"])
    assert set(got) == {"EXAMPLE.com", "example.com"}
    assert got["EXAMPLE.com"] is got["example.com"]


def test_expiry_with_injected_clock(store, clock):
    store.put("domain", "example.com", record("example.com"))
    clock.now = T0 + 3599
    assert store.get("domain", "example.com").is_fresh(clock.now)
    clock.now = T0 + 3600
    stale = store.get("domain", "example.com")
    assert stale is not None and not stale.is_fresh(clock.now)  # returned, flagged stale
    assert stale.record == record("example.com")
    clock.now = T0 + 3600 + 86400 - 1  # still within stale_max_age past expiry
    assert store.get("domain", "example.com") is not None
    clock.now = T0 + 3600 + 86400  # older than stale_max_age: gone
    assert store.get("domain", "example.com") is None


def test_not_found_has_its_shorter_ttl(store, clock):
    nf = store.put_not_found("domain", "nx.example")
    assert (nf.status, nf.record, nf.expires_at) == ("not_found", None, T0 + 600)
    clock.now = T0 + 601
    entry = store.get("domain", "nx.example")
    assert entry.status == "not_found" and not entry.is_fresh(clock.now)
    store.put("domain", "ok.example", record("ok.example"))
    assert store.get("domain", "ok.example").is_fresh(clock.now)


def test_zero_stale_max_age(state_backend, clock):
    store = ObjectStore(state_backend, ttl_seconds=TTL, not_found_ttl=600, stale_max_age=0,
                        clock=clock)
    store.put("ip", "8.8.8.8", {"fields": {}})
    clock.now = T0 + 3600
    assert store.get("ip", "8.8.8.8") is None


def test_default_ttls(state_backend):
    store = ObjectStore(state_backend)
    entry = store.put("file", SHA256, {"fields": {}})
    assert entry.expires_at - entry.fetched_at == 7 * 86400
    assert entry.is_fresh()


def test_hash_aliases_point_at_one_entry(store):
    store.put("file", SHA256, {"fields": {"sha256": SHA256}}, aliases=(MD5, SHA1, SHA256))
    by = {h: store.get("file", h) for h in (MD5, SHA1, SHA256, MD5.upper())}
    assert all(entry is not None and entry.id == SHA256 for entry in by.values())
    got = store.get_many("hash", [MD5, SHA1, SHA256, "0" * 64])  # "hash" is the file kind
    assert set(got) == {MD5, SHA1, SHA256}
    assert {e.id for e in got.values()} == {SHA256}
    # Re-fetched: the one entry changes, every alias sees it.
    store.put("file", SHA256, {"fields": {"sha256": SHA256, "v": 2}}, aliases=(MD5, SHA1))
    assert store.get("file", MD5).record["fields"]["v"] == 2


def test_alias_replaces_an_earlier_not_found(store):
    store.put_not_found("file", MD5)  # looked up by md5 before VT knew it
    assert store.get("file", MD5).status == "not_found"
    store.put("file", SHA256, {"fields": {}}, aliases=(MD5, SHA1))
    entry = store.get("file", MD5)
    assert (entry.status, entry.id) == ("ok", SHA256)


def test_unicode_and_huge_values(store):
    rec = {"fields": {"names": ["r\u00e9sum\u00e9.exe", "\u6f22\u5b57.dll", "\U0001f600",
                                "lone \udc80 surrogate"],
                      "blob": "\u00e9" * 500_000, "nested": {"a": [1, 2.5, None, True]}}}
    store.put("file", SHA256, rec)
    assert store.get("file", SHA256).record == rec


def test_values_are_compact_json(store, state_backend):
    store.put("domain", "example.com", {"fields": {"a": 1, "b": [1, 2]}})
    raw = state_backend.get_many(NS_OBJECT, ["domain:example.com"])["domain:example.com"]
    assert ", " not in raw and ": " not in raw


def test_corrupted_row_is_a_logged_miss(store, state_backend, caplog):
    store.put("domain", "good.example", record("good.example"))
    state_backend.put_many(NS_OBJECT, {"domain:bad.example": "{not json",
                                       "domain:odd.example": '{"i":"x","s":"weird","f":1,'
                                                             '"e":2,"r":null}',
                                       "domain:list.example": "[1,2]"}, ttl=600)
    with caplog.at_level(logging.WARNING, logger="vtpivot.object_store"):
        got = store.get_many("domain", ["bad.example", "good.example", "odd.example",
                                        "list.example"])
    assert set(got) == {"good.example"}
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 1 and "cache_entry_unreadable count=3" in messages[0]
    store.put("domain", "bad.example", record("bad.example"))  # the next fetch rewrites it
    assert store.get("domain", "bad.example").record == record("bad.example")


@pytest.mark.parametrize("kind", ["sqlite", "file"])
def test_state_dir_created_private(tmp_path, kind):
    state = tmp_path / "splunk" / "var" / "lib" / "vtpivot"
    store = ObjectStore(open_backend(kind, str(state)))
    assert store.get("domain", "example.com") is None
    store.put("domain", "example.com", record("example.com"))
    assert stat.S_IMODE(os.stat(state).st_mode) == 0o700
    assert store.get("domain", "example.com").record == record("example.com")


def test_put_validates(store):
    with pytest.raises(ValueError):
        store.put("url", "http://x", {})
    with pytest.raises(ValueError):
        store.put("domain", "example.com", {}, status="error")
    with pytest.raises(TypeError):
        store.put("domain", "example.com", ["not", "a", "dict"])


def test_is_fresh_defaults_to_wall_clock():
    now = time.time()
    assert CachedObject("ip", "1.1.1.1", {}, "ok", now, now + 60).is_fresh()
    assert not CachedObject("ip", "1.1.1.1", {}, "ok", now - 120, now - 60).is_fresh()


def test_get_many_10000_keys(state_backend):
    """10,000 cached ~2 KB records in one get_many, 100 absent keys among them (the speed
    of this is measured by bench/bench_state.py, not here)."""
    store = ObjectStore(state_backend, ttl_seconds=TTL)
    names = ["host%05d.example.com" % i for i in range(10_000)]
    for name in names:
        store.put("domain", name, record(name, size=1800))
    wanted = names + ["absent%d.example" % i for i in range(100)]
    got = store.get_many("domain", wanted)
    assert sorted(got) == sorted(names)
    assert all(got[n].id == n and got[n].is_fresh() and got[n].record == record(n, size=1800)
               for n in names)


def test_rows_are_read_exactly_as_json_loads_reads_them(store, state_backend, clock):
    """_decode_rows calls json's C scanner directly; every text it does not take whole
    (surrounding space, BOM, trailing data, bad JSON) must end as json.loads says."""
    def good(name):
        return '{"i":"%s","s":"ok","f":%r,"e":%r,"r":{"id":"%s"}}' % (name, T0, T0 + 60, name)

    texts = {"plain": good("plain"), "spaced": " \n" + good("spaced") + " \t",
             "bom": "\ufeff" + good("bom"), "trailing": good("trailing") + "x",
             "two": good("two") * 2, "truncated": good("truncated")[:-1],
             "pretty": good("pretty").replace(",", ", ").replace(":", ": ")}
    rows = {"domain:%s.example" % name: text for name, text in texts.items()}
    state_backend.put_many(NS_OBJECT, rows, ttl=600)
    got = store.get_many("domain", ["%s.example" % name for name in texts])
    assert sorted(got) == ["plain.example", "pretty.example", "spaced.example"]
    assert got["spaced.example"].record == {"id": "spaced"}
    assert got["pretty.example"].expires_at == T0 + 60


def test_an_entry_reads_in_0_1_0_as_its_own(store, state_backend, clock):
    """Cluster members of both versions share one cache: 0.1.0's reader (json.loads, then
    the keys i, s, f, e, r) finds its entry in what this version writes, and this version
    reads 0.1.0's entries (their lookup view rebuilt from the record)."""
    import json

    rec = record("mixed.example")
    store.put("domain", "mixed.example", rec)
    raw = state_backend.get_many(NS_OBJECT, ["domain:mixed.example"])["domain:mixed.example"]
    doc = json.loads(raw)
    assert (doc["i"], doc["s"], doc["f"], doc["e"], doc["r"]) == (
        "mixed.example", "ok", T0, T0 + 3600, rec)
    old = json.dumps({"i": "old.example", "s": "ok", "f": T0, "e": T0 + 60,
                      "r": record("old.example")}, separators=(",", ":"))
    state_backend.put_many(NS_OBJECT, {"domain:old.example": old}, ttl=600)
    got = store.get_many("domain", ["old.example", "mixed.example"], need_record=False)
    assert got["old.example"].record == record("old.example")
    assert got["old.example"].view is None  # printed from the record
    assert got["mixed.example"].view is not None and got["mixed.example"].record == rec


def test_a_head_without_its_record_is_a_logged_miss(store, state_backend, caplog):
    store.put("domain", "cut.example", record("cut.example"))
    raw = state_backend.get_many(NS_OBJECT, ["domain:cut.example"])["domain:cut.example"]
    state_backend.put_many(NS_OBJECT, {"domain:cut.example": raw[:raw.index(',"r":')],
                                       "domain:half.example": raw[:20]}, ttl=600)
    with caplog.at_level(logging.WARNING, logger="vtpivot.object_store"):
        got = store.get_many("domain", ["cut.example", "half.example"], need_record=False)
    assert got == {}
    assert "cache_entry_unreadable count=2" in caplog.records[0].getMessage()
