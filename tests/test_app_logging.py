"""The app's log (bin/vtpivot_app/app_logging.py) and its Splunk props (default/props.conf).

- one `event=vt_call` line per request to VirusTotal, with the indicator's kind, cache,
  status, elapsed_ms; the lookup's own `lookup_done` line counts hits, misses, stale and
  throttled rows (object-store hits cost no VT call, so they have no vt_call line);
- no API key, proxy credential or response body in the file (checked on the bytes);
- values escaped so an indicator cannot forge a line or a field;
- many processes writing at once through many rotations: no line lost, none torn;
- level from the conf ([logging] level) and per search (setup_logging(level));
- props.conf's TIME_FORMAT and source pattern match a line the module really writes.
"""
import configparser
import glob
import logging
import os
import re
from datetime import datetime, timezone

import pytest

from lookup_helpers import REPO, lookup_env, lookup_rows
from redis_fixture import run_workers
from vtpivot_app import app_logging

SECRET_KEY = "vtk-Premium-5f2c9a0e7b1d4c3a"
PROXY_PASSWORD = "pr0xy-P@ss:w/rd"
STAMP = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} \+0000 level=[A-Z]+ pid=\d+ "
                   r"component=[\w.]+")
# One key=value pair as Splunk's automatic extraction reads it: a bare value runs to the
# next space; a quoted value runs to the next unescaped quote.
PAIR = re.compile(r'\s([A-Za-z_][A-Za-z0-9_]*)=("(?:[^"\\]|\\.)*"|[^\s"]*)(?=\s|$)')
UNESCAPE = {"n": "\n", "r": "\r", "t": "\t", "\\": "\\", '"': '"'}




def parse_line(line):
    """{key: value} of one log line (escapes undone), asserting the whole line is pairs."""
    head = STAMP.match(line)
    assert head, "not a log line: %r" % line[:200]
    rest = line[len("2026-01-01 00:00:00.000 +0000"):]
    fields, pos = {}, 0
    for match in PAIR.finditer(rest):
        assert match.start() == pos, "unparsed text in %r" % line[:300]
        pos = match.end()
        key, value = match.group(1), match.group(2)
        if value.startswith('"'):
            value = re.sub(r"\\(x[0-9a-f]{2}|u[0-9a-f]{4}|.)", _unescape, value[1:-1])
        fields.setdefault(key, value)
    assert pos == len(rest), "unparsed tail in %r" % line[-300:]
    return fields


def _unescape(match):
    token = match.group(1)
    if token[0] in "xu" and len(token) > 1:
        return chr(int(token[1:], 16))
    return UNESCAPE[token]


def log_lines(log_dir):
    path = os.path.join(str(log_dir), "vtpivot.log")
    with open(path, "rb") as handle:
        raw = handle.read()
    return raw, [line for line in raw.decode("utf-8").split("\n") if line]


def events(lines, name):
    return [parse_line(line) for line in lines if " event=%s " % name in line + " "]


@pytest.fixture
def home(tmp_path):
    return tmp_path / "splunk"


# ---- one vt_call line per VT call ----------------------------------------------------------
def test_one_vt_call_line_per_request_with_kind_cache_status_elapsed(fake_vt_factory, home):
    vt = fake_vt_factory(keys={SECRET_KEY: "premium"})
    env = lookup_env(home, vt.url, SECRET_KEY)
    rows = lookup_rows("domain", ["alpha.example", "no-such-domain.example", "alpha.example"], env)
    firsts = [r for r in rows if r["vt_status"]]          # extra rows carry multivalues only
    assert [r["vt_status"] for r in firsts] == ["ok", "not_found", "ok"]
    rows = lookup_rows("ip", ["8.8.8.8"], env)
    assert rows[0]["vt_status"] in ("ok", "not_found")
    _, lines = log_lines(home / "var" / "log" / "splunk")
    calls = events(lines, "vt_call")
    assert len(calls) == vt.total_calls == 3          # one line per request, duplicates folded
    by_indicator = {c["indicator"]: c for c in calls}
    assert set(by_indicator) == {"alpha.example", "no-such-domain.example", "8.8.8.8"}
    assert by_indicator["alpha.example"]["kind"] == "domain"
    assert by_indicator["alpha.example"]["status"] == "ok"
    assert by_indicator["no-such-domain.example"]["status"] == "NotFound"
    assert by_indicator["no-such-domain.example"]["code"] == "VTP-E013"
    assert by_indicator["8.8.8.8"]["kind"] == "ip"
    for call in calls:
        assert call["cache"] == "miss"
        assert call["elapsed_ms"].isdigit()
        assert call["component"] == "vtpivot.client"
    done = events(lines, "lookup_done")
    assert [d["lookup"] for d in done] == ["vt_domain", "vt_ip"]
    assert done[0]["misses"] == "2" and done[0]["hits"] == "0"

    # Again: object-store hits cost no call and write no vt_call line; lookup_done counts them.
    rows = lookup_rows("domain", ["alpha.example"], env)
    assert rows[0]["vt_cache"] == "hit"
    _, lines = log_lines(home / "var" / "log" / "splunk")
    assert len(events(lines, "vt_call")) == vt.total_calls == 3
    assert events(lines, "lookup_done")[-1]["hits"] == "1"


def test_stale_and_throttled_are_counted(fake_vt_factory, home, tmp_path):
    vt = fake_vt_factory()
    conf = tmp_path / "vtpivot.conf"
    conf.write_text("[cache]\nttl_domain = 0\n[api]\nmax_retries = 0\n", encoding="utf-8")
    env = lookup_env(home, vt.url, "test-premium-key", VTPIVOT_CONF=str(conf),
                     VTPIVOT_PER_MINUTE=1, VTPIVOT_MAX_WAIT=0)
    assert lookup_rows("domain", ["alpha.example"], env)[0]["vt_status"] == "ok"
    vt.inject("transient", count=1)
    # ttl 0: the entry is already stale; the call fails (503, or the budget): served stale.
    rows = lookup_rows("domain", ["alpha.example", "beta.example"], env)
    by_query = {r["query"]: r for r in rows if r["vt_status"]}
    assert by_query["alpha.example"]["vt_cache"] == "stale"
    _, lines = log_lines(home / "var" / "log" / "splunk")
    done = events(lines, "lookup_done")[-1]
    assert int(done["stale"]) == 1
    assert int(done["throttled"]) + int(done["errors"]) >= 1
    calls = events(lines, "vt_call")
    assert len(calls) == vt.total_calls            # throttled rows make no request, no line
    assert all(c["cache"] in ("hit", "miss") for c in calls)


def test_http_cache_hit_is_logged_as_cache_hit(fake_vt, tmp_path, monkeypatch):
    monkeypatch.setenv("SPLUNK_HOME", str(tmp_path))
    from vtpivot_app.settings import from_stanzas
    from vtpivot_app.vt_client import VTClient

    settings = from_stanzas({}, {"VT_API_URL": fake_vt.url})
    app_logging.setup_logging(settings.log_dir, "INFO")
    client = VTClient(settings, "test-premium-key")
    first = client.get_relationship("domain", "alpha.example", "resolutions")
    second = client.get_relationship("domain", "alpha.example", "resolutions")
    assert not first.from_cache and second.from_cache
    _, lines = log_lines(settings.log_dir)
    calls = events(lines, "vt_call")
    assert [c["cache"] for c in calls] == ["miss", "hit"]
    assert all(c["relationship"] == "resolutions" and c["kind"] == "domain" for c in calls)
    assert fake_vt.total_calls == 1


# ---- secrets and bodies never reach the file ------------------------------------------------
def test_no_key_proxy_credentials_or_body_in_the_log(fake_vt_factory, home, tmp_path):
    vt = fake_vt_factory(keys={SECRET_KEY: "premium"})
    env = lookup_env(home, vt.url, SECRET_KEY, VTPIVOT_LOG_LEVEL="DEBUG", VTPIVOT_PER_MINUTE=0)
    lookup_rows("domain", ["alpha.example", "mail.alpha.example"], env)
    lookup_rows("hash", ["0" * 63 + "1"], env)
    # A wrong key: VT's 401 answer is logged, the key is not.
    bad = lookup_env(home, vt.url, SECRET_KEY + "-revoked", VTPIVOT_PER_MINUTE=0)
    assert lookup_rows("domain", ["beta.example"], bad)[0]["vt_status"] == "error"
    # A proxy with credentials that refuses: the error is logged, the credentials are not.
    conf = tmp_path / "proxy.conf"
    conf.write_text("[proxy]\nurl = http://127.0.0.1:1\nusername = proxyuser\n"
                    "[api]\nurl = https://127.0.0.1:1/api/v3\nmax_retries = 0\n",
                    encoding="utf-8")
    proxied = lookup_env(home, "https://127.0.0.1:1/api/v3", SECRET_KEY,
                         VTPIVOT_CONF=str(conf), VTPIVOT_PROXY_PASSWORD=PROXY_PASSWORD,
                         VTPIVOT_PER_MINUTE=0)
    proxied.pop("VT_API_URL")
    assert lookup_rows("domain", ["gamma.example"], proxied)[0]["vt_status"] == "error"
    raw, lines = log_lines(home / "var" / "log" / "splunk")
    from urllib.parse import quote

    for secret in (SECRET_KEY, SECRET_KEY[:12], PROXY_PASSWORD, quote(PROXY_PASSWORD, safe="")):
        assert secret.encode() not in raw
    assert b"x-apikey" not in raw.lower()
    # A summary is logged, never a response: no analysis map, no raw JSON, short lines.
    assert b"last_analysis_results" not in raw and b'"attributes"' not in raw
    assert max(len(line) for line in lines) < 4000
    statuses = {c["status"] for c in events(lines, "vt_call")}
    assert {"ok", "AuthError", "NetworkError"} <= statuses


def test_registered_secrets_are_redacted_everywhere(tmp_path):
    logger = app_logging.setup_logging(str(tmp_path), "DEBUG")
    app_logging.register_secret("sk-abcdef123456")
    app_logging.log_event(logger, logging.INFO, "careless", header="x-apikey: sk-abcdef123456")
    try:
        raise RuntimeError("failed with key sk-abcdef123456")
    except RuntimeError:
        logger.exception("boom %s", "sk-abcdef123456")
    raw, lines = log_lines(tmp_path)
    assert b"sk-abcdef123456" not in raw
    assert raw.count(b"********") >= 3
    assert len(lines) == 2                            # the traceback stays on its line


# ---- escaping: no forged lines, no forged fields ----------------------------------------------
NASTY = [
    "evil.test\n2026-12-04 09:00:00.000 +0000 level=INFO forged=1",
    "evil.test\r\nlevel=ERROR",
    'quote" forged="1',
    "back\\slash\\",
    "tab\there",
    "nul\x00bell\x07esc\x1b[31m",
    "c1\x85next\x9bline",
    "uni\u2028sep\u2029par",
    "lone\udc80surrogate",
    "trailing newline\n",
    "x" * 1999 + "\\",
    "é-ü-日本",
    "",
]


def test_values_are_escaped_and_round_trip(tmp_path):
    logger = app_logging.setup_logging(str(tmp_path), "INFO")
    for value in NASTY:
        app_logging.log_event(logger, logging.INFO, "vt_call", kind="domain", indicator=value,
                              status="ok")
    raw, lines = log_lines(tmp_path)
    assert raw.count(b"\n") == len(NASTY) == len(lines)
    raw.decode("utf-8")                               # valid UTF-8 throughout
    for value, line in zip(NASTY, lines):
        fields = parse_line(line)
        assert fields["indicator"] == value
        assert fields["status"] == "ok" and fields["event"] == "vt_call"
        assert "forged" not in fields
        assert fields["level"] == "INFO"


def test_long_values_are_cut_without_breaking_the_quoting(tmp_path):
    logger = app_logging.setup_logging(str(tmp_path), "INFO")
    value = "\\" * 5000 + '"'
    app_logging.log_event(logger, logging.INFO, "x", indicator=value, after="yes")
    _, lines = log_lines(tmp_path)
    fields = parse_line(lines[0])
    assert fields["after"] == "yes"
    assert fields["indicator"].endswith("...")
    assert len(fields["indicator"]) == app_logging.MAX_VALUE_CHARS + 3


def test_forged_indicator_through_the_client_stays_on_one_line(fake_vt, tmp_path, monkeypatch):
    monkeypatch.setenv("SPLUNK_HOME", str(tmp_path))
    from vtpivot_app.errors import VTError
    from vtpivot_app.settings import from_stanzas
    from vtpivot_app.vt_client import VTClient

    settings = from_stanzas({"api": {"max_retries": "0"}}, {"VT_API_URL": fake_vt.url})
    app_logging.setup_logging(settings.log_dir, "INFO")
    client = VTClient(settings, "test-premium-key")
    forged = "evil.test\n2026-12-04 level=INFO forged=1"
    with pytest.raises(VTError):
        client.get_object("domain", forged)
    _, lines = log_lines(settings.log_dir)
    assert len(lines) == 1
    fields = parse_line(lines[0])
    assert fields["indicator"] == forged and "forged" not in fields


def test_odd_field_names_cannot_break_the_line():
    text = app_logging.kv(**{"ok": 1, "bad key=x": 2, "new\nline": 3})
    assert "\n" not in text and text.startswith("ok=1 ")
    assert re.fullmatch(r'(\w+=\S+ ?)+', text)


# ---- many processes, many rotations ------------------------------------------------------------
WRITER = r"""
import json, sys
from vtpivot_app import app_logging
args = json.loads(sys.argv[1])
logger = app_logging.setup_logging(args["dir"], "INFO", max_bytes=args["max_bytes"],
                                   backups=args["backups"])
start = start_barrier()
import time
while time.time() < start:
    time.sleep(0.001)
for seq in range(args["lines"]):
    app_logging.log_event(logger, 20, "stress", writer=args["writer"], seq=seq,
                          pad="p" * (seq % 97), indicator="w%d-%d.example" % (args["writer"], seq))
print(json.dumps({"done": args["lines"]}))
"""


@pytest.mark.parametrize("writers", [6, 8])
def test_many_processes_rotating_lose_and_tear_nothing(tmp_path, writers):
    lines_each, max_bytes = 400, 8192
    # ~200 bytes a line: writers * 400 * 200 / 8 KB rotations; keep every backup.
    backups = writers * lines_each * 260 // max_bytes + 50
    payloads = [{"dir": str(tmp_path), "writer": w, "lines": lines_each, "max_bytes": max_bytes,
                 "backups": backups} for w in range(writers)]
    assert run_workers(WRITER, payloads) == [{"done": lines_each}] * writers
    files = glob.glob(str(tmp_path / "vtpivot.log*"))
    files = [f for f in files if not f.endswith(".lock")]
    indexes = [int(f.rsplit(".", 1)[1]) for f in files if not f.endswith("vtpivot.log")]
    assert len(files) > 20, "too few rotations to test anything: %d files" % len(files)
    assert max(indexes) < backups, "a backup may have been deleted: size the test up"
    seen = {}
    for path in files:
        with open(path, "rb") as handle:
            raw = handle.read()
        assert raw.endswith(b"\n") or not raw, "torn tail in %s" % path
        for line in raw.decode("utf-8").split("\n"):
            if not line:
                continue
            fields = parse_line(line)                 # a torn line fails to parse
            assert fields["event"] == "stress"
            key = (int(fields["writer"]), int(fields["seq"]))
            assert fields["pad"] == "p" * (key[1] % 97)
            assert fields["indicator"] == "w%d-%d.example" % key
            seen[key] = seen.get(key, 0) + 1
    expected = {(w, s) for w in range(writers) for s in range(lines_each)}
    assert set(seen) == expected, "lost: %d lines" % len(expected - set(seen))
    assert all(count == 1 for count in seen.values()), "duplicated lines"


# ---- levels --------------------------------------------------------------------------------------
def test_level_from_the_conf_and_per_search(tmp_path, monkeypatch):
    monkeypatch.setenv("SPLUNK_HOME", str(tmp_path))
    monkeypatch.delenv("VTPIVOT_LOG_LEVEL", raising=False)
    conf = tmp_path / "vtpivot.conf"
    conf.write_text("[logging]\nlevel = WARNING\n", encoding="utf-8")
    from vtpivot_app.settings import load_settings

    settings = load_settings(environ={"VTPIVOT_CONF": str(conf)})
    assert settings.log_level == "WARNING"
    log = app_logging.setup_logging(settings.log_dir, settings.log_level)
    child = app_logging.get_logger("client")
    app_logging.log_event(child, logging.INFO, "hidden_info")
    app_logging.log_event(child, logging.WARNING, "shown_warning")
    # A search's logging_level=DEBUG (the vtpivot command passes it to setup_logging).
    assert app_logging.setup_logging(settings.log_dir, "debug") is log
    app_logging.log_event(child, logging.DEBUG, "shown_debug")
    app_logging.setup_logging(settings.log_dir, "ERROR")
    app_logging.log_event(child, logging.WARNING, "hidden_warning")
    app_logging.setup_logging(settings.log_dir, "no-such-level")     # falls back to INFO
    app_logging.log_event(child, logging.INFO, "shown_info")
    _, lines = log_lines(settings.log_dir)
    names = [parse_line(line)["event"] for line in lines]
    assert names == ["shown_warning", "shown_debug", "shown_info"]
    assert len(log.handlers) == 1                    # setup is idempotent per process


# ---- props.conf ----------------------------------------------------------------------------------
def _props():
    parser = configparser.RawConfigParser(strict=False, interpolation=None)
    parser.optionxform = str
    parser.read(os.path.join(REPO, "default", "props.conf"), encoding="utf-8")
    return parser


def _source_regex(stanza):
    """A props.conf source:: pattern as Splunk reads it: `...` any path, `*` within one path
    segment, the rest a regular expression, matched against the whole source."""
    pattern = stanza[len("source::"):]
    out, i = "", 0
    while i < len(pattern):
        if pattern.startswith("...", i):
            out, i = out + ".*", i + 3
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        else:
            out, i = out + pattern[i], i + 1
    return re.compile(out + r"\Z")


def test_props_time_format_parses_a_real_log_line(tmp_path):
    props = _props()
    sources = [s for s in props.sections() if s.startswith("source::")]
    assert len(sources) == 1
    sourcetype = props.get(sources[0], "sourcetype")
    assert sourcetype == "vtpivot:log"
    st = dict(props.items(sourcetype))
    assert st["KV_MODE"] == "auto"
    assert st["SHOULD_LINEMERGE"].lower() == "false"
    logger = app_logging.setup_logging(str(tmp_path), "INFO")
    before = datetime.now(timezone.utc).timestamp()
    app_logging.log_event(logger, logging.INFO, "vt_call", kind="domain", cache="miss",
                          status="ok", elapsed_ms=12, indicator="alpha.example")
    after = datetime.now(timezone.utc).timestamp()
    _, lines = log_lines(tmp_path)
    line = lines[0]
    assert re.match(st["TIME_PREFIX"], line)
    lookahead = int(st["MAX_TIMESTAMP_LOOKAHEAD"])
    python_format = st["TIME_FORMAT"].replace("%3N", "%f")
    stamp = datetime.strptime(line[:lookahead], python_format)
    assert stamp.tzinfo is not None and stamp.utcoffset().total_seconds() == 0
    assert before - 0.002 <= stamp.timestamp() <= after + 0.002
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} \+0000", line[:lookahead])
    # LINE_BREAKER splits where the module ends a line, and nowhere inside an event.
    assert re.compile(st["LINE_BREAKER"]).search(line) is None


@pytest.mark.parametrize("source,matches", [
    ("/opt/splunk/var/log/splunk/vtpivot.log", True),
    ("/opt/splunk/var/log/splunk/vtpivot.log.1", True),
    ("/opt/splunk/var/log/splunk/vtpivot.log.12", True),
    ("/opt/splunk/var/log/splunk/vtpivot.log.lock", False),
    ("/opt/splunk/var/log/splunk/splunkd.log", False),
    ("/opt/splunk/var/log/splunk/other_vtpivot.log", False),
])
def test_props_source_pattern(source, matches):
    stanza = [s for s in _props().sections() if s.startswith("source::")][0]
    assert bool(_source_regex(stanza).match(source)) is matches
