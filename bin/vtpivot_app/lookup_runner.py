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
import gc
import io
import sys
import time
from operator import itemgetter

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
STATUS_FIELDS = ("vt_status", "vt_error", "vt_cache", "vt_id")


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
        # A cached run allocates a dozen containers per row and keeps them to the end; the
        # cyclic GC would rescan them all, again and again (a fifth of the run). Nothing here
        # makes reference cycles, so it is paused for the call.
        paused = gc.isenabled()
        gc.disable()
        try:
            return self._run(text_in)
        finally:
            if paused:
                gc.enable()

    def _run(self, text_in):
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
        rows = list(reader)
        expected, policy = LOOKUP_KINDS[self.kind], self.policy
        indicators = {}
        for row in rows:
            query = row[q] if q < len(row) else ""
            if query and query not in indicators:
                indicators[query] = classify(query, expected, policy)
        sendable = {(i.kind, i.value): i for i in indicators.values() if i.status == "ok"}
        resolutions = self.enricher.resolve(list(sendable.values()))
        now = self.clock()
        layout = _Layout(self.kind, header, q)
        width = len(header)
        lines = [header]
        answers = {}  # query -> layout.answer(...): built once per distinct query
        for row in rows:
            query = row[q] if q < len(row) else ""
            if not query:
                lines.append(row)
                continue
            answer = answers.get(query)
            if answer is None:
                ind = indicators[query]
                if ind.status != "ok":
                    res = resolution_for_unsendable(ind)
                else:
                    res = resolutions.get((ind.kind, ind.value)) or Resolution(
                        status="error", error="[VTP-E030] no answer for this indicator")
                answer = answers[query] = layout.answer(res, ind, now, query)
            first, values, unset, extra = answer
            if len(row) <= width and row.count("") == len(row) - 1:
                lines.append(first)  # the usual input: nothing but the query to keep
            else:
                # The first row keeps the input row; extra rows carry query + multivalues.
                line = row[:width]
                if len(line) < width:
                    line += [""] * (width - len(line))
                line[q] = query
                for column, field in layout.placed:
                    if field not in unset:
                        line[column] = values[field]
                lines.append(line)
            if extra:
                lines.extend(extra)
        out = io.StringIO(newline="")
        csv.writer(out, lineterminator="\n").writerows(lines)
        return out.getvalue()


class _Layout:
    """The output rows of one answer for one header, without per-row dicts: the fields of a kind in a fixed
    order, each one's column found once (this runs once per distinct indicator, 20,000
    times a second on a cached run)."""

    def __init__(self, kind, header, q):
        self.kind = kind
        self.store_kind = STORE_KIND[kind]
        self.scalars = SCALARS[kind]
        multi = KIND_MULTIVALUES[kind]
        fields = STATUS_FIELDS + ("vt_link",) + self.scalars + ("age_days",) + multi
        self.first_multi = len(fields) - len(multi)
        positions = {name: i for i, name in enumerate(header)}  # a repeated name: its last
        self.width, self.q = len(header), q
        self.multi_columns = tuple(positions.get(name) for name in multi)
        # (column, field index) of the fields the header has
        self.placed = tuple((positions[name], f) for f, name in enumerate(fields)
                            if name in positions)
        # The first row of an input row that is empty but for its query: one C call picks
        # each column from values + [query, ""].
        by_column = dict(self.placed)
        picks = [by_column.get(c, len(fields) + 1) for c in range(len(header))]
        picks[q] = len(fields)
        self.pick = itemgetter(*picks) if len(picks) > 1 else lambda seq: (seq[picks[0]],)

    def answer(self, resolution, indicator, now, query):
        """(first row of an empty input row, field values, indexes of the fields left unset,
        extra rows), placed in columns (fields the header lacks are dropped). The test suite
        keeps the straightforward dict-per-row version as its oracle."""
        record = resolution.record
        vt_id = indicator.value
        if record:
            fields = record.get("fields", {})
            vt_id = record.get("id") or indicator.value
        values = [resolution.status, resolution.error, resolution.cache, vt_id, ""]
        unset = set()
        if indicator.status == "ok" and indicator.value:
            values[4] = vt_link(indicator)
        else:
            unset.add(4)
        extra = ()
        if not record:
            unset.update(range(5, self.first_multi + len(self.multi_columns)))
            values += [""] * (self.first_multi + len(self.multi_columns) - 5)
        else:
            get = fields.get
            values += ["" if value is None else str(value) for value in map(get, self.scalars)]
            if self.kind == "domain" and get("creation_date"):
                values.append(str(int((now - fields["creation_date"]) // 86400)))
            else:
                unset.add(len(values))
                values.append("")
            extra = []
            for name, column in zip(KIND_MULTIVALUES[self.kind], self.multi_columns):
                multi = resolution_ids(self.store_kind, record) if name == "resolutions" \
                    else get(name)
                multi = (multi or ())[:MULTIVALUE_CAP]
                if not multi:
                    unset.add(len(values))
                    values.append("")
                    continue
                value = multi[0]
                values.append("" if value is None else str(value))
                for index in range(1, len(multi)):
                    if index > len(extra):
                        line = [""] * self.width
                        line[self.q] = query
                        extra.append(line)
                    if column is not None:
                        value = multi[index]
                        extra[index - 1][column] = "" if value is None else str(value)
        first = self.pick(values + [query, ""])
        return first, values, unset, extra


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
