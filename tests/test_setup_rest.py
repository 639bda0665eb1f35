"""The setup page's REST calls (its real JS module, run by node) against the fake splunkd,
the shipped conf/meta files that give roles their rights, and a byte scan proving the key is
written nowhere after a full save + test connection + lookup run."""
import base64
import configparser
import json
import os
import re
import shutil
import subprocess
import sys
import urllib.error
import urllib.request
from urllib.parse import quote

import pytest

from fakesplunkd import DEFAULT_ROLES, FakeSplunkd
from fakesplunkd.__main__ import make_app_home

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SETUP_TEST = os.path.join(REPO, "src", "setup_test")
FAKE_SPLUNK_PYTHON = os.path.join(REPO, "devtools", "fakesplunkd", "splunk_python")
NODE = shutil.which("node")
needs_node = pytest.mark.skipif(not NODE, reason="node is not installed")


def conf(name):
    parser = configparser.RawConfigParser(strict=False, interpolation=None)
    parser.optionxform = str
    parser.read(os.path.join(REPO, "default", name), encoding="utf-8")
    return parser


def meta():
    from fakesplunkd.server import _read_conf, _parse_access
    stanzas = _read_conf(os.path.join(REPO, "metadata", "default.meta"))
    return {name: dict(keys, **_parse_access(keys.get("access", "")))
            for name, keys in stanzas.items()}


# ---- shipped configuration ---------------------------------------------------------------------
def test_app_conf_opens_the_setup_view_and_reloads_vtpivot_conf():
    app = conf("app.conf")
    assert app.get("ui", "setup_view") == "vtpivot_setup"
    assert app.get("triggers", "reload.vtpivot") == "simple"
    assert app.get("install", "is_configured") in ("false", "0")


def test_restmap_web_server_confs():
    stanza = dict(conf("restmap.conf").items("script:vtpivot_test_connection"))
    assert stanza["match"] == "/vtpivot/test_connection"
    assert stanza["handler"] == "vtpivot_rest_handler.TestConnectionHandler"
    assert stanza["scripttype"] == "persist"
    assert (stanza["passPayload"], stanza["passSession"]) == ("true", "true")
    assert stanza["requireAuthentication"] == "true" and stanza["output_modes"] == "json"
    assert stanza["capability"] == "vtpivot_admin"
    assert stanza["python.version"] == "python3" and stanza["python.required"] == "3.9, 3.13"
    assert os.path.exists(os.path.join(REPO, "bin", "vtpivot_rest_handler.py"))
    web = conf("web.conf")
    assert dict(web.items("expose:vtpivot_test_connection")) == {
        "pattern": "vtpivot/test_connection", "methods": "POST"}
    assert conf("server.conf").get("shclustering", "conf_replication_include.vtpivot") == "true"


def test_authorize_conf_grants_what_the_fake_models():
    auth = conf("authorize.conf")
    assert auth.has_section("capability::vtpivot_admin")
    for role in ("role_admin", "role_sc_admin"):
        assert auth.get(role, "vtpivot_admin") == "enabled"
    user = dict(auth.items("role_vtpivot_user"))
    assert user == {"importRoles": "user", "list_storage_passwords": "enabled"}
    model = DEFAULT_ROLES["vtpivot_user"]
    assert model["imports"] == ["user"] and model["capabilities"] == {"list_storage_passwords"}
    for text in open(os.path.join(REPO, "default", "authorize.conf")).read().splitlines():
        assert "admin_all_objects" not in text and "edit_storage_passwords" not in text


def test_default_meta_restricts_objects_and_secrets():
    stanzas = meta()
    readers = ["admin", "sc_admin", "vtpivot_user"]
    for name in ("", "transforms", "commands", "macros", "views", "passwords",
                 "passwords/credential%3Avtpivot%3Aapi_key%3A"):
        assert stanzas[name]["read"] == readers, name
        assert stanzas[name]["write"] == ["admin", "sc_admin"], name
    assert stanzas["views/vtpivot_setup"]["read"] == ["admin", "sc_admin"]
    assert stanzas["passwords"]["export"] == "none"
    assert stanzas["transforms"]["export"] == "system"


def test_setup_view_is_simple_xml_without_inline_script():
    import xml.etree.ElementTree as ET
    path = os.path.join(REPO, "default", "data", "ui", "views", "vtpivot_setup.xml")
    root = ET.parse(path).getroot()
    assert root.tag == "dashboard"
    assert root.attrib == {"version": "1.1", "script": "vtpivot_setup.js",
                           "stylesheet": "vtpivot_setup.css", "hideEdit": "true",
                           "isVisible": "false"}
    assert root.find("./row/panel/html") is not None
    text = open(path, encoding="utf-8").read()
    assert "<script" not in text and not re.search(r"\son[a-z]+=", text)
    assert "must not be used in commercial products or services" in text
    assert root.find(".//input[@id='vtp-api_key']").get("type") == "password"


def test_static_js_has_no_eval_nor_remote_urls():
    for name in ("vtpivot_setup.js", "vtpivot_setup_api.js", "vtpivot_setup.css"):
        text = open(os.path.join(REPO, "appserver", "static", name), encoding="utf-8").read()
        assert not re.search(r"\beval\s*\(|new Function|innerHTML|document\.write", text), name
        assert not re.search(r"https?://(?=[a-z0-9])(?!www\.virustotal\.com/api/v3|proxy\.example\.com|"
                             r"127\.0\.0\.1|redis\.example\.com)", text), name


# ---- the page's REST calls, run by node -------------------------------------------------------
@pytest.fixture
def stack(tmp_path, monkeypatch, fake_vt_factory):
    base = str(tmp_path / "splunk")
    monkeypatch.setenv("SPLUNK_HOME", base)
    monkeypatch.delenv("VT_API_KEY", raising=False)
    app = make_app_home(base)
    key = os.urandom(32).hex()
    vt = fake_vt_factory(keys={key: "premium"})  # the page saves a premium budget
    with FakeSplunkd(app_root=app, splunk_home=base) as sd:
        yield {"sd": sd, "vt": vt, "key": key, "base": base, "app": app, "tmp": tmp_path}


def run_page(stack, steps, token="admin-token"):
    path = stack["tmp"] / f"steps{len(os.listdir(stack['tmp']))}.json"
    path.write_text(json.dumps(steps))
    done = subprocess.run([NODE, os.path.join(SETUP_TEST, "api_driver.js"), stack["sd"].web_url,
                           token, str(path)], capture_output=True, text=True, timeout=60)
    path.unlink()
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def form_values(vt_url, **over):
    values = {"tier": "premium", "api_url": vt_url, "user_id": "", "per_minute": "30",
              "per_day": "20000", "per_month": "600000",
              "proxy_url": "http://proxy.example.com:3128", "proxy_username": "svc-vt",
              "ca_bundle": "", "ttl_domain": "86400", "ttl_ip": "86400", "ttl_file": "604800",
              "ttl_not_found": "3600", "backend": "sqlite", "redis_url": "",
              "never_send_domains": "corp.example, *.internal.example"}
    values.update(over)
    return values


@needs_node
def test_page_saves_settings_secrets_acl_and_configured_flag(stack):
    sd, key = stack["sd"], stack["key"]
    out = run_page(stack, [{"op": "saveAll", "values": form_values(stack["vt"].url),
                            "secrets": {"api_key": key, "proxy_password": "pr0xy-pass"},
                            "stored": {}}])
    assert out["results"][0] == {"ok": True, "value": {"secrets": ["api_key", "proxy_password"]}}
    assert sd.conf_local["limits"] == {"per_minute": "30", "per_day": "20000",
                                       "per_month": "600000"}
    assert sd.conf_local["proxy"] == {"url": "http://proxy.example.com:3128",
                                      "username": "svc-vt"}
    assert sd.conf_local["indicators"]["never_send_domains"] == "corp.example,*.internal.example"
    secret = sd.secret("vtpivot:api_key:")
    assert secret["password"] == key and secret["app"] == "vtpivot"
    assert (secret["sharing"], secret["read"], secret["write"]) == (
        "app", ["admin", "sc_admin", "vtpivot_user"], ["admin", "sc_admin"])
    assert sd.secret("vtpivot:proxy_password:")["password"] == "pr0xy-pass"
    assert sd.apps["vtpivot"]["configured"] is True
    local = open(os.path.join(stack["app"], "local", "vtpivot.conf")).read()
    assert "per_day = 20000" in local and key not in local and "pr0xy-pass" not in local
    web_calls = [r for r in sd.requests if r["via"] == "web"]
    assert web_calls and all(r["status"] < 400 for r in web_calls)

    # Reload: the page reads settings and which secrets exist, never the key itself.
    out = run_page(stack, [{"op": "loadSettings"}, {"op": "secretStatus"}, {"op": "appStatus"},
                           {"op": "testConnection"}])
    loaded, status, app_status, test = [r["value"] for r in out["results"]]
    assert loaded["per_minute"] == "30" and loaded["proxy_url"] == "http://proxy.example.com:3128"
    assert status == {"api_key": True, "proxy_password": True}
    assert app_status == {"configured": True}
    # The saved proxy is used by the check (and proxy.example.com does not answer).
    assert (test["ok"], test["code"]) == (False, "VTP-E031") and "proxy" in test["message"]
    for text in out["received"]:
        assert key not in text and "pr0xy-pass" not in text
    assert not [c for c in out["calls"] if c[1].startswith("storage/passwords")]

    # Second save with a blank key keeps it; a new key updates the same secret (no 409).
    direct = form_values(stack["vt"].url, proxy_url="")
    out = run_page(stack, [{"op": "saveAll", "values": direct,
                            "secrets": {"api_key": ""}, "stored": status},
                           {"op": "saveAll", "values": direct,
                            "secrets": {"api_key": "f" * 64}, "stored": status},
                           {"op": "testConnection"}])
    assert [r["ok"] for r in out["results"]] == [True, True, True]
    assert len([e for e in sd.passwords if e["username"] == "api_key"]) == 1
    assert out["results"][2]["value"]["code"] == "VTP-E010"


@needs_node
def test_page_validation_and_rights(stack):
    out = run_page(stack, [{"op": "saveAll", "values": form_values(stack["vt"].url,
                                                                   per_day="lots"),
                            "secrets": {}, "stored": {}}])
    assert out["results"][0]["ok"] is False and "per_day" in out["results"][0]["errors"]
    assert out["calls"] == []
    # An analyst may not write settings nor secrets, nor use the test endpoint.
    out = run_page(stack, [{"op": "saveAll", "values": form_values(stack["vt"].url),
                            "secrets": {"api_key": stack["key"]}, "stored": {}},
                           {"op": "testConnection"}], token="analyst-token")
    assert [r["status"] for r in out["results"]] == [403, 403]
    assert "vtpivot_admin" in out["results"][1]["message"]


def test_web_proxy_demands_the_csrf_form_key_and_exposure(stack):
    sd = stack["sd"]
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor())
    opener.open(sd.login_url("admin-token"))
    base = f"{sd.web_url}/splunkd/__raw/servicesNS/nobody/vtpivot/"

    def post(path, key_header=None):
        headers = {"X-Splunk-Form-Key": key_header} if key_header else {}
        req = urllib.request.Request(base + path + "?output_mode=json", data=b"action=status",
                                     headers=headers, method="POST")
        try:
            return opener.open(req).status
        except urllib.error.HTTPError as exc:
            return exc.code

    assert post("vtpivot/test_connection") == 401  # no X-Splunk-Form-Key
    assert post("vtpivot/test_connection", "wrong") == 401
    cookie = next(c for c in opener.handlers if isinstance(c, urllib.request.HTTPCookieProcessor))
    form_key = next(c.value for c in cookie.cookiejar if c.name.startswith("splunkweb_csrf"))
    assert post("vtpivot/test_connection", form_key) == 200
    assert post("vtpivot/other_endpoint", form_key) == 404  # not exposed by web.conf


# ---- the secret is written nowhere -----------------------------------------------------------
def _forms(secret):
    return {secret.encode(), quote(secret, safe="").encode(),
            base64.b64encode(secret.encode()), secret[8:40].encode()}


def _scan(roots, secret):
    hits = []
    for root in roots:
        for folder, dirs, files in os.walk(root, followlinks=False):
            dirs[:] = [d for d in dirs if not os.path.islink(os.path.join(folder, d))]
            for name in files:
                path = os.path.join(folder, name)
                if os.path.islink(path):
                    continue
                with open(path, "rb") as handle:
                    data = handle.read()
                hits += [path for form in _forms(secret) if form in data]
    return hits


@needs_node
def test_key_is_in_no_file_after_save_test_and_lookup(stack):
    key, base, app = stack["key"], stack["base"], stack["app"]
    out = run_page(stack, [{"op": "saveAll", "values": form_values(stack["vt"].url,
                                                                   proxy_url=""),
                            "secrets": {"api_key": key}, "stored": {}},
                           {"op": "testConnection", "userId": "alice"}])
    assert out["results"][1]["value"]["ok"] is True
    # A lookup as Splunk runs it: no session key, the key through (fake) clilib.
    env = {k: v for k, v in os.environ.items() if k not in ("VT_API_KEY", "PYTHONPATH")}
    env.update(SPLUNK_HOME=base, PYTHONPATH=FAKE_SPLUNK_PYTHON)
    lookup = subprocess.run([sys.executable, os.path.join(app, "bin", "vt_lookup.py"), "domain"],
                            input=b"query,vt_status,vt_error\nvirustotal.com,,\n", env=env,
                            capture_output=True, timeout=120)
    assert lookup.returncode == 0, lookup.stderr
    assert key.encode() not in lookup.stdout + lookup.stderr
    assert b"virustotal.com,not_found" in lookup.stdout  # it really asked VirusTotal
    assert stack["vt"].calls("/domains/virustotal.com") == 2  # test connection + lookup
    files = sum(len(f) for _, _, f in os.walk(base))
    assert files > 5
    assert _scan([base], key) == []
    assert _scan([os.path.join(REPO, d) for d in ("default", "metadata", "appserver", "lookups",
                                                  "local") if os.path.isdir(os.path.join(REPO, d))],
                 key) == []
