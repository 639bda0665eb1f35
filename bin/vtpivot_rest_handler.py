"""REST endpoint vtpivot/test_connection (restmap.conf [script:vtpivot_test_connection]).

POST action=test [user_id=...]  -> check the stored key against VirusTotal (server-side)
POST action=status              -> which secrets are stored, never their values

splunkd runs this as a persistent handler: it hands handle() one JSON string per request
(method, form, payload, session.authtoken, server.rest_uri, ns) and sends back the returned
{"status", "payload"}. The logic is the plain function handle(request) -> (status, body),
which tests and devtools/fakesplunkd call directly. The session key of the caller is used,
never a system token: the endpoint grants no right the caller does not hold.
"""
import vtpivot_bootstrap  # noqa: F401  (must come first: puts lib/ on sys.path)

import json
from urllib.parse import parse_qsl

from vtpivot_app import app_logging, connection_check, credentials
from vtpivot_app.settings import load_settings

try:  # only inside Splunk's Python
    from splunk.persistconn.application import PersistentServerConnectionApplication
except ImportError:  # tests, command line
    class PersistentServerConnectionApplication(object):
        def __init__(self, *args, **kwargs):
            pass

ACTIONS = ("test", "status")


def _params(request):
    """Form fields of the request: splunkd's parsed `form` pairs, else the raw payload."""
    params = {}
    for pair in request.get("form") or []:
        if isinstance(pair, (list, tuple)) and len(pair) == 2:
            params[str(pair[0])] = str(pair[1])
    payload = request.get("payload")
    if not params and isinstance(payload, str) and payload.strip():
        text = payload.strip()
        if text.startswith("{"):
            try:
                params = {k: str(v) for k, v in json.loads(text).items()}
            except (ValueError, AttributeError):
                params = {}
        else:
            params = dict(parse_qsl(text, keep_blank_values=True))
    return params


def handle(request, service_factory=credentials.vtpivot_service):
    """One request (the dict splunkd sends) -> (HTTP status, JSON-able body)."""
    if str(request.get("method", "")).upper() != "POST":
        return 405, {"ok": False, "status": "error", "message": "use POST"}
    session = request.get("session") or {}
    token = session.get("authtoken")
    rest_uri = (request.get("server") or {}).get("rest_uri")
    if not token or not rest_uri:
        return 401, {"ok": False, "status": "error",
                     "message": "no session: restmap.conf must set passSession = true"}
    params = _params(request)
    action = params.get("action", "test")
    if action not in ACTIONS:
        return 400, {"ok": False, "status": "error",
                     "message": f"action must be one of {', '.join(ACTIONS)}"}
    service = service_factory(rest_uri, token)
    if action == "status":
        return 200, connection_check.secret_status(service)
    try:
        settings = load_settings(service=service, environ={})
        app_logging.setup_logging(settings.log_dir, settings.log_level)
    except Exception:  # check_connection reports a bad setting itself
        settings = None
    # environ={}: test what is stored, not a VT_API_KEY that splunkd might carry.
    verdict = connection_check.check_connection(service=service, settings=settings,
                                                environ={}, user_id=params.get("user_id", ""))
    return 200, verdict


class TestConnectionHandler(PersistentServerConnectionApplication):
    def __init__(self, command_line=None, command_arg=None):
        super(TestConnectionHandler, self).__init__()

    def handle(self, in_string):
        try:
            request = json.loads(in_string)
            status, body = handle(request)
        except Exception:  # never echo the request back: it holds the session key
            app_logging.get_logger("setup").exception("test_connection handler failed")
            status, body = 500, {"ok": False, "status": "error",
                                 "message": "internal error (see vtpivot.log)"}
        return {"payload": body, "status": status,
                "headers": {"Content-Type": "application/json"}}

    def done(self):
        pass
