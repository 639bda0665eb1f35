"""End to end: the real bin/vtpivot.py in a subprocess, spoken to as splunkd does (chunked
protocol v2, devtools/splunk_chunked.py), against the local fake VirusTotal (and the fake
splunkd for the key). Counts are the fake server's own request counts."""
import os
import sys

import pytest

from splunk_chunked import (command_argv, csv_to_records, read_frame, records_to_csv,
                              run_command, searchinfo)
from fakevt import Dataset
from fakevt import builders as b
from vtpivot_app.pivot import OUTPUT_FIELDS

HERE = os.path.dirname(os.path.abspath(__file__))
KEY = "test-public-key"
T0 = b.ts("2026-10-01")
F1 = b.hashes_for("e2e-file-1")        # (md5, sha1, sha256)
MANY = [b.hashes_for("e2e-many-%d" % i)[2] for i in range(13)]


def _dataset():
    """seed.example <-> 192.0.2.10, 198.51.100.20 (resolutions); 192.0.2.10 <-> alt.example,
    alt2.example; 198.51.100.20 <-> alt.example; seed.example and 192.0.2.10 <- F1
    (communicating); F1 -> seed.example, c2.example, 203.0.113.5; many.example <- 13 files."""
    ds = Dataset("pivot-e2e")
    for name, mal in (("seed.example", 7), ("alt.example", 2), ("alt2.example", 0),
                      ("c2.example", 12), ("many.example", 0)):
        ds.add_object(b.make_domain(name, creation_date=T0 - 90 * 86400, last_analysis_date=T0,
                                    registrar="Example Registrar", malicious=mal))
    for ip, asn, owner in (("192.0.2.10", 64500, "Hosting A"), ("198.51.100.20", 64501,
                                                                "Hosting B"),
                           ("203.0.113.5", 64502, "Hosting C")):
        ds.add_object(b.make_ip(ip, asn=asn, as_owner=owner, country="NL",
                                network=ip.rsplit(".", 1)[0] + ".0/24", last_analysis_date=T0,
                                malicious=3))
    ds.add_object(b.make_file("e2e-file-1", first_submission_date=T0 - 86400,
                              last_analysis_date=T0, malicious=45,
                              threat_label="trojan.e2e/test", hashes=F1))
    for i, sha in enumerate(MANY):
        ds.add_object(b.make_file("e2e-many-%d" % i, first_submission_date=T0,
                                  last_analysis_date=T0, hashes=b.hashes_for("e2e-many-%d" % i)))
    ds.add_resolution("seed.example", "192.0.2.10", T0 - 86400)
    ds.add_resolution("seed.example", "198.51.100.20", T0 - 2 * 86400)
    ds.add_resolution("alt.example", "192.0.2.10", T0 - 3 * 86400)
    ds.add_resolution("alt2.example", "192.0.2.10", T0 - 4 * 86400)
    ds.add_resolution("alt.example", "198.51.100.20", T0 - 5 * 86400)
    ds.add_related("domains", "seed.example", "communicating_files", [F1[2]])
    ds.add_related("ip_addresses", "192.0.2.10", "communicating_files", [F1[2]])
    ds.add_related("files", F1[2], "contacted_domains", ["seed.example", "c2.example"])
    ds.add_related("files", F1[2], "contacted_ips", ["203.0.113.5"])
    ds.add_related("domains", "many.example", "communicating_files", MANY)
    return ds


@pytest.fixture(scope="module")
def dataset():
    return _dataset()


@pytest.fixture
def vt(fake_vt_factory, dataset):
    # VirusTotal's own quota off here; the app's limiter (env) is what the tests drive.
    return fake_vt_factory(dataset=dataset, quotas={"public": {"per_minute": None,
                                                               "per_day": None}})


def make_env(home, vt=None, **extra):
    env = {"PATH": os.environ.get("PATH", ""), "SPLUNK_HOME": str(home),
           "VTPIVOT_PER_MINUTE": "0", "VTPIVOT_MAX_WAIT": "0", "LANG": "C.UTF-8"}
    if vt is not None:
        env.update(VT_API_URL=vt.url, VT_API_KEY=KEY)
    env.update({k: str(v) for k, v in extra.items()})
    return env


def pivot(args, records, env, **info):
    chunks = records if records and isinstance(records[0], list) else [records]
    return run_command(command_argv(), searchinfo(args, **info), chunks, env=env)


def edges(answer):
    return [(r["src"], r["relationship"], r["dst"], r["hop"]) for r in answer.records
            if r["dst"]]


def ok(answer):
    assert answer.returncode == 0, answer.stderr[-3000:]
    assert answer.errors() == [], answer.errors()
    return answer


def api_requests(vt):
    return sorted(vt.counts_by_request())


SEED_OBJECT = ("GET /api/v3/domains/seed.example?relationships=resolutions%2C"
               "communicating_files%2Creferrer_files%2Csubdomains%2Csiblings")


# ---- conformance of the test client with real splunkd ------------------------------------------

def test_the_protocol_helper_matches_the_real_recording():
    with open(os.path.join(HERE, "fixtures", "splunk", "countmatches_trimmed.input"),
              "rb") as handle:
        getinfo, body = read_frame(handle)
        execute, csv_body = read_frame(handle)
    assert getinfo["action"] == "getinfo" and body == ""
    real_keys = set(getinfo["searchinfo"])
    assert real_keys <= set(searchinfo(["x"]))
    assert execute == {"action": "execute", "finished": True}
    header, records = csv_to_records(csv_body)
    assert header == ["_serial", "_time", "text"] and len(records) == 3
    # our CSV writer uses the same layout: plain columns, then the __mv_ columns
    ours = records_to_csv([{"_serial": "0", "text": ["a", "b"]}]).splitlines()[0]
    assert ours == "_serial,text,__mv__serial,__mv_text"


# ---- walks --------------------------------------------------------------------------------

def test_depth1_from_a_domain(vt, tmp_path):
    answer = ok(pivot(["domain"], [{"domain": "seed.example", "case": "c1"}],
                      make_env(tmp_path, vt)))
    assert answer.getinfo["type"] == "stateful"       # distributed=False: search head only
    assert edges(answer) == [("seed.example", "resolutions", "192.0.2.10", "1"),
                             ("seed.example", "resolutions", "198.51.100.20", "1"),
                             ("seed.example", "communicating_files", F1[2], "1")]
    first = answer.records[0]
    assert first["case"] == "c1"                        # input fields are kept
    assert first["resolution_date"] == str(T0 - 86400)
    assert first["src_malicious"] == "7" and first["dst_malicious"] == "3"
    assert (first["domain"], first["ip"], first["hash"]) == ("seed.example", "192.0.2.10", "")
    assert api_requests(vt) == sorted([
        SEED_OBJECT, "GET /api/v3/domains/seed.example/resolutions?limit=10"])
    assert vt.total_calls == 2
    header = answer.chunks[0][1]
    # the input's own `domain` gives way to the output column of the same name
    assert header == ["case"] + list(OUTPUT_FIELDS)
    metrics = answer.metrics()
    assert metrics["vt_calls"][3] == 2 and metrics["edges"][3] == 3
    assert metrics["nodes"][3] == 4 and metrics["throttled_nodes"][3] == 0


def test_depth2_from_a_domain_exact_calls_and_cycles_once(vt, tmp_path):
    answer = ok(pivot(["domain", "depth=2"], [{"domain": "seed.example"}],
                      make_env(tmp_path, vt)))
    assert sorted(edges(answer)) == sorted([
        ("seed.example", "resolutions", "192.0.2.10", "1"),
        ("seed.example", "resolutions", "198.51.100.20", "1"),
        ("seed.example", "communicating_files", F1[2], "1"),
        ("192.0.2.10", "resolutions", "alt.example", "2"),
        ("192.0.2.10", "resolutions", "alt2.example", "2"),
        ("192.0.2.10", "communicating_files", F1[2], "2"),
        ("198.51.100.20", "resolutions", "alt.example", "2"),
        (F1[2], "contacted_domains", "c2.example", "2"),
        (F1[2], "contacted_ips", "203.0.113.5", "2"),
    ])
    hops = [r["hop"] for r in answer.records]
    assert hops == sorted(hops)
    # the seed (object) once, 2 IPs (object + resolutions page), F1 (object): 7 calls
    assert vt.total_calls == 7
    assert vt.calls("/domains/seed.example") == 2
    assert vt.calls("/ip_addresses/192.0.2.10") == 2 and vt.calls("/files/") == 1
    assert vt.calls("/domains/alt.example") == 0 and vt.calls("/ip_addresses/203.0.113.5") == 0
    to_ip = [r for r in answer.records if r["dst"] == "192.0.2.10"][0]
    assert (to_ip["dst_asn"], to_ip["dst_as_owner"]) == ("64500", "Hosting A")
    to_file = [r for r in answer.records if r["dst"] == F1[2] and r["hop"] == "1"][0]
    assert to_file["dst_popular_threat_label"] == "trojan.e2e/test"
    assert to_file["dst_malicious"] == "45"

    # The same search again: everything from the object store and the HTTP cache.
    vt.reset_counts()
    again = ok(pivot(["domain", "depth=2"], [{"domain": "seed.example"}],
                     make_env(tmp_path, vt)))
    assert vt.total_calls == 0
    assert sorted(edges(again)) == sorted(edges(answer))
    assert again.metrics()["vt_calls"][3] == 0 and again.metrics()["cache_hits"][3] > 0


def test_options_before_and_after_the_field_are_the_same(vt, tmp_path):
    after = ok(pivot(["domain", "depth=2", "limit=1"], [{"domain": "seed.example"}],
                     make_env(tmp_path, vt)))
    before = ok(pivot(["depth=2", "limit=1", "domain"], [{"domain": "seed.example"}],
                      make_env(tmp_path, vt)))
    assert edges(after) == edges(before)
    assert max(r["hop"] for r in after.records) == "2"
    per_src = {}
    for src, rel, _, _ in edges(after):
        per_src[(src, rel)] = per_src.get((src, rel), 0) + 1
    assert max(per_src.values()) == 1             # limit=1 per relationship and node


def test_depth1_from_an_ip_and_from_a_hash(vt, tmp_path):
    env = make_env(tmp_path, vt)
    answer = ok(pivot(["ip"], [{"ip": "192.0.2.10"}], env))
    assert sorted(edges(answer)) == sorted([
        ("192.0.2.10", "resolutions", "seed.example", "1"),
        ("192.0.2.10", "resolutions", "alt.example", "1"),
        ("192.0.2.10", "resolutions", "alt2.example", "1"),
        ("192.0.2.10", "communicating_files", F1[2], "1")])
    assert vt.total_calls == 2
    vt.reset_counts()
    answer = ok(pivot(["type=hash", "h"], [{"h": F1[0].upper()}], env))   # by md5
    assert edges(answer) == [(F1[2], "contacted_domains", "seed.example", "1"),
                             (F1[2], "contacted_domains", "c2.example", "1"),
                             (F1[2], "contacted_ips", "203.0.113.5", "1")]
    assert answer.records[0]["seed"] == F1[0].upper()
    assert vt.total_calls == 1


def test_depth2_from_a_hash(vt, tmp_path):
    answer = ok(pivot(["h", "depth=2"], [{"h": F1[2]}], make_env(tmp_path, vt)))
    assert (F1[2], "contacted_domains", "seed.example", "1") in edges(answer)
    assert ("seed.example", "resolutions", "192.0.2.10", "2") in edges(answer)
    assert ("203.0.113.5", "resolutions", "seed.example", "2") not in edges(answer)
    # F1, then seed.example and c2.example (object + resolutions page) and 203.0.113.5
    # (object + resolutions page)
    assert vt.total_calls == 7


def test_limit_above_the_embedded_ten_asks_one_descriptors_page(vt, tmp_path):
    answer = ok(pivot(["d", "limit=12", "relationships=communicating_files"],
                      [{"d": "many.example"}], make_env(tmp_path, vt)))
    assert len(edges(answer)) == 12
    assert vt.counts_by_request().get(
        "GET /api/v3/domains/many.example/relationships/communicating_files?limit=12") == 1
    assert vt.total_calls == 2
    vt.reset_counts()
    answer = ok(pivot(["d", "relationships=communicating_files"], [{"d": "many.example"}],
                      make_env(tmp_path, vt)))
    assert len(edges(answer)) == 10 and vt.total_calls == 0   # the store's descriptors


def test_multivalue_seeds_and_several_chunks_share_one_memo(vt, tmp_path):
    chunks = [[{"d": ["seed.example", "alt.example"], "n": "1"}],
              [{"d": "seed.example", "n": "2"}, {"d": "", "n": "3"}]]
    answer = ok(pivot(["d"], chunks, make_env(tmp_path, vt)))
    assert len(answer.chunks) == 2
    first, second = answer.chunks[0][2], answer.chunks[1][2]
    assert {r["seed"] for r in first} == {"seed.example", "alt.example"}
    assert [r["n"] for r in first] == ["1"] * len(first)
    assert {r["seed"] for r in second if r["n"] == "2"} == {"seed.example"}
    assert [r["vt_status"] for r in second if r["n"] == "3"] == ["invalid"]
    # seed.example: object + page; alt.example: object + page; the repeat costs nothing
    assert vt.total_calls == 4
    assert answer.metrics()["nodes"][3] >= 6
    for _, header, records in answer.chunks:
        assert all(list(r) == header for r in records)


def test_seeds_that_cannot_be_pivoted_give_one_record_each(vt, tmp_path):
    answer = ok(pivot(["d"], [{"d": "no-such.example"}, {"d": "10.1.2.3"},
                              {"d": "not an indicator"}], make_env(tmp_path, vt)))
    assert [(r["src"], r["vt_status"]) for r in answer.records] == [
        ("no-such.example", "not_found"), ("10.1.2.3", "skipped"),
        ("not an indicator", "invalid")]
    assert all(r["vt_error"].startswith("[VTP-E0") for r in answer.records)
    assert vt.total_calls == 1


def test_a_tiny_daily_budget_stops_mid_walk_without_failing(vt, tmp_path):
    answer = ok(pivot(["d", "depth=2"], [{"d": "seed.example"}],
                      make_env(tmp_path, vt, VTPIVOT_PER_DAY=3)))
    assert vt.total_calls == 3
    throttled = [r for r in answer.records if r["vt_status"] == "throttled"]
    assert len(throttled) == 2
    assert all(r["vt_error"].startswith("[VTP-E021]") for r in throttled)
    assert len([r for r in answer.records if r["hop"] == "1" and r["dst"]]) == 3
    warnings = answer.warnings()
    assert any("needs up to" in w for w in warnings)
    assert any("stopped calling VirusTotal" in w for w in warnings)
    assert answer.metrics()["throttled_nodes"][3] == 2


def test_wait_does_not_wait_for_a_spent_daily_budget(vt, tmp_path):
    """wait= waits for the minute window only: with the day spent the search ends at once,
    as it does without the option."""
    answer = ok(pivot(["wait=600", "d", "depth=2"], [{"d": "seed.example"}],
                      make_env(tmp_path, vt, VTPIVOT_PER_DAY=3)))
    log = open(os.path.join(str(tmp_path), "var", "log", "splunk", "vtpivot.log")).read()
    done = [line for line in log.splitlines() if "pivot_done" in line]
    assert len(done) == 1 and " waited=0.0" in done[0]
    assert vt.total_calls == 3
    assert len([r for r in answer.records if r["vt_status"] == "throttled"]) == 2
    assert any("stopped calling VirusTotal after waiting 0 s of wait=600" in w
               for w in answer.warnings())


def test_virustotal_quota_exceeded_mid_walk(fake_vt_factory, dataset, tmp_path):
    # VirusTotal's own public quota (4/minute) with the app's limiter off.
    vt = fake_vt_factory(dataset=dataset)
    answer = ok(pivot(["d", "depth=2"], [{"d": "seed.example"}], make_env(tmp_path, vt)))
    assert vt.total_calls == 5          # 4 answered, the 5th is the 429
    assert vt.counts().get("/api/v3/files/" + F1[2]) == 1
    throttled = [r for r in answer.records if r["vt_status"] == "throttled"]
    assert [r["src"] for r in throttled] == [F1[2]]
    assert throttled[0]["vt_error"].startswith("[VTP-E023]")
    # the IPs' resolutions come from their objects' descriptors, with the reason noted
    degraded = [r for r in answer.records if r["src"] == "192.0.2.10"
                and r["relationship"] == "resolutions"]
    assert degraded and all(r["vt_status"] == "ok" and "[VTP-E023]" in r["vt_error"]
                            for r in degraded)


# ---- errors ---------------------------------------------------------------------------------

@pytest.mark.parametrize("args,code", [
    (["domain", "depth=9"], "VTP-E050"),
    (["domain", "ip"], "VTP-E050"),
    (["depth=2"], "VTP-E050"),
    (["domain", "colour=red"], "VTP-E050"),
    (["record=t", "domain"], "VTP-E051"),
    (["domain", "record=t"], "VTP-E051"),
])
def test_bad_options_give_one_clear_error(args, code, tmp_path):
    answer = pivot(args, [{"domain": "seed.example"}], make_env(tmp_path, None,
                                                                VT_API_KEY="unused"))
    assert answer.returncode == 1
    errors = answer.errors()
    assert len(errors) == 1 and errors[0].startswith("[%s]" % code), answer.messages
    assert answer.records == []
    assert not os.path.exists(os.path.join(str(tmp_path), "var", "run",
                                           "splunklib.searchcommands"))


def test_record_t_writes_nothing_to_disk(tmp_path):
    # splunklib records under $SPLUNK_HOME/var/run/splunklib.searchcommands/recordings
    answer = pivot(["record=t", "domain"], [{"domain": "seed.example"}],
                   make_env(tmp_path, None, VT_API_KEY="unused"))
    assert answer.returncode == 1
    session_key = searchinfo([])["session_key"].encode()
    written = [os.path.join(d, f) for d, _, files in os.walk(str(tmp_path)) for f in files]
    assert not any(session_key in open(path, "rb").read() for path in written)
    assert not os.path.exists(os.path.join(str(tmp_path), "var", "run",
                                           "splunklib.searchcommands"))


# ---- the key from storage/passwords, in the vtpivot namespace ------------------------------------

@pytest.fixture
def splunkd():
    sys.path.insert(0, os.path.join(os.path.dirname(HERE), "devtools"))
    from fakesplunkd import FakeSplunkd

    with FakeSplunkd(write_files=False) as sd:
        yield sd


def test_the_key_comes_from_storage_passwords_in_the_vtpivot_namespace(vt, splunkd,
                                                                        tmp_path):
    splunkd.add_secret("vtpivot", "api_key", KEY)
    env = make_env(tmp_path, None, VT_API_URL=vt.url)
    assert "VT_API_KEY" not in env
    answer = ok(pivot(["d"], [{"d": "seed.example"}], env, app="search",
                      splunkd_uri=splunkd.uri, session_key="analyst-token"))
    assert len(edges(answer)) == 3
    assert vt.total_calls == 2
    assert vt.last_headers.get("x-apikey") == KEY
    paths = [r["path"] for r in splunkd.requests]
    assert any(p.startswith("/servicesNS/nobody/vtpivot/storage/passwords/") for p in paths)
    assert not any("/search/" in p for p in paths)
    log = open(os.path.join(str(tmp_path), "var", "log", "splunk", "vtpivot.log")).read()
    assert "pivot_done" in log and KEY not in log


@pytest.mark.parametrize("token,code", [("user-token", "VTP-E003"), ("analyst-token",
                                                                     "VTP-E001")])
def test_no_right_or_no_key_stops_the_search_with_one_error(vt, splunkd, tmp_path, token,
                                                            code):
    env = make_env(tmp_path, None, VT_API_URL=vt.url)
    answer = pivot(["d"], [{"d": "seed.example"}], env, app="search",
                   splunkd_uri=splunkd.uri, session_key=token)
    assert answer.returncode == 1
    errors = answer.errors()
    assert len(errors) == 1 and errors[0].startswith("[%s]" % code)
    assert ("vtpivot_user" in errors[0]) if code == "VTP-E003" else ("setup page" in errors[0])
    assert vt.total_calls == 0


def test_logging_level_is_honoured(vt, tmp_path):
    log_path = os.path.join(str(tmp_path), "var", "log", "splunk", "vtpivot.log")
    ok(pivot(["d", "logging_level=ERROR"], [{"d": "seed.example"}], make_env(tmp_path, vt)))
    quiet = open(log_path).read() if os.path.exists(log_path) else ""
    assert "pivot_done" not in quiet and "vt_call" not in quiet
    ok(pivot(["logging_level=info", "d"], [{"d": "seed.example"}], make_env(tmp_path, vt)))
    assert "pivot_done" in open(log_path).read()
