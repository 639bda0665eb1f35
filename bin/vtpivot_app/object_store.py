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

Stored text: one compact JSON document, its head first and its record last:
    {"h": [id, status, fetched_at, expires_at, view format, view],
     "i": id, "s": status, "f": fetched_at, "e": expires_at, "r": <record or null>}
The head carries the record's lookup view (lookup_view.py: its rows rendered as CSV), so a
cached lookup decodes the head alone, a list at a known offset (a third faster than an
object), and never the record (``get_many(..., need_record=False)``); the record, after the
last key, is decoded when first asked for. The other keys are 0.1.0's entry, which 0.1.0
reads from this document as from its own (mixed versions share a cache without refetching);
0.1.0's entries read here as before, their view rebuilt from the record.

Files: VT's canonical id is the sha256. ``put("file", sha256, record, aliases=(md5, sha1))``
makes the md5 and sha1 point at the one sha256 entry, so any of the three finds it.
Keys are compared case-insensitively (hashes, domains and IPv6 hex are).
"""
from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable, Mapping

from .lookup_view import VIEW_FORMAT, is_view, record_view

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
# The C scanner behind json.loads, called directly on the head (_decode_rows): it reads one
# value at an offset and stops there, leaving the record after it undecoded, without
# json.loads' Python-level wrapping (~5 us a call on a slow host). Everything else (the
# record, 0.1.0's entries, unreadable text) goes through json.loads, with its errors.
_scan_json = json.decoder.JSONDecoder().scan_once
# The stored document starts with its head and ends with its record (see the docstring).
_HEAD_START = '{"h":'
_RECORD_KEY = ',"r":'


class CachedObject:
    """One entry. `record` is decoded from the stored text on first use (a lookup never
    asks for it); `view` is the stored lookup view, or None when the entry has none of the
    current format (lookup_view.VIEW_FORMAT)."""

    __slots__ = ("kind", "id", "status", "fetched_at", "expires_at", "view", "_record",
                 "_record_text")

    def __init__(self, kind: str, id: str, record: dict | None, status: str,
                 fetched_at: float, expires_at: float, view: list | None = None,
                 record_text: str | None = None):
        self.kind = kind
        self.id = id  # the canonical id (a file's sha256 even when found by md5 or sha1)
        self.status = status  # "ok" | "not_found"
        self.fetched_at = fetched_at
        self.expires_at = expires_at
        self.view = view
        self._record = record  # the summary record; None when status is "not_found"
        self._record_text = record_text  # its stored JSON, until first asked for

    @property
    def record(self) -> dict | None:
        if self._record_text is not None:
            text, self._record_text = self._record_text, None
            try:
                record = json.loads(text)
            except ValueError:
                record = None
            if record is not None and not isinstance(record, dict):
                record = None
            if record is None and self.status == "ok":
                _log.warning("cache_entry_unreadable count=1 keys=\"%s:%s\" detail=\"record "
                             "part unreadable; served without it\"", self.kind, self.id)
            self._record = record
        return self._record

    def is_fresh(self, now: float | None = None) -> bool:
        """Pass `now` from the same clock as the store's when it is not time.time()."""
        return (time.time() if now is None else now) < self.expires_at

    def __eq__(self, other):  # the view is derived from the record: not compared
        return isinstance(other, CachedObject) and (
            self.kind, self.id, self.status, self.fetched_at, self.expires_at, self.record) == (
            other.kind, other.id, other.status, other.fetched_at, other.expires_at, other.record)

    def __repr__(self):
        return "CachedObject(%r, %r, status=%r, expires_at=%r)" % (
            self.kind, self.id, self.status, self.expires_at)


def normalize_kind(kind: str) -> str:
    kind = _KIND_ALIASES.get(kind, kind)
    if kind not in KINDS:
        raise ValueError("unknown object kind %r (expected one of %s)" % (kind, ", ".join(KINDS)))
    return kind


def _storage_key(kind, key):
    return "%s:%s" % (kind, key.strip().lower())


class ObjectStore:
    def __init__(self, backend, ttl_seconds: Mapping[str, int] | None = None,
                 not_found_ttl: int = DEFAULT_NOT_FOUND_TTL,
                 stale_max_age: int = DEFAULT_STALE_MAX_AGE,
                 clock: Callable[[], float] = time.time,
                 logger: logging.Logger | None = None):
        self.backend = backend
        self.ttl_seconds = dict(DEFAULT_TTL_SECONDS)
        for kind, ttl in (ttl_seconds or {}).items():
            self.ttl_seconds[normalize_kind(kind)] = int(ttl)
        self.not_found_ttl = int(not_found_ttl)
        self.stale_max_age = max(0, int(stale_max_age))
        self.clock = clock
        self.logger = logger or _log

    # ---- reads ----------------------------------------------------------------------------
    def get(self, kind: str, key: str) -> CachedObject | None:
        """The entry for `key` (aliases resolved), fresh or stale; None when absent, older
        than stale_max_age past its expiry, or unreadable."""
        return self.get_many(kind, [key]).get(key)

    def get_many(self, kind: str, keys: Iterable[str],
                 need_record: bool = True) -> dict[str, CachedObject]:
        """{requested key: entry} for the keys found; one batched backend read (two more for
        file hashes found only through an alias). need_record=False (the lookups) leaves
        the record of an entry that has a current view undecoded until asked for: an
        unreadable record part is then found late (logged, served without it) instead of
        making the entry a miss."""
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
                                  corrupt, need_record)
        missing = [sk for sk in wanted if sk not in found]
        if missing and kind == "file":
            targets = self.backend.get_many(NS_ALIAS, missing)  # alias key -> canonical id
            if targets:
                target_keys = {sk: _storage_key(kind, target) for sk, target in targets.items()}
                rows = self.backend.get_many(NS_OBJECT, set(target_keys.values()))
                by_target = self._decode_rows(kind, rows, now, corrupt, need_record)
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

    def _decode_rows(self, kind, rows, now, corrupt, need_record=True):
        out = {}
        scan, stale_max_age, view_format = _scan_json, self.stale_max_age, VIEW_FORMAT
        for sk, raw in rows.items():
            try:
                if type(raw) is str and raw.startswith(_HEAD_START):
                    head, end = scan(raw, len(_HEAD_START))
                    canonical_id, status, fetched_at, expires_at, head_format, view = head
                    if head_format != view_format:
                        view = None  # another version's view: rebuilt from the record
                    elif view is not None and not is_view(kind, view):
                        raise ValueError("bad view")
                    cut = raw.find(_RECORD_KEY, end)  # the last key: the record runs to "}"
                    if cut < 0 or not raw.endswith("}"):
                        raise ValueError("no record")
                    record = record_text = None
                    if need_record or view is None:
                        record = json.loads(raw[cut + len(_RECORD_KEY):-1])
                    elif status == "ok":
                        record_text = raw[cut + len(_RECORD_KEY):-1]
                else:  # 0.1.0's entries: the same document without the head
                    doc = json.loads(raw)
                    canonical_id, status, fetched_at, expires_at = (
                        doc["i"], doc["s"], doc["f"], doc["e"])
                    record, view, record_text = doc["r"], None, None
                if status not in STATUSES or not (record is None or isinstance(record, dict)):
                    raise ValueError("bad status or record")
                expires_at = float(expires_at)
                if now < expires_at + stale_max_age:
                    out[sk] = CachedObject(kind, canonical_id, record, status,
                                           float(fetched_at), expires_at, view, record_text)
            except (ValueError, KeyError, TypeError, AttributeError, StopIteration):
                corrupt.append(sk)
        return out

    # ---- writes ---------------------------------------------------------------------------
    def put(self, kind: str, canonical_id: str, record: dict | None, status: str = "ok",
            aliases: Iterable[str] = ()) -> CachedObject:
        kind = normalize_kind(kind)
        if status not in STATUSES:
            raise ValueError("status must be one of %s, not %r" % (STATUSES, status))
        if record is not None and not isinstance(record, dict):
            raise TypeError("record must be a dict or None")
        ttl = self.not_found_ttl if status == "not_found" else self.ttl_seconds[kind]
        now = self.clock()
        view = record_view(kind, record) if record is not None else None
        head = json.dumps([canonical_id, status, now, now + ttl, VIEW_FORMAT, view],
                          separators=_JSON_SEPARATORS)
        fields = json.dumps({"i": canonical_id, "s": status, "f": now, "e": now + ttl},
                            separators=_JSON_SEPARATORS)
        raw = "%s%s,%s%s%s}" % (_HEAD_START, head, fields[1:-1], _RECORD_KEY,
                                json.dumps(record, separators=_JSON_SEPARATORS))
        entry = CachedObject(kind, canonical_id, record, status, now, now + ttl, view)
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
