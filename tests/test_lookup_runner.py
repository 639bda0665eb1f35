"""The lookup runner's CSV contract, with a stand-in enricher (no network, no store)."""
import csv
import io

from hypothesis import given, settings
from hypothesis import strategies as st

from vtpivot_app import lookup_runner, lookup_view, vt_objects
from vtpivot_app.enrichment import Resolution
from vtpivot_app.indicators import IndicatorPolicy

HEADER = ["query", "vt_id", "vt_status", "vt_error", "vt_cache", "vt_link", "malicious",
          "tags", "resolutions", "creation_date", "age_days", "registrar", "categories"]
DOMAIN_RECORD = {
    "kind": "domain", "id": "evil.test",
    "fields": {"malicious": 5, "suspicious": 1, "harmless": 0, "undetected": 60,
               "reputation": -12, "tags": ["phishing", "new"], "last_analysis_date": 1700000000,
               "creation_date": 1700000000 - 30 * 86400, "registrar": "Registrar, Inc.",
               "categories": ["phishing"], "cert_issuer": "Let's Encrypt (R11)",
               "a_records": ["192.0.2.7"]},
    "relationships": {"resolutions": [{"id": "192.0.2.5", "kind": "ip"},
                                      {"id": "192.0.2.6", "kind": "ip"}]},
}


class FakeEnricher:
    def __init__(self, answers):
        self.answers = answers
        self.calls = []

    def resolve(self, indicators, need_record=True):
        self.calls.append([(i.kind, i.value) for i in indicators])
        return {(i.kind, i.value): self.answers.get(i.value, Resolution(status="not_found",
                                                                        cache="miss"))
                for i in indicators if i.status == "ok"}


def run(rows, answers=None, header=HEADER, kind="domain"):
    enricher = FakeEnricher(answers or {})
    runner = lookup_runner.LookupRunner(kind, enricher,
                                        IndicatorPolicy(allow_documentation=True),
                                        clock=lambda: 1700000000)
    buf = io.StringIO(newline="")
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow(row)
    out = runner.run(buf.getvalue())
    return list(csv.DictReader(io.StringIO(out, newline=""))), enricher


def blank(query):
    return [query] + [""] * (len(HEADER) - 1)


def test_multivalue_rows_and_scalars_on_the_first_row_only():
    rows, _ = run([blank("EVIL[.]test")], {"evil.test": Resolution("ok", "hit", DOMAIN_RECORD)})
    assert len(rows) == 3  # 3 resolutions (2 from VT + 1 current A record)
    assert all(r["query"] == "EVIL[.]test" for r in rows)  # echoed byte for byte
    first = rows[0]
    assert (first["vt_id"], first["vt_status"], first["vt_cache"]) == ("evil.test", "ok", "hit")
    assert first["malicious"] == "5" and first["age_days"] == "30"
    assert first["vt_link"] == "https://www.virustotal.com/gui/domain/evil.test"
    assert [r["resolutions"] for r in rows] == ["192.0.2.5", "192.0.2.6", "192.0.2.7"]
    assert [r["tags"] for r in rows] == ["phishing", "new", ""]
    for extra in rows[1:]:
        assert extra["vt_status"] == extra["malicious"] == extra["registrar"] == ""


def test_duplicates_resolved_once_and_order_kept():
    answers = {"evil.test": Resolution("ok", "hit", dict(DOMAIN_RECORD, relationships={},
                                                         fields={"tags": []}))}
    rows, enricher = run([blank("evil.test"), blank("b.test"), blank("EVIL.TEST"),
                          blank("evil.test")], answers)
    assert len(enricher.calls) == 1
    assert sorted(enricher.calls[0]) == [("domain", "b.test"), ("domain", "evil.test")]
    assert [r["query"] for r in rows] == ["evil.test", "b.test", "EVIL.TEST", "evil.test"]
    assert [r["vt_status"] for r in rows] == ["ok", "not_found", "ok", "ok"]


def test_empty_query_rows_pass_through_untouched():
    row = ["", "keep", "these", "values"] + [""] * (len(HEADER) - 4)
    rows, enricher = run([row])
    assert list(rows[0].values()) == row
    assert enricher.calls == [[]]


def test_invalid_and_skipped_rows_say_why_without_a_call():
    rows, enricher = run([blank("not a domain!"), blank("10.0.0.1"), blank("host.internal"),
                          blank("192.168.1.1")])
    assert enricher.calls == [[]]
    assert [r["vt_status"] for r in rows] == ["invalid", "invalid", "skipped", "invalid"]
    assert rows[0]["vt_error"].startswith("[VTP-E040]")
    assert "vt_ip" in rows[1]["vt_error"]  # an IP given to vt_domain
    assert rows[2]["vt_error"].startswith("[VTP-E041]")


def test_hostile_values_are_echoed_exactly():
    hostile = ['a "quoted", value', "line\nbreak", "x" * (2 * 1024 * 1024), "=cmd|' /C calc'!A0",
               "<img src=x onerror=alert(1)>"]
    rows, _ = run([blank(v) for v in hostile])
    assert [r["query"] for r in rows] == hostile
    assert all(r["vt_status"] == "invalid" for r in rows)
    assert "too long" in rows[2]["vt_error"]


def test_bytes_level_round_trip_of_invalid_utf8_and_nul():
    raw = b"query,vt_status\n\xff\xfebad.test,\nnul\x00.test,\n\xef\xbb\xbfok,\n"
    text = lookup_runner.decode_input(raw)
    enricher = FakeEnricher({})
    out = lookup_runner.LookupRunner("domain", enricher, IndicatorPolicy()).run(text)
    encoded = lookup_runner.encode_output(out)
    lines = encoded.split(b"\n")
    assert lines[1].startswith(b"\xff\xfebad.test,invalid")
    assert lines[2].startswith(b"nul\x00.test,invalid")
    assert lines[3].startswith(b"\xef\xbb\xbfok,")


def test_missing_query_column_is_a_clear_error():
    import pytest

    from vtpivot_app.errors import VTPivotError

    with pytest.raises(VTPivotError, match=r"\[VTP-E060\].*query"):
        run([["x"]], header=["domain"])


def test_error_rows_fill_every_nonempty_row():
    text = "query,vt_status,vt_error\na.test,,\n,,\n"
    out = lookup_runner.error_rows(text, "[VTP-E001] no key")
    assert out.splitlines() == ["query,vt_status,vt_error", "a.test,error,[VTP-E001] no key",
                                ",,"]


def test_hash_lookup_fields():
    record = {"kind": "file", "id": "e" * 64,
              "fields": {"md5": "d" * 32, "sha1": "c" * 40, "sha256": "e" * 64, "size": 1234,
                         "names": ["a.exe", "b.exe"], "tags": ["peexe"],
                         "popular_threat_label": "trojan.x/y", "malicious": 40}}
    header = ["query", "vt_id", "vt_status", "md5", "sha256", "size", "names",
              "popular_threat_label", "malicious"]
    rows, _ = run([["D" * 32] + [""] * 8], {"d" * 32: Resolution("ok", "miss", record)},
                  header=header, kind="hash")
    assert rows[0]["vt_id"] == "e" * 64 and rows[0]["sha256"] == "e" * 64
    assert rows[0]["size"] == "1234" and rows[0]["malicious"] == "40"
    assert [r["names"] for r in rows] == ["a.exe", "b.exe"]


# ---- the runner's column layout == output_rows placed the straightforward way --------------

def reference_output_rows(kind, resolution, indicator, now):
    """The list of {field: value} rows (first row: scalars + first multivalues).
    LookupRunner.run writes these same rows through _Layout, without the dicts; tests
    compare the two."""
    first = {"vt_status": resolution.status, "vt_error": resolution.error,
             "vt_cache": resolution.cache, "vt_id": indicator.value}
    if indicator.status == "ok" and indicator.value:
        first["vt_link"] = lookup_runner.vt_link(indicator)
    record = resolution.record
    if not record:
        return [first]
    fields = record.get("fields", {})
    first["vt_id"] = record.get("id") or indicator.value
    for name in lookup_runner.SCALARS[kind]:
        value = fields.get(name)
        first[name] = "" if value is None else str(value)
    created = fields.get("creation_date")
    if kind == "domain" and created and type(created) in (int, float):  # a number, not bool
        first["age_days"] = str(int((now - created) // 86400))
    rows = [first]
    for name in lookup_runner.KIND_MULTIVALUES[kind]:
        values = vt_objects.resolution_ids(lookup_runner.STORE_KINDS[kind], record) \
            if name == "resolutions" else fields.get(name)
        for index, value in enumerate((values or ())[:lookup_view.MULTIVALUE_CAP]):
            if index == len(rows):
                rows.append({})
            rows[index][name] = "" if value is None else str(value)
    return rows


def writer_line(row):
    """A row as csv.writer writes it when CR is part of its line terminator (so that a cell
    holding a CR is quoted on Python 3.9 too), ended by LF as the lookup ends its lines."""
    buf = io.StringIO(newline="")
    csv.writer(buf, lineterminator="\r\n").writerow(row)
    return buf.getvalue()[:-2] + "\n"


def reference_run(kind, text_in, answers, policy, now):
    """The runner as it was first written: output_rows dicts placed through a name->column
    map, row by row (the per-row cost the layout removes; the output must not change)."""
    reader = csv.reader(io.StringIO(text_in, newline=""))
    header = next(reader)
    q = header.index("query")
    out = []
    write = out.append
    write(writer_line(header))
    positions = {name: i for i, name in enumerate(header)}
    for row in reader:
        query = row[q] if q < len(row) else ""
        if not query:
            write(writer_line(row))
            continue
        ind = lookup_runner.classify(query, kind, policy)
        if ind.status != "ok":
            res = lookup_runner.resolution_for_unsendable(ind)
        else:
            res = answers.get(ind.value, Resolution(status="not_found", cache="miss"))
        for index, values in enumerate(reference_output_rows(kind, res, ind, now)):
            line = (list(row) + [""] * len(header))[:len(header)] if index == 0 \
                else [""] * len(header)
            line[q] = query
            for name, value in values.items():
                if name in positions:
                    line[positions[name]] = value
            write(writer_line(line))
    return "".join(out)


def test_layout_matches_output_rows_for_every_shape():
    import itertools

    policy = IndicatorPolicy(allow_documentation=True)
    many = {"kind": "domain", "id": "many.test",
            "fields": {"tags": [str(i) for i in range(250)], "categories": [None, 7, "x"],
                       "creation_date": None, "registrar": None, "malicious": True},
            "relationships": {"resolutions": [{"id": "192.0.2.%d" % i} for i in range(5)]}}
    answers = {"evil.test": Resolution("ok", "hit", DOMAIN_RECORD),
               "many.test": Resolution("ok", "stale", many, "[VTP-E080] stale"),
               "empty.test": Resolution("ok", "hit", {}),
               "bare.test": Resolution("ok", "hit", {"id": "", "fields": {}}),
               "err.test": Resolution("error", "miss", None, "[VTP-E030] boom")}
    headers = [HEADER, ["query"], ["vt_status", "query"], HEADER + ["tags", "query", "extra"],
               ["x", "query", "age_days", "resolutions", "vt_link", "vt_id"],
               transforms_fields_like_splunk(), list(lookup_view.COLUMNS["domain"])]
    queries = ["evil.test", "EVIL.test", "many.test", "empty.test", "bare.test", "err.test",
               "nowhere.test", "not a domain!", "10.0.0.1", "host.internal", ""]
    for header in headers:
        width = len(header)
        q = header.index("query")
        rows = []
        for query, shape in itertools.product(queries, ("blank", "filled", "short", "long")):
            row = {"blank": [""] * width, "filled": ["in%d" % i for i in range(width)],
                   "short": [""] * (q + 1), "long": [""] * width + ["tail"]}[shape]
            row[q] = query
            rows.append(row)
        buf = io.StringIO(newline="")
        csv.writer(buf, lineterminator="\n").writerows([header] + rows)
        text = buf.getvalue()
        runner = lookup_runner.LookupRunner("domain", FakeEnricher(answers), policy,
                                            clock=lambda: 1700000000)
        assert runner.run(text) == reference_run("domain", text, answers, policy,
                                                 1700000000), header


def transforms_fields_like_splunk():
    return ["query", "vt_id", "vt_status", "vt_error", "vt_cache", "vt_link", "malicious",
            "suspicious", "harmless", "undetected", "reputation", "tags", "last_analysis_date",
            "resolutions", "creation_date", "registrar", "age_days", "categories",
            "cert_issuer", "vt_status"]


def test_layout_matches_output_rows_for_ip_and_hash():
    policy = IndicatorPolicy(allow_documentation=True)
    ip_record = {"kind": "ip", "id": "8.8.8.8",
                 "fields": {"asn": 15169, "as_owner": "Google", "tags": ["dns"] * 3},
                 "relationships": {"resolutions": [{"id": "a.test"}, {"id": "b.test"},
                                                   {"id": "a.test"}]}}
    file_record = {"kind": "file", "id": "e" * 64,
                   "fields": {"md5": "d" * 32, "names": ["a.exe", "b.exe"], "size": 0}}
    for kind, answers, queries in (
            ("ip", {"8.8.8.8": Resolution("ok", "hit", ip_record)}, ["8.8.8.8", "1.1.1.1",
                                                                       "evil.test", "10.1.1.1"]),
            ("hash", {"d" * 32: Resolution("ok", "hit", file_record)}, ["D" * 32, "e" * 64,
                                                                          "zz"])):
        for header in (["query", "vt_id", "vt_status", "asn", "resolutions", "tags", "md5",
                        "names", "size", "vt_link"],
                       list(lookup_view.COLUMNS[lookup_runner.STORE_KINDS[kind]])):
            buf = io.StringIO(newline="")
            csv.writer(buf, lineterminator="\n").writerows(
                [header] + [[query] + [""] * (len(header) - 1) for query in queries])
            text = buf.getvalue()
            runner = lookup_runner.LookupRunner(kind, FakeEnricher(answers), policy,
                                                clock=lambda: 1700000000)
            assert runner.run(text) == reference_run(kind, text, answers, policy,
                                                     1700000000), header


# ---- csv_line == csv.writer ------------------------------------------------------------------



CSV_CELLS = st.text(alphabet=st.sampled_from(list('ab ,"\r\n\t\x00\udc80\udc00é\u2028;\'')),
                    max_size=6)


@settings(max_examples=500, deadline=None)
@given(st.lists(CSV_CELLS, max_size=6))
def test_csv_line_writes_what_csv_writer_writes(row):
    assert lookup_runner.csv_line(row) + "\n" == writer_line(row)


def test_csv_line_edge_rows():
    for row in ([], [""], ["", ""], [" lead", "trail "], ["a,b"], ['q"q'], ["cr\r"], ["lf\n"],
                ["x"] * 19, [1, None, 2.5], ["nul\x00"]):
        assert lookup_runner.csv_line(row) + "\n" == writer_line(row), row
    # A CR inside a value is quoted (Python 3.9's writer with an LF terminator does not,
    # and a CSV reader then takes the CR for the end of the row).
    assert lookup_runner.csv_line(["a\rb", "c"]) == '"a\rb",c'
    assert list(csv.reader(io.StringIO(lookup_runner.csv_line(["a\rb", "c"]) + "\n",
                                       newline=""))) == [["a\rb", "c"]]
