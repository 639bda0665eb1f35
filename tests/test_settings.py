"""Settings: vtpivot.conf layering, REST reading (what the setup page writes), validation."""
import dataclasses
import os
import re
import ssl
import urllib.request
from urllib.parse import urlencode

import certifi
import pytest

from fakesplunkd import FakeSplunkd
from fakesplunkd.__main__ import make_app_home
from vtpivot_app import credentials, settings
from vtpivot_app.errors import ConfigError

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture
def app(tmp_path):
    return make_app_home(str(tmp_path / "splunk"))


def write_local(app, text):
    os.makedirs(os.path.join(app, "local"), exist_ok=True)
    with open(os.path.join(app, "local", "vtpivot.conf"), "w", encoding="utf-8") as handle:
        handle.write(text)


def test_shipped_defaults_equal_the_dataclass_defaults():
    loaded = settings.load_settings(app_root=REPO, environ={})
    assert dataclasses.asdict(loaded) == dataclasses.asdict(settings.validate(settings.Settings()))


def test_every_conf_key_is_in_default_conf_and_spec():
    stanzas = settings.read_conf_files(REPO)
    with open(os.path.join(REPO, "README", "vtpivot.conf.spec"), encoding="utf-8") as handle:
        spec = handle.read()
    for stanza, keys in settings.CONF_KEYS.items():
        for key in keys:
            assert key in stanzas[stanza], f"[{stanza}] {key} missing from default/vtpivot.conf"
            assert re.search(rf"^{key} = ", spec, re.M), f"{key} missing from the spec"


def test_local_overrides_default(app):
    write_local(app, "[limits]\nper_minute = 30\nper_day = 20000\n[api]\ntier = premium\n")
    loaded = settings.load_settings(app_root=app, environ={})
    assert (loaded.per_minute, loaded.per_day, loaded.tier) == (30, 20000, "premium")
    assert loaded.per_month == 0  # untouched default


@pytest.mark.parametrize("stanza,key,value,named", [
    ("limits", "per_minute", "abc", "per_minute"),
    ("limits", "per_day", "-5", "per_day"),
    ("limits", "concurrency", "0", "concurrency"),
    ("limits", "queue_throttled", "maybe", "queue_throttled"),
    ("api", "tier", "gold", "tier"),
    ("api", "url", "ftp://vt.example", "api_url"),
    ("api", "read_timeout", "0", "timeouts"),
    ("cache", "backend", "mongo", "backend"),
    ("cache", "ttl_file", "1.5", "ttl_file"),
    ("logging", "level", "LOUD", "log_level"),
    ("tls", "ca_bundle", "-----BEGIN CERTIFICATE----- cut", "ca_bundle"),
])
def test_bad_values_raise_config_error_naming_the_key(app, stanza, key, value, named):
    write_local(app, f"[{stanza}]\n{key} = {value}\n")
    with pytest.raises(ConfigError) as info:
        settings.load_settings(app_root=app, environ={})
    assert named in str(info.value)
    assert info.value.code == "VTP-E060"


def test_redis_backend_needs_a_url(app):
    write_local(app, "[cache]\nbackend = redis\n")
    with pytest.raises(ConfigError, match="redis_url"):
        settings.load_settings(app_root=app, environ={})


def test_environment_overrides_outside_splunk(app):
    loaded = settings.load_settings(app_root=app, environ={"VT_API_URL": "http://127.0.0.1:9/api/v3/",
                                                           "VTPIVOT_PER_DAY": "7"})
    assert loaded.api_url == "http://127.0.0.1:9/api/v3" and loaded.per_day == 7


def post_form(sd, path, fields, token="admin-token"):
    request = urllib.request.Request(
        f"{sd.uri}/servicesNS/nobody/vtpivot/{path}", data=urlencode(fields).encode(),
        headers={"Authorization": f"Splunk {token}"}, method="POST")
    with urllib.request.urlopen(request) as answer:
        return answer.status


def test_rest_reading_equals_file_reading_after_a_setup_save(app, tmp_path):
    base = str(tmp_path / "splunk")
    with FakeSplunkd(app_root=app, splunk_home=base) as sd:
        # What the setup page POSTs (configs/conf-vtpivot/<stanza>), here with splunklib.
        svc = credentials.vtpivot_service(sd.uri, "admin-token")
        svc.post("configs/conf-vtpivot/limits", per_minute="30", per_day="20000")
        # (splunklib cannot send a field named "url": post() takes url itself)
        post_form(sd, "configs/conf-vtpivot/proxy",
                  {"url": "http://proxy.example.com:3128", "username": "svc-vt"})
        svc.post("configs/conf-vtpivot/indicators", never_send_domains="corp.example")
        over_rest = settings.load_settings(service=svc, environ={})
        from_files = settings.load_settings(app_root=app, environ={})
    assert dataclasses.asdict(over_rest) == dataclasses.asdict(from_files)
    assert over_rest.per_minute == 30 and over_rest.proxy_url == "http://proxy.example.com:3128"
    assert over_rest.ca_bundle == "" and over_rest.redis_url == ""  # empty, not "None"


def test_pasted_pem_on_one_conf_line_becomes_a_usable_ca_bundle(app):
    pem = open(certifi.where(), encoding="ascii").read()
    blocks = re.findall(r"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----", pem, re.S)[:2]
    one_line = " ".join(" ".join(blocks).split())  # what the setup page stores
    write_local(app, f"[tls]\nca_bundle = {one_line}\n")
    loaded = settings.load_settings(app_root=app, environ={})
    context = ssl.create_default_context(cadata=loaded.ca_bundle)
    assert len(context.get_ca_certs()) == 2
