"""The lookup view: a record's lookup rows rendered as CSV, stored beside the record.

The runner prints a stored view for the header Splunk sends; these tests pin the view to the
cells it is built from (parsed back, through JSON as the store keeps it) and the runner's
output from a view to the output from the record (tests/test_lookup_runner.py's oracle)."""
import io
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lookup_helpers import transforms_fields
from test_lookup_runner import FakeEnricher, reference_run
from vtpivot_app import lookup_runner, lookup_view
from vtpivot_app.enrichment import Enricher, Resolution
from vtpivot_app.indicators import IndicatorPolicy
from vtpivot_app.object_store import ObjectStore

NOW = 1_796_400_000
STANZAS = {"domain": ("vt_domain", "vt_domain_cached"), "ip": ("vt_ip", "vt_ip_cached"),
           "file": ("vt_hash", "vt_hash_cached")}


@pytest.mark.parametrize("kind", sorted(STANZAS))
def test_columns_are_the_shipped_fields_list(kind):
    for stanza in STANZAS[kind]:
        assert tuple(transforms_fields(stanza)) == lookup_view.COLUMNS[kind], stanza


# Hostile text: every character csv quotes or chokes on, NUL, invalid-UTF-8 escapes, non-BMP.
TEXT = st.text(alphabet=st.sampled_from(list('aZ9 ,"\r\n\t;\'\\\x00\x1f\udc80é漢😀')),
               max_size=8)
SCALAR = st.one_of(st.none(), TEXT, st.integers(-10, 10 ** 12), st.booleans(),
                   st.floats(allow_nan=False, allow_infinity=False))
VALUES = st.lists(st.one_of(TEXT, st.none(), st.integers()), max_size=4)


@st.composite
def records(draw, kind):
    fields = {name: draw(SCALAR) for name in lookup_view.SCALARS[kind]
              if draw(st.booleans())}
    for name in lookup_view.MULTIVALUES[kind]:
        if name != "resolutions" and draw(st.booleans()):
            fields[name] = draw(VALUES)
    if kind == "domain":
        fields["creation_date"] = draw(st.one_of(st.none(), st.integers(1, NOW), TEXT))
        fields["a_records"] = draw(st.lists(TEXT, max_size=3))
    nodes = [{"id": value} for value in draw(st.lists(TEXT, max_size=4))]
    return {"kind": kind, "id": draw(TEXT), "fields": fields,
            "relationships": {"resolutions": nodes}}


@pytest.mark.parametrize("kind", sorted(STANZAS))
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_view_parses_back_to_its_cells_after_a_json_round_trip(kind, data):
    record = data.draw(records(kind))
    cells = lookup_view.lookup_cells(kind, record)
    view = lookup_view.build_view(kind, cells)
    holds_nul = any("\x00" in cell for cell in cells[0]) or any(
        "\x00" in value for multi in cells[2] for value in multi)
    if holds_nul:
        assert view is None  # such a record is printed from its cells
        return
    stored = json.loads(json.dumps(view, separators=(",", ":")))
    assert lookup_view.is_view(kind, stored)
    assert lookup_view.view_cells(kind, stored) == (cells[0], cells[1], cells[2])


@pytest.mark.parametrize("kind", sorted(STANZAS))
@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_runner_prints_from_the_view_what_it_prints_from_the_record(kind, data):
    """The shipped header: the first row comes from the view (first_row is called); the
    output equals the dict-per-row oracle's, for blank and filled input rows."""
    record = data.draw(records(kind))
    lookup_kind = {"file": "hash"}.get(kind, kind)
    query = {"domain": "evil.test", "ip": "192.0.2.9", "file": "d" * 32}[kind]
    answers = {query: Resolution("ok", "hit", record)}
    header = list(lookup_view.COLUMNS[kind])
    rows = [[query] + [""] * (len(header) - 1), [query] + ["in"] * (len(header) - 1),
            [query.upper()] + [""] * (len(header) - 1)]
    buf = io.StringIO(newline="")
    lookup_runner.csv.writer(buf, lineterminator="\n").writerows([header] + rows)
    text = buf.getvalue()
    calls = []
    real_first_row = lookup_runner.first_row
    lookup_runner.first_row = lambda *args: calls.append(args) or real_first_row(*args)
    try:
        policy = IndicatorPolicy(allow_documentation=True)
        runner = lookup_runner.LookupRunner(lookup_kind, FakeEnricher(answers), policy,
                                            clock=lambda: NOW)
        assert runner.run(text) == reference_run(lookup_kind, text, answers, policy, NOW)
    finally:
        lookup_runner.first_row = real_first_row
    if lookup_view.record_view(kind, record) is not None:
        assert calls, "the shipped header did not take the view path"


def test_a_stored_view_prints_without_decoding_the_record(tmp_path, monkeypatch):
    """Through the real store: the entry read with need_record=False keeps its record
    undecoded, and the lookup's rows equal those printed from the record itself."""
    from vtpivot_app.settings import Settings
    from vtpivot_app.storage_backends import open_backend

    record = {"kind": "domain", "id": "evil.test",
              "fields": {"malicious": 7, "registrar": "NameCheap, Inc.", "tags": ["a", "b,c"],
                         "creation_date": NOW - 40 * 86400, "categories": ['say "hi"'],
                         "cert_issuer": "Let's Encrypt (R11)", "a_records": ["192.0.2.1"]},
              "relationships": {"resolutions": [{"id": "192.0.2.2"}, {"id": "192.0.2.1"}]}}
    store = ObjectStore(open_backend("sqlite", str(tmp_path)), clock=lambda: NOW)
    store.put("domain", "evil.test", record)
    entry = store.get_many("domain", ["evil.test"], need_record=False)["evil.test"]
    assert entry.view == lookup_view.record_view("domain", record)
    decoded = []
    monkeypatch.setattr("vtpivot_app.object_store.json.loads",
                        lambda *a, **k: decoded.append(a) or json.loads(*a, **k))
    enricher = Enricher(Settings(), store, live=False, clock=lambda: NOW)
    header = list(lookup_view.COLUMNS["domain"])
    text = ",".join(header) + "\nEVIL[.]test" + "," * (len(header) - 1) + "\n"
    policy = IndicatorPolicy(allow_documentation=True)
    out = lookup_runner.LookupRunner("domain", enricher, policy, clock=lambda: NOW).run(text)
    assert not decoded, "the record was decoded for a cached lookup"
    expected = reference_run("domain", text, {"evil.test": Resolution("ok", "hit", record)},
                             policy, NOW)
    assert out == expected
    assert '"NameCheap, Inc."' in out and ",40," in out


def test_csv_line_is_safe_across_threads():
    """The enricher's pool threads render views (ObjectStore.put) while the runner writes
    rows: the writer behind csv_line's quoting path is shared, so it must be used by one
    thread at a time."""
    import sys
    import threading

    rows = [["value %d, with a comma" % i, 'say "%d"' % i, "plain"] for i in range(200)]
    expected = [lookup_view.csv_line(row) for row in rows]
    wrong = []

    def work():
        for _ in range(60):
            for row, line in zip(rows, expected):
                got = lookup_view.csv_line(row)
                if got != line:
                    wrong.append((line, got))

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as the interpreter allows
    try:
        threads = [threading.Thread(target=work) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        sys.setswitchinterval(interval)
    assert not wrong, wrong[:3]


def test_a_view_with_a_creation_date_that_is_no_number_is_not_a_view():
    view = lookup_view.record_view("domain", {"fields": {"creation_date": 1_600_000_000}})
    assert lookup_view.is_view("domain", view)
    for bad in ("1600000000", True, [1]):
        assert not lookup_view.is_view("domain", [view[0], bad] + view[2:]), bad
