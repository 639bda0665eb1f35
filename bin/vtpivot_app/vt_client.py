"""The one HTTP client for VirusTotal API v3.

- Injectable base URL (settings.api_url; VT_API_URL outside Splunk), a User-Agent naming the
  app and its version, explicit connect/read timeouts, TLS verification always on (a custom
  CA bundle as a path or as pasted PEM), proxy support (credentials never logged).
- VT's error body is mapped to the small exception family in errors.py.
- Bounded retries with jittered exponential backoff for TooManyRequests, 5xx, timeouts and
  broken bodies, honouring Retry-After; 400/401/403/404 are never retried.
- VirusTotal's QuotaExceededError is never retried: it opens the shared circuit breaker (see
  _on_quota_exceeded for the two-strike rule).
- Every request that leaves takes one token from the shared RateLimiter first; relationship
  pages are kept in the HTTP cache (requests-cache, SQLite WAL), and a cached page costs no
  token. Objects are not HTTP-cached: the object store above keeps their summaries.
"""
import json
import os
import random
import ssl
import time
from dataclasses import dataclass, field

import requests
from requests.adapters import HTTPAdapter

from . import app_logging
from .quota import next_utc_midnight
from .errors import (MalformedResponse, NetworkError, QuotaExceeded, TLSError, Transient,
                     VTError, error_from_response)
from .settings import app_version
from .vt_objects import COLLECTIONS

MAX_PAGE_LIMIT = 40  # VirusTotal answers 400 above this
log = app_logging.get_logger("client")


@dataclass
class RelationshipPage:
    items: list
    cursor: str = None
    count: int = None
    from_cache: bool = False
    meta: dict = field(default_factory=dict)


class _TLSAdapter(HTTPAdapter):
    """Use the interpreter's default TLS context (Python 3.13's strict X.509 checks
    included) with the configured CA bundle, for direct and proxied connections alike."""

    def __init__(self, cafile=None, **kwargs):
        self._context = ssl.create_default_context(cafile=cafile)
        super().__init__(**kwargs)

    def init_poolmanager(self, *args, **kwargs):
        kwargs["ssl_context"] = self._context
        return super().init_poolmanager(*args, **kwargs)

    def proxy_manager_for(self, proxy, **proxy_kwargs):
        proxy_kwargs["ssl_context"] = self._context
        return super().proxy_manager_for(proxy, **proxy_kwargs)


def _ca_file(ca_bundle, state_dir):
    """A CA bundle path for the TLS context: the configured path, or pasted PEM written to a
    private file under the state folder. None means the default trust store (certifi)."""
    if not ca_bundle:
        return None
    if "-----BEGIN CERTIFICATE-----" in ca_bundle:
        os.makedirs(state_dir, mode=0o700, exist_ok=True)
        path = os.path.join(state_dir, "ca_bundle.pem")
        with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as handle:
            handle.write(ca_bundle.strip() + "\n")
        return path
    return ca_bundle


def _proxy_url(settings, proxy_password):
    if not settings.proxy_url:
        return None
    from urllib.parse import quote, urlsplit, urlunsplit

    parts = urlsplit(settings.proxy_url)
    if settings.proxy_username and "@" not in parts.netloc:
        auth = quote(settings.proxy_username, safe="")
        if proxy_password:
            auth += ":" + quote(proxy_password, safe="")
            app_logging.register_secret(proxy_password)
            app_logging.register_secret(quote(proxy_password, safe=""))
        parts = parts._replace(netloc=f"{auth}@{parts.netloc}")
    return urlunsplit(parts)


class VTClient:
    def __init__(self, settings, api_key, limiter=None, proxy_password="", session=None,
                 sleep=time.sleep, clock=time.time):
        self.settings = settings
        self.base_url = settings.api_url.rstrip("/")
        self.limiter = limiter
        self.sleep = sleep
        self.clock = clock
        self.network_calls = 0
        self.http_cache_hits = 0
        app_logging.register_secret(api_key)
        # Objects go through a plain session (the object store keeps them); relationship
        # pages through the HTTP cache. Both share the TLS, proxy and header set-up.
        self.session = session or self._build_session(proxy_password, cached=False)
        self.page_session = session or (
            self._build_session(proxy_password, cached=True) if settings.http_cache
            else self.session)
        for each in {self.session, self.page_session}:
            each.headers.update({
                "x-apikey": api_key,
                "User-Agent": f"vtpivot/{app_version()} (Splunk app; python-requests)",
                "Accept": "application/json",
                "Accept-Encoding": "gzip",
            })
        self.timeout = (settings.connect_timeout, settings.read_timeout)

    # ---- session -------------------------------------------------------------------------
    def _build_session(self, proxy_password, cached):
        state_dir = self.settings.resolved_state_dir
        session = requests.Session()
        if cached:
            try:
                session = _cached_session(self.settings, state_dir)
            except Exception as exc:  # noqa: BLE001 - a broken cache must not stop the calls
                app_logging.log_event(log, 30, "http_cache_unavailable",
                                      error=f"{type(exc).__name__}: {_short(exc)}")
        adapter = _TLSAdapter(cafile=_ca_file(self.settings.ca_bundle, state_dir),
                              max_retries=0)
        session.mount("https://", adapter)
        proxy = _proxy_url(self.settings, proxy_password)
        if proxy:
            session.proxies = {"http": proxy, "https": proxy}
        session.trust_env = False  # only the app's own proxy settings apply
        return session

    # ---- public API ----------------------------------------------------------------------
    def get_object(self, kind, object_id, relationships=()):
        """`data` of GET /{collection}/{id}[?relationships=a,b] (never HTTP-cached)."""
        params = {}
        if relationships:
            params["relationships"] = ",".join(relationships)
        body, _ = self._get(f"{COLLECTIONS[kind]}/{_quote(object_id)}", params, cacheable=False,
                            kind=kind, indicator=object_id)
        data = body.get("data") if isinstance(body, dict) else None
        if not isinstance(data, dict):
            raise MalformedResponse("VirusTotal's answer has no data object")
        return data

    def get_relationship(self, kind, object_id, relationship, limit=10, cursor=None,
                         descriptors_only=False):
        """One page of a relationship: full objects, or descriptors only."""
        limit = max(1, min(int(limit), MAX_PAGE_LIMIT))
        params = {"limit": limit}
        if cursor:
            params["cursor"] = cursor
        middle = "relationships/" if descriptors_only else ""
        path = f"{COLLECTIONS[kind]}/{_quote(object_id)}/{middle}{relationship}"
        body, from_cache = self._get(path, params, cacheable=True, kind=kind,
                                     indicator=object_id, relationship=relationship)
        items = body.get("data") if isinstance(body, dict) else None
        if isinstance(items, dict):
            items = [items]
        if not isinstance(items, list):
            raise MalformedResponse("VirusTotal's relationship page has no data list")
        meta = body.get("meta") or {}
        return RelationshipPage(items=items, cursor=meta.get("cursor"), count=meta.get("count"),
                                from_cache=from_cache, meta=meta)

    def get_json(self, path, params=None, **log_fields):
        """Any other GET under the API URL (e.g. users/{id}/overall_quotas): never cached,
        one token, the same retries and error mapping."""
        body, _ = self._get(path, params or {}, cacheable=False, **log_fields)
        return body

    # ---- the request loop ----------------------------------------------------------------
    def _get(self, path, params, cacheable, **log_fields):
        url = f"{self.base_url}/{path}"
        session = self.page_session if cacheable else self.session
        if cacheable and hasattr(session, "cache"):
            cached = self._from_http_cache(session, url, params)
            if cached is not None:
                self.http_cache_hits += 1
                app_logging.log_event(log, 20, "vt_call", cache="hit", status="ok",
                                      elapsed_ms=0, **log_fields)
                return cached, True
        attempts = self.settings.max_retries + 1
        last_error = None
        for attempt in range(attempts):
            if self.limiter is not None:
                self.limiter.acquire(max_wait=self.settings.max_wait_seconds)
            started = self.clock()
            try:
                body = self._send(session, url, params)
                app_logging.log_event(log, 20, "vt_call", cache="miss", status="ok",
                                      elapsed_ms=int((self.clock() - started) * 1000),
                                      attempt=attempt + 1, **log_fields)
                return body, False
            except VTError as exc:
                app_logging.log_event(log, 30 if exc.retryable else 20, "vt_call", cache="miss",
                                      status=type(exc).__name__, code=exc.code,
                                      http_status=exc.http_status or "",
                                      elapsed_ms=int((self.clock() - started) * 1000),
                                      attempt=attempt + 1, error=exc.detail, **log_fields)
                if isinstance(exc, QuotaExceeded):
                    self._on_quota_exceeded(exc)
                    raise
                if not exc.retryable or attempt == attempts - 1:
                    raise
                delay = self._backoff(attempt, exc.retry_after)
                if delay is None:
                    raise
                last_error = exc
                self.sleep(delay)
        raise last_error or Transient("no answer from VirusTotal")

    def _send(self, session, url, params):
        self.network_calls += 1
        try:
            response = session.get(url, params=params, timeout=self.timeout)
            content = response.content
        except requests.exceptions.SSLError as exc:
            raise TLSError(f"TLS verification failed: {_reason(exc)}") from None
        except requests.exceptions.ProxyError as exc:
            raise NetworkError(f"the proxy refused or failed the connection: {_reason(exc)}",
                               ) from None
        except (requests.exceptions.ConnectTimeout, requests.exceptions.ReadTimeout):
            raise Transient(f"VirusTotal did not answer within {self.timeout[1]:g} s "
                            "(timeout)") from None
        except (requests.exceptions.ChunkedEncodingError,
                requests.exceptions.ContentDecodingError) as exc:
            raise MalformedResponse(f"VirusTotal's answer was cut or garbled: {_short(exc)}",
                                    ) from None
        except requests.exceptions.ConnectionError as exc:
            raise NetworkError(f"cannot reach VirusTotal: {_short(exc)}") from None
        except requests.exceptions.RequestException as exc:
            raise NetworkError(f"request failed: {_short(exc)}") from None
        body = None
        if content:
            try:
                body = json.loads(content.decode("utf-8"))
            except (ValueError, UnicodeDecodeError):
                body = None
        if response.status_code == 407:
            refused = NetworkError("the proxy refused the credentials (HTTP 407): check the "
                                   "proxy user and password on the setup page",
                                   http_status=407)
            refused.retryable = False  # the same credentials would be refused again
            raise refused
        if response.status_code >= 400:
            raise error_from_response(response.status_code, body,
                                      retry_after=_retry_after(response))
        if body is None:
            raise MalformedResponse(f"VirusTotal sent an unreadable body (HTTP "
                                    f"{response.status_code}, {len(content)} bytes)")
        return body

    @staticmethod
    def _from_http_cache(session, url, params):
        try:
            request = requests.Request("GET", url, params=params,
                                       headers=session.headers).prepare()
            key = session.cache.create_key(request)
            response = session.cache.get_response(key)
            if response is None or response.is_expired:
                return None
            return json.loads(response.content.decode("utf-8"))
        except Exception:  # a damaged cache entry is a miss, never a failure
            return None

    def _backoff(self, attempt, retry_after):
        """Seconds to wait before the next attempt, or None to give up now."""
        cap = self.settings.backoff_max
        if retry_after is not None:
            return retry_after if retry_after <= cap else None
        base = self.settings.backoff_base * (2 ** attempt)
        return min(cap, base) * (0.5 + random.random() / 2)  # jitter: 50-100 %

    def _on_quota_exceeded(self, exc):
        """QuotaExceededError covers the minute, day and month quotas alike. Two strikes:
        the first pauses every process for one minute (enough for a minute quota, e.g. when
        the key is shared with other tools); a second within 15 minutes means the day (or
        month) is spent, and the breaker stays open until 00:00 UTC."""
        if self.limiter is None:
            return
        now = self.clock()
        if self.limiter.recent_quota_strike(within=15 * 60):
            until, what = next_utc_midnight(now), "daily"
        else:
            until, what = now + 60, "per-minute"
        self.limiter.open_circuit(until, f"VirusTotal QuotaExceededError ({what} assumed)")
        exc.retry_after = until - now


def _retry_after(response):
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def _short(exc):
    text = str(exc)
    return text if len(text) < 300 else text[:300] + "..."


def _reason(exc):
    """The innermost cause of a requests/urllib3 error (OpenSSL's verify message, the
    proxy's complaint), not the whole chain with its URL, which would bury it."""
    seen = set()
    cause = exc
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        message = getattr(cause, "verify_message", None)
        if message:
            return f"certificate verify failed: {message}"
        inner = getattr(cause, "reason", None)
        if isinstance(inner, BaseException):
            cause = inner
            continue
        args = getattr(cause, "args", ())
        cause = args[0] if args and isinstance(args[0], BaseException) else \
            (cause.__cause__ or cause.__context__)
    text = str(exc if cause is None else cause)
    return text if len(text) < 300 else text[:300] + "..."


def _quote(object_id):
    from urllib.parse import quote

    return quote(object_id, safe="")


def _cached_session(settings, state_dir):
    """requests-cache session for relationship pages. The key header is excluded from the
    cache key and blanked in the stored request (requests-cache matches the name
    case-sensitively: it must be exactly `x-apikey`, as sent)."""
    import requests_cache

    os.makedirs(state_dir, mode=0o700, exist_ok=True)
    ttl = min(settings.ttl_domain, settings.ttl_ip, settings.ttl_file)
    if settings.backend == "redis" and settings.redis_url:
        from redis import Redis

        backend = requests_cache.RedisCache(
            namespace="vtpivot:http", connection=Redis.from_url(
                settings.redis_url, socket_timeout=5, socket_connect_timeout=5), ttl=True)
    else:
        backend = requests_cache.SQLiteCache(os.path.join(state_dir, "http_cache.sqlite"),
                                             wal=True)
    return requests_cache.CachedSession(
        backend=backend, expire_after=ttl, allowable_codes=(200,),
        ignored_parameters=["x-apikey"], match_headers=False, stale_if_error=False)
