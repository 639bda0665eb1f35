"""The "VirusTotal usage" dashboard (default/data/ui/views/vtpivot_usage.xml).

Every panel's SPL is checked syntactically (no Splunk here): non-empty, balanced quotes,
brackets and backticks, well-formed pipes, only known commands; and the log fields the
panels use are fields that app_logging really writes: the test produces real log lines (a
lookup against the fake VirusTotal, a failed call, a throttled row, a queue drain) and
compares.
"""
import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest

from lookup_helpers import LOOKUP_SCRIPT, REPO, lookup_env, lookup_input, transforms_fields

VIEW = os.path.join(REPO, "default", "data", "ui", "views", "vtpivot_usage.xml")
KNOWN_COMMANDS = {"search", "vtpivotqueue", "timechart", "stats", "eval", "fields", "table",
                  "sort", "head", "where", "rename", "lookup", "chart", "fillnull"}
SPLUNK_FIELDS = {"_time", "_raw", "host", "source", "sourcetype", "index", "splunk_server"}
STATS_FUNCTIONS = r"(?:count|dc|sum|avg|max|min|latest|earliest|values|list|median|perc\d+)"


def _searches():
    tree = ET.parse(VIEW)
    root = tree.getroot()
    out = []
    for search in root.iter("search"):
        query = search.find("query")
        out.append((search.get("id") or search.get("base") or "", search,
                    (query.text or "") if query is not None else ""))
    return root, out


def eval_assignments(part):
    """[(target, expression)] of an eval segment, split on top-level commas only."""
    body = part.strip()[len("eval"):]
    pieces, depth, quote, current = [], 0, False, ""
    for ch in body:
        if quote:
            quote = ch != '"'
        elif ch == '"':
            quote = True
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == "," and depth == 0:
            pieces.append(current)
            current = ""
            continue
        current += ch
    pieces.append(current)
    out = []
    for piece in pieces:
        target, sep, expression = piece.partition("=")
        assert sep and re.fullmatch(r"\s*\w+\s*", target), "bad eval: %r" % piece
        out.append((target.strip(), expression))
    return out


def read_names(expression):
    """Field names an eval expression reads (not functions, not string literals)."""
    words = re.findall(r"\b([A-Za-z_]\w*)\b(?!\s*\()", re.sub(r'"[^"]*"', "", expression))
    return [w for w in words if w not in ("AND", "OR", "NOT", "true", "false")]


def _full_query(search_id_map, search, text):
    base = search.get("base")
    if base:
        return search_id_map[base] + " " + text
    return text


def test_view_parses_and_is_simple_xml_1_1():
    root, searches = _searches()
    assert root.tag == "form" and root.get("version") == "1.1"
    assert root.find("label").text
    assert len(searches) >= 10
    ids = {s.get("id") for _, s, _ in searches if s.get("id")}
    for _, search, _ in searches:
        if search.get("base"):
            assert search.get("base") in ids


def split_pipes(query):
    """Split on top-level pipes (outside quotes, brackets and backticks)."""
    parts, depth, quote, tick, current = [], 0, False, False, ""
    i = 0
    while i < len(query):
        ch = query[i]
        if quote:
            if ch == "\\":
                current += query[i:i + 2]
                i += 2
                continue
            if ch == '"':
                quote = False
        elif ch == '"':
            quote = True
        elif ch == "`":
            tick = not tick
        elif ch in "([":
            depth += 1
        elif ch in ")]":
            depth -= 1
            assert depth >= 0, "unbalanced ) or ] in %r" % query
        elif ch == "|" and depth == 0 and not tick:
            parts.append(current)
            current = ""
            i += 1
            continue
        current += ch
        i += 1
    assert not quote, "unbalanced quote in %r" % query
    assert not tick, "unbalanced backtick in %r" % query
    assert depth == 0, "unbalanced brackets in %r" % query
    parts.append(current)
    return parts


def check_spl(query):
    query = query.strip()
    assert query, "empty query"
    parts = split_pipes(query)
    generating = query.startswith("|")
    if generating:
        assert parts[0].strip() == "", query
        parts = parts[1:]
    commands = []
    for index, part in enumerate(parts):
        part = part.strip()
        assert part, "empty pipe segment in %r" % query
        if index == 0 and not generating:
            commands.append("search")
            continue
        name = part.split()[0].lower()
        assert name in KNOWN_COMMANDS, "unknown command %r in %r" % (name, query)
        commands.append(name)
    assert not re.search(r"\$[^$\s]*$", query.replace("$$", "")), "unclosed token"
    assert len(re.findall(r"\$", query)) % 2 == 0, "unbalanced $tokens$ in %r" % query
    return commands, parts


@pytest.mark.parametrize("index", range(14))
def test_every_panel_query_is_well_formed(index):
    _, searches = _searches()
    if index >= len(searches):
        pytest.fail("the view has only %d searches: shrink the range" % len(searches))
    ids = {s.get("id"): text for _, s, text in searches if s.get("id")}
    _, search, text = searches[index]
    check_spl(_full_query(ids, search, text))


def test_parameter_range_covers_every_search():
    _, searches = _searches()
    assert len(searches) == 14


@pytest.mark.parametrize("bad", [
    "", "index=_internal | | stats count", "index=_internal | stats count |",
    'index=_internal "unclosed', "index=_internal | stats count BY (a", "| nosuch x",
    "index=_internal | eval a=`macro(x)", "index=_internal | eval x=$tok",
])
def test_the_checker_rejects_broken_spl(bad):
    with pytest.raises(AssertionError):
        check_spl(bad)


# ---- the log fields the panels use are fields the app writes ----------------------------------------
@pytest.fixture(scope="module")
def written_fields(tmp_path_factory):
    """Field names of real log lines: lookups (ok, not found, 503, throttled) + a drain."""
    sys.path.insert(0, os.path.join(REPO, "devtools"))
    from fakevt import FakeVirusTotal

    from test_app_logging import log_lines, parse_line

    home = tmp_path_factory.mktemp("usage") / "splunk"
    with FakeVirusTotal(dataset="basic") as vt:
        env = lookup_env(home, vt.url, "test-premium-key", VTPIVOT_PER_MINUTE=3,
                         VTPIVOT_MAX_WAIT=0, VTPIVOT_MAX_RETRIES=0)
        vt.inject("transient", count=1, path=r"/domains/beta\.example")
        header = transforms_fields("vt_domain")
        proc = subprocess.run([sys.executable, LOOKUP_SCRIPT, "domain"],
                              input=lookup_input(header, ["alpha.example", "beta.example",
                                                          "nope.example", "gamma.example"]),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                              cwd=REPO, timeout=120)
        assert proc.returncode == 0, proc.stderr
        env["VTPIVOT_PER_MINUTE"] = "10"
        code = ("import sys, json; from vtpivot_app import background; "
                "background.run('drain', max_calls=1)")
        drain_env = dict(env, PYTHONPATH=os.pathsep.join([os.path.join(REPO, "bin"),
                                                          os.path.join(REPO, "lib")]))
        proc = subprocess.run([sys.executable, "-c", code], env=drain_env, cwd=REPO,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120)
        assert proc.returncode == 0, proc.stderr
    _, lines = log_lines(home / "var" / "log" / "splunk")
    by_event = {}
    for line in lines:
        fields = parse_line(line)
        by_event.setdefault(fields["event"], set()).update(fields)
    for event in ("vt_call", "lookup_done", "queue_drain"):
        assert event in by_event, "no %s line was written: %s" % (event, sorted(by_event))
    statuses = {parse_line(line).get("status") for line in lines if "event=vt_call" in line}
    assert {"ok", "NotFound", "Transient"} <= statuses
    return by_event


def _log_queries():
    _, searches = _searches()
    return [text.strip() for _, _, text in searches if "source=*vtpivot.log*" in text]


def test_log_panels_use_fields_the_app_writes(written_fields):

    all_written = set().union(*written_fields.values()) | SPLUNK_FIELDS
    queries = _log_queries()
    assert len(queries) >= 5
    used_any = set()
    for query in queries:
        commands, parts = check_spl(query)
        first = parts[0]
        events = re.findall(r"\bevent=(\w+)", first)
        assert events, query
        known = set(SPLUNK_FIELDS)
        for event in events:
            assert event in written_fields, "event=%s is never written" % event
            known |= written_fields[event]
        # Filters of the base search.
        for name in re.findall(r"\b([A-Za-z_]\w*)\s*(?:!=|=|>|<)", first):
            if name in ("index", "source"):
                continue
            assert name in known, "%s is not a field of %s lines" % (name, events)
            used_any.add(name)
        # Fields read later, before anything defines them: stats/timechart arguments, BY
        # clauses, eval inputs; names defined by AS or eval become known.
        defined = set()
        for part, command in zip(parts[1:], commands[1:]):
            for name in re.findall(STATS_FUNCTIONS + r"\((\w+)\)", part):
                assert name in known | defined, "%s is not written (%s)" % (name, query)
                used_any.add(name)
            by = re.search(r"\bBY\s+([\w\s,]+)$", part)
            if by and command in ("stats", "timechart", "chart"):
                for name in re.split(r"[\s,]+", by.group(1).strip()):
                    assert name in known | defined, "BY %s is not written" % name
                    used_any.add(name)
            defined |= set(re.findall(r"\bAS\s+(\w+)", part))
            if command == "eval":
                for target, expression in eval_assignments(part):
                    for name in read_names(re.sub(r"\$[\w.|]+\$", "0", expression)):
                        assert name in known | defined, "eval reads %s, never written" % name
                    defined.add(target)
            if command in ("table", "fields"):
                for name in part.split()[1:]:
                    assert name in known | defined, "%s is not written" % name
    # The fields the brief names are all read somewhere, and all really written.
    for name in ("event", "cache", "status", "elapsed_ms", "kind", "indicator", "code"):
        assert name in all_written, name
        assert name in used_any or re.search(r"\b%s\b" % name, " ".join(queries)), name


def test_quota_panels_use_status_fields():
    from vtpivot_app import background

    _, searches = _searches()
    ids = {s.get("id"): text for _, s, text in searches if s.get("id")}
    assert ids["quota"].strip() == "| vtpivotqueue action=status"
    status_fields = set(background.STATUS_FIELDS)
    list_fields = set(background.LIST_FIELDS)
    for _, search, text in searches:
        query = _full_query(ids, search, text)
        if "vtpivotqueue" not in query:
            continue
        fields = status_fields if "action=status" in query else list_fields
        _, parts = check_spl(query)
        defined = set()
        for part in parts[1:]:
            part = part.strip()
            if part.startswith("eval"):
                for target, expression in eval_assignments(part):
                    for name in read_names(expression):
                        assert name in fields | defined, "%s is not a status field" % name
                    defined.add(target)
            elif part.startswith(("table", "fields")):
                for name in part.split()[1:]:
                    assert name in fields | defined, "%s is not a status field" % name


def test_quota_panel_needs_no_internal_index():
    _, searches = _searches()
    quota = [text for _, s, text in searches if s.get("id") == "quota" or s.get("base")]
    assert quota and not any("_internal" in q for q in quota)
