"""A local stand-in for the VirusTotal API v3 (stdlib only: http.server).

Serves GET /api/v3/{domains|ip_addresses|files}/{id}, the two relationship forms, the
``?relationships=`` parameter and /api/v3/resolutions/{id}, with VT's error bodies, per-key
quotas, gzip, request accounting and fault injection. See README.md for the details and the
choices made where VT's behaviour is not documented.
"""

import base64
import gzip
import json
import os
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, quote, unquote, urlsplit

from .dataset import (COLLECTION_TYPES, COUNTED_RELATIONSHIPS, ONE_TO_ONE,
                      PUBLIC_RELATIONSHIPS, RELATIONSHIPS, Dataset, load_dataset,
                      resolution_id)

API_PREFIX = "/api/v3"
CONTROL_PREFIX = "/_fakevt"
HERE = os.path.dirname(os.path.abspath(__file__))
ERRORS_DIR = os.path.join(HERE, "data", "errors")
BUILTIN_DATASETS = {
    "basic": os.path.join(HERE, "data", "basic"),
    "scenario": os.path.join(HERE, "..", "..", "demo", "scenario"),
}
BUILTIN_DATASETS["demo"] = BUILTIN_DATASETS["scenario"]

DEFAULT_QUOTAS = {
    "public": {"per_minute": 4, "per_day": 500},
    "premium": {"per_minute": 1000, "per_day": 1000000},
}
DEFAULT_LIMIT = 10
MAX_LIMIT = 40
MAX_LOG = 200000

# Messages of errors whose real body we hold (data/errors/, provenance in data/SOURCES.md).
_REAL_ERROR_FILES = {
    "BadRequestError": "error_400_limit_too_large.json",
    "AuthenticationRequiredError": "error_401_authentication_required.json",
    "WrongCredentialsError": "error_401_wrong_credentials_unverified.json",
    "ForbiddenError": "error_403_forbidden.json",
    "QuotaExceededError": "error_429_quota_exceeded_vtgo_mock.json",
}


def _real_messages():
    out = {}
    for code, name in _REAL_ERROR_FILES.items():
        with open(os.path.join(ERRORS_DIR, name), encoding="utf-8") as fh:
            body = json.load(fh)
        assert body["error"]["code"] == code, name
        out[code] = body["error"]["message"]
    return out


MESSAGES = _real_messages()
# From VT's documented error table (docs.virustotal.com/reference/errors); not captures.
MESSAGES.setdefault("TooManyRequestsError", "Too many requests.")
TRANSIENT_MESSAGE = "Transient server error. Retry might work."

NOT_FOUND_NOUN = {"domains": "Domain", "ip_addresses": "IP address", "files": "File",
                  "resolutions": "Resolution"}


def encode_cursor(offset):
    """VT's cursors for these collections are base64 of a pickled int ("STEwCi4=" = I10\\n.)."""
    return base64.b64encode(("I%d\n." % offset).encode("ascii")).decode("ascii")


def decode_cursor(cursor):
    try:
        raw = base64.b64decode(cursor.encode("ascii"), validate=True).decode("ascii")
    except (ValueError, UnicodeError):
        return None
    m = re.match(r"^I(\d+)\n\.$", raw)
    return int(m.group(1)) if m else None


class VTError(Exception):
    def __init__(self, status, code, message, headers=None):
        Exception.__init__(self, message)
        self.status, self.code, self.message = status, code, message
        self.headers = headers or {}

    def body(self):
        return {"error": {"code": self.code, "message": self.message}}


class RecordedRequest:
    """One API request as the server saw it."""

    __slots__ = ("method", "path", "raw_path", "query", "headers", "header_items", "status",
                 "time")

    def __init__(self, method, path, raw_path, query, header_items, when):
        self.method, self.path, self.raw_path, self.query = method, path, raw_path, query
        self.header_items = header_items                    # [(name as sent, value)]
        self.headers = {k.lower(): v for k, v in header_items}   # lower-cased names
        self.status, self.time = None, when

    def as_dict(self):
        return {"method": self.method, "path": self.path, "raw_path": self.raw_path,
                "query": self.query, "headers": self.headers,
                "header_items": self.header_items, "status": self.status, "time": self.time}

    def __repr__(self):
        return "<%s %s?%s -> %s>" % (self.method, self.path, self.query, self.status)


class _State:
    """Everything mutable, behind one lock (shared by handler threads and the API)."""

    def __init__(self, keys, quotas, key_quotas, retry_after, minute_error, clock):
        self.lock = threading.RLock()
        self.keys = dict(keys)
        self.quotas = {tier: dict(v) for tier, v in DEFAULT_QUOTAS.items()}
        for tier, v in (quotas or {}).items():
            self.quotas.setdefault(tier, {}).update(v)
        self.key_quotas = {k: dict(v) for k, v in (key_quotas or {}).items()}
        self.retry_after = retry_after
        self.minute_error = minute_error
        self.clock = clock
        self.clock_offset = 0.0
        self.faults = []      # dicts: kind, path (regex), count (None = forever), options
        self.latency = []     # dicts: path (regex), ms, count
        self.usage = {}       # key -> {"minute": (window, n), "day": (window, n)}
        self.log = []
        self.total = 0
        self.by_path = {}
        self.by_request = {}
        self.by_status = {}
        self.last_headers = {}

    def now(self):
        return self.clock() + self.clock_offset

    def reset_counts(self):
        with self.lock:
            self.log, self.total = [], 0
            self.by_path, self.by_request, self.by_status = {}, {}, {}
            self.last_headers = {}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "fakevt/1.0"

    def version_string(self):
        return self.server_version

    # quiet by default; FakeVirusTotal(verbose=True) logs to stderr
    def log_message(self, fmt, *args):
        if self.server.fake.verbose:
            BaseHTTPRequestHandler.log_message(self, fmt, *args)

    # -- plumbing -----------------------------------------------------------------------------
    def _mark(self, status):
        """Account the status BEFORE answering, so a client that reads stats right after
        its response sees it."""
        rec = getattr(self, "_rec", None)
        if rec is None or rec.status is not None:
            return
        st = self.server.fake._state
        with st.lock:
            rec.status = status
            st.by_status[str(status)] = st.by_status.get(str(status), 0) + 1

    def _send(self, status, body, headers=None, allow_gzip=True):
        self._mark(status)
        raw = body if isinstance(body, bytes) else json.dumps(body).encode("utf-8")
        accept = self.headers.get("Accept-Encoding", "") or ""
        use_gzip = allow_gzip and _accepts_gzip(accept)
        if use_gzip:
            raw = gzip.compress(raw, 6)
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        if use_gzip:
            self.send_header("Content-Encoding", "gzip")
            self.send_header("Vary", "Accept-Encoding")
        for k, v in (headers or {}).items():
            self.send_header(k, str(v))
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(raw)
        return status

    def _error(self, err):
        allow_gzip = err.status != 429     # VT sends 429 bodies uncompressed
        return self._send(err.status, err.body(), err.headers, allow_gzip=allow_gzip)

    def _read_body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n > 0 else b""

    def do_GET(self):
        self._dispatch()

    def do_POST(self):
        self._dispatch()

    def do_PUT(self):
        self._dispatch()

    def do_DELETE(self):
        self._dispatch()

    def do_PATCH(self):
        self._dispatch()

    def _dispatch(self):
        fake = self.server.fake
        self._rec = None
        parts = urlsplit(self.path)
        path = unquote(parts.path)
        try:
            if path.startswith(CONTROL_PREFIX + "/") or path == CONTROL_PREFIX:
                self._control(path[len(CONTROL_PREFIX):], parts.query)
                return
            rec = fake._record(self.command, path, parts.path, parts.query, self.headers)
            self._rec = rec
            status = self._api(fake, rec, path, parts.query)
            self._mark(status)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    # -- control surface ----------------------------------------------------------------------
    def _control(self, sub, query):
        fake = self.server.fake
        body = self._read_body()
        try:
            payload = json.loads(body.decode("utf-8")) if body.strip() else {}
        except ValueError:
            self._send(400, {"error": "request body is not JSON"}, allow_gzip=False)
            return
        q = parse_qs(query)
        if sub in ("/stats", "/stats/") and self.command == "GET":
            self._send(200, fake.stats(recent=int(q.get("recent", ["50"])[0])), allow_gzip=False)
        elif sub == "/requests" and self.command == "GET":
            prefix = q.get("path_prefix", [""])[0]
            self._send(200, {"requests": [r.as_dict() for r in fake.requests(prefix)]},
                       allow_gzip=False)
        elif sub == "/health" and self.command == "GET":
            self._send(200, {"ok": True, "url": fake.url, "dataset": fake.dataset.name},
                       allow_gzip=False)
        elif sub == "/reset" and self.command == "POST":
            fake.reset(only=payload.get("only"))
            self._send(200, {"ok": True}, allow_gzip=False)
        elif sub == "/config" and self.command == "POST":
            try:
                fake.configure(payload)
            except (ValueError, TypeError, KeyError) as exc:
                self._send(400, {"error": "bad config: %s" % exc}, allow_gzip=False)
                return
            self._send(200, {"ok": True, "config": fake.config_snapshot()}, allow_gzip=False)
        else:
            self._send(404, {"error": "unknown control endpoint %s %s" % (self.command, sub)},
                       allow_gzip=False)

    # -- the API ------------------------------------------------------------------------------
    def _api(self, fake, rec, path, query):
        fake._apply_latency(path)
        fault = fake._take_fault(path)
        if fault is not None:
            return self._fault(fault)
        try:
            if not path.startswith(API_PREFIX + "/"):
                raise VTError(404, "NotFoundError", "Resource not found.")
            key = self.headers.get("x-apikey")
            if key is None or key == "":
                raise VTError(401, "AuthenticationRequiredError",
                              MESSAGES["AuthenticationRequiredError"])
            with fake._state.lock:
                tier = fake._state.keys.get(key)
            if tier is None:
                raise VTError(401, "WrongCredentialsError", MESSAGES["WrongCredentialsError"])
            fake._consume_quota(key, tier)
            if self.command != "GET":
                raise VTError(405, "MethodNotAllowedError",
                              "Method %s not allowed for this resource" % self.command)
            body = fake._route(path[len(API_PREFIX):], parse_qs(query, keep_blank_values=True),
                               tier)
        except VTError as err:
            return self._error(err)
        return self._send(200, body)

    def _fault(self, fault):
        kind = fault["kind"]
        self.close_connection = True
        if kind == "transient":
            return self._send(503, {"error": {"code": "TransientError",
                                              "message": TRANSIENT_MESSAGE}},
                              {"Connection": "close"})
        if kind == "error":
            return self._send(int(fault.get("status", 500)),
                              {"error": {"code": fault.get("code", "InternalError"),
                                         "message": fault.get("message", "Internal error")}},
                              {"Connection": "close"})
        if kind == "quota":
            return self._error(VTError(429, fault.get("code", "QuotaExceededError"),
                                       MESSAGES.get(fault.get("code", "QuotaExceededError"),
                                                    "Quota exceeded")))
        if kind in ("malformed", "truncate"):
            self._mark(200)
        if kind == "malformed":
            raw = fault.get("body", '{"data": {"id": "x", "type": "domain", "attributes": {')
            raw = raw.encode("utf-8")
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(raw)
            return 200
        if kind == "truncate":
            raw = json.dumps({"data": {"id": "truncated", "type": "domain",
                                       "attributes": {"padding": "x" * 2048}}}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(raw[: max(1, len(raw) // 3)])
            self.wfile.flush()
            _hard_close(self)
            return 200
        if kind == "drop":
            self._mark(0)
            _hard_close(self)
            return 0
        if kind == "hang":
            self._mark(0)
            self.server.fake._stopping.wait(float(fault.get("seconds", 30)))
            _hard_close(self)
            return 0
        raise AssertionError("unknown fault kind %r" % kind)


def _hard_close(handler):
    handler.close_connection = True
    try:
        handler.wfile.flush()
    except OSError:
        pass
    try:
        import socket
        handler.connection.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


def _accepts_gzip(header):
    for part in header.split(","):
        bits = [b.strip() for b in part.split(";")]
        if bits[0].lower() in ("gzip", "*"):
            q = 1.0
            for b in bits[1:]:
                if b.startswith("q="):
                    try:
                        q = float(b[2:])
                    except ValueError:
                        q = 0.0
            if q > 0:
                return True
    return False


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128          # benchmarks open many connections at once

    def handle_error(self, request, client_address):
        if self.fake.verbose:
            ThreadingHTTPServer.handle_error(self, request, client_address)


FAULT_KINDS = ("transient", "error", "quota", "malformed", "truncate", "drop", "hang")


class FakeVirusTotal:
    """The fake VT server. Use as a context manager, or start()/stop().

    dataset: a Dataset, a dataset directory, or a builtin name ("basic", "scenario").
    keys: {api_key: "public" | "premium"}.
    quotas: {"public": {"per_minute": 4, "per_day": 500}, "premium": {...}} (None = no limit).
    key_quotas: per-key overrides of the tier quotas.
    retry_after: None (no header, like VT), an int of seconds, or "auto" (seconds left in the
        window that is exhausted).
    minute_error: error code of a per-minute 429: "QuotaExceededError" (default, what VT sends
        for the public API's 4/min) or "TooManyRequestsError".
    links_base: base of the URLs written in `links` (default: this server's API URL, so that
        following links.next works; "https://www.virustotal.com/api/v3" mimics VT verbatim).
    clock: a callable returning epoch seconds (default time.time); advance_clock() adds to it.
    """

    def __init__(self, dataset="basic", keys=None, host="127.0.0.1", port=0, quotas=None,
                 key_quotas=None, retry_after=None, minute_error="QuotaExceededError",
                 links_base=None, clock=None, verbose=False, max_log=MAX_LOG):
        if host not in ("127.0.0.1", "localhost", "::1"):
            raise ValueError("fakevt binds to loopback only")
        if isinstance(dataset, Dataset):
            self.dataset = dataset
        else:
            path = BUILTIN_DATASETS.get(dataset, dataset)
            self.dataset = load_dataset(path)
        if keys is None:
            keys = {"test-public-key": "public", "test-premium-key": "premium"}
        for tier in keys.values():
            if tier not in ("public", "premium"):
                raise ValueError("key tier must be public or premium, not %r" % tier)
        self._state = _State(keys, quotas, key_quotas, retry_after, minute_error,
                             clock or time.time)
        self.host, self._port = host, port
        self._links_base = links_base
        self.verbose = verbose
        self.max_log = max_log
        self._server = None
        self._thread = None
        self._stopping = threading.Event()

    # -- lifecycle ----------------------------------------------------------------------------
    def start(self):
        if self._server is not None:
            return self
        self._stopping.clear()
        self._server = _Server((self.host, self._port), _Handler)
        self._server.fake = self
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.05},
                                        name="fakevt", daemon=True)
        self._thread.start()
        return self

    def stop(self):
        if self._server is None:
            return
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
        self._server = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    @property
    def port(self):
        return self._server.server_address[1] if self._server else self._port

    @property
    def base_url(self):
        return "http://%s:%d" % (self.host, self.port)

    @property
    def url(self):
        """The API root to give a client as VT_API_URL, e.g. http://127.0.0.1:54321/api/v3."""
        return self.base_url + API_PREFIX

    @property
    def control_url(self):
        return self.base_url + CONTROL_PREFIX

    @property
    def links_base(self):
        return (self._links_base or self.url).rstrip("/")

    # -- accounting ---------------------------------------------------------------------------
    def _record(self, method, path, raw_path, query, headers):
        rec = RecordedRequest(method, path, raw_path, query, list(headers.items()),
                              self._state.now())
        st = self._state
        with st.lock:
            st.total += 1
            st.by_path[path] = st.by_path.get(path, 0) + 1
            key = "%s %s%s" % (method, path, ("?" + query) if query else "")
            st.by_request[key] = st.by_request.get(key, 0) + 1
            st.last_headers = rec.headers
            st.log.append(rec)
            if len(st.log) > self.max_log:
                del st.log[: len(st.log) - self.max_log]
        return rec

    @staticmethod
    def _norm_prefix(prefix):
        if prefix and prefix.startswith("/") and not prefix.startswith(API_PREFIX):
            return API_PREFIX + prefix
        return prefix or ""

    def calls(self, path_prefix="", method=None):
        """Number of API requests whose decoded path starts with path_prefix.

        A prefix without "/api/v3" gets it prepended ("/domains/x" == "/api/v3/domains/x").
        """
        prefix = self._norm_prefix(path_prefix)
        with self._state.lock:
            if not prefix and method is None:
                return self._state.total
            return sum(n for p, n in self._state.by_path.items() if p.startswith(prefix)) \
                if method is None else \
                sum(1 for r in self._state.log if r.path.startswith(prefix) and r.method == method)

    def requests(self, path_prefix=""):
        prefix = self._norm_prefix(path_prefix)
        with self._state.lock:
            return [r for r in self._state.log if r.path.startswith(prefix)]

    @property
    def total_calls(self):
        with self._state.lock:
            return self._state.total

    @property
    def last_headers(self):
        """Headers of the last API request, names lower-cased (see requests() for as-sent)."""
        with self._state.lock:
            return dict(self._state.last_headers)

    def counts(self):
        """{decoded path: count}."""
        with self._state.lock:
            return dict(self._state.by_path)

    def counts_by_request(self):
        """{"GET /api/v3/...?query": count}."""
        with self._state.lock:
            return dict(self._state.by_request)

    def stats(self, recent=50):
        st = self._state
        with st.lock:
            return {"total": st.total, "by_path": dict(st.by_path),
                    "by_request": dict(st.by_request), "by_status": dict(st.by_status),
                    "last_headers": dict(st.last_headers),
                    "recent": [r.as_dict() for r in st.log[-recent:]] if recent > 0 else [],
                    "quota_usage": {_mask(k): v for k, v in st.usage.items()},
                    "pending_faults": [dict(f) for f in st.faults],
                    "latency": [dict(rule) for rule in st.latency]}

    def reset_counts(self):
        self._state.reset_counts()

    def reset(self, only=None):
        """Reset counts, quota usage, faults and latency (or only those named in `only`)."""
        what = set(only or ("counts", "quotas", "faults", "latency"))
        st = self._state
        with st.lock:
            if "counts" in what:
                st.reset_counts()
            if "quotas" in what:
                st.usage = {}
            if "faults" in what:
                st.faults = []
            if "latency" in what:
                st.latency = []

    # -- configuration ------------------------------------------------------------------------
    def inject(self, kind, count=1, path=None, **options):
        """Queue a fault for the next `count` API requests whose path matches regex `path`.

        kinds: transient (503 TransientError), error (status=, code=, message=), quota (429),
        malformed (200 + invalid JSON, body=), truncate (Content-Length larger than the body,
        then close), drop (close without a response), hang (seconds=, default 30: no answer,
        then close). count=None keeps the fault forever.
        """
        if kind not in FAULT_KINDS:
            raise ValueError("unknown fault kind %r (one of %s)" % (kind, ", ".join(FAULT_KINDS)))
        if path is not None:
            re.compile(path)
        fault = dict(options, kind=kind, count=count, path=path)
        with self._state.lock:
            self._state.faults.append(fault)

    def set_latency(self, ms, path=None, count=None):
        """Delay matching API requests by `ms` milliseconds (count=None: every one)."""
        if path is not None:
            re.compile(path)
        with self._state.lock:
            self._state.latency.append({"ms": float(ms), "path": path, "count": count})

    def clear_faults(self):
        with self._state.lock:
            self._state.faults, self._state.latency = [], []

    def set_key(self, key, tier):
        if tier is None:
            with self._state.lock:
                self._state.keys.pop(key, None)
            return
        if tier not in ("public", "premium"):
            raise ValueError("tier must be public or premium")
        with self._state.lock:
            self._state.keys[key] = tier

    def set_quota(self, tier_or_key, per_minute=None, per_day=None):
        """Set the per-minute/per-day limits of a tier ("public"/"premium") or of one key."""
        with self._state.lock:
            target = self._state.quotas if tier_or_key in ("public", "premium") \
                else self._state.key_quotas
            target[tier_or_key] = {"per_minute": per_minute, "per_day": per_day}

    def advance_clock(self, seconds):
        """Move the quota clock forward (e.g. 60 to open a new minute window)."""
        with self._state.lock:
            self._state.clock_offset += float(seconds)

    def configure(self, cfg):
        """Apply a JSON-able config (what POST /_fakevt/config accepts). Keys:

        keys {key: tier|null}; quotas {tier: {per_minute, per_day}}; key_quotas {key: {...}};
        retry_after int|"auto"|null; minute_error str; latency [{ms, path, count}] (appended);
        faults [{kind, count, path, ...}] (appended); clear_faults bool (first);
        advance_clock seconds; reset [what...].
        """
        known = {"keys", "quotas", "key_quotas", "retry_after", "minute_error", "latency",
                 "faults", "clear_faults", "advance_clock", "reset"}
        unknown = set(cfg) - known
        if unknown:
            raise ValueError("unknown config keys: %s" % ", ".join(sorted(unknown)))
        if cfg.get("clear_faults"):
            self.clear_faults()
        if "reset" in cfg:
            self.reset(only=cfg["reset"] or None)
        for key, tier in (cfg.get("keys") or {}).items():
            self.set_key(key, tier)
        for tier, q in (cfg.get("quotas") or {}).items():
            self.set_quota(tier, q.get("per_minute"), q.get("per_day"))
        for key, q in (cfg.get("key_quotas") or {}).items():
            self.set_quota(key, q.get("per_minute"), q.get("per_day"))
        with self._state.lock:
            if "retry_after" in cfg:
                ra = cfg["retry_after"]
                if ra not in (None, "auto") and not isinstance(ra, int):
                    raise ValueError("retry_after must be an int, 'auto' or null")
                self._state.retry_after = ra
            if "minute_error" in cfg:
                if cfg["minute_error"] not in ("QuotaExceededError", "TooManyRequestsError"):
                    raise ValueError("minute_error must be QuotaExceededError or "
                                     "TooManyRequestsError")
                self._state.minute_error = cfg["minute_error"]
        for rule in cfg.get("latency") or []:
            self.set_latency(rule["ms"], rule.get("path"), rule.get("count"))
        for f in cfg.get("faults") or []:
            f = dict(f)
            self.inject(f.pop("kind"), f.pop("count", 1), f.pop("path", None), **f)
        if "advance_clock" in cfg:
            self.advance_clock(cfg["advance_clock"])

    def config_snapshot(self):
        st = self._state
        with st.lock:
            return {"keys": {_mask(k): t for k, t in st.keys.items()},
                    "quotas": st.quotas, "key_quotas": {_mask(k): v for k, v in
                                                        st.key_quotas.items()},
                    "retry_after": st.retry_after, "minute_error": st.minute_error,
                    "clock_offset": st.clock_offset}

    # -- internals used by the handler --------------------------------------------------------
    def _apply_latency(self, path):
        delay = 0.0
        with self._state.lock:
            for rule in self._state.latency:
                if rule["count"] is not None and rule["count"] <= 0:
                    continue
                if rule["path"] is None or re.search(rule["path"], path):
                    delay += rule["ms"] / 1000.0
                    if rule["count"] is not None:
                        rule["count"] -= 1
            self._state.latency = [r for r in self._state.latency
                                   if r["count"] is None or r["count"] > 0]
        if delay > 0:
            self._stopping.wait(delay)

    def _take_fault(self, path):
        with self._state.lock:
            for fault in self._state.faults:
                if fault["path"] is None or re.search(fault["path"], path):
                    if fault["count"] is not None:
                        fault["count"] -= 1
                    self._state.faults = [f for f in self._state.faults
                                          if f["count"] is None or f["count"] > 0]
                    return fault
        return None

    def _consume_quota(self, key, tier):
        st = self._state
        with st.lock:
            limits = dict(st.quotas.get(tier, {}))
            limits.update({k: v for k, v in st.key_quotas.get(key, {}).items()})
            now = st.now()
            minute_win, day_win = int(now // 60), int(now // 86400)
            use = st.usage.setdefault(key, {"minute": [minute_win, 0], "day": [day_win, 0]})
            if use["minute"][0] != minute_win:
                use["minute"] = [minute_win, 0]
            if use["day"][0] != day_win:
                use["day"] = [day_win, 0]
            per_day, per_minute = limits.get("per_day"), limits.get("per_minute")
            if per_day is not None and use["day"][1] >= per_day:
                raise self._quota_error("QuotaExceededError", (day_win + 1) * 86400 - now)
            if per_minute is not None and use["minute"][1] >= per_minute:
                raise self._quota_error(st.minute_error, (minute_win + 1) * 60 - now)
            use["minute"][1] += 1
            use["day"][1] += 1

    def _quota_error(self, code, seconds_left):
        headers = {}
        ra = self._state.retry_after
        if ra == "auto":
            headers["Retry-After"] = str(max(1, int(seconds_left + 0.999)))
        elif ra is not None:
            headers["Retry-After"] = str(int(ra))
        return VTError(429, code, MESSAGES.get(code, "Quota exceeded"), headers)

    # -- routing ------------------------------------------------------------------------------
    def _route(self, sub, params, tier):
        parts = sub.strip("/").split("/")
        if len(parts) < 2 or not parts[0]:
            raise VTError(404, "NotFoundError", "Resource not found.")
        collection = parts[0]
        if collection == "resolutions" and len(parts) == 2:
            return {"data": self._resolution_object(parts[1])}
        if collection not in COLLECTION_TYPES:
            raise VTError(404, "NotFoundError", "Resource not found.")
        raw_id = parts[1]
        oid = self.dataset.canonical_id(collection, raw_id)
        if len(parts) == 2:
            return self._object(collection, raw_id, oid, params, tier)
        if len(parts) == 3:
            return self._relationship(collection, raw_id, oid, parts[2], params, tier,
                                      descriptors=False)
        if len(parts) == 4 and parts[2] == "relationships":
            return self._relationship(collection, raw_id, oid, parts[3], params, tier,
                                      descriptors=True)
        raise VTError(404, "NotFoundError", "Resource not found.")

    def _not_found(self, collection, raw_id):
        return VTError(404, "NotFoundError",
                       '%s "%s" not found' % (NOT_FOUND_NOUN.get(collection, "Object"), raw_id))

    def _check_relationship(self, collection, rel, tier):
        if rel not in RELATIONSHIPS[collection]:
            raise VTError(400, "InvalidArgumentError",
                          'Invalid relationship "%s" for %s' % (rel, collection))
        if tier != "premium" and rel not in PUBLIC_RELATIONSHIPS[collection]:
            raise VTError(403, "ForbiddenError", MESSAGES["ForbiddenError"])

    @staticmethod
    def _limit(params, default=DEFAULT_LIMIT):
        raw = params.get("limit", [None])[-1]
        if raw is None or raw == "":
            return default
        try:
            limit = int(raw)
        except ValueError:
            raise VTError(400, "BadRequestError", "Invalid limit: %s" % raw)
        if limit > MAX_LIMIT:
            raise VTError(400, "BadRequestError", MESSAGES["BadRequestError"])
        if limit < 1:
            raise VTError(400, "BadRequestError", "Limit must be a positive number")
        return limit

    def _object(self, collection, raw_id, oid, params, tier):
        rels = [r for r in ",".join(params.get("relationships", [])).split(",") if r]
        for rel in rels:
            self._check_relationship(collection, rel, tier)
        limit = self._limit(params)
        if oid is None:
            raise self._not_found(collection, raw_id)
        data = self._render_object(collection, oid)
        if rels:
            data["relationships"] = {}
            for rel in rels:
                data["relationships"][rel] = self._page(collection, oid, rel, 0, limit,
                                                        descriptors=True)
        return {"data": data}

    def _render_object(self, collection, oid):
        stored = self.dataset.get(collection, oid)
        data = dict(stored)
        data["links"] = {"self": "%s/%s/%s" % (self.links_base, collection, quote(oid, safe=":"))}
        return data

    def _relationship(self, collection, raw_id, oid, rel, params, tier, descriptors):
        self._check_relationship(collection, rel, tier)
        limit = self._limit(params)
        if oid is None:
            raise self._not_found(collection, raw_id)
        offset = 0
        cursor = params.get("cursor", [None])[-1]
        if cursor:
            offset = decode_cursor(cursor)
            if offset is None:
                raise VTError(400, "BadRequestError", "Wrong cursor")
        return self._page(collection, oid, rel, offset, limit, descriptors)

    def _page(self, collection, oid, rel, offset, limit, descriptors):
        base = "%s/%s/%s" % (self.links_base, collection, quote(oid, safe=":"))
        full_url = "%s/%s" % (base, rel)
        desc_url = "%s/relationships/%s" % (base, rel)
        page_url = desc_url if descriptors else full_url
        items = self.dataset.related(collection, oid, rel)
        if (collection, rel) in ONE_TO_ONE:
            item = items[0] if items else None
            out = {"data": None, "links": {"self": page_url}}
            if descriptors:
                out["links"]["related"] = full_url
            if item is not None:
                out["data"] = self._descriptor(item) if descriptors else self._full_item(item)
            return out
        chunk = items[offset:offset + limit]
        out = {}
        if chunk:
            meta = {}
            if rel in COUNTED_RELATIONSHIPS:
                meta["count"] = len(items)
            if offset + limit < len(items):
                meta["cursor"] = encode_cursor(offset + limit)
            if meta:
                out["meta"] = meta
        out["data"] = [self._descriptor(it) if descriptors else self._full_item(it)
                       for it in chunk]
        if offset:
            links = {"self": "%s?cursor=%s&limit=%d" % (
                page_url, quote(encode_cursor(offset), safe=""), limit)}
        else:
            links = {"self": "%s?limit=%d" % (page_url, limit)}
        if descriptors:
            links["related"] = full_url
        if chunk and offset + limit < len(items):
            links["next"] = "%s?cursor=%s&limit=%d" % (
                page_url, quote(encode_cursor(offset + limit), safe=""), limit)
        out["links"] = links
        return out

    @staticmethod
    def _descriptor(item):
        d = {"type": item["type"], "id": item["id"]}
        if item.get("context_attributes"):
            d["context_attributes"] = item["context_attributes"]
        return d

    def _stats_of(self, collection, oid):
        obj = self.dataset.get(collection, oid)
        if obj is None:
            return {"harmless": 0, "malicious": 0, "suspicious": 0, "undetected": 0,
                    "timeout": 0}
        return dict(obj.get("attributes", {}).get("last_analysis_stats", {}))

    def _resolution(self, item):
        rid = item["id"]
        return {"attributes": {
            "date": item["date"],
            "host_name": item["host_name"],
            "host_name_last_analysis_stats": self._stats_of("domains", item["host_name"]),
            "ip_address": item["ip_address"],
            "ip_address_last_analysis_stats": self._stats_of("ip_addresses",
                                                             item["ip_address"]),
            "resolver": item.get("resolver", "VirusTotal")},
            "id": rid,
            "links": {"self": "%s/resolutions/%s" % (self.links_base, quote(rid, safe=":"))},
            "type": "resolution"}

    def _resolution_object(self, rid):
        for rec in self.dataset.resolutions:
            if resolution_id(rec["ip"], rec["domain"]) == rid:
                return self._resolution({"id": rid, "date": rec["date"],
                                         "host_name": rec["domain"], "ip_address": rec["ip"],
                                         "resolver": rec["resolver"]})
        raise self._not_found("resolutions", rid)

    def _full_item(self, item):
        if item["type"] == "resolution":
            return self._resolution(item)
        if "attributes" in item:                  # inline full object (whois, ssl_cert, ...)
            out = {"attributes": item["attributes"], "id": item["id"],
                   "links": {"self": "%s/%s/%s" % (self.links_base,
                                                   _collection_of(item["type"]),
                                                   quote(item["id"], safe=":"))},
                   "type": item["type"]}
        else:
            collection = _collection_of(item["type"])
            obj = self.dataset.get(collection, item["id"]) if collection in COLLECTION_TYPES \
                else None
            if obj is None:
                # VT's documented form for a related object missing from its database.
                out = {"error": {"code": "NotFoundError",
                                 "message": '%s with id "%s" not found' % (item["type"],
                                                                           item["id"])},
                       "id": item["id"], "type": item["type"]}
            else:
                out = self._render_object(collection, item["id"])
        if item.get("context_attributes"):
            out["context_attributes"] = item["context_attributes"]
        return out


def _collection_of(otype):
    from .dataset import TYPE_COLLECTIONS
    return TYPE_COLLECTIONS.get(otype, otype + "s")


def _mask(key):
    """Never echo a full API key in stats/config output."""
    return key[:4] + "..." if len(key) > 8 else "***"
