"""Resolve many indicators at once, spending as few VirusTotal calls as possible.

The order for every distinct indicator of a batch (duplicates are folded first):
1. the object store: a fresh entry is a hit and costs nothing (no token, no network, and the
   network stack is not even imported when every indicator is a hit);
2. otherwise one VT call (object + its fixed relationship set), after one token from the
   shared rate limiter; distinct misses run on a bounded pool with a premium key;
3. when the call cannot be made or fails: an expired entry is served as `stale` (better than
   nothing), else the row says why (`throttled` and queued for background enrichment,
   `error` with a code, `not_found`).
"""
import logging
import threading
import time
from dataclasses import dataclass

from . import app_logging
from .errors import NotFound, VTPivotError
from .lookup_view import lookup_cells, record_view, view_cells
from .vt_objects import OBJECT_RELATIONSHIPS, aliases, summarize

STORE_KINDS = {"domain": "domain", "ip": "ip", "hash": "file"}
log = app_logging.get_logger("enrichment")


class Resolution:
    """What became of one indicator. A resolution from the store keeps its entry and reads
    the record from it only when asked (a cached lookup uses the entry's view instead)."""

    __slots__ = ("status", "cache", "error", "_record", "_entry")

    def __init__(self, status, cache="", record=None, error="", entry=None):
        self.status = status  # ok | not_found | invalid | skipped | throttled | error
        self.cache = cache    # hit | miss | stale | "" (never looked up)
        self.error = error    # "[VTP-Exxx] why", when status is not ok (or ok but stale)
        self._record = record  # the summary record (vt_objects.summarize) when known
        self._entry = entry    # the object store's entry it came from, if any

    @property
    def record(self):
        if self._record is None and self._entry is not None:
            self._record = self._entry.record
        return self._record

    def lookup_view(self, store_kind):
        """The record's lookup view (lookup_view.py): the stored one when the entry has it;
        None when there is no record (or it has no view)."""
        if self._entry is not None and self._entry.view is not None:
            return self._entry.view
        record = self.record
        return record_view(store_kind, record) if record else None

    def lookup_cells(self, store_kind):
        """lookup_view.lookup_cells of the record, from the stored view when the record is
        not decoded; None when there is no record."""
        if self._record is None and self._entry is not None and self._entry.view is not None:
            return view_cells(store_kind, self._entry.view)
        record = self.record
        return lookup_cells(store_kind, record) if record else None

    @property
    def record_id(self):
        """The object's canonical id (a file's sha256), "" when unknown."""
        if self._entry is not None and self._entry.id:
            return self._entry.id
        record = self._record
        return (record.get("id") or "") if record else ""

    def __eq__(self, other):
        return isinstance(other, Resolution) and (
            self.status, self.cache, self.error, self.record) == (
            other.status, other.cache, other.error, other.record)

    def __repr__(self):
        return "Resolution(status=%r, cache=%r, error=%r)" % (self.status, self.cache,
                                                              self.error)


@dataclass
class EnrichmentStats:
    hits: int = 0
    misses: int = 0
    stale: int = 0
    throttled: int = 0
    errors: int = 0
    not_found: int = 0

    def as_dict(self):
        return dict(self.__dict__)


def resolution_for_unsendable(indicator):
    """invalid / skipped indicators never reach the store or the network."""
    code = "VTP-E040" if indicator.status == "invalid" else "VTP-E041"
    return Resolution(status=indicator.status, error=f"[{code}] {indicator.reason}")


class Enricher:
    """live=False makes a cache-only enricher (the vt_*_cached lookups): it never calls VT
    and queues what it misses for the background job."""

    def __init__(self, settings, store, limiter=None, queue=None, client_factory=None,
                 live=True, clock=time.time):
        self.settings = settings
        self.store = store
        self.limiter = limiter
        self.queue = queue
        self.client_factory = client_factory
        self.live = live
        self.clock = clock
        self.stats = EnrichmentStats()
        self._client = None
        self._client_error = None
        self._client_lock = threading.Lock()

    # ---- the client is built only on the first miss (imports requests then) ---------------
    def client(self):
        # Pool workers ask at once: one client (one HTTP cache connection) for all of them.
        with self._client_lock:
            return self._build_client()

    def _build_client(self):
        if self._client is None and self._client_error is None:
            try:
                self._client = self.client_factory()
            except VTPivotError as exc:
                self._client_error = exc
        if self._client_error is not None:
            raise self._client_error
        return self._client

    def resolve(self, indicators, need_record=True):
        """{(kind, value): Resolution} for every distinct sendable indicator given.
        need_record=False: the caller reads only lookup views (ObjectStore.get_many)."""
        wanted = {}
        for ind in indicators:
            if ind.status == "ok":
                wanted.setdefault((ind.kind, ind.value), ind)
        results = {}
        misses = []
        by_kind = {}
        for kind, value in wanted:
            by_kind.setdefault(kind, []).append(value)
        now, from_entry, hits = self.clock(), self._from_entry, 0  # one clock per batch
        for kind, values in by_kind.items():
            cached = self.store.get_many(STORE_KINDS[kind], values, need_record)
            for value in values:
                entry = cached.get(value)
                if entry is not None and entry.is_fresh(now):
                    hits += 1
                    results[(kind, value)] = from_entry(entry, "hit")
                else:
                    misses.append((kind, value, entry))
        self.stats.hits += hits
        if misses:
            self._resolve_misses(misses, results)
        if log.isEnabledFor(logging.DEBUG):  # one line per indicator, cache hits included
            for (kind, value), res in results.items():
                app_logging.log_event(log, logging.DEBUG, "vt_answer", kind=kind,
                                      indicator=value, cache=res.cache, status=res.status)
        return results

    def _from_entry(self, entry, cache, note=""):
        if entry.status == "not_found":
            return Resolution(status="not_found", cache=cache,
                              error="[VTP-E013] VirusTotal has no such object")
        return Resolution(status="ok", cache=cache, error=note, entry=entry)

    def _resolve_misses(self, misses, results):
        if not self.live:
            for kind, value, entry in misses:
                if entry is not None:
                    self.stats.stale += 1
                    results[(kind, value)] = self._from_entry(
                        entry, "stale", "[VTP-E080] expired entry served from the cache")
                else:
                    self.stats.misses += 1
                    self._enqueue(kind, value, "cache-only lookup miss")
                    results[(kind, value)] = Resolution(
                        status="skipped", cache="miss",
                        error="[VTP-E080] not in the cache: vt_*_cached never calls "
                              "VirusTotal; queued for background enrichment")
            return
        workers = self.settings.concurrency if self.settings.tier == "premium" else 1
        if workers > 1 and len(misses) > 1:
            from concurrent.futures import ThreadPoolExecutor  # not on a cached run's path

            with ThreadPoolExecutor(max_workers=min(workers, len(misses))) as pool:
                for (kind, value, _), res in zip(misses, pool.map(self._fetch_one, misses)):
                    results[(kind, value)] = res
        else:
            for miss in misses:
                results[(miss[0], miss[1])] = self._fetch_one(miss)

    def _fetch_one(self, miss):
        kind, value, entry = miss
        store_kind = STORE_KINDS[kind]
        if store_kind == "file" and entry is None:
            # md5, sha1 and sha256 of one file in one batch: the first fetch taught the store
            # the aliases, so the others are hits now (sequential misses only).
            fresh = self.store.get(store_kind, value)
            if fresh is not None and fresh.is_fresh(self.clock()):
                self.stats.hits += 1
                return self._from_entry(fresh, "hit")
        try:
            client = self.client()
            data = client.get_object(store_kind, value, OBJECT_RELATIONSHIPS[store_kind])
        except NotFound:
            self.store.put_not_found(store_kind, value)
            self.stats.not_found += 1
            self.stats.misses += 1
            return Resolution(status="not_found", cache="miss",
                              error="[VTP-E013] VirusTotal has no such object")
        except Exception as exc:  # noqa: BLE001 - every failure becomes a row status
            return self._failed(kind, value, entry, exc)
        record = summarize(store_kind, data)
        entry = self.store.put(store_kind, record["id"], record,
                               aliases=aliases(store_kind, record)
                               + ((value,) if value != record["id"] else ()))
        self.stats.misses += 1
        # the entry carries the lookup view put() rendered: the lookup prints it as a hit's
        return Resolution(status="ok", cache="miss", record=record, entry=entry)

    def _failed(self, kind, value, entry, exc):
        # quota.Throttled (our budget) and QuotaExceeded (VirusTotal's) carry E020-E023.
        throttled = getattr(exc, "code", "") in ("VTP-E020", "VTP-E021", "VTP-E022", "VTP-E023")
        if isinstance(exc, VTPivotError):
            message = str(exc)
        else:
            log.exception("unexpected failure resolving an indicator")
            message = f"[VTP-E030] unexpected error: {type(exc).__name__}"
        if throttled:
            self.stats.throttled += 1
            self._enqueue(kind, value, "throttled")
        if entry is not None:  # stale-if-error: an expired answer beats none
            self.stats.stale += 1
            return self._from_entry(entry, "stale", message)
        if throttled:
            return Resolution(status="throttled", cache="miss",
                              error=message + " (queued for background enrichment)")
        self.stats.errors += 1
        return Resolution(status="error", cache="miss", error=message)

    def _enqueue(self, kind, value, reason):
        if self.queue is not None and self.settings.queue_throttled:
            try:
                self.queue.push(STORE_KINDS[kind], value, reason=reason)
            except Exception:  # the queue is a convenience; never fail a row for it
                log.warning("could not queue %s for background enrichment", kind)


def build_enricher(settings, live=True, service=None, environ=None):
    """Wire the shared state (store, limiter, queue) and a lazily built client."""
    from . import credentials
    from .enrichment_queue import EnrichmentQueue
    from .object_store import ObjectStore
    from .cluster_budget import effective_budget
    from .quota import RateLimiter
    from .storage_backends import open_backend

    backend = open_backend(settings.backend, settings.resolved_state_dir,
                           redis_url=settings.redis_url or None, logger=log)
    store = ObjectStore(backend, ttl_seconds={"domain": settings.ttl_domain,
                                              "ip": settings.ttl_ip, "file": settings.ttl_file},
                        not_found_ttl=settings.ttl_not_found,
                        stale_max_age=settings.stale_max_age)
    limiter = RateLimiter(backend, effective_budget(settings))
    queue = EnrichmentQueue(backend)

    def client_factory():
        from .vt_client import VTClient

        api_key = credentials.get_api_key(service=service, environ=environ)
        proxy_password = credentials.get_proxy_password(service=service, environ=environ)
        return VTClient(settings, api_key, limiter=limiter, proxy_password=proxy_password)

    return Enricher(settings, store, limiter=limiter, queue=queue,
                    client_factory=client_factory, live=live)


logging.getLogger(app_logging.LOGGER_NAME).addHandler(logging.NullHandler())
