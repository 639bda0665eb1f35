"""Background enrichment and the quota panel: the logic of `| vtpivotqueue`.

Lookups and pivots that meet a spent budget answer `throttled` and push the indicator onto
the persistent queue (enrichment_queue.py). This module:

- drain(): claims queued indicators and resolves them through the same Enricher as the
  lookups (same object store, same shared rate limiter), at most `max_calls` VirusTotal
  calls per run. It stops at the first throttled answer and gives that item and the rest
  of its batch back untouched; it acks what it resolved (ok, not found, already cached),
  drops what can never succeed (no longer a sendable indicator, a 400 or 403 for it), gives
  transient failures back with a delay, and stops at once when the key or the network is
  the problem. A later lookup of a drained indicator is a cache hit (vt_cache=hit).
- status(): one row for the quota panel: queue length, the oldest item's age, and the
  budget's calls left this minute / day / month with the circuit breaker's state. It needs
  no API key and makes no call, so an analyst without access to _internal can see it.
- list_items(): the queued items, in drain order.

Each drain makes at most one request per indicator (the client's retries are turned off
for it: a failed item is simply retried by a later run), so `max_calls` is a hard bound.
"""
import dataclasses
import os
import time

from . import app_logging
from .errors import VTPivotError

ACTIONS = ("drain", "status", "list")
BATCH = 10
RETRY_DELAY = 15 * 60           # a transient failure is retried by a run this much later
THROTTLE_CODES = ("VTP-E020", "VTP-E021", "VTP-E022", "VTP-E023")
STOP_CODES = ("VTP-E001", "VTP-E002", "VTP-E003", "VTP-E010", "VTP-E031", "VTP-E032")
DROP_CODES = ("VTP-E011", "VTP-E012", "VTP-E040", "VTP-E041")
QUEUE_KIND_TO_INDICATOR = {"domain": "domain", "ip": "ip", "file": "hash"}

DRAIN_FIELDS = ("_time", "action", "kind", "indicator", "outcome", "vt_status", "vt_cache",
                "vt_error", "malicious", "attempts", "queued_at", "calls_made", "queue_length",
                "detail")
STATUS_FIELDS = ("_time", "action", "queue_length", "oldest_queued_at", "oldest_age_seconds",
                 "calls_left_minute", "calls_left_day", "calls_left_month", "calls_used_minute",
                 "calls_used_day", "calls_used_month", "per_minute", "per_day", "per_month",
                 "next_call_at", "day_resets_at", "circuit", "circuit_open_until",
                 "circuit_reason", "backend", "budget_scope", "detail")
LIST_FIELDS = ("_time", "action", "kind", "indicator", "reason", "queued_at", "age_seconds",
               "attempts", "state", "visible_at")

log = app_logging.get_logger("background")


def _code(text):
    text = text or ""
    return text[1:9] if text.startswith("[VTP-E") else ""


def _row(fields, **values):
    """Every record carries every field (splunkd takes a chunk's header from its first)."""
    return {name: values.get(name, "") for name in fields}


def _utc(ts):
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(ts)) if ts else ""


# ---- wiring ---------------------------------------------------------------------------------
def connect(searchinfo=None, environ=None, need_key=False):
    """(settings, service, environ) for one run of the command.

    Inside Splunk the settings and the key are read in the vtpivot app's namespace through
    the search's session key (credentials.vtpivot_service); VT_API_KEY in the environment
    wins outside Splunk. need_key=True reads the key now, so a missing one is one clear
    CredentialError (VTP-E001/E002/E003) before any item is claimed."""
    from . import credentials, settings as settings_module

    environ = dict(os.environ if environ is None else environ)
    service = None
    session_key = getattr(searchinfo, "session_key", None) if searchinfo is not None else None
    splunkd_uri = getattr(searchinfo, "splunkd_uri", None) if searchinfo is not None else None
    if session_key and splunkd_uri and not environ.get("VT_API_KEY"):
        service = credentials.vtpivot_service(splunkd_uri, session_key)
    settings = None
    if service is not None:
        try:
            settings = settings_module.load_settings(service=service, environ=environ)
        except VTPivotError:
            raise
        except Exception as exc:  # noqa: BLE001 - REST unreachable: the files still hold it
            log.warning("settings_rest_failed fallback=files error=%s", type(exc).__name__)
    if settings is None:
        settings = settings_module.load_settings(environ=environ)
    if need_key:
        try:
            environ["VT_API_KEY"] = credentials.get_api_key(service=service, environ=environ)
        except VTPivotError:
            raise
        except Exception as exc:  # noqa: BLE001 - splunkd unreachable: one clear code
            from .errors import CredentialError

            raise CredentialError("cannot read the VirusTotal key from splunkd (%s)"
                                  % type(exc).__name__, code="VTP-E002") from None
    return settings, service, environ


def build(settings, service=None, environ=None):
    """The Enricher (store, limiter, queue, lazy client) the lookups use, for draining: one
    request per indicator (no retries; a later run retries)."""
    from .enrichment import build_enricher

    drain_settings = dataclasses.replace(settings, max_retries=0)
    return build_enricher(drain_settings, live=True, service=service, environ=environ)


# ---- drain ----------------------------------------------------------------------------------
@dataclasses.dataclass
class DrainReport:
    rows: list
    calls_made: int = 0
    resolved: int = 0
    dropped: int = 0
    retry_later: int = 0
    released: int = 0
    stopped: str = ""          # why the run ended early ("" = queue empty or max_calls)
    queue_length: int = 0


class _CallCounter:
    """Wraps the enricher's client factory to count the requests that really left."""

    def __init__(self, enricher):
        self.client = None
        factory = enricher.client_factory

        def counting_factory():
            self.client = factory()
            return self.client
        enricher.client_factory = counting_factory

    @property
    def calls(self):
        return self.client.network_calls if self.client is not None else 0


def _budget_closed(limiter):
    """A reason no call can leave now (so nothing is claimed), or ""."""
    if limiter is None:
        return ""
    r = limiter.remaining()
    if r["circuit_open_until"]:
        return "[VTP-E023] VirusTotal refused further calls (%s) until %s" % (
            r["circuit_reason"], _utc(r["circuit_open_until"]))
    for window, code in (("month", "VTP-E022"), ("day", "VTP-E021")):
        if r[window] == 0:
            return "[%s] the %s's budget is spent; it refills at %s" % (
                code, window if window == "month" else "day", _utc(r["resets"][window]))
    return ""


def drain(enricher, policy, max_calls, clock=time.time, logger=None):
    """Resolve queued indicators within `max_calls` VirusTotal calls (see module doc)."""
    from .indicators import classify

    logger = logger or log
    queue = enricher.queue
    counter = _CallCounter(enricher)
    report = DrainReport(rows=[])
    max_calls = max(0, int(max_calls))

    def add(item, outcome, res=None, detail=""):
        record = (res.record or {}) if res is not None else {}
        report.rows.append(_row(
            DRAIN_FIELDS, _time=round(clock(), 3), action="drain", kind=item.kind,
            indicator=item.value, outcome=outcome,
            vt_status=res.status if res is not None else "",
            vt_cache=res.cache if res is not None else "",
            vt_error=res.error if res is not None else "",
            malicious=_field(record, "malicious"), attempts=item.attempts,
            queued_at=round(item.first_queued_at, 3), detail=detail))

    closed = _budget_closed(enricher.limiter)
    if closed:
        report.stopped = closed
    pending = []
    while not report.stopped:
        if not pending:
            if counter.calls >= max_calls:
                break
            pending = queue.pop_batch(min(BATCH, max(1, max_calls - counter.calls)))
            if not pending:
                break
        item = pending.pop(0)
        kind = QUEUE_KIND_TO_INDICATOR.get(item.kind)
        indicator = classify(item.value, kind, policy) if kind else None
        if indicator is None or indicator.status != "ok":
            queue.ack(item)
            report.dropped += 1
            add(item, "dropped", detail="no longer sent to VirusTotal: %s" % (
                indicator.reason if indicator is not None else "unknown kind"))
            continue
        before = counter.calls
        cached = enricher.store.get_many(item.kind, [indicator.value]).get(indicator.value)
        if counter.calls >= max_calls and not (cached is not None
                                                and cached.is_fresh(enricher.clock())):
            pending.insert(0, item)      # needs a call and the run's calls are spent
            break
        res = enricher.resolve([indicator]).get((indicator.kind, indicator.value))
        code = _code(res.error) if res is not None else "VTP-E030"
        if res is None:
            queue.release(item, RETRY_DELAY)
            report.retry_later += 1
            add(item, "retry_later", detail="no answer")
        elif code in THROTTLE_CODES:
            queue.release(item)
            report.released += 1
            report.stopped = res.error
            add(item, "throttled", res, detail="given back to the queue; the run stops here")
        elif res.status in ("ok", "not_found") and res.cache in ("hit", "miss"):
            queue.ack(item)
            report.resolved += 1
            add(item, "already_cached" if res.cache == "hit" else "enriched", res)
        elif code in STOP_CODES:
            queue.release(item)
            report.released += 1
            report.stopped = res.error
            add(item, "stopped", res, detail="given back to the queue; the run stops here")
        elif code in DROP_CODES:
            queue.ack(item)
            report.dropped += 1
            add(item, "dropped", res, detail="VirusTotal will not answer this request")
        else:
            queue.release(item, RETRY_DELAY)
            report.retry_later += 1
            add(item, "retry_later", res, detail="retried by a run after %s" % _utc(
                clock() + RETRY_DELAY))
        if counter.calls - before > 1:   # never expected: one request per item
            logger.warning("drain_item_used_calls calls=%d", counter.calls - before)
    for item in pending:                  # claimed but not reached: back at once
        queue.release(item)
        report.released += 1
    report.calls_made = counter.calls
    report.queue_length = queue.length()
    ended = report.stopped or ("max_calls reached" if report.calls_made >= max_calls
                               and report.queue_length else "queue empty"
                               if not report.queue_length else "nothing more to do")
    report.rows.append(_row(
        DRAIN_FIELDS, _time=round(clock(), 3), action="drain", outcome="summary",
        calls_made=report.calls_made, queue_length=report.queue_length,
        detail="resolved %d, dropped %d, retry later %d, given back %d; %d VirusTotal "
               "call(s) of max_calls=%d; %d left in the queue; ended: %s" % (
                   report.resolved, report.dropped, report.retry_later, report.released,
                   report.calls_made, max_calls, report.queue_length, ended)))
    app_logging.log_event(logger, 20, "queue_drain", calls=report.calls_made,
                          max_calls=max_calls, resolved=report.resolved,
                          dropped=report.dropped, retry_later=report.retry_later,
                          released=report.released, queue_length=report.queue_length,
                          stopped=_code(report.stopped) or ("" if not report.stopped
                                                            else "other"))
    return report


def _field(record, name):
    value = (record.get("fields") or {}).get(name) if record else None
    return "" if value is None else value


# ---- status and list --------------------------------------------------------------------------
def oldest(queue, sample=1000):
    """(first_queued_at of the oldest item among the next `sample` in drain order, or None).

    Items are drained oldest first, so the head of the queue holds the oldest except items
    given back with a delay."""
    items = queue.peek(sample)
    return min((i.first_queued_at for i in items), default=None)


def status(enricher, settings, clock=time.time):
    """The one-row quota panel (see module doc). No API key needed, no call made."""
    from .cluster_budget import share

    now = clock()
    limiter = enricher.limiter
    budget = limiter.budget
    r = limiter.remaining()
    length = enricher.queue.length()
    first = oldest(enricher.queue) if length else None

    def left(value):
        return "unlimited" if value is None else value
    circuit = "open" if r["circuit_open_until"] else "closed"
    next_call = now if r["minute"] != 0 else r["resets"]["minute"]
    try:
        scope = share(settings).describe()
    except VTPivotError as exc:
        scope = str(exc)
    parts = ["%d queued" % length]
    for window, label in (("minute", "this minute"), ("day", "today (UTC)"),
                          ("month", "this month (UTC)")):
        if r[window] is not None:
            parts.append("%s calls left %s" % (r[window], label))
    if circuit == "open":
        parts.append("circuit open until %s (%s)" % (_utc(r["circuit_open_until"]),
                                                     r["circuit_reason"]))
    return _row(
        STATUS_FIELDS, _time=round(now, 3), action="status", queue_length=length,
        oldest_queued_at=round(first, 3) if first else "",
        oldest_age_seconds=int(now - first) if first else "",
        calls_left_minute=left(r["minute"]), calls_left_day=left(r["day"]),
        calls_left_month=left(r["month"]), calls_used_minute=r["used"]["minute"],
        calls_used_day=r["used"]["day"], calls_used_month=r["used"]["month"],
        per_minute=budget.per_minute, per_day=budget.per_day, per_month=budget.per_month,
        next_call_at=round(next_call, 3), day_resets_at=r["resets"]["day"], circuit=circuit,
        circuit_open_until=r["circuit_open_until"] or "",
        circuit_reason=r["circuit_reason"] or "", backend=settings.backend,
        budget_scope=scope, detail="; ".join(parts))


def list_items(queue, max_items=100, clock=time.time):
    now = clock()
    rows = []
    for item in queue.peek(max(1, int(max_items))):
        rows.append(_row(
            LIST_FIELDS, _time=round(now, 3), action="list", kind=item.kind,
            indicator=item.value, reason=item.reason, queued_at=round(item.first_queued_at, 3),
            age_seconds=int(now - item.first_queued_at), attempts=item.attempts,
            state="claimed" if item.visible_at > now else "waiting",
            visible_at=round(item.visible_at, 3)))
    return rows


def run(action, searchinfo=None, environ=None, max_calls=3, max_items=100,
        logging_level=None, clock=time.time):
    """Rows of `| vtpivotqueue action=<action>` (the command's whole logic)."""
    from .indicators import IndicatorPolicy

    if action not in ACTIONS:
        raise VTPivotError("action must be one of %s" % ", ".join(ACTIONS), code="VTP-E050")
    settings, service, environ = connect(searchinfo, environ, need_key=action == "drain")
    logger = app_logging.setup_logging(settings.log_dir, logging_level or settings.log_level)
    enricher = build(settings, service=service, environ=environ)
    if action == "status":
        return [status(enricher, settings, clock=clock)]
    if action == "list":
        return list_items(enricher.queue, max_items, clock=clock)
    policy = IndicatorPolicy.from_settings(settings)
    return drain(enricher, policy, max_calls, clock=clock, logger=logger).rows
