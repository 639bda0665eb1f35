"""The fake VirusTotal API v3 server (devtools/fakevt): shapes, errors, quotas, faults, CLI.

Stdlib HTTP only (urllib / http.client), so these tests say nothing about the app's client.
"""
import gzip
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from urllib.parse import urlsplit

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEVTOOLS = os.path.join(REPO, "devtools")
if DEVTOOLS not in sys.path:
    sys.path.insert(0, DEVTOOLS)

from fakevt import FakeVirusTotal, decode_cursor, encode_cursor, load_dataset  # noqa: E402
from fakevt import build_data, synthetic  # noqa: E402
from fakevt.dataset import PUBLIC_RELATIONSHIPS  # noqa: E402

DATA = os.path.join(DEVTOOLS, "fakevt", "data")
SCENARIO = os.path.join(REPO, "demo", "scenario")
PUB, PREM = "test-public-key", "test-premium-key"

BASIC = load_dataset(os.path.join(DATA, "basic"))
DROPPER = BASIC.canonical_id("files", build_data.b.hashes_for("basic-dropper")[0])
PAYLOAD = BASIC.canonical_id("files", build_data.b.hashes_for("basic-payload")[0])


def real(*parts):
    with open(os.path.join(DATA, *parts), encoding="utf-8") as fh:
        return json.load(fh)


def get(vt, path, key=PREM, headers=None, timeout=10):
    """GET vt.url + path -> (status, headers, raw body bytes). key=None sends no x-apikey."""
    hdrs = dict(headers or {})
    if key is not None:
        hdrs["x-apikey"] = key
    url = path if path.startswith("http") else vt.url + path
    req = urllib.request.Request(url, headers=hdrs)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.headers, resp.read()
    except urllib.error.HTTPError as err:
        body = err.read()
        err.close()
        return err.code, err.headers, body


def get_json(vt, path, key=PREM, expect=200, **kw):
    status, _, body = get(vt, path, key=key, **kw)
    assert status == expect, (status, body[:300])
    return json.loads(body)


def raw_request(vt, path, key=PREM, timeout=5):
    """http.client request; returns the connection and response (caller reads)."""
    parts = urlsplit(vt.url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
    conn.request("GET", parts.path + path, headers={"x-apikey": key})
    return conn, conn.getresponse()


def post(url, payload=None):
    data = json.dumps(payload or {}).encode()
    req = urllib.request.Request(url, data=data, method="POST",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read())


@pytest.fixture
def vt_free(fake_vt_factory):
    """Basic dataset with no quota limits (for tests about shapes, not quotas)."""
    return fake_vt_factory(quotas={"public": {"per_minute": None, "per_day": None}})


# -- objects ---------------------------------------------------------------------------------

def test_domain_object_has_the_real_shape_and_size(fake_vt):
    body = get_json(fake_vt, "/domains/alpha.example")
    data = body["data"]
    template = real("real", "domain_google.com_2026.json")["data"]
    assert list(body) == ["data"]
    assert data["id"] == "alpha.example" and data["type"] == "domain"
    assert data["links"] == {"self": fake_vt.url + "/domains/alpha.example"}
    assert set(template["attributes"]) - set(data["attributes"]) <= {"popularity_ranks"}
    attrs = data["attributes"]
    assert len(attrs["last_analysis_results"]) == len(template["attributes"]["last_analysis_results"])
    stats = attrs["last_analysis_stats"]
    for cat in ("malicious", "suspicious", "harmless", "undetected"):
        assert stats[cat] == sum(1 for r in attrs["last_analysis_results"].values()
                                 if r["category"] == cat)
    assert len(json.dumps(body)) > 15000


def test_real_capture_is_served_as_recorded(fake_vt):
    data = get_json(fake_vt, "/domains/google.com")["data"]
    assert data["attributes"] == real("real", "domain_google.com_2026.json")["data"]["attributes"]
    assert get_json(fake_vt, "/ip_addresses/8.8.8.8")["data"]["attributes"]["asn"] == 15169


def test_ipv6_and_idn_ids(fake_vt):
    for raw in ("2001:db8::10", "2001:0db8:0000:0000:0000:0000:0000:0010"):
        assert get_json(fake_vt, "/ip_addresses/" + raw)["data"]["id"] == "2001:db8::10"
    data = get_json(fake_vt, "/domains/xn--bcher-kva.example")["data"]
    assert data["id"] == "xn--bcher-kva.example"
    assert "bücher.example".encode("idna").decode() == data["id"]


def test_file_by_md5_sha1_sha256_answers_the_sha256(fake_vt):
    attrs = BASIC.get("files", DROPPER)["attributes"]
    bodies = [get_json(fake_vt, "/files/" + h)["data"] for h in
              (attrs["md5"], attrs["sha1"], attrs["sha256"], attrs["md5"].upper())]
    assert {b["id"] for b in bodies} == {attrs["sha256"]}
    assert all(b == bodies[0] for b in bodies)
    assert bodies[0]["attributes"]["popular_threat_classification"]["suggested_threat_label"] \
        == "trojan.lokibot/stealer"
    # a real recorded file object, by its md5
    real_file = real("real", "relationships_domain_communicating_files_github.com_2019.json")["data"][0]
    got = get_json(fake_vt, "/files/" + real_file["attributes"]["md5"])["data"]
    assert got["id"] == real_file["id"] and got["attributes"] == real_file["attributes"]


def test_resolution_object_endpoint(fake_vt):
    data = get_json(fake_vt, "/resolutions/192.0.2.10beta.example")["data"]
    shape = real("real", "resolution_object_docs_example.json")["data"]
    assert list(data) == list(shape) and list(data["attributes"]) == list(shape["attributes"])


# -- errors ------------------------------------------------------------------------------------

def test_401_missing_and_wrong_key(fake_vt):
    status, _, body = get(fake_vt, "/domains/alpha.example", key=None)
    assert status == 401 and json.loads(body) == real("errors", "error_401_authentication_required.json")
    status, _, body = get(fake_vt, "/domains/alpha.example", key="not-a-key")
    assert status == 401 and json.loads(body) == real("errors", "error_401_wrong_credentials_unverified.json")
    status, _, body = get(fake_vt, "/domains/alpha.example", key="")
    assert status == 401 and json.loads(body)["error"]["code"] == "AuthenticationRequiredError"


def test_404_messages_follow_vt(fake_vt):
    body = get_json(fake_vt, "/files/0123456789abcdef0123456789abcdef", expect=404)
    assert body == real("errors", "error_404_file_notfound_2026.json")
    body = get_json(fake_vt, "/domains/nothing-here.example", expect=404)
    assert body == {"error": {"code": "NotFoundError",
                              "message": 'Domain "nothing-here.example" not found'}}
    assert get_json(fake_vt, "/ip_addresses/192.0.2.99", expect=404)["error"]["code"] == "NotFoundError"
    assert get_json(fake_vt, "/domains/nothing-here.example/resolutions", expect=404)["error"]["code"] \
        == "NotFoundError"


def test_public_key_gets_403_on_premium_relationships(vt_free):
    for path in ("/domains/beta.example/downloaded_files",
                 "/domains/beta.example/relationships/urls",
                 "/files/%s/similar_files" % DROPPER,
                 "/domains/beta.example?relationships=resolutions,downloaded_files"):
        status, _, body = get(vt_free, path, key=PUB)
        assert status == 403 and json.loads(body) == real("errors", "error_403_forbidden.json"), path
    status, _, body = get(vt_free, "/domains/beta.example/downloaded_files", key=PREM)
    assert status == 200 and json.loads(body)["data"][0]["id"] == PAYLOAD


@pytest.mark.parametrize("collection,oid", [("domains", "alpha.example"),
                                            ("ip_addresses", "192.0.2.10"),
                                            ("files", "DROPPER")])
def test_public_key_reaches_the_public_relationships(vt_free, collection, oid):
    oid = DROPPER if oid == "DROPPER" else oid
    for rel in sorted(PUBLIC_RELATIONSHIPS[collection]):
        for form in ("/%s/%s/%s", "/%s/%s/relationships/%s"):
            status, _, body = get(vt_free, form % (collection, oid, rel), key=PUB)
            assert status == 200, (rel, body)


def test_unknown_relationship_is_a_400(fake_vt):
    body = get_json(fake_vt, "/domains/alpha.example/no_such_thing", expect=400)
    assert body["error"]["code"] == "InvalidArgumentError"


def test_limit_above_40_is_a_400_with_the_real_body(fake_vt):
    for path in ("/domains/alpha.example/resolutions?limit=41",
                 "/domains/alpha.example/relationships/resolutions?limit=1000",
                 "/domains/alpha.example?relationships=resolutions&limit=41"):
        assert get_json(fake_vt, path, expect=400) == real("errors", "error_400_limit_too_large.json")
    assert get_json(fake_vt, "/domains/alpha.example/resolutions?limit=40")["data"]


# -- relationships ------------------------------------------------------------------------------

def test_full_resolutions_page(fake_vt):
    page = get_json(fake_vt, "/domains/alpha.example/resolutions")
    assert page["meta"] == {"count": 3}
    assert page["links"] == {"self": fake_vt.url + "/domains/alpha.example/resolutions?limit=10"}
    dates = [item["attributes"]["date"] for item in page["data"]]
    assert dates == sorted(dates, reverse=True)
    first = page["data"][0]
    assert first["type"] == "resolution" and first["id"] == "192.0.2.10alpha.example"
    attrs = first["attributes"]
    assert set(attrs) == {"date", "host_name", "ip_address", "resolver",
                          "host_name_last_analysis_stats", "ip_address_last_analysis_stats"}
    assert attrs["ip_address_last_analysis_stats"] == \
        BASIC.get("ip_addresses", "192.0.2.10")["attributes"]["last_analysis_stats"]
    assert attrs["host_name_last_analysis_stats"] == \
        BASIC.get("domains", "alpha.example")["attributes"]["last_analysis_stats"]
    # same shape as the real recorded page (plus the current API's two stats fields)
    real_item = real("real", "relationships_domain_resolutions_github.com_2019.json")["data"][0]
    assert set(real_item) == set(first) and set(real_item["attributes"]) < set(attrs)


def test_cycle_domain_ip_domain(fake_vt):
    ips = [i["attributes"]["ip_address"] for i in
           get_json(fake_vt, "/domains/alpha.example/resolutions")["data"]]
    assert "192.0.2.10" in ips
    hosts = [i["attributes"]["host_name"] for i in
             get_json(fake_vt, "/ip_addresses/192.0.2.10/resolutions")["data"]]
    assert "alpha.example" in hosts and "beta.example" in hosts


def test_descriptors_endpoint(fake_vt):
    page = get_json(fake_vt, "/domains/beta.example/relationships/communicating_files")
    assert page["data"] == [{"type": "file", "id": DROPPER}, {"type": "file", "id": PAYLOAD}]
    assert page["links"] == {
        "self": fake_vt.url + "/domains/beta.example/relationships/communicating_files?limit=10",
        "related": fake_vt.url + "/domains/beta.example/communicating_files"}
    assert "meta" not in page                      # no count for files, no cursor: one page
    full = get_json(fake_vt, "/domains/beta.example/communicating_files")
    assert [f["attributes"]["sha256"] for f in full["data"]] == [DROPPER, PAYLOAD]
    urls = get_json(fake_vt, "/domains/beta.example/relationships/urls")["data"]
    assert urls[0]["context_attributes"] == {"url": "http://beta.example/login"}
    # a related object VT does not hold: its documented per-item error form
    item = get_json(fake_vt, "/domains/beta.example/urls")["data"][0]
    template = real("real", "relationships_item_notfound_docs_template.json")["data"][0]
    assert set(template) <= set(item) and item["error"]["code"] == "NotFoundError"
    res = get_json(fake_vt, "/ip_addresses/192.0.2.10/relationships/resolutions")["data"]
    assert res[0] == {"type": "resolution", "id": res[0]["id"]}
    assert res[0]["id"].startswith("192.0.2.10")


def test_file_relationships(fake_vt):
    doms = get_json(fake_vt, "/files/%s/contacted_domains" % DROPPER)["data"]
    assert [d["id"] for d in doms] == ["beta.example", "alpha.example"]
    assert doms[0]["type"] == "domain" and "last_analysis_stats" in doms[0]["attributes"]
    ips = get_json(fake_vt, "/files/%s/relationships/contacted_ips" % DROPPER)["data"]
    assert ips == [{"type": "ip_address", "id": "192.0.2.10"}]
    # relationships of a file may be asked for by md5 too
    md5 = BASIC.get("files", DROPPER)["attributes"]["md5"]
    assert get_json(fake_vt, "/files/%s/relationships/dropped_files" % md5)["data"] == \
        [{"type": "file", "id": PAYLOAD}]


def test_one_to_one_parent(fake_vt):
    page = get_json(fake_vt, "/domains/www.alpha.example/relationships/parent")
    assert page["data"] == {"type": "domain", "id": "alpha.example"}
    assert get_json(fake_vt, "/domains/www.alpha.example/parent")["data"]["id"] == "alpha.example"
    assert get_json(fake_vt, "/domains/alpha.example/parent")["data"] is None


def test_empty_page_has_no_meta(fake_vt):
    page = get_json(fake_vt, "/ip_addresses/8.8.8.8/resolutions")
    sample = real("real", "relationships_domain_siblings_empty_github.com_2019.json")
    assert page == {"data": [], "links": {"self": fake_vt.url + "/ip_addresses/8.8.8.8/resolutions?limit=10"}}
    assert set(page) == set(sample)
    desc = get_json(fake_vt, "/ip_addresses/8.8.8.8/relationships/resolutions")
    assert set(desc) == set(real("real", "relationships_descriptors_graph_editors_empty_2019.json"))


@pytest.mark.parametrize("limit,pages", [(None, 5), (40, 2), (7, 7)])
def test_cursor_pagination_over_45_items(fake_vt, limit, pages):
    path = "/ip_addresses/203.0.113.50/resolutions" + ("?limit=%d" % limit if limit else "")
    seen, count = [], 0
    url = fake_vt.url + path
    for _ in range(20):                                # bounded
        page = get_json(fake_vt, url)
        count += 1
        seen += [item["id"] for item in page["data"]]
        assert page["meta"]["count"] == 45
        if "next" not in page["links"]:
            assert "cursor" not in page["meta"]
            break
        assert decode_cursor(page["meta"]["cursor"]) == len(seen)
        assert "cursor=" in page["links"]["next"]
        url = page["links"]["next"]
    assert count == pages and len(seen) == len(set(seen)) == 45


def test_cursor_format_and_bad_cursor(fake_vt):
    assert encode_cursor(10) == "STEwCi4="            # the real captures' cursor for offset 10
    assert encode_cursor(20) == "STIwCi4="
    body = get_json(fake_vt, "/ip_addresses/203.0.113.50/resolutions?cursor=garbage", expect=400)
    assert body["error"]["code"] == "BadRequestError"


def test_relationships_parameter_embeds_descriptor_pages(fake_vt):
    data = get_json(fake_vt, "/ip_addresses/203.0.113.50?relationships=resolutions,communicating_files")["data"]
    sample = real("real", "relationships_param_embedded_ip_1.1.1.1_trimmed_xsoar.json")
    emb = data["relationships"]
    assert set(emb) == {"resolutions", "communicating_files"}
    res = emb["resolutions"]
    assert set(res) == set(sample["communicating_files"])       # meta, data, links
    assert set(res["links"]) == {"self", "related", "next"}
    assert len(res["data"]) == 10                                # VT's default for embedded
    assert res["meta"] == {"count": 45, "cursor": encode_cursor(10)}
    assert all(set(d) == {"type", "id"} for d in res["data"])
    assert res["links"]["self"].endswith("/ip_addresses/203.0.113.50/relationships/resolutions?limit=10")
    assert emb["communicating_files"] == {
        "data": [], "links": {
            "self": fake_vt.url + "/ip_addresses/203.0.113.50/relationships/communicating_files?limit=10",
            "related": fake_vt.url + "/ip_addresses/203.0.113.50/communicating_files"}}
    data = get_json(fake_vt, "/ip_addresses/203.0.113.50?relationships=resolutions&limit=20")["data"]
    assert len(data["relationships"]["resolutions"]["data"]) == 20
    assert "relationships" not in get_json(fake_vt, "/domains/alpha.example")["data"]
    # following the embedded next link continues where the embedded page stopped
    nxt = get_json(fake_vt, res["links"]["next"])
    assert nxt["data"][0]["id"] not in {d["id"] for d in res["data"]}


def test_links_base_can_mimic_virustotal(fake_vt_factory):
    vt = fake_vt_factory(links_base="https://www.virustotal.com/api/v3")
    page = get_json(vt, "/domains/alpha.example/resolutions?limit=1")
    assert page["links"]["next"].startswith(
        "https://www.virustotal.com/api/v3/domains/alpha.example/resolutions?cursor=")


# -- quotas ------------------------------------------------------------------------------------

def test_public_quota_per_minute_gives_the_real_429(fake_vt):
    for _ in range(4):
        assert get(fake_vt, "/domains/alpha.example", key=PUB)[0] == 200
    status, headers, body = get(fake_vt, "/domains/alpha.example", key=PUB,
                                headers={"Accept-Encoding": "gzip"})
    assert status == 429
    assert json.loads(body) == real("errors", "error_429_quota_exceeded_vtgo_mock.json")
    assert headers.get("Content-Encoding") is None
    assert not [h for h in headers if "ratelimit" in h.lower() or h.lower() == "retry-after"]
    # other keys are not affected; a new minute opens the window again
    assert get(fake_vt, "/domains/alpha.example", key=PREM)[0] == 200
    fake_vt.advance_clock(60)
    assert get(fake_vt, "/domains/alpha.example", key=PUB)[0] == 200


def test_daily_quota_and_retry_after(fake_vt_factory):
    vt = fake_vt_factory(quotas={"public": {"per_minute": None, "per_day": 3}}, retry_after=30)
    for _ in range(3):
        assert get(vt, "/ip_addresses/192.0.2.10", key=PUB)[0] == 200
    status, headers, body = get(vt, "/ip_addresses/192.0.2.10", key=PUB)
    assert status == 429 and headers["Retry-After"] == "30"
    assert json.loads(body)["error"]["code"] == "QuotaExceededError"
    vt.advance_clock(3600)
    assert get(vt, "/ip_addresses/192.0.2.10", key=PUB)[0] == 429
    vt.advance_clock(86400)
    assert get(vt, "/ip_addresses/192.0.2.10", key=PUB)[0] == 200


def test_per_minute_can_answer_too_many_requests(fake_vt_factory):
    vt = fake_vt_factory(key_quotas={PREM: {"per_minute": 1}}, minute_error="TooManyRequestsError",
                         retry_after="auto")
    assert get(vt, "/domains/alpha.example")[0] == 200
    status, headers, body = get(vt, "/domains/alpha.example")
    assert status == 429 and json.loads(body)["error"]["code"] == "TooManyRequestsError"
    assert 1 <= int(headers["Retry-After"]) <= 60


def test_errors_count_toward_quota_but_401_does_not(fake_vt):
    for _ in range(3):
        get(fake_vt, "/domains/alpha.example", key=None)
    for path in ("/domains/nothing.example", "/domains/alpha.example/downloaded_files",
                 "/domains/alpha.example/resolutions?limit=99", "/domains/alpha.example"):
        assert get(fake_vt, path, key=PUB)[0] in (200, 400, 403, 404)
    assert get(fake_vt, "/domains/alpha.example", key=PUB)[0] == 429


# -- transport ---------------------------------------------------------------------------------

def test_gzip_when_asked(fake_vt):
    status, headers, body = get(fake_vt, "/domains/google.com", headers={"Accept-Encoding": "gzip"})
    assert status == 200 and headers["Content-Encoding"] == "gzip"
    plain = get(fake_vt, "/domains/google.com")[2]
    assert json.loads(gzip.decompress(body)) == json.loads(plain)
    assert len(body) < len(plain) / 3
    assert get(fake_vt, "/domains/google.com")[1].get("Content-Encoding") is None
    status, headers, _ = get(fake_vt, "/domains/google.com", headers={"Accept-Encoding": "gzip;q=0"})
    assert headers.get("Content-Encoding") is None


def test_503_injection_counts_down(fake_vt):
    fake_vt.inject("transient", count=2, path=r"/domains/")
    assert get(fake_vt, "/ip_addresses/192.0.2.10")[0] == 200          # path does not match
    for _ in range(2):
        status, _, body = get(fake_vt, "/domains/alpha.example")
        assert status == 503 and json.loads(body)["error"]["code"] == "TransientError"
    assert get(fake_vt, "/domains/alpha.example")[0] == 200
    assert fake_vt.calls("/domains/alpha.example") == 3


def test_truncated_body(fake_vt):
    fake_vt.inject("truncate")
    conn, resp = raw_request(fake_vt, "/domains/alpha.example")
    assert resp.status == 200
    with pytest.raises(http.client.IncompleteRead):
        resp.read()
    conn.close()
    assert get(fake_vt, "/domains/alpha.example")[0] == 200


def test_malformed_json(fake_vt):
    fake_vt.inject("malformed")
    status, _, body = get(fake_vt, "/domains/alpha.example")
    assert status == 200
    with pytest.raises(ValueError):
        json.loads(body)


def test_dropped_connection(fake_vt):
    fake_vt.inject("drop")
    with pytest.raises((http.client.RemoteDisconnected, ConnectionError, http.client.BadStatusLine)):
        conn, resp = raw_request(fake_vt, "/domains/alpha.example")
    assert get(fake_vt, "/domains/alpha.example")[0] == 200


def test_hang_longer_than_the_client_timeout(fake_vt):
    fake_vt.inject("hang", seconds=5)
    start = time.monotonic()
    with pytest.raises((socket.timeout, TimeoutError)):
        raw_request(fake_vt, "/domains/alpha.example", timeout=0.5)
    assert time.monotonic() - start < 3


def test_latency_per_path(fake_vt):
    fake_vt.set_latency(300, path=r"^/api/v3/domains/")
    start = time.monotonic()
    assert get(fake_vt, "/domains/alpha.example")[0] == 200
    assert time.monotonic() - start >= 0.3
    start = time.monotonic()
    assert get(fake_vt, "/ip_addresses/192.0.2.10")[0] == 200
    assert time.monotonic() - start < 0.3


def test_custom_error_injection(fake_vt):
    fake_vt.inject("error", status=500, code="InternalError", message="boom")
    assert get_json(fake_vt, "/domains/alpha.example", expect=500)["error"]["message"] == "boom"
    fake_vt.inject("quota")
    assert get(fake_vt, "/domains/alpha.example")[0] == 429


# -- accounting and control ----------------------------------------------------------------------

def test_counting(fake_vt):
    get(fake_vt, "/domains/alpha.example")
    get(fake_vt, "/domains/alpha.example?relationships=resolutions")
    get(fake_vt, "/domains/alpha.example/resolutions")
    get(fake_vt, "/ip_addresses/192.0.2.10", key=PUB)
    assert fake_vt.total_calls == 4 == fake_vt.calls()
    assert fake_vt.calls("/domains/alpha.example") == 3
    assert fake_vt.calls("/api/v3/domains/") == 3
    assert fake_vt.counts()["/api/v3/domains/alpha.example"] == 2
    assert fake_vt.counts_by_request()["GET /api/v3/domains/alpha.example?relationships=resolutions"] == 1
    assert fake_vt.last_headers["x-apikey"] == PUB
    for rec in fake_vt.requests():
        assert rec.query.find("key") < 0 and rec.status == 200
    fake_vt.reset_counts()
    assert fake_vt.total_calls == 0 and fake_vt.counts() == {}


def test_control_endpoints(fake_vt):
    get(fake_vt, "/domains/alpha.example")
    with urllib.request.urlopen(fake_vt.control_url + "/stats", timeout=5) as resp:
        stats = json.loads(resp.read())
    assert stats["total"] == 1 and stats["by_path"] == {"/api/v3/domains/alpha.example": 1}
    assert stats["by_status"] == {"200": 1} and stats["last_headers"]["x-apikey"] == PREM
    out = post(fake_vt.control_url + "/config", {
        "faults": [{"kind": "transient", "count": 1}],
        "quotas": {"public": {"per_minute": 1, "per_day": 10}},
        "latency": [{"ms": 1, "path": "/files/"}]})
    assert out["ok"] and out["config"]["quotas"]["public"] == {"per_minute": 1, "per_day": 10}
    assert get(fake_vt, "/domains/alpha.example")[0] == 503
    assert get(fake_vt, "/domains/alpha.example", key=PUB)[0] == 200
    assert get(fake_vt, "/domains/alpha.example", key=PUB)[0] == 429
    post(fake_vt.control_url + "/config", {"advance_clock": 60})
    assert get(fake_vt, "/domains/alpha.example", key=PUB)[0] == 200
    post(fake_vt.control_url + "/reset")
    assert fake_vt.total_calls == 0              # control calls are never counted
    with pytest.raises(urllib.error.HTTPError) as err:
        post(fake_vt.control_url + "/config", {"bogus": 1})
    assert err.value.code == 400
    err.value.close()


def test_binds_loopback_only():
    with pytest.raises(ValueError):
        FakeVirusTotal(host="0.0.0.0")


def test_cli_subprocess(tmp_path):
    env = dict(os.environ, PYTHONPATH=DEVTOOLS, FAKEVT_TEST_KEYS="cli-key:public")
    proc = subprocess.Popen([sys.executable, "-m", "fakevt", "--dataset", "basic", "--port", "0",
                             "--key", "cli-premium:premium", "--keys-env", "FAKEVT_TEST_KEYS",
                             "--quota", "public:2:100"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=str(tmp_path))
    try:
        line = proc.stdout.readline().decode()
        info = json.loads(line)
        assert info["url"].startswith("http://127.0.0.1:") and info["url"].endswith("/api/v3")

        class Remote:
            url = info["url"]
        assert get_json(Remote, "/domains/alpha.example", key="cli-key")["data"]["id"] == "alpha.example"
        assert get(Remote, "/domains/alpha.example", key="cli-premium")[0] == 200
        assert get(Remote, "/domains/alpha.example", key="cli-key")[0] == 200
        assert get(Remote, "/domains/alpha.example", key="cli-key")[0] == 429
        with urllib.request.urlopen(info["control"] + "/stats", timeout=5) as resp:
            assert json.loads(resp.read())["total"] == 4
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
        proc.stdout.close()
        proc.stderr.close()


# -- datasets ----------------------------------------------------------------------------------

def test_basic_dataset_contents():
    ds = BASIC
    assert {"google.com", "alpha.example", "beta.example", "xn--bcher-kva.example"} <= set(ds.ids("domains"))
    assert {"8.8.8.8", "192.0.2.10", "2001:db8::10"} <= set(ds.ids("ip_addresses"))
    assert len(ds.related("ip_addresses", "203.0.113.50", "resolutions")) > 40
    for sha in ds.ids("files"):
        attrs = ds.get("files", sha)["attributes"]
        for h in ("md5", "sha1", "sha256"):
            assert ds.canonical_id("files", attrs[h]) == sha


def test_datasets_are_regenerated_identically(tmp_path):
    build_data.write_all(str(tmp_path / "basic"), str(tmp_path / "scenario"))
    for mine, committed in ((tmp_path / "basic", os.path.join(DATA, "basic")),
                            (tmp_path / "scenario", SCENARIO)):
        for root, _, files in os.walk(str(mine)):
            for name in files:
                rel = os.path.relpath(os.path.join(root, name), str(mine))
                with open(os.path.join(root, name), "rb") as a, \
                        open(os.path.join(committed, rel), "rb") as b:
                    assert a.read() == b.read(), rel


def _scenario_facts():
    with open(os.path.join(SCENARIO, "facts.json"), encoding="utf-8") as fh:
        return json.load(fh)


def test_scenario_story_facts(fake_vt_factory):
    facts = _scenario_facts()
    vt = fake_vt_factory(dataset=SCENARIO)
    today = build_data.b.ts(facts["today"])
    look = get_json(vt, "/domains/acme-flnance.example")["data"]["attributes"]
    assert look["creation_date"] == facts["lookalike"]["creation_date"]
    assert 80 <= (today - look["creation_date"]) / 86400 <= 100            # ~3 months
    assert look["last_https_certificate"]["issuer"]["O"] == "Let's Encrypt"
    assert look["last_analysis_stats"]["malicious"] >= 5
    # its IPs, through the API, and their three documentation ASNs
    page = get_json(vt, "/domains/acme-flnance.example/resolutions?limit=40")
    ips = [i["attributes"]["ip_address"] for i in page["data"]]
    assert sorted(ips) == sorted(facts["lookalike"]["ips"]) and 3 <= len(ips) <= 4
    asns = {get_json(vt, "/ip_addresses/" + ip)["data"]["attributes"]["asn"] for ip in ips}
    assert asns == set(facts["asns"]) and len(asns) == 3
    assert all(64496 <= a <= 64511 for a in asns)
    # the domains on those IPs
    cohosted = set()
    for ip in ips:
        page = get_json(vt, "/ip_addresses/%s/resolutions?limit=40" % ip)
        cohosted |= {i["attributes"]["host_name"] for i in page["data"]}
    cohosted.discard("acme-flnance.example")
    assert cohosted == set(facts["cohosted_domains"]) and 8 <= len(cohosted) <= 12
    assert facts["impersonator"]["domain"] in cohosted
    # old domains with Let's Encrypt certificates
    le_old = set()
    for name in cohosted:
        attrs = get_json(vt, "/domains/" + name)["data"]["attributes"]
        issuer = attrs.get("last_https_certificate", {}).get("issuer", {})
        if issuer.get("O") == "Let's Encrypt" and today - attrs["creation_date"] > 2 * 365 * 86400:
            assert issuer["CN"] in ("R10", "R11")
            le_old.add(name)
    assert le_old == set(facts["letsencrypt_old_domains"])
    # verdicts: the partner's real domain is clean, the look-alikes are not
    partner = get_json(vt, "/domains/" + facts["partner_domain"])["data"]["attributes"]
    assert partner["last_analysis_stats"]["malicious"] == 0
    imp = get_json(vt, "/domains/" + facts["impersonator"]["domain"])["data"]["attributes"]
    assert imp["last_analysis_stats"]["malicious"] >= 5
    # communicating files
    files = get_json(vt, "/domains/acme-flnance.example/communicating_files")["data"]
    assert files and all(f["attributes"]["last_analysis_stats"]["malicious"] > 20 for f in files)
    for f in facts["communicating_files"]:
        attrs = get_json(vt, "/files/" + f["md5"])["data"]["attributes"]
        assert attrs["popular_threat_classification"]["suggested_threat_label"] == f["threat_label"]
    # realistic object sizes
    for name in cohosted:
        assert len(json.dumps(vt.dataset.get("domains", name))) > 15000


def test_story_mentions_every_fact():
    facts = _scenario_facts()
    with open(os.path.join(SCENARIO, "STORY.md"), encoding="utf-8") as fh:
        story = fh.read()
    needles = [facts["company_domain"], facts["partner_domain"], facts["lookalike"]["domain"],
               facts["lookalike"]["creation_date_iso"][:10], facts["impersonator"]["domain"]]
    needles += facts["lookalike"]["ips"] + facts["letsencrypt_old_domains"]
    needles += ["AS%d" % a for a in facts["asns"]] + list(facts["as_owners"].values())
    needles += [f["sha256"] for f in facts["communicating_files"]]
    needles += [f["threat_label"] for f in facts["communicating_files"]]
    missing = [n for n in needles if n not in story]
    assert not missing


def test_synthetic_lookup_dataset_serves_realistic_objects(fake_vt_factory):
    ds = synthetic.lookup_dataset(n_domains=300, n_ips=200, n_files=100, seed=7)
    assert len(set(ds.domain_ids)) == 300 and len(set(ds.ip_ids)) == 200
    again = synthetic.lookup_dataset(n_domains=300, n_ips=200, n_files=100, seed=7)
    assert again.get("domains", again.domain_ids[5]) == ds.get("domains", ds.domain_ids[5])
    vt = fake_vt_factory(dataset=ds)
    dom = get_json(vt, "/domains/" + ds.domain_ids[42])
    assert dom["data"]["id"] == ds.domain_ids[42] and len(json.dumps(dom)) > 15000
    assert get_json(vt, "/files/" + ds.md5s[3])["data"]["id"] == ds.file_ids[3]
    assert get_json(vt, "/ip_addresses/" + ds.ip_ids[7])["data"]["attributes"]["as_owner"]
    res = get_json(vt, "/domains/%s?relationships=resolutions" % ds.domain_ids[9])
    assert res["data"]["relationships"]["resolutions"]["data"][0]["id"] == ds.ip_ids[9] + ds.domain_ids[9]


def test_synthetic_pivot_graph_is_about_300_nodes_at_depth_2(fake_vt_factory):
    ds = synthetic.pivot_dataset(seed=3)
    nodes = synthetic.reachable(ds, "domains", ds.seed_domain, depth=2)
    assert len(nodes) == ds.expected_depth2 and 280 <= len(nodes) <= 320
    vt = fake_vt_factory(dataset=ds)
    ips = get_json(vt, "/domains/%s/resolutions?limit=40" % ds.seed_domain)["data"]
    assert len(ips) == 10
    page = get_json(vt, "/ip_addresses/%s/resolutions?limit=40" % ips[0]["attributes"]["ip_address"])
    assert 25 <= len(page["data"]) <= 40 and "next" not in page["links"]
    for col, oid in sorted(nodes)[:: 25]:
        assert get(vt, "/%s/%s" % (col, oid))[0] == 200
