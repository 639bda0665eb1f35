"""Where the VirusTotal API key (and the proxy password) come from.

Order, first match wins:
1. `VT_API_KEY` in the environment: outside Splunk (tests, command line, the demo).
2. A session key (search commands, the setup page): Splunk's REST API,
   storage/passwords in the vtpivot app's namespace (owner nobody). Not the app the user
   searches from: splunklib's `self.service` points there, so a dedicated Service is built.
3. No session key (external lookups get none): Splunk's own bundled module
   `splunk.clilib.cli_common`, which reads the app's passwords.conf and decrypts it with the
   instance's splunk.secret. It is undocumented, so it stays behind `_read_with_clilib()`
   alone, and its absence (an indexer, plain Python) is a clear VTP-E002.

The key is returned to the caller and registered with the log redactor; it is never logged,
cached, put in a URL or written anywhere.
"""
import os

from .errors import CredentialError

REALM = "vtpivot"
API_KEY_USER = "api_key"
PROXY_PASSWORD_USER = "proxy_password"
APP_NAME = "vtpivot"


def _stanza_name(username):
    # passwords.conf stanza form used by storage/passwords: credential:<realm>:<user>:
    return f"credential:{REALM}:{username}:"


def read_secret_rest(service, username):
    """Clear text of a storage/passwords entry through a vtpivot-namespaced Service, or None.

    Raises CredentialError VTP-E003 when splunkd says the caller may not read it."""
    from splunklib.binding import HTTPError

    # The REST entity is "<realm>:<user>:"; "credential:..." is only the passwords.conf stanza.
    path = f"storage/passwords/{REALM}:{username}:"
    try:
        response = service.get(path, output_mode="json")
    except HTTPError as exc:
        if exc.status == 404:
            return None
        if exc.status in (401, 403):
            raise CredentialError(
                "not allowed to read the VirusTotal key from storage/passwords "
                f"(HTTP {exc.status})", code="VTP-E003") from None
        raise CredentialError(f"splunkd answered HTTP {exc.status} for the stored key",
                              code="VTP-E002") from None
    import json

    body = json.loads(response.body.read().decode("utf-8"))
    for entry in body.get("entry", []):
        content = entry.get("content", {})
        if content.get("username") == username and content.get("realm") == REALM:
            return content.get("clear_password") or None
    return None


def vtpivot_service(splunkd_uri, session_key):
    """A splunklib Service bound to owner=nobody, app=vtpivot (where the secret lives)."""
    from urllib.parse import urlsplit

    from splunklib import client

    parts = urlsplit(splunkd_uri)
    return client.Service(scheme=parts.scheme or "https", host=parts.hostname,
                          port=parts.port or 8089, token=session_key, owner="nobody",
                          app=APP_NAME, autologin=False)


def _read_with_clilib(username):
    """Read a secret without a session key, through Splunk's bundled cli_common module.

    Undocumented Splunk internals: kept to this one function. Returns None when the secret
    does not exist; raises CredentialError VTP-E002 when the module is not there."""
    try:
        from splunk.clilib import cli_common  # only inside a Splunk Python
    except Exception:  # ImportError, or a broken Splunk install
        raise CredentialError(
            "the VirusTotal key can only be read on a search head (Splunk's credential "
            "module is not available in this process; outside Splunk set VT_API_KEY)",
            code="VTP-E002") from None
    try:
        stanza = cli_common.getConfStanza("passwords", _stanza_name(username))
    except Exception:
        return None
    encrypted = (stanza or {}).get("password")
    if not encrypted:
        return None
    try:
        return cli_common.decrypt(encrypted)
    except Exception:
        raise CredentialError("the stored VirusTotal key could not be decrypted on this "
                              "instance", code="VTP-E002") from None


def get_secret(username, service=None, environ=None):
    environ = os.environ if environ is None else environ
    if username == API_KEY_USER and environ.get("VT_API_KEY"):
        return environ["VT_API_KEY"]
    if username == PROXY_PASSWORD_USER and environ.get("VTPIVOT_PROXY_PASSWORD"):
        return environ["VTPIVOT_PROXY_PASSWORD"]
    if service is not None:
        return read_secret_rest(service, username)
    if environ.get("SPLUNK_HOME") and not environ.get("VTPIVOT_NO_CLILIB"):
        return _read_with_clilib(username)
    return None


def get_api_key(service=None, environ=None):
    """The API key, or CredentialError VTP-E001 (none configured) / E002 / E003."""
    key = get_secret(API_KEY_USER, service=service, environ=environ)
    if not key:
        raise CredentialError("no VirusTotal API key configured: enter it on the app's setup "
                              "page, or set VT_API_KEY outside Splunk", code="VTP-E001")
    return key.strip()


def get_proxy_password(service=None, environ=None):
    try:
        return get_secret(PROXY_PASSWORD_USER, service=service, environ=environ) or ""
    except CredentialError:
        return ""
