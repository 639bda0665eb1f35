"""Summaries of real VirusTotal answers, and the mapping of VT's error bodies."""
import json
import os

import pytest

from vtpivot_app import errors, vt_objects

REAL = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                    "devtools", "fakevt", "data")


def load(*parts):
    with open(os.path.join(REAL, *parts), encoding="utf-8") as handle:
        return json.load(handle)


def test_domain_summary_from_a_real_capture():
    data = load("real", "domain_google.com_2026.json")["data"]
    record = vt_objects.summarize("domain", data)
    fields = record["fields"]
    assert record["id"] == "google.com" and record["kind"] == "domain"
    assert fields["creation_date"] == 874306800
    assert fields["registrar"] == "MarkMonitor Inc."
    assert fields["cert_issuer"] == "Google Trust Services (WR2)"
    assert "search engines" in fields["categories"]
    assert fields["reputation"] == 718
    assert "142.251.183.139" in fields["a_records"]
    stats = data["attributes"]["last_analysis_stats"]
    assert fields["malicious"] == stats["malicious"]
    assert fields["undetected"] == stats["undetected"]
    # the summary is small: the store keeps summaries, never the 45 KB answer
    assert len(json.dumps(record)) < 3000 < len(json.dumps(data))


def test_ip_summary_from_a_real_capture():
    record = vt_objects.summarize("ip", load("real", "ip_8.8.8.8_2026.json")["data"])
    fields = record["fields"]
    assert (fields["asn"], fields["as_owner"], fields["country"], fields["network"]) == \
        (15169, "Google LLC", "US", "8.8.8.0/24")


def test_resolution_descriptors_are_split_into_the_other_end():
    page = load("real", "relationships_domain_resolutions_github.com_2019.json")
    nodes = vt_objects.relationship_nodes("domain", "github.com", "resolutions", page["data"])
    assert nodes[0] == {"id": "140.82.114.3", "kind": "ip", "date": 1571457094}
    # a bare descriptor (no attributes): the id is the IP and the domain run together
    bare = vt_objects.related_from_descriptor(
        "domain", "github.com", "resolutions", {"type": "resolution",
                                                "id": "140.82.114.3github.com"})
    assert bare == {"id": "140.82.114.3", "kind": "ip"}
    ip_side = vt_objects.related_from_descriptor(
        "ip", "1.2.3.4", "resolutions", {"type": "resolution", "id": "1.2.3.4bar.foo.com"})
    assert ip_side == {"id": "bar.foo.com", "kind": "domain"}


def test_embedded_relationships_and_cursor_are_kept():
    data = load("real", "ip_8.8.8.8_2026.json")["data"]
    data = dict(data, relationships=load(
        "real", "relationships_param_embedded_ip_1.1.1.1_trimmed_xsoar.json"))
    record = vt_objects.summarize("ip", data)
    files = record["relationships"]["communicating_files"]
    assert files and all(n["kind"] == "file" and len(n["id"]) == 64 for n in files)
    assert record["relationship_cursors"]["communicating_files"]


def test_file_aliases_and_resolution_ids():
    record = {"id": "a" * 64, "fields": {"md5": "b" * 32, "sha1": "c" * 40}}
    assert vt_objects.aliases("file", record) == ("b" * 32, "c" * 40)
    assert vt_objects.aliases("domain", record) == ()
    domain = {"relationships": {"resolutions": [{"id": "192.0.2.1"}, {"id": "192.0.2.2"}]},
              "fields": {"a_records": ["192.0.2.2", "192.0.2.3"]}}
    assert vt_objects.resolution_ids("domain", domain) == ["192.0.2.1", "192.0.2.2", "192.0.2.3"]


@pytest.mark.parametrize("name,status,cls,code", [
    ("error_400_limit_too_large.json", 400, errors.BadRequest, "VTP-E012"),
    ("error_401_authentication_required.json", 401, errors.AuthError, "VTP-E010"),
    ("error_401_wrong_credentials_unverified.json", 401, errors.AuthError, "VTP-E010"),
    ("error_403_forbidden.json", 403, errors.Forbidden, "VTP-E011"),
    ("error_404_file_notfound_2026.json", 404, errors.NotFound, "VTP-E013"),
    ("error_429_quota_exceeded_vtgo_mock.json", 429, errors.QuotaExceeded, "VTP-E023"),
])
def test_real_error_bodies_map_to_the_family(name, status, cls, code):
    exc = errors.error_from_response(status, load("errors", name))
    assert type(exc) is cls and exc.code == code and exc.http_status == status
    assert str(exc).startswith(f"[{code}] VirusTotal answered HTTP {status}")
    assert exc.retryable is False


def test_unreadable_error_bodies_fall_back_to_the_status():
    assert isinstance(errors.error_from_response(503, None), errors.Transient)
    assert errors.error_from_response(503, None).retryable
    assert isinstance(errors.error_from_response(429, {"x": 1}), errors.TooManyRequests)
    assert isinstance(errors.error_from_response(404, "garbage"), errors.NotFound)
    exc = errors.error_from_response(418, None)
    assert type(exc) is errors.VTError and not exc.retryable


def test_every_code_has_a_title_and_a_fix():
    assert len(errors.CODES) >= 20
    for code, (title, fix) in errors.CODES.items():
        assert code.startswith("VTP-E") and len(code) == 8
        assert title and fix and fix.endswith((".", ")")), code
