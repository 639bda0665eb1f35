"""The external lookups vt_domain, vt_ip, vt_hash and their cache-only twins.

Splunk writes CSV (header + rows) to stdin and reads CSV from stdout. Contract:
- `query` is echoed byte for byte on every row (Splunk joins answers back to events by the
  exact value): input is decoded as UTF-8 with surrogateescape and written back the same
  way, so invalid bytes survive; NUL bytes (which Python 3.9's csv refuses) travel as a
  private placeholder and are restored on output.
- A row whose `query` is empty passes through untouched.
- Every distinct indicator is resolved once per call (enrichment.Enricher), however many
  rows carry it; rows keep their order.
- Multivalue fields (resolutions, tags, categories, names) are written as one row per value
  for the same query, which Splunk folds into multivalue fields. Scalar fields are written on
  the first row only (later rows leave them empty), so Splunk's results hold each scalar once
  instead of repeated copies.
"""
import csv
import io
import sys
import time

from . import app_logging
from .enrichment import Resolution, resolution_for_unsendable
from .errors import VTPivotError
from .indicators import IndicatorPolicy, classify, vt_link
from .vt_objects import resolution_ids

LOOKUP_KINDS = {"domain": "domain", "ip": "ip", "hash": "hash"}
MULTIVALUE_CAP = 200  # values per multivalue field; transforms.conf max_matches is above it
NUL_PLACEHOLDER = "\udc00"  # never produced by surrogateescape decoding (only \udc80-\udcff)
COMMON_FIELDS = ("malicious", "suspicious", "harmless", "undetected", "reputation",
                 "last_analysis_date")
KIND_SCALARS = {
    "domain": ("creation_date", "registrar", "cert_issuer"),
    "ip": ("asn", "as_owner", "country", "network", "continent"),
    "hash": ("md5", "sha1", "sha256", "size", "type_description", "meaningful_name",
             "first_submission_date", "popular_threat_label"),
}
KIND_MULTIVALUES = {
    "domain": ("resolutions", "tags", "categories"),
    "ip": ("resolutions", "tags"),
    "hash": ("names", "tags"),
}
log = app_logging.get_logger("lookup")


def decode_input(raw_bytes):
    text = raw_bytes.decode("utf-8", "surrogateescape")
    if text.startswith("\ufeff"):
        text = text[1:]
    return text.replace("\x00", NUL_PLACEHOLDER)


def encode_output(text):
    return text.replace(NUL_PLACEHOLDER, "\x00").encode("utf-8", "surrogateescape")


# Per lookup kind: the scalar fields written on the first row (precomputed: this runs once
# per distinct indicator, 20,000 times a second on a cached run).
SCALARS = {kind: COMMON_FIELDS + names for kind, names in KIND_SCALARS.items()}
STORE_KIND = {"domain": "domain", "ip": "ip", "hash": "file"}


def output_rows(kind, resolution, indicator, now):
    """The list of {field: value} rows (first row: scalars + first multivalues)."""
    first = {"vt_status": resolution.status, "vt_error": resolution.error,
             "vt_cache": resolution.cache, "vt_id": indicator.value}
    if indicator.status == "ok" and indicator.value:
        first["vt_link"] = vt_link(indicator)
    record = resolution.record
    if not record:
        return [first]
    fields = record.get("fields", {})
    first["vt_id"] = record.get("id") or indicator.value
    for name in SCALARS[kind]:
        value = fields.get(name)
        first[name] = "" if value is None else str(value)
    if kind == "domain" and fields.get("creation_date"):
        first["age_days"] = str(int((now - fields["creation_date"]) // 86400))
    rows = [first]
    for name in KIND_MULTIVALUES[kind]:
        values = resolution_ids(STORE_KIND[kind], record) if name == "resolutions" \
            else fields.get(name)
        for index, value in enumerate((values or ())[:MULTIVALUE_CAP]):
            if index == len(rows):
                rows.append({})
            rows[index][name] = "" if value is None else str(value)
    return rows


class LookupRunner:
    def __init__(self, kind, enricher, policy, clock=time.time):
        if kind not in LOOKUP_KINDS:
            raise ValueError(kind)
        self.kind = kind
        self.enricher = enricher
        self.policy = policy
        self.clock = clock

    def run(self, text_in):
        """CSV text in -> CSV text out."""
        csv.field_size_limit(2 ** 31 - 1)  # a 2 MB value is a row, not a crash
        reader = csv.reader(io.StringIO(text_in, newline=""))
        try:
            header = next(reader)
        except StopIteration:
            return ""
        if "query" not in header:
            raise VTPivotError("the lookup input has no `query` column: transforms.conf "
                               "fields_list must start with query", code="VTP-E060")
        q = header.index("query")
        rows = [row for row in reader]
        indicators = {}
        for row in rows:
            query = row[q] if q < len(row) else ""
            if query and query not in indicators:
                indicators[query] = classify(query, LOOKUP_KINDS[self.kind], self.policy)
        sendable = {(i.kind, i.value): i for i in indicators.values() if i.status == "ok"}
        resolutions = self.enricher.resolve(list(sendable.values()))
        out = io.StringIO(newline="")
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(header)
        now = self.clock()
        positions = {name: i for i, name in enumerate(header)}
        for row in rows:
            query = row[q] if q < len(row) else ""
            if not query:
                writer.writerow(row)
                continue
            ind = indicators[query]
            if ind.status != "ok":
                res = resolution_for_unsendable(ind)
            else:
                res = resolutions.get((ind.kind, ind.value)) or Resolution(
                    status="error", error="[VTP-E030] no answer for this indicator")
            for index, values in enumerate(output_rows(self.kind, res, ind, now)):
                # The first row keeps the input row; extra rows carry query + multivalues.
                line = (list(row) + [""] * len(header))[:len(header)] if index == 0 \
                    else [""] * len(header)
                line[q] = query
                for name, value in values.items():
                    if name in positions:
                        line[positions[name]] = value
                writer.writerow(line)
        return out.getvalue()


def error_rows(text_in, message):
    """Every non-empty row answered vt_status=error with the message (nothing crashes)."""
    reader = csv.reader(io.StringIO(text_in, newline=""))
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\n")
    try:
        header = next(reader)
    except StopIteration:
        return ""
    writer.writerow(header)
    positions = {name: i for i, name in enumerate(header)}
    for row in reader:
        line = list(row) + [""] * (len(header) - len(row))
        if "query" in positions and line[positions["query"]]:
            for name, value in (("vt_status", "error"), ("vt_error", message)):
                if name in positions:
                    line[positions[name]] = value
        writer.writerow(line)
    return out.getvalue()


def main(argv, stdin=None, stdout=None, environ=None):
    """Entry point of bin/vt_lookup.py: `vt_lookup.py domain|ip|hash [--cached]`."""
    stdin = stdin or sys.stdin.buffer
    stdout = stdout or sys.stdout.buffer
    kind = argv[0] if argv else ""
    live = "--cached" not in argv
    text_in = decode_input(stdin.read())
    if kind not in LOOKUP_KINDS:
        sys.stderr.write("usage: vt_lookup.py domain|ip|hash [--cached]\n")
        return 2
    try:
        from .settings import load_settings
        from .enrichment import build_enricher

        settings = load_settings(environ=environ)
        logger = app_logging.setup_logging(settings.log_dir, settings.log_level)
        started = time.time()
        enricher = build_enricher(settings, live=live, environ=environ)
        policy = IndicatorPolicy.from_settings(settings)
        text_out = LookupRunner(kind, enricher, policy).run(text_in)
        app_logging.log_event(logger, 20, "lookup_done", lookup=f"vt_{kind}",
                              live=live, elapsed_ms=int((time.time() - started) * 1000),
                              **enricher.stats.as_dict())
    except VTPivotError as exc:
        text_out = error_rows(text_in, str(exc))
    except Exception as exc:  # noqa: BLE001 - a lookup must answer its rows, never crash
        log.exception("lookup failed")
        text_out = error_rows(text_in, f"[VTP-E030] internal error: {type(exc).__name__}")
    stdout.write(encode_output(text_out))
    stdout.flush()
    return 0
