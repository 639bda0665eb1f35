"""Test connection: the REST handler and connection_check against fake splunkd + fake VT."""
import json
import os
import secrets
import socket

import pytest

import vtpivot_rest_handler
from fakesplunkd import FakeSplunkd
from fakesplunkd.__main__ import make_app_home
from vtpivot_app import connection_check
from vtpivot_app.settings import Settings, validate


@pytest.fixture
def key():
    return secrets.token_hex(32)


@pytest.fixture
def env(tmp_path, monkeypatch, fake_vt_factory, key):
    base = str(tmp_path / "splunk")
    monkeypatch.setenv("SPLUNK_HOME", base)  # limiter state and log go under it
    monkeypatch.delenv("VT_API_KEY", raising=False)
    app = make_app_home(base)
    vt = fake_vt_factory(keys={key: "public"})
    with FakeSplunkd(app_root=app, splunk_home=base) as sd:
        sd.conf_local["api"] = {"url": vt.url}
        sd.add_secret("vtpivot", "api_key", key)
        yield sd, vt, base


def request(sd, token="admin-token", form=(("action", "test"),), method="POST"):
    return {"method": method, "form": [list(p) for p in form], "payload": "",
            "session": {"user": "admin", "authtoken": token},
            "server": {"rest_uri": sd.uri}, "ns": {"app": "vtpivot", "user": "admin"}}


def test_success_reports_the_apps_usage_and_costs_one_call(env, key):
    sd, vt, _ = env
    status, body = vtpivot_rest_handler.handle(request(sd))
    assert status == 200
    assert body["ok"] is True and body["status"] == "ok" and body["code"] == ""
    assert body["calls"] == 1 and vt.calls("/domains/virustotal.com") == 1
    assert body["usage"]["minute"] == {"budget": 4, "used": 1, "remaining": 3}
    assert body["usage"]["day"]["used"] == 1
    assert body["vt_quotas"] is None and "user id" in body["vt_quotas_note"]
    assert key not in json.dumps(body)
    headers = {k.lower(): v for k, v in vt.last_headers.items()}
    assert headers.get("x-apikey") == key  # the key went in the header only


def test_wrong_key_is_vtp_e010(env):
    sd, vt, _ = env
    sd.secret("vtpivot:api_key:")["password"] = "f" * 64
    status, body = vtpivot_rest_handler.handle(request(sd))
    assert status == 200 and body["ok"] is False
    assert (body["status"], body["code"]) == ("wrong_key", "VTP-E010")
    assert "Test connection" in body["fix"]
    assert "f" * 64 not in json.dumps(body)


def test_no_key_is_vtp_e001_and_no_call_is_made(env):
    sd, vt, _ = env
    sd.passwords.clear()
    _, body = vtpivot_rest_handler.handle(request(sd))
    assert (body["status"], body["code"]) == ("no_key", "VTP-E001")
    assert vt.total_calls == 0


def test_a_caller_who_may_not_read_the_key_gets_vtp_e003(env):
    sd, vt, _ = env
    _, body = vtpivot_rest_handler.handle(request(sd, token="lister-token"))
    assert (body["status"], body["code"]) == ("not_allowed", "VTP-E003")
    assert "vtpivot_user" in body["fix"]


def test_vt_quota_exceeded_is_vtp_e023(env):
    sd, vt, _ = env
    vt.inject("quota", count=1)
    _, body = vtpivot_rest_handler.handle(request(sd))
    assert (body["status"], body["code"]) == ("quota_exceeded", "VTP-E023")


def test_unreachable_vt_is_vtp_e031(env):
    sd, _, _ = env
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    sd.conf_local["api"] = {"url": f"http://127.0.0.1:{port}/api/v3", "max_retries": "0"}
    _, body = vtpivot_rest_handler.handle(request(sd))
    assert (body["status"], body["code"]) == ("network_error", "VTP-E031")


def test_app_budget_spent_is_reported_without_calling_vt(env):
    sd, vt, _ = env
    sd.conf_local["limits"] = {"per_minute": "1", "max_wait_seconds": "0"}
    vtpivot_rest_handler.handle(request(sd))
    _, body = vtpivot_rest_handler.handle(request(sd))
    assert (body["status"], body["code"]) == ("throttled", "VTP-E020")
    assert vt.calls("/domains/") == 1


def test_user_id_checks(env, key):
    sd, vt, _ = env
    _, body = vtpivot_rest_handler.handle(request(sd, form=[("action", "test"),
                                                            ("user_id", "alice")]))
    assert body["ok"] is True and body["calls"] == 2
    assert "knows no user" in body["vt_quotas_note"] or body["vt_quotas"] is not None
    _, body = vtpivot_rest_handler.handle(request(sd, form=[("action", "test"),
                                                            ("user_id", key)]))
    assert body["code"] == "VTP-E060" and "URL" in body["message"]
    assert not any(key in c.path for c in vt.requests())
    _, body = vtpivot_rest_handler.handle(request(sd, form=[("action", "test"),
                                                            ("user_id", "a/b")]))
    assert body["code"] == "VTP-E060"


def test_vt_overall_quotas_are_summarized(key):
    # VirusTotal's /users/{id}/overall_quotas shape (API v3 documentation).
    quotas = {"data": {"api_requests_daily": {"user": {"allowed": 500, "used": 12}},
                       "api_requests_hourly": {"user": {"allowed": 240, "used": 3},
                                               "group": {"allowed": 1000, "used": 40}},
                       "intelligence_searches_monthly": {"user": {"allowed": 0, "used": 0}}}}

    class Client:
        def get_object(self, kind, object_id):
            return {}

        def get_json(self, path, params=None, **fields):
            assert path == "users/alice/overall_quotas"
            return quotas

    settings = validate(Settings())
    body = connection_check.check_connection(settings=settings, environ={"VT_API_KEY": key},
                                             user_id="alice", limiter=False,
                                             client_factory=Client)
    assert body["vt_quotas"] == {"daily": {"allowed": 500, "used": 12},
                                 "hourly": {"allowed": 240, "used": 3, "group_allowed": 1000,
                                            "group_used": 40}}


def test_status_action_says_which_secrets_exist_without_values(env, key):
    sd, _, _ = env
    status, body = vtpivot_rest_handler.handle(request(sd, form=[("action", "status")]))
    assert status == 200 and body["secrets"] == {"api_key": True, "proxy_password": False}
    assert key not in json.dumps(body)


def test_handler_protocol(env, key):
    sd, _, _ = env
    handler = vtpivot_rest_handler.TestConnectionHandler("", "")
    answer = handler.handle(json.dumps(request(sd)))
    assert answer["status"] == 200 and answer["payload"]["ok"] is True
    bad = handler.handle("{not json " + key)
    assert bad["status"] == 500 and key not in json.dumps(bad)
    assert vtpivot_rest_handler.handle(request(sd, method="GET"))[0] == 405
    no_session = request(sd)
    del no_session["session"]
    assert vtpivot_rest_handler.handle(no_session)[0] == 401
    assert vtpivot_rest_handler.handle(request(sd, form=[("action", "drop")]))[0] == 400
    # A raw form payload works as well as splunkd's parsed form.
    raw = dict(request(sd), form=[], payload="action=status")
    assert vtpivot_rest_handler.handle(raw)[1]["secrets"]["api_key"] is True


def test_endpoint_through_splunkd_needs_vtpivot_admin(env):
    import urllib.error
    import urllib.request

    sd, _, _ = env

    def post(token):
        req = urllib.request.Request(
            f"{sd.uri}/servicesNS/nobody/vtpivot/vtpivot/test_connection?output_mode=json",
            data=b"action=test", method="POST", headers={"Authorization": f"Splunk {token}"})
        try:
            with urllib.request.urlopen(req) as answer:
                return answer.status, json.loads(answer.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read())

    assert post("admin-token")[1]["ok"] is True
    assert post("sc-admin-token")[1]["ok"] is True
    status, body = post("analyst-token")
    assert status == 403 and "vtpivot_admin" in body["messages"][0]["text"]


def test_the_key_never_reaches_the_log(env, key):
    sd, _, base = env
    vtpivot_rest_handler.handle(request(sd))
    sd.secret("vtpivot:api_key:")["password"] = "e" * 64
    vtpivot_rest_handler.handle(request(sd))
    log = os.path.join(base, "var", "log", "splunk", "vtpivot.log")
    assert os.path.exists(log)
    text = open(log, encoding="utf-8").read()
    assert "connection_check" in text
    assert key not in text and "e" * 64 not in text
