"""The `vtpivot` walk: breadth-first from one indicator over VirusTotal relationships.

Independent of splunklib: it takes an Enricher (enrichment.py) and gives edge records
(plain dicts with the fields of OUTPUT_FIELDS, every record every field).

Thrift, the point of the design (every VirusTotal call counts):
- A node is resolved through the Enricher, so the shared object store answers first
  (filled by the lookups as well); a miss is ONE object call that also carries the first
  page (VT's default: 10) of descriptors of the fixed relationship set
  (vt_objects.OBJECT_RELATIONSHIPS). Those descriptors give the node's edges for free.
- `resolutions` edges come from one full relationship page instead: its items carry the
  resolution date and both ends' verdicts, so the last hop needs no object call at all.
- A relationship outside the fixed set, or a `limit` above the embedded descriptors when VT
  says there are more (a cursor), costs one descriptors page (`limit` <= 40 fits one page).
  Pages go through VTClient.get_relationship and its HTTP cache: a cached page is free.
- Leaf nodes (hop == depth) are never fetched: their attributes come from the page, the
  per-search memo or the object store (a free batched read). Intermediate nodes are
  fetched once (the object call) because their attributes (an IP's ASN...) go on edges.
- Per search, every node and page is resolved at most once (memo shared by all seeds), a
  repeated seed reuses its walk, and `max_nodes` stops expansion (and spending) early.
- Budget: before a level's object calls, RateLimiter.estimate says how many may leave now;
  only those are sent. After the first throttled call no further call is attempted in this
  search (waiting on a per-minute window would stall the search for nothing): the store
  still answers, stale entries are served, the rest is marked `throttled` and queued for
  the background job.

Edges are deduplicated per walk on the unordered node pair and the relationship family
(domain -resolutions-> IP and IP -resolutions-> domain are one fact), so a cycle
domain -> IP -> same domain yields that edge once.
"""
import time
from dataclasses import dataclass

from . import app_logging
from .enrichment import STORE_KINDS, Resolution, resolution_for_unsendable
from .errors import NotFound, VTError, VTPivotError
from .indicators import DEFAULT_POLICY, Indicator, classify
from .vt_objects import related_from_descriptor

log = app_logging.get_logger("pivot")

KINDS = ("domain", "ip", "hash")
FROM_STORE_KIND = {"domain": "domain", "ip": "ip", "file": "hash"}

# Node-to-node relationships a public key may read (others answer 403 to it).
PUBLIC_RELATIONSHIPS = {
    "domain": ("resolutions", "communicating_files", "referrer_files", "subdomains",
               "siblings", "parent"),
    "ip": ("resolutions", "communicating_files", "referrer_files"),
    "hash": ("contacted_domains", "contacted_ips", "execution_parents", "bundled_files",
             "dropped_files"),
}
PREMIUM_RELATIONSHIPS = {
    "domain": ("downloaded_files", "cname_records", "mx_records", "ns_records",
               "immediate_parent"),
    "ip": ("downloaded_files",),
    "hash": ("embedded_domains", "embedded_ips", "itw_domains", "itw_ips",
             "compressed_parents", "similar_files"),
}
VALID_RELATIONSHIPS = {kind: PUBLIC_RELATIONSHIPS[kind] + PREMIUM_RELATIONSHIPS[kind]
                       for kind in KINDS}
# Infrastructure and malware pivots, all public, all carried by the object call (only
# resolutions adds its full page, for dates): see DEFAULT_RELATIONSHIPS in the README.
DEFAULT_RELATIONSHIPS = {
    "domain": ("resolutions", "communicating_files"),
    "ip": ("resolutions", "communicating_files"),
    "hash": ("contacted_domains", "contacted_ips"),
}
# Relationships read from a full page because its items carry what the edge needs.
FULL_PAGE_RELATIONSHIPS = ("resolutions",)
# Inverse relationships describe one fact: one edge per node pair and family.
FAMILY = {"resolutions": "resolution", "communicating_files": "communication",
          "contacted_domains": "communication", "contacted_ips": "communication",
          "subdomains": "parent", "parent": "parent", "immediate_parent": "parent",
          "downloaded_files": "download", "itw_domains": "download", "itw_ips": "download",
          "referrer_files": "reference", "embedded_domains": "reference",
          "embedded_ips": "reference"}
EMBEDDED_PAGE_SIZE = 10  # VT's default page size of ?relationships= descriptors

OUTPUT_FIELDS = (
    "seed", "src", "src_type", "relationship", "dst", "dst_type", "hop", "resolution_date",
    "src_malicious", "dst_malicious", "dst_suspicious", "dst_asn", "dst_as_owner",
    "dst_country", "dst_creation_date", "dst_registrar", "dst_cert_issuer",
    "dst_popular_threat_label", "dst_type_description", "dst_meaningful_name",
    "domain", "ip", "hash", "related_domain", "related_hash",
    "vt_status", "vt_error", "vt_cache",
)
# summary field -> output column, for the destination of an edge
DST_FIELDS = (("malicious", "dst_malicious"), ("suspicious", "dst_suspicious"),
              ("asn", "dst_asn"), ("as_owner", "dst_as_owner"), ("country", "dst_country"),
              ("creation_date", "dst_creation_date"), ("registrar", "dst_registrar"),
              ("cert_issuer", "dst_cert_issuer"),
              ("popular_threat_label", "dst_popular_threat_label"),
              ("type_description", "dst_type_description"),
              ("meaningful_name", "dst_meaningful_name"))
THROTTLE_CODES = ("VTP-E020", "VTP-E021", "VTP-E022", "VTP-E023")


@dataclass
class PivotOptions:
    kind: str = "auto"            # auto | domain | ip | hash
    depth: int = 1
    relationships: tuple = ()     # () = DEFAULT_RELATIONSHIPS per kind
    limit: int = 10
    max_nodes: int = 300
    wait: int = 0                 # seconds the walk may wait for the per-minute budget

    def relationships_for(self, kind):
        if not self.relationships:
            return DEFAULT_RELATIONSHIPS[kind]
        return tuple(r for r in self.relationships if r in VALID_RELATIONSHIPS[kind])


@dataclass
class PivotStats:
    vt_calls: int = 0
    cache_hits: int = 0
    nodes: int = 0
    edges: int = 0
    throttled_nodes: int = 0
    walks: int = 0
    seeds: int = 0
    elapsed: float = 0.0
    waited: float = 0.0           # seconds spent waiting for the per-minute budget (wait=)

    def as_dict(self):
        return dict(self.__dict__)


class FatalPivotError(VTPivotError):
    """A failure no row can explain (VirusTotal rejects the key): stops the search."""


@dataclass
class _Node:
    kind: str
    id: str
    hop: int
    indicator: Indicator
    resolution: Resolution = None
    malicious: object = None      # from a page's stats, when the record is unknown
    suspicious: object = None

    @property
    def key(self):
        return (self.kind, self.id.lower())

    @property
    def fields(self):
        record = self.resolution.record if self.resolution else None
        return (record or {}).get("fields") or {}


@dataclass
class _Related:
    """A relationship of one node: items, or why there are none."""
    items: list = None
    cache: str = ""
    note: str = ""
    status: str = "ok"
    error: str = ""


def failure_of(exc):
    """(status, message) of an exception met while fetching; throttling is its own status."""
    code = getattr(exc, "code", "")
    if type(exc).__name__ == "Throttled" or code in THROTTLE_CODES:
        return "throttled", str(exc)
    if isinstance(exc, NotFound):
        return "not_found", str(exc)
    if isinstance(exc, VTPivotError):
        return "error", str(exc)
    log.exception("unexpected failure during a pivot")
    return "error", f"[VTP-E030] unexpected error: {type(exc).__name__}"


def _text(value):
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    return str(value)


class PivotWalker:
    """One per search: holds the memo shared by every seed of the search."""

    def __init__(self, enricher, options, policy=DEFAULT_POLICY, classifier=None,
                 warn=None, clock=time.time, sleep=time.sleep):
        self.enricher = enricher
        self.options = options
        self.classify = classifier or (lambda raw, kind=None: classify(raw, kind, policy))
        self.warn = warn or (lambda message: None)
        self.clock = clock
        self.sleep = sleep
        self.wait_left = float(options.wait)  # what is left of wait= for this search
        self.stats = PivotStats()
        self.store = getattr(enricher, "store", None)
        self.limiter = getattr(enricher, "limiter", None)
        self.queue = getattr(enricher, "queue", None)
        self.out_of_budget = ""           # the throttle message, once a call was refused
        self._resolutions = {}            # (kind, value) -> Resolution
        self._pages = {}                  # (kind, id, relationship, full) -> _Related
        self._walks = {}                  # seed key -> rows
        self._warned = set()

    # ---- public ------------------------------------------------------------------------
    def classify_seed(self, raw):
        kind = None if self.options.kind == "auto" else self.options.kind
        return self.classify(raw, kind)

    def pivot(self, raw):
        """Edge records for one seed value (one status record when it cannot be pivoted)."""
        started = self.clock()
        self.stats.seeds += 1
        indicator = self.classify_seed(raw)
        if indicator.status != "ok":
            res = resolution_for_unsendable(indicator)
            return [self._status_row(raw, indicator.value or raw, indicator.kind, "", 1,
                                     res.status, res.error, "")]
        key = (indicator.kind, indicator.value)
        if key not in self._walks:
            self.stats.walks += 1
            self._walks[key] = self._walk(raw, indicator)
        self.stats.elapsed += self.clock() - started
        return [dict(row, seed=raw) for row in self._walks[key]]

    def calls_needed(self, raw_values):
        """Upper bound of the VT calls a walk from these seeds needs (for the warning)."""
        seeds = {}
        for raw in raw_values:
            ind = self.classify_seed(raw)
            if ind.status == "ok" and (ind.kind, ind.value) not in self._walks:
                seeds.setdefault((ind.kind, ind.value), ind)
        if not seeds:
            return 0
        fresh = self._fresh_in_store(list(seeds))
        opts = self.options
        total = 0
        for kind, value in seeds:
            if (kind, value) not in fresh and (kind, value) not in self._resolutions:
                total += 1
            total += self._page_calls(kind)
            if opts.depth > 1:
                # Next levels: each fanned-out node costs an object call and its pages.
                fan = min(len(opts.relationships_for(kind)) * opts.limit, opts.max_nodes - 1)
                per_node = 1 + max(self._page_calls(k) for k in KINDS)
                level = fan
                for _ in range(opts.depth - 2):
                    level = min(level * (1 + opts.limit), opts.max_nodes)
                total += level * per_node
        return total

    def check_budget(self, raw_values):
        """Warn once (through `warn`) when the budget cannot pay for the walk now."""
        needed = self.calls_needed(raw_values)
        if not needed:
            return needed
        allowed, message = self._estimate(needed)
        if allowed < needed:
            then = (f"It waits up to wait={self.options.wait} s for the per-minute budget, "
                    "then goes as far as the budget allows" if self.options.wait else
                    "The pivot goes as far as the budget allows")
            self._warn_once("budget", f"vtpivot needs up to {needed} VirusTotal calls; "
                            f"{message}. {then}: nodes it cannot fetch are marked "
                            "vt_status=throttled and queued.")
        return needed

    # ---- the walk ----------------------------------------------------------------------
    def _walk(self, raw, indicator):
        opts = self.options
        seed_key = (indicator.kind, indicator.value)
        res = self._resolve([(indicator.kind, indicator.value, indicator)])[seed_key]
        self._check_fatal(res)
        if res.status != "ok":
            return [self._status_row(raw, indicator.value, indicator.kind, "", 1, res.status,
                                     res.error, res.cache)]
        seed_id = (res.record or {}).get("id") or indicator.value
        seed = _Node(indicator.kind, seed_id, 0, indicator, res)
        nodes = {seed.key: seed}
        edge_keys = set()
        rows = []
        frontier = [seed]
        truncated = False
        for hop in range(1, opts.depth + 1):
            edges, new_nodes = [], []
            for node in frontier:
                res = node.resolution
                if res is None or res.status != "ok":
                    status, error = (res.status, res.error) if res else ("error", "")
                    rows.append(self._status_row(raw, node.id, node.kind, "", hop, status,
                                                 error, res.cache if res else ""))
                    continue
                for rel in opts.relationships_for(node.kind):
                    related = self._related(node, rel)
                    if related.items is None:
                        rows.append(self._status_row(raw, node.id, node.kind, rel, hop,
                                                     related.status, related.error,
                                                     related.cache))
                        continue
                    for item in related.items:
                        dst = self._dst_node(item, hop, nodes)
                        if dst is None or dst.key == node.key:
                            continue
                        edge_key = (frozenset((node.key, dst.key)), FAMILY.get(rel, rel))
                        if edge_key in edge_keys:
                            continue
                        if dst.key not in nodes:
                            if len(nodes) >= opts.max_nodes:
                                truncated = True
                                continue
                            nodes[dst.key] = dst
                            new_nodes.append(dst)
                        dst = nodes[dst.key]
                        if dst.malicious is None and "malicious" in item:
                            dst.malicious = item.get("malicious")
                            dst.suspicious = item.get("suspicious")
                        edge_keys.add(edge_key)
                        edges.append((node, rel, dst, item.get("date"), related))
            full = len(nodes) >= opts.max_nodes
            if hop < opts.depth and not full:
                self._resolve_nodes(new_nodes)        # intermediate: they get expanded
            else:
                self._leaf_attributes(new_nodes)      # never fetched
            rows.extend(self._edge_row(raw, hop, *edge) for edge in edges)
            self.stats.edges += len(edges)
            frontier = new_nodes
            if full:
                truncated = truncated or hop < opts.depth
                break
        self.stats.nodes += len(nodes)
        if truncated:
            self._warn_once("max_nodes", f"vtpivot stopped at max_nodes={opts.max_nodes} "
                            "nodes: the graph is cut (raise max_nodes, or lower depth/limit)")
        if not rows:  # pivoted fine, nothing related: say so rather than vanish
            rows.append(self._status_row(raw, seed.id, seed.kind, "", 1, "ok", "",
                                         seed.resolution.cache))
        return rows

    def _dst_node(self, item, hop, nodes):
        kind = FROM_STORE_KIND.get(item.get("kind"))
        if kind is None or not item.get("id"):
            return None
        indicator = self.classify(str(item["id"]), kind)
        if indicator.status == "invalid" or not indicator.value:
            return None
        node = _Node(kind, indicator.value, hop, indicator)
        return nodes.get(node.key, node)

    # ---- relationships -----------------------------------------------------------------
    def _related(self, node, rel):
        limit = self.options.limit
        record = node.resolution.record or {}
        embedded = (record.get("relationships") or {}).get(rel)
        cursor = (record.get("relationship_cursors") or {}).get(rel)
        more_wanted = embedded is not None and len(embedded) < limit and bool(cursor)
        if rel in FULL_PAGE_RELATIONSHIPS or embedded is None or more_wanted:
            page = self._page(node, rel, full=rel in FULL_PAGE_RELATIONSHIPS)
            if page.items is not None:
                return page
            if embedded is not None:  # degrade: ids without dates/verdicts beat nothing
                return _Related(items=embedded[:limit], cache=node.resolution.cache,
                                note=f"{page.error} (edges from the object's descriptors: "
                                     "no resolution dates or verdicts)")
            return page
        return _Related(items=embedded[:limit], cache=node.resolution.cache)

    def _page(self, node, rel, full):
        key = (node.kind, node.id.lower(), rel, full)
        if key in self._pages:
            return self._pages[key]
        while True:
            if self.out_of_budget and not self._wait_for_minute():
                return _Related(status="throttled", error=self.out_of_budget, cache="miss")
            try:
                page = self.enricher.client().get_relationship(
                    STORE_KINDS[node.kind], node.id, rel, limit=self.options.limit,
                    descriptors_only=not full)
            except Exception as exc:  # noqa: BLE001 - every failure becomes a row status
                status, message = failure_of(exc)
                if isinstance(exc, VTError) and exc.http_status:
                    self.stats.vt_calls += 1
                if status == "throttled":
                    self._spent(message)
                    if self._wait_for_minute():
                        continue  # the minute window freed a call: ask again
                    self.stats.throttled_nodes += 1
                self._check_fatal(Resolution(status=status, error=message))
                result = _Related(status=status, error=message, cache="miss")
            else:
                result = self._page_result(node, rel, page)
            self._pages[key] = result
            return result

    def _page_result(self, node, rel, page):
        if page.from_cache:
            self.stats.cache_hits += 1
        else:
            self.stats.vt_calls += 1
        items = []
        for raw_item in page.items:
            item = related_from_descriptor(STORE_KINDS[node.kind], node.id, rel, raw_item)
            if item is None:
                continue
            stats = _item_stats(node.kind, raw_item)
            if stats is not None:
                item["malicious"] = int(stats.get("malicious", 0) or 0)
                item["suspicious"] = int(stats.get("suspicious", 0) or 0)
            items.append(item)
        return _Related(items=items[:self.options.limit],
                        cache="hit" if page.from_cache else "miss")

    # ---- nodes -------------------------------------------------------------------------
    def _resolve_nodes(self, nodes):
        wanted = [(n.kind, n.id, n.indicator) for n in nodes if n.indicator.status == "ok"]
        resolved = self._resolve(wanted)
        for node in nodes:
            if node.indicator.status != "ok":
                node.resolution = resolution_for_unsendable(node.indicator)
            else:
                node.resolution = resolved[(node.kind, node.id)]
                self._check_fatal(node.resolution)

    def _resolve(self, wanted):
        """{(kind, value): Resolution}; memo first, then only as many misses as the budget
        lets leave now, and more after each wait for the minute window (wait=); the rest:
        stale from the store, or throttled and queued."""
        out, todo = {}, []
        for kind, value, ind in wanted:
            if (kind, value) in self._resolutions:
                out[(kind, value)] = self._resolutions[(kind, value)]
            elif all(t[:2] != (kind, value) for t in todo):
                todo.append((kind, value, ind))
        if not todo:
            return out
        entries = self._store_entries([(k, v) for k, v, _ in todo])
        now = self.clock()
        misses = [t for t in todo if not (entries.get(t[:2]) and entries[t[:2]].is_fresh(now))]
        allowed = len(misses)
        reason = self.out_of_budget
        if misses and reason:
            allowed = 0
        elif misses:
            allowed, message = self._estimate(len(misses))
            if allowed < len(misses):
                reason = self._throttle_reason(message, len(misses))
        held = misses[allowed:]
        retry = self._send([t for t in todo if t not in held], out)
        held = retry + held
        while held and self._wait_for_minute():
            allowed = max(1, self._estimate(len(held))[0])
            batch, held = held[:allowed], held[allowed:]
            held = self._send(batch, out) + held
        if held and not reason:
            reason = self.out_of_budget or self._throttle_reason(
                "the per-minute budget is spent", len(held))
        for kind, value, _ in held:
            res = self._held(kind, value, entries.get((kind, value)), reason)
            out[(kind, value)] = self._resolutions[(kind, value)] = res
        if held:
            self._spent(reason)
            self._stop_warning()
        return out

    def _estimate(self, needed):
        """The limiter's (calls that may leave now, message); all of them, when there is no
        limiter or it fails (an estimate must never fail the search)."""
        if self.limiter is None or not hasattr(self.limiter, "estimate"):
            return needed, ""
        try:
            allowed, message = self.limiter.estimate(needed)
        except Exception:  # noqa: BLE001
            log.warning("budget estimate failed", exc_info=True)
            return needed, ""
        return min(allowed, needed), message

    def _send(self, batch, out):
        """Resolve `batch` (calls the budget lets leave); the ones our own per-minute budget
        refused come back to wait for it when wait= allows, else are answered throttled."""
        results = self.enricher.resolve([t[2] for t in batch]) if batch else {}
        retry = []
        for kind, value, ind in batch:
            res = results.get((kind, value)) or Resolution(
                status="error", error="[VTP-E030] no answer for this indicator")
            if res.status == "throttled" and res.error[1:9] == "VTP-E020" and self.wait_left > 0:
                self._spent(res.error)
                retry.append((kind, value, ind))
                continue
            self._count(res)
            if res.status == "throttled" or (res.cache == "stale" and res.error[1:9]
                                              in THROTTLE_CODES):
                self._spent(res.error)
            out[(kind, value)] = self._resolutions[(kind, value)] = res
        return retry

    def _wait_for_minute(self):
        """With wait=<seconds>: when the only window short of calls is the minute one (the
        day and the month have room, VirusTotal has not refused the key), sleep until it
        frees a call, within what is left of `wait`. True when calls may leave again."""
        if self.wait_left <= 0 or self.limiter is None or not hasattr(self.limiter,
                                                                       "remaining"):
            return False
        try:
            left = self.limiter.remaining()
        except Exception:  # noqa: BLE001 - no wait is better than a failed search
            log.warning("budget check failed", exc_info=True)
            left = {}
        minute = left.get("minute")
        if (minute is None or left.get("circuit_open_until")
                or any(left.get(window) == 0 for window in ("day", "month"))):
            self._stop_warning()
            return False
        # at least a tick per wait, so that a budget taken by other searches ends the loop
        delay = 0.05 if minute > 0 else max(
            0.05, (left.get("resets") or {}).get("minute", 0) - self.clock() + 0.05)
        if delay > self.wait_left:
            self._stop_warning()
            return False
        self.sleep(delay)
        self.wait_left -= delay
        self.stats.waited += delay
        self.out_of_budget = ""
        return True

    def _held(self, kind, value, entry, reason):
        """A miss the budget cannot pay for now: stale beats nothing, else throttled."""
        if entry is not None:
            if entry.status == "not_found":
                return Resolution(status="not_found", cache="stale",
                                  error="[VTP-E013] VirusTotal has no such object")
            return Resolution(status="ok", cache="stale", record=entry.record, error=reason)
        self.stats.throttled_nodes += 1
        if self.queue is not None:
            try:
                self.queue.push(STORE_KINDS[kind], value, reason="throttled")
            except Exception:  # noqa: BLE001 - the queue is a convenience
                log.warning("could not queue %s for background enrichment", kind)
        return Resolution(status="throttled", cache="miss",
                          error=reason + " (queued for background enrichment)")

    def _leaf_attributes(self, nodes):
        """Attributes of the last hop, from the memo or the store: never a call."""
        missing = []
        for node in nodes:
            res = self._resolutions.get((node.kind, node.id))
            if res is not None and res.record:
                node.resolution = res
            elif node.indicator.status == "ok":
                missing.append(node)
        entries = self._store_entries([(n.kind, n.id) for n in missing])
        for node in missing:
            entry = entries.get((node.kind, node.id))
            if entry is not None and entry.record:
                node.resolution = Resolution(status="ok", cache="hit", record=entry.record)

    def _store_entries(self, keys):
        if self.store is None or not keys:
            return {}
        out = {}
        by_kind = {}
        for kind, value in keys:
            by_kind.setdefault(kind, []).append(value)
        for kind, values in by_kind.items():
            try:
                found = self.store.get_many(STORE_KINDS[kind], values)
            except Exception:  # noqa: BLE001 - an unreadable cache is a miss
                log.warning("object store read failed", exc_info=True)
                continue
            for value, entry in found.items():
                out[(kind, value)] = entry
        return out

    def _fresh_in_store(self, keys):
        now = self.clock()
        return {k for k, e in self._store_entries(keys).items() if e.is_fresh(now)}

    def _page_calls(self, kind):
        opts = self.options
        from .vt_objects import OBJECT_RELATIONSHIPS

        embedded = OBJECT_RELATIONSHIPS[STORE_KINDS[kind]]
        return sum(1 for rel in opts.relationships_for(kind)
                   if rel in FULL_PAGE_RELATIONSHIPS or rel not in embedded
                   or opts.limit > EMBEDDED_PAGE_SIZE)

    # ---- budget and accounting ---------------------------------------------------------
    def _count(self, res):
        if res.cache == "hit":
            self.stats.cache_hits += 1
        elif res.cache == "miss" and res.status in ("ok", "not_found"):
            self.stats.vt_calls += 1
        elif res.status == "throttled":
            self.stats.throttled_nodes += 1

    def _spent(self, message):
        if not self.out_of_budget:
            self.out_of_budget = message.replace(" (queued for background enrichment)", "")
            if self.wait_left <= 0:
                self._stop_warning()

    def _stop_warning(self):
        if not self.out_of_budget:
            return
        waited = (f" after waiting {self.stats.waited:.0f} s of wait={self.options.wait}"
                  if self.options.wait else "")
        self._warn_once("throttled", f"vtpivot stopped calling VirusTotal{waited}: "
                        f"{self.out_of_budget}. Nodes not in the cache are marked "
                        "vt_status=throttled and queued for background enrichment.")

    def _throttle_reason(self, message, needed):
        """The code of the window that cannot pay for `needed` calls."""
        code = "VTP-E020"
        remaining = {}
        try:
            remaining = self.limiter.remaining()
        except Exception:  # noqa: BLE001
            pass
        month, day = remaining.get("month"), remaining.get("day")
        if remaining.get("circuit_open_until"):
            code = "VTP-E023"
        elif month is not None and month < needed:
            code = "VTP-E022"
        elif day is not None and day < needed:
            code = "VTP-E021"
        return f"[{code}] {message}"

    def _warn_once(self, key, message):
        if key not in self._warned:
            self._warned.add(key)
            self.warn(message)

    @staticmethod
    def _check_fatal(res):
        if res.error.startswith("[VTP-E010]"):
            raise FatalPivotError(res.error[len("[VTP-E010] "):] + ": check the key on "
                                  "the app's setup page", code="VTP-E010")

    # ---- records -----------------------------------------------------------------------
    def _status_row(self, seed, src, kind, rel, hop, status, error, cache):
        row = dict.fromkeys(OUTPUT_FIELDS, "")
        row.update(seed=seed, src=src, src_type=kind, relationship=rel, hop=str(hop),
                   vt_status=status, vt_error=error, vt_cache=cache)
        if kind in KINDS:
            row[kind] = src
        return row

    def _edge_row(self, seed, hop, src, rel, dst, date, related):
        row = dict.fromkeys(OUTPUT_FIELDS, "")
        row.update(seed=seed, src=src.id, src_type=src.kind, relationship=rel, dst=dst.id,
                   dst_type=dst.kind, hop=str(hop), resolution_date=_text(date),
                   src_malicious=_text(src.fields.get("malicious", src.malicious)),
                   vt_status="ok", vt_error=related.note, vt_cache=related.cache)
        fields = dst.fields
        for name, column in DST_FIELDS:
            row[column] = _text(fields.get(name))
        if not fields:
            row["dst_malicious"] = _text(dst.malicious)
            row["dst_suspicious"] = _text(dst.suspicious)
        # domain / ip / hash: the edge's ends by type; a same-type edge puts src there and
        # dst in related_<type>.
        row[src.kind] = src.id
        if dst.kind == src.kind:
            row["related_" + dst.kind] = dst.id
        else:
            row[dst.kind] = dst.id
        return row


def _item_stats(kind, raw_item):
    """last_analysis_stats of the related end of a full page item, when it carries them."""
    attributes = raw_item.get("attributes") or {}
    if raw_item.get("type") == "resolution":
        side = "ip_address" if kind == "domain" else "host_name"
        return attributes.get(f"{side}_last_analysis_stats")
    return attributes.get("last_analysis_stats")
