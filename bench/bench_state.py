"""Benchmarks of the shared state (not a test: prints a table; `make bench` runs it).

    .venv/tools/bin/python bench/bench_state.py [--quick]

(d) the object store's get_many over 10,000 cached ~2 KB summaries, with and without the
    records decoded (a cached lookup reads only the heads: need_record=False), next to the
    backend's raw get_many of the same rows (the floor: the SQLite read alone);
(e) the rate limiter's acquire(): the taking (write) path and the refusing (read-only) path,
    next to one backend update() on a key of its own (the transaction acquire() is built on).

Runs in this interpreter on the sqlite and file backends, in a scratch folder.
"""
import argparse
import os
import statistics
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [os.path.join(REPO, "lib"), os.path.join(REPO, "bin")]

from vtpivot_app.object_store import NS_OBJECT, ObjectStore  # noqa: E402
from vtpivot_app.quota import Budget, RateLimiter, Throttled  # noqa: E402
from vtpivot_app.storage_backends import open_backend  # noqa: E402


def summary(name):
    """A domain summary of about 2 KB, shaped as vt_objects.summarize makes them."""
    return {"kind": "domain", "id": name,
            "fields": {"malicious": 3, "suspicious": 0, "harmless": 60, "undetected": 10,
                       "reputation": -5, "tags": ["phishing"], "last_analysis_date": 1.7e9,
                       "creation_date": 1.6e9, "registrar": "NameCheap, Inc.",
                       "categories": ["phishing and other frauds"],
                       "cert_issuer": "Let's Encrypt (R11)", "a_records": ["192.0.2.1"]},
            "relationships": {"resolutions": [{"id": "192.0.2.%d" % i, "kind": "ip",
                                               "date": 1.7e9, "malicious": i % 3}
                                              for i in range(20)],
                              "subdomains": [{"id": "s%d.%s" % (i, name), "kind": "domain"}
                                             for i in range(10)]},
            "relationship_cursors": {"resolutions": "c" * 40, "subdomains": None}}


def best(fn, repeats):
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return min(times)


def bench_store(kind, scratch, n, repeats):
    backend = open_backend(kind, os.path.join(scratch, "store-" + kind))
    store = ObjectStore(backend)
    names = ["host%05d.example.com" % i for i in range(n)]
    for name in names:
        store.put("domain", name, summary(name))
    keys = ["domain:" + name for name in names]
    raw_s = best(lambda: backend.get_many(NS_OBJECT, keys), repeats)
    heads_s = best(lambda: store.get_many("domain", names, need_record=False), repeats)
    full_s = best(lambda: store.get_many("domain", names), repeats)
    size = len(backend.get_many(NS_OBJECT, keys[:1])[keys[0]])
    backend.close()
    return {"n": n, "bytes": size, "raw": raw_s, "heads": heads_s, "full": full_s}


def bench_acquire(kind, scratch, n):
    backend = open_backend(kind, os.path.join(scratch, "quota-" + kind))
    limiter = RateLimiter(backend, Budget(per_minute=0, per_day=n))
    taken, refused, update = [], [], []
    for i in range(n):
        started = time.perf_counter()
        limiter.acquire()
        taken.append(time.perf_counter() - started)
    for _ in range(n):
        started = time.perf_counter()
        try:
            limiter.acquire()
        except Throttled:
            pass
        refused.append(time.perf_counter() - started)
    for i in range(n):
        started = time.perf_counter()
        backend.update("bench", "counter", lambda old: (str(int(old or 0) + 1), None), 60)
        update.append(time.perf_counter() - started)
    backend.close()
    return {kind_: (statistics.median(values) * 1e3, sorted(values)[int(len(values) * 0.95)] * 1e3)
            for kind_, values in (("taken", taken), ("refused", refused), ("update", update))}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rows and runs")
    args = parser.parse_args(argv)
    n, repeats, calls = (2000, 1, 100) if args.quick else (10000, 3, 300)
    scratch = tempfile.mkdtemp(prefix="vtpivot-bench-state-")
    print()
    print("vtpivot shared-state benchmarks (Python %s, %d CPUs)" % (
        sys.version.split()[0], os.cpu_count() or 0))
    print("=" * 96)
    for kind in ("sqlite", "file"):
        s = bench_store(kind, scratch, n, repeats)
        print("(d) object store [%s], get_many of %d cached summaries (%d bytes stored each)"
              % (kind, s["n"], s["bytes"]))
        for label, key in (("backend get_many (floor)", "raw"),
                           ("heads only (need_record=False)", "heads"),
                           ("heads + records (need_record=True)", "full")):
            print("    %-44s %8.1f ms  %9.0f rows/s  %5.2f x floor" % (
                label, s[key] * 1e3, s["n"] / s[key], s[key] / s["raw"]))
    for kind in ("sqlite", "file"):
        a = bench_acquire(kind, scratch, calls)
        print("(e) rate limiter [%s], %d uncontended acquire() calls per path" % (kind, calls))
        for label, key in (("backend update() (baseline)", "update"),
                           ("acquire(), token taken", "taken"),
                           ("acquire(), refused", "refused")):
            median, p95 = a[key]
            print("    %-44s median %6.3f ms  p95 %6.3f ms  %5.2f x baseline" % (
                label, median, p95, median / a["update"][0]))
    print("=" * 96)
    return 0


if __name__ == "__main__":
    sys.exit(main())
