"""What vt_domain / vt_ip / vt_hash print of a summary record, ready to print.

A lookup answers one first row per indicator (the scalar fields and the first value of each
multivalue field) and one extra row per further multivalue value. Splunk sends the header
in the order of the stanza's `fields_list` (COLUMNS, kept equal to default/transforms.conf by
a test), so the object store keeps, beside each record, its lookup view: those rows already
rendered as CSV for that order, all but the cells that change with each call (the query,
vt_id, vt_status, vt_error, vt_cache, vt_link and the domain's age_days). A cached lookup then
joins a few strings per indicator instead of decoding and formatting the record:

    view = [cells before age_days (CSV), creation date (number or None),
            cells after age_days (CSV, "" for ip and file), extra rows after their query
            cell (CSV, one per row), number of values of each multivalue field]

Any other header, or an input row with more than its query, is answered from the cells
(lookup_cells, or view_cells which parses a view back into them).
"""
import csv
import io
import threading

from .vt_objects import resolution_ids

PER_CALL = ("query", "vt_id", "vt_status", "vt_error", "vt_cache", "vt_link")
COLUMNS = {  # by store kind: the fields_list of vt_domain, vt_ip and vt_hash
    "domain": PER_CALL + ("malicious", "suspicious", "harmless", "undetected", "reputation",
                          "tags", "last_analysis_date", "resolutions", "creation_date",
                          "registrar", "age_days", "categories", "cert_issuer"),
    "ip": PER_CALL + ("malicious", "suspicious", "harmless", "undetected", "reputation",
                      "tags", "last_analysis_date", "resolutions", "asn", "as_owner",
                      "country", "network", "continent"),
    "file": PER_CALL + ("malicious", "suspicious", "harmless", "undetected", "reputation",
                        "tags", "last_analysis_date", "md5", "sha1", "sha256", "size",
                        "type_description", "meaningful_name", "names",
                        "first_submission_date", "popular_threat_label"),
}
COMMON_SCALARS = ("malicious", "suspicious", "harmless", "undetected", "reputation",
                  "last_analysis_date")
SCALARS = {  # by store kind; the first row of an answer holds them
    "domain": COMMON_SCALARS + ("creation_date", "registrar", "cert_issuer"),
    "ip": COMMON_SCALARS + ("asn", "as_owner", "country", "network", "continent"),
    "file": COMMON_SCALARS + ("md5", "sha1", "sha256", "size", "type_description",
                              "meaningful_name", "first_submission_date",
                              "popular_threat_label"),
}
MULTIVALUES = {  # one output row per value
    "domain": ("resolutions", "tags", "categories"),
    "ip": ("resolutions", "tags"),
    "file": ("names", "tags"),
}
MULTIVALUE_CAP = 200  # values per multivalue field; transforms.conf max_matches is above it
# Stored with each view; a view of another format is ignored and rebuilt from its record.
# Bump it whenever build_view's output changes for the same record.
VIEW_FORMAT = 2
AGE = "age_days"


class _KindLayout:
    """Where each field of a kind sits among the cells after the per-call ones."""

    def __init__(self, kind):
        static = COLUMNS[kind][len(PER_CALL):]
        self.static = static
        self.age = static.index(AGE) if AGE in static else None
        self.index = {name: i for i, name in enumerate(static)}
        self.scalar_index = tuple(self.index[name] for name in SCALARS[kind])
        self.multi_index = tuple(self.index[name] for name in MULTIVALUES[kind])


LAYOUTS = {kind: _KindLayout(kind) for kind in COLUMNS}

_writer_buffer = io.StringIO(newline="")
# "\r\n", not "\n": a writer quotes the cells that hold a character of its line terminator,
# and Python 3.9's writer with "\n" leaves a CR unquoted (a reader takes it for a line end).
_writer = csv.writer(_writer_buffer, lineterminator="\r\n")
# The enricher's pool threads render views (ObjectStore.put) while the runner writes rows.
_writer_lock = threading.Lock()


def csv_line(cells):
    """The line (without its end) that csv.writer(lineterminator="\r\n") writes for a row
    of strings: a cell with a comma, quote, CR or LF in it is quoted. A row that needs no
    quoting (none of those nor NUL in any cell, and not one empty cell) is its cells joined
    by commas, which is what the writer writes for it; the others go through the writer.
    (Python 3.9's writer tests every character of every cell against the line terminator
    with a function call: a fifth of a cached run.)"""
    try:
        line = ",".join(cells)
    except TypeError:  # a cell that is not a string: csv.writer formats it
        line = ""
    if (not line or line.count(",") != len(cells) - 1 or '"' in line or "\n" in line
            or "\r" in line or "\x00" in line):  # 3.9 quotes NUL (its "no escapechar")
        with _writer_lock:
            _writer_buffer.seek(0)
            _writer_buffer.truncate()
            _writer.writerow(cells)
            line = _writer_buffer.getvalue()[:-2]
    return line


def _csv_cells(cells):
    """Cells rendered to be joined into a longer row by ",": each cell quoted on its own
    (csv.writer quotes a cell by its content alone), so no single-empty-cell `""`."""
    return ",".join(csv_line((cell,)) if cell else "" for cell in cells)


def _text(value):
    return "" if value is None else str(value)


def lookup_cells(kind, record):
    """(scalar cells, creation date, multivalue cells) of a summary record of store kind
    `kind`: the SCALARS as strings ("" for None), the domain's creation date as a number for
    age_days (None when absent or not a number), and one list of strings per MULTIVALUES
    field, capped at MULTIVALUE_CAP."""
    fields = record.get("fields") or {}
    get = fields.get
    scalars = [_text(value) for value in map(get, SCALARS[kind])]
    created = get("creation_date") if kind == "domain" else None
    if isinstance(created, bool) or not isinstance(created, (int, float)) or not created:
        created = None
    multis = []
    for name in MULTIVALUES[kind]:
        values = resolution_ids(kind, record) if name == "resolutions" else get(name)
        if not isinstance(values, (list, tuple)):
            values = ()
        multis.append([_text(value) for value in values[:MULTIVALUE_CAP]])
    return scalars, created, multis


def record_view(kind, record):
    """The view of a summary record (None when build_view gives none)."""
    return build_view(kind, lookup_cells(kind, record))


def build_view(kind, cells):
    """The view (see the module's docstring) of lookup_cells' cells; None when a cell holds
    a NUL character (csv.reader, which view_cells uses, refuses it on Python 3.9)."""
    scalars, created, multis = cells
    layout = LAYOUTS[kind]
    if any("\x00" in cell for cell in scalars) or any(
            "\x00" in value for multi in multis for value in multi):
        return None
    first = [""] * len(layout.static)
    for index, value in zip(layout.scalar_index, scalars):
        first[index] = value
    lengths = [len(multi) for multi in multis]
    extras = [[""] * len(layout.static) for _ in range(max(lengths, default=1) - 1)]
    for index, multi in zip(layout.multi_index, multis):
        if multi:
            first[index] = multi[0]
        for row, value in zip(extras, multi[1:]):
            row[index] = value
    if layout.age is None:
        before, after = _csv_cells(first), ""
    else:
        before, after = _csv_cells(first[:layout.age]), _csv_cells(first[layout.age + 1:])
    pad = "," * (len(PER_CALL) - 1)  # the empty per-call cells of an extra row, but query
    return [before, created, after, [pad + _csv_cells(row) for row in extras], lengths]


def is_view(kind, view):
    """Whether `view` (decoded from storage) has the shape of a view of `kind`."""
    return (type(view) is list and len(view) == 5 and type(view[0]) is str
            and (view[1] is None or type(view[1]) in (int, float))
            and type(view[2]) is str and type(view[3]) is list
            and type(view[4]) is list and len(view[4]) == len(MULTIVALUES[kind]))


def _parse(text):
    # "" is one empty cell here, never no cell (each part has at least one)
    return next(csv.reader([text]), None) or [""]


def view_cells(kind, view):
    """lookup_cells' cells, parsed back from a view (build_view's inverse)."""
    before, created, after, extras, lengths = view
    layout = LAYOUTS[kind]
    csv.field_size_limit(2 ** 31 - 1)  # a 2 MB cell is a cell, not an error
    first = _parse(before)
    if layout.age is not None:
        first += [""] + _parse(after)
    rows = [first] + [_parse(extra)[len(PER_CALL) - 1:] for extra in extras]
    scalars = [first[index] for index in layout.scalar_index]
    multis = [[rows[row][index] for row in range(count)]
              for index, count in zip(layout.multi_index, lengths)]
    return scalars, created, multis


def first_row(kind, view, per_call, age):
    """The first row of an answer in COLUMNS order: the per-call cells (query, vt_id,
    vt_status, vt_error, vt_cache, vt_link) and the domain's age_days cell joined to the
    stored ones."""
    if LAYOUTS[kind].age is None:
        return csv_line(per_call) + "," + view[0]
    return csv_line(per_call) + "," + view[0] + "," + age + "," + view[2]
