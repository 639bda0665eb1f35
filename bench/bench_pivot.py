"""Benchmark: a depth-2 `vtpivot` over a ~300-node graph against a naive walk, same run.

Scenario: devtools/fakevt/synthetic.pivot_dataset (seed domain -> 10 IPs -> 28 domains each,
seed -> 4 files -> 2 domains each: 303 nodes at depth 2), served by the local fake
VirusTotal with an injected latency per call (default 50 ms). Both walks use limit=40
(one page holds every resolution of a node) and the default relationships.

- vtpivot: the app's walk (pivot.PivotWalker over the real Enricher, object store, HTTP
  cache and rate limiter, fresh state), then the same pivot again (warm: store + cache).
- naive: breadth-first, every node of the graph fetched with its own object call and every
  relationship of every expanded node with its own page call (no store, no cache).

Prints VT calls per node of the resulting graph (target for vtpivot: at most 0.25) and wall
times, with ratios. Stand-alone: `python bench/bench_pivot.py [--latency-ms 50]`.
"""
import argparse
import dataclasses
import json
import os
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
for _path in (os.path.join(REPO, "devtools"), os.path.join(REPO, "bin"),
              os.path.join(REPO, "lib")):
    if _path not in sys.path:
        sys.path.insert(0, _path)

from fakevt import FakeVirusTotal, synthetic  # noqa: E402
from vtpivot_app.enrichment import build_enricher  # noqa: E402
from vtpivot_app.indicators import IndicatorPolicy, classify  # noqa: E402
from vtpivot_app.pivot import PivotOptions, PivotWalker  # noqa: E402
from vtpivot_app.settings import from_stanzas  # noqa: E402
from vtpivot_app.vt_client import VTClient  # noqa: E402

KEY = "bench-key"
POLICY = IndicatorPolicy(allow_documentation=True)
RELATIONSHIPS = {"domain": ("resolutions", "communicating_files"),
                 "ip": ("resolutions", "communicating_files"),
                 "file": ("contacted_domains", "contacted_ips")}


def bench_classify(raw, kind=None):
    """The synthetic IPs live in 198.18.0.0/15 (RFC 2544 benchmarking), which the app never
    sends to VirusTotal; here they stand for public addresses."""
    ind = classify(raw, kind, POLICY)
    if ind.status == "skipped" and "benchmarking" in ind.reason:
        ind = dataclasses.replace(ind, status="ok", reason="")
    return ind


def settings_for(vt, home):
    environ = {"VT_API_URL": vt.url, "VTPIVOT_PER_MINUTE": "0", "VTPIVOT_PER_DAY": "0",
               "VTPIVOT_STATE_DIR": os.path.join(home, "state")}
    return from_stanzas({}, environ), dict(environ, VT_API_KEY=KEY)


def run_vtpivot(vt, home, depth, limit):
    settings, environ = settings_for(vt, home)
    enricher = build_enricher(settings, environ=environ)
    walker = PivotWalker(enricher, PivotOptions(depth=depth, limit=limit, max_nodes=2000),
                         classifier=bench_classify)
    vt.reset_counts()
    started = time.perf_counter()
    rows = walker.pivot(vt.dataset.seed_domain)
    elapsed = time.perf_counter() - started
    nodes = {r["src"] for r in rows} | {r["dst"] for r in rows if r["dst"]}
    bad = [r for r in rows if r["vt_status"] != "ok"]
    if bad:
        raise SystemExit("vtpivot rows not ok: %r" % bad[:3])
    return {"calls": vt.total_calls, "nodes": len(nodes), "edges": len(rows),
            "seconds": elapsed}


def run_naive(vt, home, depth, limit):
    """Fetch every node, and each relationship of each expanded node, separately."""
    settings, _ = settings_for(vt, home)
    settings.http_cache = False
    client = VTClient(settings, KEY)
    vt.reset_counts()
    started = time.perf_counter()
    seen = {("domain", vt.dataset.seed_domain)}
    frontier = [("domain", vt.dataset.seed_domain)]
    edges = 0
    for hop in range(depth + 1):
        nxt = []
        for kind, oid in frontier:
            client.get_object(kind, oid)
            if hop == depth:
                continue
            for rel in RELATIONSHIPS[kind]:
                page = client.get_relationship(kind, oid, rel, limit=limit)
                for item in page.items:
                    if item.get("type") == "resolution":
                        attrs = item["attributes"]
                        node = ("ip", attrs["ip_address"]) if kind == "domain" else \
                            ("domain", attrs["host_name"])
                    else:
                        node = ({"ip_address": "ip"}.get(item["type"], item["type"]),
                                item["id"])
                    edges += 1
                    if node not in seen:
                        seen.add(node)
                        nxt.append(node)
        frontier = nxt
    elapsed = time.perf_counter() - started
    return {"calls": vt.total_calls, "nodes": len(seen), "edges": edges, "seconds": elapsed}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--depth", type=int, default=2)
    parser.add_argument("--limit", type=int, default=40)
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args(argv)
    dataset = synthetic.pivot_dataset(seed=1)
    with tempfile.TemporaryDirectory(prefix="bench_pivot_") as home, FakeVirusTotal(dataset=dataset, keys={KEY: "premium"},
                        quotas={"premium": {"per_minute": None, "per_day": None}}) as vt:
        vt.set_latency(args.latency_ms)
        cold = run_vtpivot(vt, home, args.depth, args.limit)
        warm = run_vtpivot(vt, home, args.depth, args.limit)
        naive = run_naive(vt, home, args.depth, args.limit)
    results = {"latency_ms": args.latency_ms, "depth": args.depth, "limit": args.limit,
               "expected_nodes": dataset.expected_depth2,
               "vtpivot_cold": cold, "vtpivot_warm": warm, "naive": naive}
    print("depth-%d pivot, limit=%d, %g ms per VT call, graph of %d nodes (expected %d)"
          % (args.depth, args.limit, args.latency_ms, cold["nodes"], dataset.expected_depth2))
    print("%-16s %9s %7s %7s %12s %10s" % ("walk", "VT calls", "nodes", "edges",
                                           "calls/node", "wall s"))
    for name, r in (("vtpivot (cold)", cold), ("vtpivot (warm)", warm), ("naive", naive)):
        print("%-16s %9d %7d %7d %12.3f %10.2f" % (name, r["calls"], r["nodes"], r["edges"],
                                                    r["calls"] / r["nodes"], r["seconds"]))
    print("ratios, naive / vtpivot (cold): calls x%.1f, wall time x%.1f"
          % (naive["calls"] / max(1, cold["calls"]), naive["seconds"] / cold["seconds"]))
    target = cold["calls"] / cold["nodes"]
    print("vtpivot calls per node %.3f (target <= 0.25: %s)"
          % (target, "met" if target <= 0.25 else "MISSED"))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump(results, handle, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
