"""The setup page's "Test connection": check the stored key against VirusTotal, server-side.

The browser never receives the key: it asks the vtpivot/test_connection REST endpoint, which
runs here with the caller's own session key, reads the key from storage/passwords (the caller
must be allowed to read it), makes one cheap call through the app's VTClient (so the proxy,
CA bundle and rate limiter apply) and answers a small JSON verdict with a stable code.

What a check costs: one call of the app's budget (GET /domains/virustotal.com), plus one
for /users/{id}/overall_quotas when a VirusTotal user id is given.
"""
import re
import time
from urllib.parse import quote

from . import app_logging, credentials
from .errors import (AuthError, ConfigError, CredentialError, Forbidden, MalformedResponse,
                     NetworkError, NotFound, QuotaExceeded, TLSError, TooManyRequests, Transient,
                     VTError, VTPivotError, CODES)
from .settings import load_settings

PROBE_KIND, PROBE_ID = "domain", "virustotal.com"
# VirusTotal user ids are account names; anything else (a key pasted by mistake) is refused.
USER_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")
WINDOWS = ("minute", "day", "month")
log = app_logging.get_logger("setup")

# our exception class -> (status word shown by the page)
_STATUS = (
    (AuthError, "wrong_key"),
    (Forbidden, "forbidden"),
    (QuotaExceeded, "quota_exceeded"),
    (TooManyRequests, "throttled"),
    (TLSError, "tls_error"),
    (NetworkError, "network_error"),
    (MalformedResponse, "bad_answer"),
    (Transient, "unavailable"),
)


def _verdict(ok, status, code=None, message="", **extra):
    body = {"ok": ok, "status": status, "code": code or "",
            "message": app_logging.redact(message),
            "fix": CODES.get(code, ("", ""))[1] if code else ""}
    body.update(extra)
    return body


def _error_verdict(exc, **extra):
    if isinstance(exc, CredentialError):
        status = "not_allowed" if exc.code == "VTP-E003" else "no_key"
    elif isinstance(exc, ConfigError):
        status = "bad_setting"
    else:
        status = next((word for cls, word in _STATUS if isinstance(exc, cls)), "error")
    window = getattr(exc, "window", "")  # the app's own limiter refused (quota.py)
    if window:
        status = "throttled"
    code = getattr(exc, "code", "") or {"minute": "VTP-E020", "day": "VTP-E021",
                                        "month": "VTP-E022"}.get(window, "VTP-E020")
    message = getattr(exc, "detail", "") or getattr(exc, "message", "") or str(exc)
    return _verdict(False, status, code, message, **extra)


def build_limiter(settings):
    """The shared RateLimiter (quota.py) over the configured backend, or None if unusable."""
    try:
        from .quota import Budget, RateLimiter
        from .storage_backends import open_backend

        backend = open_backend(settings.backend, settings.resolved_state_dir,
                               redis_url=settings.redis_url or None, logger=log)
        return RateLimiter(backend, Budget(per_minute=settings.per_minute,
                                           per_day=settings.per_day,
                                           per_month=settings.per_month))
    except Exception as exc:  # the check still runs; usage is reported as unknown
        log.warning("rate limiter unavailable for the connection check: %s",
                    app_logging.redact(str(exc)))
        return None


def budget_usage(settings, limiter):
    """{window: {budget, used, remaining}} from the limiter's remaining(); None if unknown.

    A budget of 0 means "no limit" (per_month's default); `used` is still counted."""
    if limiter is None or not hasattr(limiter, "remaining"):
        return None
    try:
        remaining = limiter.remaining()
    except Exception:
        return None
    if not isinstance(remaining, dict):
        return None
    budgets = {"minute": settings.per_minute, "day": settings.per_day,
               "month": settings.per_month}
    used_counts = remaining.get("used") if isinstance(remaining.get("used"), dict) else {}
    usage = {}
    for window in WINDOWS:
        budget, left = budgets[window], remaining.get(window)
        used = used_counts.get(window)
        if used is None and budget and isinstance(left, (int, float)):
            used = max(0, budget - int(left))
        usage[window] = {"budget": budget, "used": used,
                         "remaining": int(left) if isinstance(left, (int, float)) else None}
    if remaining.get("circuit_open_until"):
        usage["paused_until"] = remaining["circuit_open_until"]
    return usage


def _vt_quotas(data):
    """VirusTotal's overall_quotas -> {name: {allowed, used[, group_allowed, group_used]}}."""
    out = {}
    for name, value in sorted((data or {}).items()):
        if not name.startswith("api_requests_") or not isinstance(value, dict):
            continue
        row = {}
        for scope in ("user", "group"):
            part = value.get(scope)
            if isinstance(part, dict):
                prefix = "" if scope == "user" else "group_"
                row[prefix + "allowed"] = part.get("allowed")
                row[prefix + "used"] = part.get("used")
        if row:
            out[name[len("api_requests_"):]] = row
    return out


def check_connection(service=None, settings=None, environ=None, user_id="", limiter=None,
                     client_factory=None, clock=time.time):
    """Run the check; return a JSON-able verdict. Never raises for an expected failure.

    service: a splunklib Service bound to the vtpivot namespace (the caller's session);
    environ: {} inside Splunk so that only the stored key is tested.
    """
    environ = {} if environ is None else environ
    started = clock()
    try:
        settings = settings or load_settings(service=service, environ=environ)
    except VTPivotError as exc:
        return _error_verdict(exc)
    extra = {"api_url": settings.api_url, "tier": settings.tier,
             "budget": {"minute": settings.per_minute, "day": settings.per_day,
                        "month": settings.per_month}}
    user_id = (user_id or "").strip()
    if user_id and not USER_ID_RE.match(user_id):
        return _verdict(False, "bad_setting", "VTP-E060",
                        "the VirusTotal user id may hold letters, digits, '.', '_' and '-' "
                        "only (it is the account name, not the API key)", **extra)
    try:
        api_key = credentials.get_api_key(service=service, environ=environ)
        proxy_password = credentials.get_proxy_password(service=service, environ=environ)
    except VTPivotError as exc:
        return _error_verdict(exc, **extra)
    if user_id and user_id == api_key:
        # VT accepts the key as a user id, but then it would travel in a URL.
        return _verdict(False, "bad_setting", "VTP-E060",
                        "the VirusTotal user id field holds the API key: enter the account "
                        "name instead (the key never goes into a URL)", **extra)
    if limiter is None:
        limiter = build_limiter(settings)
    if client_factory is None:
        from .vt_client import VTClient

        def client_factory():
            return VTClient(settings, api_key, limiter=limiter, proxy_password=proxy_password)
    calls = 0
    try:
        client = client_factory()
        calls += 1
        try:
            client.get_object(PROBE_KIND, PROBE_ID)
        except NotFound:
            pass  # VirusTotal authenticates before it looks: the key was accepted
        vt_quotas, vt_note = None, ("Enter your VirusTotal user id to also see VirusTotal's "
                                    "own counters for this key (hourly, daily, monthly).")
        if user_id:
            calls += 1
            try:
                body = client.get_json(f"users/{quote(user_id, safe='')}/overall_quotas",
                                       kind="user")
                vt_quotas = _vt_quotas(body.get("data") if isinstance(body, dict) else None)
                vt_note = "" if vt_quotas else "VirusTotal returned no request counters."
            except NotFound:
                vt_note = f"VirusTotal knows no user {user_id!r}: check the user id."
            except (AuthError, Forbidden):
                vt_note = ("VirusTotal refused to show this user's quotas to this key (the "
                           "user id must be the key owner's).")
    except VTError as exc:
        verdict = _error_verdict(exc, calls=calls, **extra)
        verdict["usage"] = budget_usage(settings, limiter)
        _log(verdict, started, clock)
        return verdict
    except Exception as exc:  # the limiter's own refusal carries .window; others are bugs
        if getattr(exc, "window", ""):
            verdict = _error_verdict(exc, calls=calls, **extra)
        else:
            log.exception("connection check failed")
            verdict = _verdict(False, "error", "VTP-E030",
                               f"unexpected error: {type(exc).__name__} (see vtpivot.log)",
                               calls=calls, **extra)
        verdict["usage"] = budget_usage(settings, limiter)
        _log(verdict, started, clock)
        return verdict
    verdict = _verdict(True, "ok", "", "VirusTotal accepted the key.", calls=calls,
                       usage=budget_usage(settings, limiter), vt_quotas=vt_quotas,
                       vt_quotas_note=vt_note, **extra)
    _log(verdict, started, clock)
    return verdict


def _log(verdict, started, clock):
    app_logging.log_event(log, 20, "connection_check", status=verdict["status"],
                          code=verdict["code"] or "-", calls=verdict.get("calls", 0),
                          elapsed_ms=int((clock() - started) * 1000))


def secret_status(service):
    """Which secrets exist, WITHOUT their values: {"api_key": bool, "proxy_password": bool}.

    The setup page needs this to show "(stored)"; reading storage/passwords from the browser
    would hand it the clear text."""
    out = {}
    for name in (credentials.API_KEY_USER, credentials.PROXY_PASSWORD_USER):
        try:
            out[name] = bool(credentials.read_secret_rest(service, name))
        except CredentialError as exc:
            return _error_verdict(exc)
    return {"ok": True, "status": "ok", "secrets": out}
