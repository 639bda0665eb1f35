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
from .enrichment import STORE_KINDS, Resolution, resolution_for_unsendable
from .errors import VTPivotError
from .indicators import IndicatorPolicy, classify, vt_link
from .lookup_view import COLUMNS, MULTIVALUES, csv_line, first_row
from .lookup_view import SCALARS as VIEW_SCALARS

LOOKUP_KINDS = {"domain": "domain", "ip": "ip", "hash": "hash"}
NUL_PLACEHOLDER = "\udc00"  # never produced by surrogateescape decoding (only \udc80-\udcff)
# Per lookup kind: the scalar fields written on the first row, and the multivalue fields.
SCALARS = {kind: VIEW_SCALARS[STORE_KINDS[kind]] for kind in LOOKUP_KINDS}
KIND_MULTIVALUES = {kind: MULTIVALUES[STORE_KINDS[kind]] for kind in LOOKUP_KINDS}
STATUS_FIELDS = ("vt_status", "vt_error", "vt_cache", "vt_id")
log = app_logging.get_logger("lookup")


def decode_input(raw_bytes):
    text = raw_bytes.decode("utf-8", "surrogateescape")
    if text.startswith("\ufeff"):
        text = text[1:]
    return text.replace("\x00", NUL_PLACEHOLDER)


def encode_output(text):
    return text.replace(NUL_PLACEHOLDER, "\x00").encode("utf-8", "surrogateescape")



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
        resolutions = self.enricher.resolve(list(sendable.values()), need_record=False)
        now = self.clock()
        layout = _Layout(self.kind, header, q)
        width = len(header)

        def resolution_of(ind):
            if ind.status != "ok":
                return resolution_for_unsendable(ind)
            return resolutions.get((ind.kind, ind.value)) or Resolution(
                status="error", error="[VTP-E030] no answer for this indicator")

        lines = [csv_line(header)]  # CSV text, one item per output row
        blank_answers = {}  # query -> its lines for an input row empty but for the query
        full_answers = {}   # query -> layout.answer(...), for the other input rows
        for row in rows:
            query = row[q] if q < len(row) else ""
            if not query:
                lines.append(csv_line(row))
                continue
            if len(row) <= width and row.count("") == len(row) - 1:
                # the usual input: nothing but the query to keep
                answer = blank_answers.get(query)
                if answer is None:
                    ind = indicators[query]
                    answer = blank_answers[query] = layout.blank_answer(
                        resolution_of(ind), ind, now, query)
                lines.extend(answer)
                continue
            answer = full_answers.get(query)
            if answer is None:
                ind = indicators[query]
                answer = full_answers[query] = layout.answer(resolution_of(ind), ind, now,
                                                             query)
            values, unset, extra = answer
            # The first row keeps the input row; extra rows carry query + multivalues.
            line = row[:width]
            if len(line) < width:
                line += [""] * (width - len(line))
            line[q] = query
            for column, field in layout.placed:
                if field not in unset:
                    line[column] = values[field]
            lines.append(csv_line(line))
            lines.extend(extra)
        lines.append("")
        return "\n".join(lines)


def age_days(now, created):
    """The age_days cell: whole days since the creation date, "" when there is none."""
    return "" if created is None else str(int((now - created) // 86400))


class _Layout:
    """The output rows of one answer for one header, without per-row dicts: the fields of a
    kind in a fixed order, each one's column found once (this runs once per distinct
    indicator, tens of thousands of times a second on a cached run). For the header Splunk
    sends (the stanza's fields_list) and an input row empty but for its query, the rows are
    the record's stored lookup view joined to the per-call cells."""

    def __init__(self, kind, header, q):
        self.store_kind = STORE_KINDS[kind]
        self.canonical = tuple(header) == COLUMNS[self.store_kind]
        multi = KIND_MULTIVALUES[kind]
        fields = STATUS_FIELDS + ("vt_link",) + SCALARS[kind] + ("age_days",) + multi
        # An answer without a record: every field after vt_link is empty and left unset.
        self.no_record_values = [""] * (len(fields) - 5)
        self.no_record_unset = tuple(range(5, len(fields)))
        self.no_record_no_link_unset = (4,) + self.no_record_unset
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

    def blank_answer(self, resolution, indicator, now, query):
        """The CSV lines answering an input row that is empty but for its query."""
        if self.canonical:
            view = resolution.lookup_view(self.store_kind)
            if view is not None:
                per_call = (query, resolution.record_id or indicator.value, resolution.status,
                            resolution.error, resolution.cache,
                            vt_link(indicator) if indicator.value else "")
                lines = [first_row(self.store_kind, view, per_call, age_days(now, view[1]))]
                if view[3]:
                    start = csv_line((query,)) + ","
                    lines += [start + extra for extra in view[3]]
                return lines
        values, _, extra = self.answer(resolution, indicator, now, query)
        return [csv_line(self.pick(values))] + extra

    def answer(self, resolution, indicator, now, query):
        """(field values + [query, ""], indexes of the fields left unset, CSV lines of the
        extra rows); fields the header lacks are dropped. The test suite keeps the
        straightforward dict-per-row version as its oracle."""
        cells = resolution.lookup_cells(self.store_kind)
        link = vt_link(indicator) if indicator.value else ""  # "" unless status is ok
        if cells is None:
            values = [resolution.status, resolution.error, resolution.cache, indicator.value,
                      link] + self.no_record_values + [query, ""]
            return values, self.no_record_unset if link else self.no_record_no_link_unset, []
        scalars, created, multis = cells
        values = [resolution.status, resolution.error, resolution.cache,
                  resolution.record_id or indicator.value, link]
        unset = [] if link else [4]
        values += scalars
        if created is None:
            unset.append(len(values))
        values.append(age_days(now, created))
        extra = []
        for multi, column in zip(multis, self.multi_columns):
            if not multi:
                unset.append(len(values))
                values.append("")
                continue
            values.append(multi[0])
            if len(multi) > 1:
                while len(extra) < len(multi) - 1:
                    line = [""] * self.width
                    line[self.q] = query
                    extra.append(line)
                if column is not None:
                    for line, value in zip(extra, multi[1:]):
                        line[column] = value
        values.append(query)
        values.append("")
        return values, unset, [csv_line(line) for line in extra]


def error_rows(text_in, message):
    """Every non-empty row answered vt_status=error with the message (nothing crashes)."""
    csv.field_size_limit(2 ** 31 - 1)
    reader = csv.reader(io.StringIO(text_in, newline=""))
    try:
        header = next(reader)
    except StopIteration:
        return ""
    lines = [csv_line(header)]
    positions = {name: i for i, name in enumerate(header)}
    for row in reader:
        line = list(row) + [""] * (len(header) - len(row))
        if "query" in positions and line[positions["query"]]:
            for name, value in (("vt_status", "error"), ("vt_error", message)):
                if name in positions:
                    line[positions[name]] = value
        lines.append(csv_line(line))
    lines.append("")
    return "\n".join(lines)


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
