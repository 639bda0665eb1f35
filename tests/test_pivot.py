"""Unit tests of the walk (bin/vtpivot_app/pivot.py) with a fake enricher, store, limiter
and client: order, memo, cycles, limits, budgets, throttling. No network, no splunklib."""
import pytest

from vtpivot_app.enrichment import Resolution
from vtpivot_app.errors import AuthError, Forbidden
from vtpivot_app.indicators import IndicatorPolicy
from vtpivot_app.object_store import CachedObject
from vtpivot_app.pivot import OUTPUT_FIELDS, FatalPivotError, PivotOptions, PivotWalker
from vtpivot_app.quota import Throttled
from vtpivot_app.vt_client import RelationshipPage
from vtpivot_app.vt_objects import OBJECT_RELATIONSHIPS

FILE_A = "a" * 64
FILE_B = "b" * 64
# The fake data uses documentation names and addresses (.example, 192.0.2.0/24), which the
# app sends only to a VirusTotal on this machine.
DOC_POLICY = IndicatorPolicy(allow_documentation=True)
VT_TYPE = {"domain": "domain", "ip": "ip_address", "file": "file"}


class Graph:
    """A tiny VirusTotal: objects (kind, id) -> fields, and ordered relationships."""

    def __init__(self):
        self.fields = {}
        self.related = {}   # (kind, id, rel) -> [(kind, id, date)]

    def add(self, kind, oid, **fields):
        self.fields[(kind, oid)] = dict({"malicious": 0, "suspicious": 0}, **fields)
        return self

    def resolve(self, domain, ip, date):
        self.related.setdefault(("domain", domain, "resolutions"), []).append(("ip", ip, date))
        self.related.setdefault(("ip", ip, "resolutions"), []).append(("domain", domain, date))
        return self

    def link(self, kind, oid, rel, kind2, oid2):
        self.related.setdefault((kind, oid, rel), []).append((kind2, oid2, None))
        return self

    def record(self, kind, oid):
        rels, cursors = {}, {}
        for rel in OBJECT_RELATIONSHIPS[kind]:
            items = self.related.get((kind, oid, rel), [])
            rels[rel] = [{"id": i, "kind": k} for k, i, _ in items[:10]]
            cursors[rel] = "next" if len(items) > 10 else None
        return {"kind": kind, "id": oid, "fields": dict(self.fields[(kind, oid)]),
                "relationships": rels, "relationship_cursors": cursors}

    def page_items(self, kind, oid, rel, limit, full):
        out = []
        for k, i, date in self.related.get((kind, oid, rel), [])[:limit]:
            if rel == "resolutions" and full:
                domain, ip = (oid, i) if kind == "domain" else (i, oid)
                out.append({"type": "resolution", "id": ip + domain, "attributes": {
                    "date": date, "host_name": domain, "ip_address": ip,
                    "host_name_last_analysis_stats": self._stats("domain", domain),
                    "ip_address_last_analysis_stats": self._stats("ip", ip)}})
            else:
                out.append({"type": VT_TYPE[k], "id": i})
        return out

    def _stats(self, kind, oid):
        f = self.fields.get((kind, oid), {})
        return {"malicious": f.get("malicious", 0), "suspicious": f.get("suspicious", 0),
                "harmless": 50, "undetected": 10}


class FakeStore:
    def __init__(self):
        self.entries = {}

    def put(self, kind, oid, record, status="ok", fresh=True):
        kind = {"hash": "file"}.get(kind, kind)
        self.entries[(kind, oid)] = CachedObject(kind, oid, record, status, 0.0,
                                                 1e12 if fresh else 1.0)

    def get_many(self, kind, keys):
        kind = {"hash": "file"}.get(kind, kind)
        return {k: self.entries[(kind, k)] for k in keys if (kind, k) in self.entries}


class FakeLimiter:
    def __init__(self, tokens=None):
        self.tokens = tokens  # None: unlimited

    def take(self):
        if self.tokens is None:
            return
        if self.tokens <= 0:
            raise Throttled("VirusTotal budget spent: 0/3 calls today (UTC)", 2e9, "day")
        self.tokens -= 1

    def estimate(self, needed):
        if self.tokens is None:
            return needed, "budget ok"
        return min(needed, self.tokens), f"budget is short: {needed} calls needed"

    def remaining(self):
        return {"minute": None, "day": self.tokens, "month": None, "circuit_open_until": None}


class FakeClient:
    def __init__(self, graph, limiter, calls, errors):
        self.graph, self.limiter, self.calls, self.errors = graph, limiter, calls, errors
        self.http_cache = set()

    def get_relationship(self, kind, oid, rel, limit=10, cursor=None, descriptors_only=False):
        key = (kind, oid, rel, limit, descriptors_only)
        if key in self.http_cache:
            return RelationshipPage(items=self.graph.page_items(kind, oid, rel, limit,
                                                                not descriptors_only),
                                    from_cache=True)
        if (kind, oid, rel) in self.errors:
            raise self.errors[(kind, oid, rel)]
        self.limiter.take()
        self.calls.append(("page", kind, oid, rel, limit, descriptors_only))
        self.http_cache.add(key)
        return RelationshipPage(items=self.graph.page_items(kind, oid, rel, limit,
                                                            not descriptors_only))


class FakeEnricher:
    """Enricher.resolve's contract over the Graph: store first, then one object call."""

    def __init__(self, graph, tokens=None, errors=None):
        self.graph = graph
        self.store = FakeStore()
        self.limiter = FakeLimiter(tokens)
        self.queue = FakeQueue()
        self.calls = []
        self._client = FakeClient(graph, self.limiter, self.calls, errors or {})
        self.object_errors = {}

    def client(self):
        return self._client

    def resolve(self, indicators):
        out = {}
        for ind in indicators:
            kind = {"hash": "file"}.get(ind.kind, ind.kind)
            entry = self.store.get_many(kind, [ind.value]).get(ind.value)
            if entry is not None and entry.is_fresh(0.0):
                out[(ind.kind, ind.value)] = Resolution("ok", "hit", entry.record)
                continue
            if (kind, ind.value) in self.object_errors:
                exc = self.object_errors[(kind, ind.value)]
                out[(ind.kind, ind.value)] = Resolution("error", "miss", None, str(exc))
                continue
            try:
                self.limiter.take()
            except Throttled as exc:
                out[(ind.kind, ind.value)] = Resolution("throttled", "miss", None, str(exc))
                continue
            self.calls.append(("object", kind, ind.value))
            if (kind, ind.value) not in self.graph.fields:
                out[(ind.kind, ind.value)] = Resolution(
                    "not_found", "miss", None, "[VTP-E013] VirusTotal has no such object")
                continue
            record = self.graph.record(kind, ind.value)
            self.store.put(kind, ind.value, record)
            out[(ind.kind, ind.value)] = Resolution("ok", "miss", record)
        return out


class FakeQueue:
    def __init__(self):
        self.items = []

    def push(self, kind, value, reason=""):
        self.items.append((kind, value, reason))
        return True


def scenario():
    """seed.example -> 192.0.2.1, 192.0.2.2; 192.0.2.1 -> seed.example (cycle),
    other.example; seed.example <- FILE_A, which contacts 192.0.2.2 and third.example."""
    g = Graph()
    g.add("domain", "seed.example", malicious=5, registrar="Bad Registrar")
    g.add("domain", "other.example", malicious=1, creation_date=1600000000)
    g.add("domain", "third.example")
    g.add("ip", "192.0.2.1", malicious=3, asn=64500, as_owner="Hosting A", country="NL")
    g.add("ip", "192.0.2.2", asn=64501, as_owner="Hosting B", country="DE")
    g.add("file", FILE_A, malicious=40, popular_threat_label="trojan.x/y",
          type_description="Win32 EXE")
    g.resolve("seed.example", "192.0.2.1", 1700000300)
    g.resolve("seed.example", "192.0.2.2", 1700000200)
    g.resolve("other.example", "192.0.2.1", 1700000100)
    g.link("domain", "seed.example", "communicating_files", "file", FILE_A)
    g.link("ip", "192.0.2.1", "communicating_files", "file", FILE_A)
    g.link("file", FILE_A, "contacted_domains", "domain", "seed.example")
    g.link("file", FILE_A, "contacted_domains", "domain", "third.example")
    g.link("file", FILE_A, "contacted_ips", "ip", "192.0.2.2")
    return g


def walker(graph=None, tokens=None, warnings=None, errors=None, **options):
    enricher = FakeEnricher(graph or scenario(), tokens=tokens, errors=errors)
    w = PivotWalker(enricher, PivotOptions(**options), policy=DOC_POLICY,
                    warn=(warnings.append if warnings is not None else None))
    return w, enricher


def edges(rows):
    return [(r["src"], r["relationship"], r["dst"], r["hop"]) for r in rows
            if r["dst"]]


# ---- shape -------------------------------------------------------------------------------

def test_every_record_has_every_field_in_the_same_order():
    w, _ = walker(depth=2)
    rows = w.pivot("seed.example") + w.pivot("not a domain!") + w.pivot("10.0.0.1")
    assert len(rows) > 5
    for row in rows:
        assert tuple(row) == OUTPUT_FIELDS


def test_depth1_from_a_domain_costs_one_object_call_and_one_resolutions_page():
    w, enr = walker()
    rows = w.pivot("Seed.Example")
    assert edges(rows) == [
        ("seed.example", "resolutions", "192.0.2.1", "1"),
        ("seed.example", "resolutions", "192.0.2.2", "1"),
        ("seed.example", "communicating_files", FILE_A, "1"),
    ]
    assert enr.calls == [("object", "domain", "seed.example"),
                         ("page", "domain", "seed.example", "resolutions", 10, False)]
    first = rows[0]
    assert first["seed"] == "Seed.Example"
    assert first["resolution_date"] == "1700000300"
    assert first["src_malicious"] == "5"
    # leaf verdicts come from the full resolutions page, with no call of their own
    assert (first["dst_malicious"], first["dst_suspicious"]) == ("3", "0")
    assert first["dst_asn"] == ""
    assert (first["domain"], first["ip"], first["hash"]) == ("seed.example", "192.0.2.1", "")
    assert rows[2]["hash"] == FILE_A and rows[2]["ip"] == ""
    assert all(r["vt_status"] == "ok" and r["vt_error"] == "" for r in rows)
    assert w.stats.vt_calls == 2 and w.stats.edges == 3 and w.stats.nodes == 4


def test_depth1_from_a_hash_uses_the_object_call_alone():
    w, enr = walker()
    rows = w.pivot(FILE_A.upper())
    assert edges(rows) == [(FILE_A, "contacted_domains", "seed.example", "1"),
                           (FILE_A, "contacted_domains", "third.example", "1"),
                           (FILE_A, "contacted_ips", "192.0.2.2", "1")]
    assert enr.calls == [("object", "file", FILE_A)]
    assert rows[0]["src_type"] == "hash" and rows[0]["hash"] == FILE_A
    assert rows[0]["domain"] == "seed.example"


def test_depth2_is_breadth_first_and_fetches_intermediate_nodes_once():
    w, enr = walker(depth=2)
    rows = w.pivot("seed.example")
    hops = [r["hop"] for r in rows]
    assert hops == sorted(hops) and hops[0] == "1" and hops[-1] == "2"
    objects = [c for c in enr.calls if c[0] == "object"]
    assert sorted(objects) == sorted([("object", "domain", "seed.example"),
                                      ("object", "ip", "192.0.2.1"),
                                      ("object", "ip", "192.0.2.2"),
                                      ("object", "file", FILE_A)])
    # intermediate attributes go on the hop-1 edges
    to_ip1 = [r for r in rows if r["dst"] == "192.0.2.1"][0]
    assert (to_ip1["dst_asn"], to_ip1["dst_as_owner"], to_ip1["dst_country"]) == (
        "64500", "Hosting A", "NL")
    # leaves (hop 2) are never fetched: other.example / third.example have no object call
    assert ("object", "domain", "other.example") not in enr.calls
    assert ("object", "domain", "third.example") not in enr.calls


def test_a_cycle_is_emitted_once_and_the_seed_is_not_fetched_again():
    w, enr = walker(depth=2)
    rows = w.pivot("seed.example")
    pairs = [frozenset((r["src"], r["dst"])) for r in rows if r["dst"]]
    assert len(pairs) == len(set(pairs))
    # 192.0.2.1 -> seed.example (resolutions) and FILE_A -> seed.example (contacted_domains)
    # repeat hop-1 facts: not emitted again
    assert ("192.0.2.1", "resolutions", "seed.example", "2") not in edges(rows)
    assert (FILE_A, "contacted_domains", "seed.example", "2") not in edges(rows)
    assert ("192.0.2.1", "resolutions", "other.example", "2") in edges(rows)
    assert enr.calls.count(("object", "domain", "seed.example")) == 1


def test_cross_edges_between_known_nodes_are_kept_once():
    w, _ = walker(depth=2)
    rows = w.pivot("seed.example")
    # FILE_A contacted 192.0.2.2: both are hop-1 nodes; the edge is new (hop 2)
    assert (FILE_A, "contacted_ips", "192.0.2.2", "2") in edges(rows)
    # 192.0.2.1 -communicating_files-> FILE_A also joins two hop-1 nodes
    assert ("192.0.2.1", "communicating_files", FILE_A, "2") in edges(rows)


def test_the_memo_is_shared_by_all_seeds_of_a_search():
    w, enr = walker(depth=2)
    w.pivot("seed.example")
    before = list(enr.calls)
    rows = w.pivot("other.example")      # its IP 192.0.2.1 was fetched for the first seed
    new = enr.calls[len(before):]
    assert ("object", "ip", "192.0.2.1") not in new
    assert new[0] == ("object", "domain", "other.example")
    assert ("other.example", "resolutions", "192.0.2.1", "1") in edges(rows)
    again = w.pivot("seed.example")       # a repeated seed reuses its walk
    assert enr.calls[len(before) + len(new):] == []
    assert edges(again) == edges(w.pivot("seed.example"))


def test_limit_caps_each_relationship_and_asks_a_page_beyond_the_embedded_ten():
    g = scenario()
    for i in range(15):
        g.link("domain", "seed.example", "communicating_files", "file", "%064x" % (i + 1))
    w, enr = walker(g, limit=3)
    rows = w.pivot("seed.example")
    assert [r["relationship"] for r in rows].count("communicating_files") == 3
    assert [r["relationship"] for r in rows].count("resolutions") == 2
    assert not any(c[3] == "communicating_files" for c in enr.calls if c[0] == "page")
    w, enr = walker(g, limit=14)
    rows = w.pivot("seed.example")
    assert [r["relationship"] for r in rows].count("communicating_files") == 14
    assert ("page", "domain", "seed.example", "communicating_files", 14, True) in enr.calls


def test_a_relationship_outside_the_object_call_costs_one_descriptors_page():
    g = scenario().add("file", FILE_B)
    g.link("file", FILE_A, "bundled_files", "file", FILE_B)
    w, enr = walker(g, relationships=("bundled_files",))
    rows = w.pivot(FILE_A)
    assert edges(rows) == [(FILE_A, "bundled_files", FILE_B, "1")]
    assert enr.calls[-1] == ("page", "file", FILE_A, "bundled_files", 10, True)
    # file -> file: hash holds src, related_hash holds dst
    assert (rows[0]["hash"], rows[0]["related_hash"]) == (FILE_A, FILE_B)


def test_a_same_type_domain_edge_fills_related_domain():
    g = scenario().add("domain", "www.seed.example")
    g.link("domain", "seed.example", "subdomains", "domain", "www.seed.example")
    w, _ = walker(g, relationships=("subdomains",))
    row = w.pivot("seed.example")[0]
    assert (row["domain"], row["related_domain"], row["ip"]) == (
        "seed.example", "www.seed.example", "")


def test_max_nodes_cuts_the_graph_warns_and_stops_spending():
    warnings = []
    w, enr = walker(depth=2, max_nodes=3, warnings=warnings)
    rows = w.pivot("seed.example")
    nodes = {r["src"] for r in rows} | {r["dst"] for r in rows if r["dst"]}
    assert len(nodes) == 3
    assert len(rows) == 2
    # full after hop 1: the hop-1 nodes are not fetched, nothing more is asked
    assert [c[0] for c in enr.calls] == ["object", "page"]
    assert any("max_nodes=3" in m for m in warnings)


def test_depth3_never_fetches_the_last_hop():
    g = scenario().add("ip", "192.0.2.3")
    g.resolve("other.example", "192.0.2.3", 1700000000)
    w, enr = walker(g, depth=3)
    rows = w.pivot("seed.example")
    assert ("other.example", "resolutions", "192.0.2.3", "3") in edges(rows)
    assert ("object", "domain", "other.example") in enr.calls
    assert ("object", "ip", "192.0.2.3") not in enr.calls


def test_leaf_attributes_come_from_the_store_for_free():
    w, enr = walker(relationships=("communicating_files",))
    enr.store.put("file", FILE_A, scenario().record("file", FILE_A))
    row = w.pivot("seed.example")[0]
    assert row["dst"] == FILE_A
    assert (row["dst_malicious"], row["dst_popular_threat_label"]) == ("40", "trojan.x/y")
    assert enr.calls == [("object", "domain", "seed.example")]


def test_a_second_walker_over_the_same_store_costs_no_object_call():
    w, enr = walker(depth=2)
    w.pivot("seed.example")
    enr.calls.clear()
    w2 = PivotWalker(enr, PivotOptions(depth=2), policy=DOC_POLICY)
    rows = w2.pivot("seed.example")
    assert enr.calls == []                  # pages come from the (fake) HTTP cache
    assert w2.stats.vt_calls == 0 and w2.stats.cache_hits > 0
    assert rows and all(r["vt_cache"] == "hit" for r in rows)


# ---- seeds that cannot be pivoted ----------------------------------------------------------

@pytest.mark.parametrize("raw,status,code", [
    ("not a domain!", "invalid", "[VTP-E040]"),
    ("10.0.0.1", "skipped", "[VTP-E041]"),
    ("unknown.example", "not_found", "[VTP-E013]"),
])
def test_a_seed_that_cannot_be_pivoted_gives_one_record(raw, status, code):
    w, enr = walker()
    rows = w.pivot(raw)
    assert len(rows) == 1
    assert rows[0]["vt_status"] == status and rows[0]["vt_error"].startswith(code)
    assert rows[0]["seed"] == raw and rows[0]["dst"] == ""
    if status != "not_found":
        assert enr.calls == []


def test_type_forces_the_kind_of_the_seed():
    w, _ = walker(kind="ip")
    rows = w.pivot("seed.example")
    assert rows[0]["vt_status"] == "invalid"


def test_a_skipped_intermediate_node_keeps_its_edge_and_is_not_fetched():
    g = scenario()
    g.resolve("seed.example", "10.0.0.1", 1700000400)
    w, enr = walker(g, depth=2)
    rows = w.pivot("seed.example")
    assert ("seed.example", "resolutions", "10.0.0.1", "1") in edges(rows)
    skipped = [r for r in rows if r["src"] == "10.0.0.1" and not r["dst"]]
    assert len(skipped) == 1 and skipped[0]["vt_status"] == "skipped"
    assert skipped[0]["hop"] == "2"
    assert not any(c[2] == "10.0.0.1" for c in enr.calls)


def test_a_seed_without_relationships_gives_one_ok_record():
    g = Graph().add("domain", "lonely.example")
    w, _ = walker(g)
    rows = w.pivot("lonely.example")
    assert len(rows) == 1
    assert (rows[0]["vt_status"], rows[0]["src"], rows[0]["dst"]) == ("ok", "lonely.example", "")


def test_a_forbidden_relationship_without_descriptors_gives_one_record_for_it():
    g = scenario()
    errors = {("file", FILE_A, "bundled_files"): Forbidden("VirusTotal answered HTTP 403",
                                                            http_status=403)}
    w, _ = walker(g, errors=errors, relationships=("bundled_files", "contacted_ips"))
    rows = w.pivot(FILE_A)
    bad = [r for r in rows if r["relationship"] == "bundled_files"]
    assert len(bad) == 1 and bad[0]["vt_status"] == "error"
    assert bad[0]["vt_error"].startswith("[VTP-E011]")
    assert (FILE_A, "contacted_ips", "192.0.2.2", "1") in edges(rows)


def test_a_rejected_key_stops_the_search():
    w, enr = walker()
    enr.object_errors[("domain", "seed.example")] = AuthError("VirusTotal answered HTTP 401")
    with pytest.raises(FatalPivotError) as info:
        w.pivot("seed.example")
    assert str(info.value).startswith("[VTP-E010]")


# ---- budget ------------------------------------------------------------------------------

def test_a_short_budget_warns_before_the_walk():
    warnings = []
    w, _ = walker(depth=2, tokens=2, warnings=warnings)
    needed = w.check_budget(["seed.example"])
    assert needed > 2
    assert len(warnings) == 1 and "needs up to %d VirusTotal calls" % needed in warnings[0]
    warnings.clear()
    w2, _ = walker(depth=1, tokens=100, warnings=warnings)
    assert w2.check_budget(["seed.example"]) == 2
    assert warnings == []


def test_the_walk_goes_as_far_as_the_budget_and_marks_the_rest_throttled():
    warnings = []
    w, enr = walker(depth=2, tokens=3, warnings=warnings)
    rows = w.pivot("seed.example")
    # seed object + seed resolutions page + one of the three hop-1 objects
    assert len(enr.calls) == 3
    assert [c[0] for c in enr.calls] == ["object", "page", "object"]
    throttled = [r for r in rows if r["vt_status"] == "throttled"]
    assert len(throttled) == 2
    assert all(r["vt_error"].startswith("[VTP-E021]") and r["dst"] == "" for r in throttled)
    assert {r["src"] for r in throttled} | {enr.calls[2][2]} == {
        "192.0.2.1", "192.0.2.2", FILE_A}
    assert len(enr.queue.items) == 2
    # the hop-1 edges are all there
    assert sum(1 for r in rows if r["hop"] == "1" and r["dst"]) == 3
    assert w.stats.throttled_nodes == 2
    assert any("stopped calling VirusTotal" in m for m in warnings)


def test_throttling_on_a_page_falls_back_to_descriptors_and_stops_calls():
    w, enr = walker(depth=2, tokens=1)
    rows = w.pivot("seed.example")
    assert enr.calls == [("object", "domain", "seed.example")]
    res_rows = [r for r in rows if r["relationship"] == "resolutions"]
    assert [r["dst"] for r in res_rows] == ["192.0.2.1", "192.0.2.2"]
    assert all(r["vt_status"] == "ok" and r["resolution_date"] == "" for r in res_rows)
    assert all(r["vt_error"].startswith("[VTP-E021]") for r in res_rows)
    assert sum(1 for r in rows if r["vt_status"] == "throttled") == 3


def test_stale_entries_are_served_when_the_budget_is_spent():
    g = scenario()
    w, enr = walker(depth=2, tokens=2)
    enr.store.put("ip", "192.0.2.1", g.record("ip", "192.0.2.1"), fresh=False)
    rows = w.pivot("seed.example")
    stale = [r for r in rows if r["src"] == "192.0.2.1" and r["dst"]]
    assert stale and all(r["vt_cache"] == "stale" for r in stale)


# ---- wait=: waiting for the per-minute budget --------------------------------------------

class RealLimiter:
    """quota.RateLimiter (on SQLite, on the test's clock) as FakeEnricher calls a limiter:
    take() for each call."""

    def __init__(self, limiter):
        self.limiter = limiter

    def take(self):
        self.limiter.acquire()

    def estimate(self, needed):
        return self.limiter.estimate(needed)

    def remaining(self):
        return self.limiter.remaining()


def waiting_walker(tmp_path, per_minute, wait, per_day=0, warnings=None, **options):
    from lookup_helpers import FakeClock, SleepRecorder
    from vtpivot_app.quota import Budget, RateLimiter
    from vtpivot_app.storage_backends import open_backend

    clock = FakeClock(1_796_400_000)
    sleeps = SleepRecorder(clock)
    limiter = RateLimiter(open_backend("sqlite", str(tmp_path)),
                          Budget(per_minute=per_minute, per_day=per_day), clock=clock,
                          sleep=sleeps)
    enricher = FakeEnricher(scenario())
    enricher.limiter = enricher._client.limiter = RealLimiter(limiter)
    w = PivotWalker(enricher, PivotOptions(wait=wait, **options), policy=DOC_POLICY,
                    warn=(warnings.append if warnings is not None else None), clock=clock,
                    sleep=sleeps)
    return w, enricher, sleeps


def test_wait_lets_a_public_key_finish_the_walk(tmp_path):
    """2 calls a minute, 7 needed: with wait=300 the walk waits three times for the window
    and ends with every node fetched, the edges of an unlimited budget and no throttled
    row."""
    free, free_enr = walker(depth=2)
    expected = edges(free.pivot("seed.example"))
    warnings = []
    w, enr, sleeps = waiting_walker(tmp_path, 2, 300, depth=2, warnings=warnings)
    rows = w.pivot("seed.example")
    assert edges(rows) == expected
    assert len(enr.calls) == len(free_enr.calls) == 7
    assert not [r for r in rows if r["vt_status"] == "throttled"] and enr.queue.items == []
    assert len(sleeps.delays) == 3 and all(50 < d <= 61 for d in sleeps.delays)
    assert w.stats.waited == pytest.approx(sum(sleeps.delays))
    assert not [m for m in warnings if "stopped calling" in m]


def test_a_wait_too_short_for_the_window_throttles_as_without_it(tmp_path):
    warnings = []
    w, enr, sleeps = waiting_walker(tmp_path, 2, 30, depth=2, warnings=warnings)
    rows = w.pivot("seed.example")
    assert sleeps.delays == []  # the window frees a call in ~60 s: more than wait=30
    assert len(enr.calls) == 2
    assert [r["vt_status"] for r in rows].count("throttled") >= 1
    assert any("stopped calling VirusTotal" in m and "wait=30" in m for m in warnings)


def test_wait_never_waits_for_a_spent_daily_budget(tmp_path):
    warnings = []
    w, enr, sleeps = waiting_walker(tmp_path, 100, 600, per_day=2, depth=2,
                                    warnings=warnings)
    rows = w.pivot("seed.example")
    assert sleeps.delays == [] and len(enr.calls) == 2
    throttled = [r for r in rows if r["vt_status"] == "throttled"]
    assert throttled and all(r["vt_error"].startswith("[VTP-E021]") for r in throttled)
    assert any("stopped calling VirusTotal" in m for m in warnings)


def test_wait_is_shared_by_the_seeds_of_a_search(tmp_path):
    """One budget of waiting per search: the second seed has what the first left."""
    w, enr, sleeps = waiting_walker(tmp_path, 2, 70, depth=2)
    w.pivot("seed.example")   # 7 calls at 2 a minute: one ~60 s wait, then ~10 s left
    assert len(sleeps.delays) == 1 and w.wait_left < 11
    rows = w.pivot("other.example")
    assert len(sleeps.delays) == 1  # the next minute is farther than what is left
    assert any(r["vt_status"] == "throttled" for r in rows)
