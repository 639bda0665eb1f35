"""Live checks against a real Splunk with the vtpivot package installed (see conftest.py).

Not run in `make test`; UNVERIFIED in this repository's CI (no Splunk there). Start e.g. the
splunk/splunk container, install the package, set the API key on the setup page, then:

    SPLUNK_URL=https://localhost:8089 SPLUNK_USER=admin SPLUNK_PASSWORD=... SPLUNK_VERIFY=0 \
        .venv/py313/bin/python -m pytest -q tests/live
"""
import os
import re
import xml.etree.ElementTree as ET

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
STATUSES = {"ok", "not_found", "invalid", "skipped", "throttled", "error"}


def errors(messages):
    return [text for kind, text in messages if kind in ("ERROR", "FATAL")]


def test_enrich_macro_answers_with_a_status(run_spl):
    rows, messages = run_spl('| makeresults | eval domain="google.com" '
                             '| `vt_enrich_domain(domain)`')
    assert not errors(messages), messages
    (row,) = rows
    assert row["vt_status"] in STATUSES
    assert row["vt_id"] == "google.com"
    if row["vt_status"] == "ok":
        assert row["vt_cache"] in ("hit", "miss", "stale")
        assert "vt_malicious" in row
    else:
        assert row["vt_error"].startswith("[VTP-E")


def test_vtpivot_command_returns_edges_or_a_status(run_spl):
    rows, messages = run_spl('| makeresults | eval domain="google.com" '
                             '| vtpivot domain relationships=resolutions limit=5')
    assert not errors(messages), messages
    assert rows
    for row in rows:
        assert row["vt_status"] in STATUSES or row.get("dst")
        assert row["seed"] == "google.com"


def test_vtpivotqueue_status_is_the_quota_panel(run_spl):
    rows, messages = run_spl("| vtpivotqueue action=status")
    assert not errors(messages), messages
    (row,) = rows
    assert int(row["queue_length"]) >= 0
    for window in ("minute", "day", "month"):
        value = row["calls_left_" + window]
        assert value == "unlimited" or int(value) >= 0
    assert row["circuit"] in ("open", "closed")


def test_vtpivotqueue_list_and_a_zero_call_drain(run_spl):
    rows, messages = run_spl("| vtpivotqueue action=list max_items=5")
    assert not errors(messages), messages
    assert len(rows) <= 5
    rows, messages = run_spl("| vtpivotqueue action=drain max_calls=0")
    assert not errors(messages), messages
    assert rows[-1]["outcome"] == "summary" and rows[-1]["calls_made"] == "0"


def test_usage_dashboard_searches_run(run_spl):
    root = ET.parse(os.path.join(REPO, "default", "data", "ui", "views",
                                 "vtpivot_usage.xml")).getroot()
    queries = {s.get("id"): s.find("query").text for s in root.iter("search") if s.get("id")}
    for search in root.iter("search"):
        query = search.find("query").text
        if search.get("base"):
            query = queries[search.get("base")] + " " + query
        query = re.sub(r"\$per_day\|s\$", '"500"', query)
        rows, messages = run_spl(query, earliest_time="-24h")
        assert not errors(messages), (query, messages)


def test_log_lines_get_the_app_sourcetype(run_spl):
    rows, messages = run_spl("index=_internal source=*vtpivot.log* | head 5 "
                             "| table sourcetype event level", earliest_time="-24h")
    assert not errors(messages), messages
    for row in rows:                     # empty when nothing was logged yet
        assert row["sourcetype"] == "vtpivot:log"
        assert row["event"] and row["level"]
