"""Reading the VirusTotal key: splunkd REST in the vtpivot namespace (per-secret ACLs, app
scoping) and the clilib path lookups use (a fake splunk.clilib in a subprocess)."""
import os
import secrets
import subprocess
import sys

import pytest

from fakesplunkd import FakeSplunkd
from fakesplunkd.__main__ import make_app_home
from splunklib import client
from splunklib.binding import HTTPError
from vtpivot_app import credentials
from vtpivot_app.errors import CredentialError

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FAKE_SPLUNK_PYTHON = os.path.join(REPO, "devtools", "fakesplunkd", "splunk_python")


@pytest.fixture
def home(tmp_path):
    base = str(tmp_path / "splunk")
    return base, make_app_home(base)


@pytest.fixture
def splunkd(home):
    base, app = home
    with FakeSplunkd(app_root=app, splunk_home=base) as sd:
        yield sd


@pytest.fixture
def key():
    return secrets.token_hex(32)


def service_in(sd, token, app):
    return client.Service(scheme="http", host="127.0.0.1", port=sd.port, token=token,
                          owner="nobody", app=app, autologin=False)


def test_vtpivot_service_reads_the_key_for_admin_and_analyst(splunkd, key):
    splunkd.add_secret("vtpivot", "api_key", key)
    for token in ("admin-token", "sc-admin-token", "analyst-token"):
        svc = credentials.vtpivot_service(splunkd.uri, token)
        assert credentials.get_api_key(service=svc, environ={}) == key
    assert splunkd.requests[-1]["path"] == \
        "/servicesNS/nobody/vtpivot/storage/passwords/vtpivot%3Aapi_key%3A"


def test_new_secret_takes_the_acl_of_default_meta(splunkd, key):
    entry = splunkd.add_secret("vtpivot", "api_key", key)
    assert sorted(entry["read"]) == ["admin", "sc_admin", "vtpivot_user"]
    assert sorted(entry["write"]) == ["admin", "sc_admin"]
    assert entry["sharing"] == "app"


@pytest.mark.parametrize("token", ["user-token", "lister-token"])
def test_roles_without_the_right_get_vtp_e003(splunkd, key, token):
    # user-token: no list_storage_passwords; lister-token: has it, but the secret's read ACL
    # does not name its role.
    splunkd.add_secret("vtpivot", "api_key", key)
    svc = credentials.vtpivot_service(splunkd.uri, token)
    with pytest.raises(CredentialError) as info:
        credentials.get_api_key(service=svc, environ={})
    assert info.value.code == "VTP-E003"
    assert key not in str(info.value)


def test_a_listing_role_sees_other_secrets_but_not_vtpivots(splunkd, key):
    splunkd.add_secret("other", "token", "other-secret", app="other_app")  # read: *
    splunkd.add_secret("vtpivot", "api_key", key)
    svc = service_in(splunkd, "lister-token", "-")
    import json
    body = json.loads(svc.get("storage/passwords", output_mode="json").body.read())
    names = [e["name"] for e in body["entry"]]
    assert names == ["other:token:"]


def test_no_key_stored_is_vtp_e001(splunkd):
    svc = credentials.vtpivot_service(splunkd.uri, "admin-token")
    with pytest.raises(CredentialError) as info:
        credentials.get_api_key(service=svc, environ={})
    assert info.value.code == "VTP-E001"


def test_another_apps_context_does_not_see_the_app_scoped_secret(splunkd, key):
    splunkd.add_secret("vtpivot", "api_key", key)
    search = service_in(splunkd, "admin-token", "search")
    with pytest.raises(HTTPError) as info:
        search.get("storage/passwords/vtpivot:api_key:", output_mode="json")
    assert info.value.status == 404
    assert credentials.read_secret_rest(search, "api_key") is None
    # ...while the dedicated vtpivot service reads it from the same session.
    assert credentials.get_api_key(
        service=credentials.vtpivot_service(splunkd.uri, "admin-token"), environ={}) == key


def test_a_globally_shared_secret_is_visible_from_other_apps_if_the_acl_allows(splunkd, key):
    splunkd.add_secret("vtpivot", "api_key", key, sharing="global")
    assert credentials.read_secret_rest(service_in(splunkd, "analyst-token", "search"),
                                        "api_key") == key
    with pytest.raises(CredentialError):
        credentials.read_secret_rest(service_in(splunkd, "lister-token", "search"), "api_key")


def test_environment_key_wins_outside_splunk(splunkd, key):
    svc = credentials.vtpivot_service(splunkd.uri, "user-token")
    assert credentials.get_api_key(service=svc, environ={"VT_API_KEY": key}) == key
    assert credentials.get_proxy_password(service=svc, environ={}) == ""  # E003 -> no proxy pw


def _run_clilib(base, extra_path, snippet):
    env = {k: v for k, v in os.environ.items() if k not in ("VT_API_KEY", "PYTHONPATH")}
    env["SPLUNK_HOME"] = base
    paths = [os.path.join(base, "etc", "apps", "vtpivot", "bin")] + extra_path
    env["PYTHONPATH"] = os.pathsep.join(paths)
    code = ("import vtpivot_bootstrap\nfrom vtpivot_app import credentials\n"
            "from vtpivot_app.errors import CredentialError\n"
            "try:\n    print('KEY=' + credentials.get_api_key())\n"
            "except CredentialError as exc:\n    print('ERR=' + exc.code)\n") + snippet
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_clilib_path_decrypts_the_stored_key(home, splunkd, key):
    base, _ = home
    splunkd.add_secret("vtpivot", "api_key", key)
    out = _run_clilib(base, [FAKE_SPLUNK_PYTHON], "")
    assert out.strip() == "KEY=" + key


def test_clilib_path_without_a_stored_key_is_vtp_e001(home, splunkd):
    base, _ = home
    assert _run_clilib(base, [FAKE_SPLUNK_PYTHON], "").strip() == "ERR=VTP-E001"


def test_no_clilib_module_is_vtp_e002(home, splunkd, key):
    base, _ = home
    splunkd.add_secret("vtpivot", "api_key", key)
    assert _run_clilib(base, [], "").strip() == "ERR=VTP-E002"


def test_passwords_conf_holds_only_ciphertext(home, splunkd, key):
    _, app = home
    splunkd.add_secret("vtpivot", "api_key", key)
    with open(os.path.join(app, "local", "passwords.conf"), encoding="utf-8") as handle:
        text = handle.read()
    assert "[credential:vtpivot:api_key:]" in text and "$7$" in text
    assert key not in text
