"""Cache of summarized VirusTotal objects, keyed by (kind, canonical id).

Values are the small summary records of vt_objects.py (1-5 KB), never full VT responses,
stored as compact JSON through a storage backend (storage_backends.py), so every process of
the search head (or of the cluster, with Redis) shares one cache.

Freshness: an entry is fresh for ``ttl_seconds[kind]`` (``not_found_ttl`` for "VirusTotal has
no such object"), then stale. Stale entries are still returned, flagged by
``is_fresh() == False``: the caller decides (serve stale when VT errors or the budget is
spent, refresh otherwise). ``stale_max_age`` seconds after it expires an entry is gone.

Sensible defaults (settings.py holds the ones in force): domains and IPs change daily
(resolutions, verdicts): 1 day; a file's verdicts settle after first analyses: 7 days;
"not found" is often soon wrong for a new file or domain: 1 hour; stale entries kept
30 days for stale-if-error.

Files: VT's canonical id is the sha256. ``put("file", sha256, record, aliases=(md5, sha1))``
makes the md5 and sha1 point at the one sha256 entry, so any of the three finds it.
Keys are compared case-insensitively (hashes, domains and IPv6 hex are).
"""
from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from typing import Callable, Dict, Iterable, Mapping, Optional

KINDS = ("domain", "ip", "file")
_KIND_ALIASES = {"hash": "file"}  # indicators.py says "hash" where VT says "file"
STATUSES = ("ok", "not_found")

DEFAULT_TTL_SECONDS = {"domain": 86400, "ip": 86400, "file": 7 * 86400}
DEFAULT_NOT_FOUND_TTL = 3600
DEFAULT_STALE_MAX_AGE = 30 * 86400

NS_OBJECT = "obj"
NS_ALIAS = "alias"

_log = logging.getLogger("vtpivot.object_store")
_JSON_SEPARATORS = (",", ":")
# The C scanner behind json.loads, called directly (_decode_rows): json.loads adds ~5 us of
# Python-level wrapping per call (two whitespace regexes, three calls), a third of the
# decode of a 450-byte record on a slow host. What it does not take whole (leading space,
# BOM, bytes, trailing data, bad JSON) goes through json.loads: same result, same errors.
_scan_json = json.decoder.JSONDecoder().scan_once


@dataclass
class CachedObject:
    kind: str
    id: str  # the canonical id (a file's sha256 even when found by md5 or sha1)
    record: Optional[dict]  # the summary record; None when status is "not_found"
    status: str  # "ok" | "not_found"
    fetched_at: float
    expires_at: float

    def is_fresh(self, now: Optional[float] = None) -> bool:
        """Pass `now` from the same clock as the store's when it is not time.time()."""
        return (time.time() if now is None else now) < self.expires_at


def normalize_kind(kind: str) -> str:
    kind = _KIND_ALIASES.get(kind, kind)
    if kind not in KINDS:
        raise ValueError("unknown object kind %r (expected one of %s)" % (kind, ", ".join(KINDS)))
    return kind


def _storage_key(kind, key):
    return "%s:%s" % (kind, key.strip().lower())


class ObjectStore:
    def __init__(self, backend, ttl_seconds: Optional[Mapping[str, int]] = None,
                 not_found_ttl: int = DEFAULT_NOT_FOUND_TTL,
                 stale_max_age: int = DEFAULT_STALE_MAX_AGE,
                 clock: Callable[[], float] = time.time,
                 logger: Optional[logging.Logger] = None):
        self.backend = backend
        self.ttl_seconds = dict(DEFAULT_TTL_SECONDS)
        for kind, ttl in (ttl_seconds or {}).items():
            self.ttl_seconds[normalize_kind(kind)] = int(ttl)
        self.not_found_ttl = int(not_found_ttl)
        self.stale_max_age = max(0, int(stale_max_age))
        self.clock = clock
        self.logger = logger or _log

    # ---- reads ----------------------------------------------------------------------------
    def get(self, kind: str, key: str) -> Optional[CachedObject]:
        """The entry for `key` (aliases resolved), fresh or stale; None when absent, older
        than stale_max_age past its expiry, or unreadable."""
        return self.get_many(kind, [key]).get(key)

    def get_many(self, kind: str, keys: Iterable[str]) -> Dict[str, CachedObject]:
        """{requested key: entry} for the keys found; one batched backend read (two more for
        file hashes found only through an alias)."""
        kind = normalize_kind(kind)
        wanted = {}  # storage key -> requested keys (several spellings may share one)
        prefix = kind + ":"  # _storage_key, inlined: this runs once per row of a lookup
        for key in keys:
            sk = prefix + key.strip().lower()
            spellings = wanted.get(sk)
            if spellings is None:
                wanted[sk] = [key]
            else:
                spellings.append(key)
        if not wanted:
            return {}
        now = self.clock()
        corrupt = []
        found = self._decode_rows(kind, self.backend.get_many(NS_OBJECT, list(wanted)), now,
                                  corrupt)
        missing = [sk for sk in wanted if sk not in found]
        if missing and kind == "file":
            targets = self.backend.get_many(NS_ALIAS, missing)  # alias key -> canonical id
            if targets:
                target_keys = {sk: _storage_key(kind, target) for sk, target in targets.items()}
                rows = self.backend.get_many(NS_OBJECT, set(target_keys.values()))
                by_target = self._decode_rows(kind, rows, now, corrupt)
                for sk, tk in target_keys.items():
                    if tk in by_target:
                        found[sk] = by_target[tk]
        if corrupt:
            self.logger.warning("cache_entry_unreadable count=%d keys=\"%s\" "
                                "detail=\"treated as misses; the next fetch rewrites them\"",
                                len(corrupt), ",".join(corrupt[:5]))
        result = {}
        for sk, entry in found.items():
            for key in wanted.get(sk, ()):
                result[key] = entry
        return result

    def _decode_rows(self, kind, rows, now, corrupt):
        out = {}
        scan, stale_max_age = _scan_json, self.stale_max_age
        for sk, raw in rows.items():
            try:
                try:
                    doc, end = scan(raw, 0)
                except (StopIteration, TypeError, ValueError):
                    end = -1
                if end != len(raw):
                    doc = json.loads(raw)
                entry = CachedObject(kind, doc["i"], doc["r"], doc["s"], float(doc["f"]),
                                     float(doc["e"]))
                if entry.status not in STATUSES or not (
                        entry.record is None or isinstance(entry.record, dict)):
                    raise ValueError("bad status or record")
            except (ValueError, KeyError, TypeError):
                corrupt.append(sk)
                continue
            if now < entry.expires_at + stale_max_age:
                out[sk] = entry
        return out

    # ---- writes ---------------------------------------------------------------------------
    def put(self, kind: str, canonical_id: str, record: Optional[dict], status: str = "ok",
            aliases: Iterable[str] = ()) -> CachedObject:
        kind = normalize_kind(kind)
        if status not in STATUSES:
            raise ValueError("status must be one of %s, not %r" % (STATUSES, status))
        if record is not None and not isinstance(record, dict):
            raise TypeError("record must be a dict or None")
        ttl = self.not_found_ttl if status == "not_found" else self.ttl_seconds[kind]
        now = self.clock()
        entry = CachedObject(kind, canonical_id, record, status, now, now + ttl)
        raw = json.dumps({"i": canonical_id, "s": status, "f": now, "e": now + ttl,
                          "r": record}, separators=_JSON_SEPARATORS)
        keep = ttl + self.stale_max_age  # how long the backend keeps it (GC horizon)
        canonical_key = _storage_key(kind, canonical_id)
        self.backend.put_many(NS_OBJECT, {canonical_key: raw}, keep)
        alias_keys = {_storage_key(kind, a): canonical_id for a in aliases if a}
        alias_keys.pop(canonical_key, None)
        if alias_keys:
            self.backend.put_many(NS_ALIAS, alias_keys, keep)
            # A "not found" cached under an md5/sha1 would shadow the alias: drop it.
            self.backend.delete(NS_OBJECT, list(alias_keys))
        return entry

    def put_not_found(self, kind: str, key: str) -> CachedObject:
        return self.put(kind, key, None, status="not_found")
