"""The fake splunkd (stdlib http.server on 127.0.0.1, random port).

Modelled after splunkd 9.x as the vtpivot setup page and credentials.py use it:

- Authentication: `Authorization: Splunk <token>` (or Bearer). Tokens map to a user and roles;
  roles import roles and grant capabilities (DEFAULT_ROLES mirrors admin, sc_admin, user,
  power and the app's vtpivot_user; `secret_lister` holds list_storage_passwords alone).
- Namespaces: /servicesNS/<owner>/<app>/... sees the objects of <app> plus globally shared
  ones; /services/... and servicesNS/-/-/... see every app's objects.
- storage/passwords: listing and reading need list_storage_passwords (or admin_all_objects),
  else 403; each secret has an ACL (sharing, perms.read/write). A secret whose read ACL does
  not name one of the caller's roles (or *) is left out of listings and answers 403 when
  asked by name. A new secret takes its ACL from the app's metadata/default.meta
  ([passwords/<name>], then [passwords], then []), as Splunk does. Writing needs
  edit_storage_passwords plus write ACL. POST .../<name>/acl changes the ACL.
  Secrets are written encrypted ("$7$" + base64 of a one-time-pad XOR) to
  <app>/local/passwords.conf with the pad in $SPLUNK_HOME/etc/auth/splunk.secret, so that
  byte scans of the disk are meaningful and a fake splunk.clilib can decrypt them.
- configs/conf-vtpivot: default/vtpivot.conf under an in-memory local layer (written to
  <app>/local/vtpivot.conf); properties/vtpivot for splunklib's confs[...] lookup; JSON when
  output_mode=json, else Atom XML as splunklib expects.
- apps/local/vtpivot: the configured flag (POST configured=1 needs admin_all_objects).
- vtpivot/test_connection: restmap.conf's capability is enforced, then the request is
  handed to bin/vtpivot_rest_handler.TestConnectionHandler as splunkd's persistent
  protocol does (a JSON string with method, form, payload, session, server, ns).
- /<locale>/splunkd/__raw/...: splunkweb's proxy. Auth by the splunkd_<port> session
  cookie; non-GET requests must carry X-Splunk-Form-Key equal to the
  splunkweb_csrf_token_<port> cookie; only endpoints splunkweb exposes (the built-in ones
  and the app's web.conf [expose:*]) are proxied.
- /<locale>/app/vtpivot/<view>: a harness page that renders a Simple XML view's <html>
  panels inside a Splunk-like chrome and loads the view's script/stylesheet with require.js.

Simplified: no XML for errors beyond <response><messages>, no pagination beyond
count/offset, no user-private objects, no search endpoints.
"""

import base64
import fnmatch
import html
import importlib
import json
import os
import re
import secrets as pysecrets
import sys
import threading
import time
import xml.etree.ElementTree as ET
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, quote, unquote, urlsplit

HERE = os.path.dirname(os.path.abspath(__file__))
WEB_DIR = os.path.join(HERE, "web")
REPO_APP_ROOT = os.path.dirname(os.path.dirname(HERE))
VERSION = "9.3.2"

DEFAULT_ROLES = {
    "user": {"imports": [], "capabilities": {"search", "rest_properties_get"}},
    "power": {"imports": ["user"], "capabilities": {"schedule_search"}},
    "admin": {"imports": ["power", "user"],
              "capabilities": {"admin_all_objects", "list_storage_passwords",
                               "edit_storage_passwords", "vtpivot_admin"}},
    "sc_admin": {"imports": ["power", "user"],
                 "capabilities": {"admin_all_objects", "list_storage_passwords",
                                  "edit_storage_passwords", "vtpivot_admin"}},
    # What default/authorize.conf ships (tests check that the two agree).
    "vtpivot_user": {"imports": ["user"], "capabilities": {"list_storage_passwords"}},
    # A role of some other app that may list secrets but is not in vtpivot's ACL.
    "secret_lister": {"imports": ["user"], "capabilities": {"list_storage_passwords"}},
}

DEFAULT_TOKENS = {
    "admin-token": {"user": "admin", "roles": ["admin"]},
    "sc-admin-token": {"user": "cloudadmin", "roles": ["sc_admin"]},
    "analyst-token": {"user": "alice", "roles": ["user", "vtpivot_user"]},
    "user-token": {"user": "bob", "roles": ["user"]},
    "lister-token": {"user": "carol", "roles": ["user", "secret_lister"]},
}

# Endpoints splunkweb proxies through /splunkd/__raw without an app's web.conf.
BUILTIN_EXPOSED = ("storage/passwords", "storage/passwords/*", "storage/passwords/*/acl",
                   "configs/*", "configs/*/*", "properties/*", "apps/local",
                   "apps/local/*")

ATOM_NS = "http://www.w3.org/2005/Atom"
S_NS = "http://dev.splunk.com/ns/rest"


# ---- the fake encryption (splunk.secret stand-in) --------------------------------------------
def encrypt(pad, text):
    data = text.encode("utf-8")
    out = bytes(b ^ pad[i % len(pad)] for i, b in enumerate(data))
    return "$7$" + base64.b64encode(out).decode("ascii")


def decrypt(pad, token):
    if not token.startswith("$7$"):
        return token
    data = base64.b64decode(token[3:])
    return bytes(b ^ pad[i % len(pad)] for i, b in enumerate(data)).decode("utf-8")


class HTTPFail(Exception):
    def __init__(self, status, text):
        super().__init__(text)
        self.status = status
        self.text = text


def _read_conf(path):
    """{stanza: {key: value}} of a .conf/.meta file, as Splunk reads it (the empty stanza
    [] of .meta files included; keys before any stanza go to "default")."""
    out = {}
    if not path or not os.path.exists(path):
        return out
    current = out.setdefault("default", {})
    with open(path, encoding="utf-8") as handle:
        for raw in handle:
            line = raw.strip()
            if not line or line.startswith(("#", ";")):
                continue
            if line.startswith("[") and line.endswith("]"):
                current = out.setdefault(line[1:-1], {})
            elif "=" in line:
                key, value = line.split("=", 1)
                current[key.strip()] = value.strip()
    if not out["default"]:
        del out["default"]
    return out


def _parse_access(value):
    """'read : [ a, b ], write : [ c ]' -> {'read': [...], 'write': [...]}."""
    out = {}
    for kind, roles in re.findall(r"(read|write)\s*:\s*\[([^\]]*)\]", value or ""):
        out[kind] = [r.strip() for r in roles.split(",") if r.strip()]
    return out


class FakeSplunkd:
    def __init__(self, app_root=REPO_APP_ROOT, splunk_home=None, tokens=None, roles=None,
                 write_files=True, handler="app", js_files=None, locale="en-US",
                 other_apps=("search", "other_app")):
        self.app_root = os.path.abspath(app_root)
        self.app = "vtpivot"
        self.splunk_home = splunk_home
        self.tokens = {k: dict(v) for k, v in (tokens or DEFAULT_TOKENS).items()}
        self.roles = {k: {"imports": list(v["imports"]), "capabilities": set(v["capabilities"])}
                      for k, v in (roles or DEFAULT_ROLES).items()}
        self.write_files = write_files
        self.handler = handler
        self.js_files = dict(js_files or {})
        self.locale = locale
        self.apps = {self.app: {"configured": self._shipped_configured()}}
        for name in other_apps:
            self.apps[name] = {"configured": True}
        self.requests = []
        self.lock = threading.RLock()
        self.passwords = []  # dicts: app owner realm username password sharing read write
        self.conf_default = _read_conf(os.path.join(self.app_root, "default", "vtpivot.conf"))
        self.conf_local = _read_conf(os.path.join(self.app_root, "local", "vtpivot.conf"))
        self.pad = pysecrets.token_bytes(64)
        self.web_sessions = {}  # cookie value -> token
        self._server = None
        self._thread = None
        self._handler_instance = None

    # ---- lifecycle ------------------------------------------------------------------------
    def start(self):
        if self.splunk_home and self.write_files:
            auth = os.path.join(self.splunk_home, "etc", "auth")
            os.makedirs(auth, exist_ok=True)
            with open(os.path.join(auth, "splunk.secret"), "wb") as handle:
                handle.write(base64.b64encode(self.pad))
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.daemon_threads = True
        self._server.fake = self
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.05}, daemon=True,
                                        name="fakesplunkd")
        self._thread.start()
        return self

    def stop(self):
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join(timeout=5)
            self._server = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    @property
    def port(self):
        return self._server.server_address[1]

    @property
    def uri(self):
        return f"http://127.0.0.1:{self.port}"

    @property
    def web_url(self):
        return f"{self.uri}/{self.locale}"

    def login_url(self, token, view="vtpivot_setup"):
        return (f"{self.web_url}/account/fake_login?token={quote(token)}"
                f"&return_to={quote(f'/{self.locale}/app/{self.app}/{view}')}")

    # ---- roles ------------------------------------------------------------------------------
    def capabilities(self, roles):
        caps, seen, todo = set(), set(), list(roles)
        while todo:
            role = todo.pop()
            if role in seen or role not in self.roles:
                continue
            seen.add(role)
            caps |= self.roles[role]["capabilities"]
            todo.extend(self.roles[role]["imports"])
        return caps

    def all_roles(self, roles):
        seen, todo = set(), list(roles)
        while todo:
            role = todo.pop()
            if role in seen:
                continue
            seen.add(role)
            todo.extend(self.roles.get(role, {}).get("imports", []))
        return seen

    def add_token(self, token, user, roles):
        self.tokens[token] = {"user": user, "roles": list(roles)}

    # ---- secrets ----------------------------------------------------------------------------
    def default_secret_acl(self, app, name):
        """ACL of a new secret from the app's metadata/default.meta, as Splunk derives it."""
        if app != self.app:
            return {"sharing": "app", "read": ["*"], "write": ["admin", "power"]}
        meta = _read_conf(os.path.join(self.app_root, "metadata", "default.meta"))
        for stanza in (f"passwords/{quote('credential:' + name, safe='')}", "passwords", ""):
            if stanza in meta and "access" in meta[stanza]:
                perms = _parse_access(meta[stanza]["access"])
                sharing = "global" if meta[stanza].get("export") == "system" else "app"
                return {"sharing": sharing, "read": perms.get("read", []),
                        "write": perms.get("write", [])}
        return {"sharing": "app", "read": ["*"], "write": ["admin"]}

    def secret(self, name, app=None):
        app = app or self.app
        with self.lock:
            for entry in self.passwords:
                if entry["app"] == app and _entry_name(entry) == name:
                    return entry
        return None

    def add_secret(self, realm, username, password, app=None, read=None, write=None,
                   sharing=None):
        """Seed a secret directly (as if created earlier by someone else)."""
        app = app or self.app
        name = f"{realm}:{username}:"
        acl = self.default_secret_acl(app, name)
        entry = {"app": app, "owner": "nobody", "realm": realm, "username": username,
                 "password": password, "sharing": sharing or acl["sharing"],
                 "read": list(read if read is not None else acl["read"]),
                 "write": list(write if write is not None else acl["write"])}
        with self.lock:
            self.passwords.append(entry)
            self._write_passwords_conf(app)
        return entry

    def _write_passwords_conf(self, app):
        if not self.write_files or app != self.app:
            return
        lines = []
        for entry in self.passwords:
            if entry["app"] == app:
                lines += [f"[credential:{_entry_name(entry)}]",
                          f"password = {encrypt(self.pad, entry['password'])}", ""]
        _write_local(self.app_root, "passwords.conf", "\n".join(lines))

    # ---- confs ------------------------------------------------------------------------------
    def conf_stanzas(self):
        with self.lock:
            merged = {k: dict(v) for k, v in self.conf_default.items()}
            for stanza, keys in self.conf_local.items():
                merged.setdefault(stanza, {}).update(keys)
            return merged

    def _write_conf_local(self):
        if not self.write_files:
            return
        lines = []
        for stanza in sorted(self.conf_local):
            lines.append(f"[{stanza}]")
            for key, value in self.conf_local[stanza].items():
                lines.append(f"{key} = {value}")
            lines.append("")
        _write_local(self.app_root, "vtpivot.conf", "\n".join(lines))

    def _shipped_configured(self):
        conf = _read_conf(os.path.join(self.app_root, "default", "app.conf"))
        return conf.get("install", {}).get("is_configured", "0").lower() in ("1", "true")

    # ---- the persistent REST handler ----------------------------------------------------------
    def call_rest_handler(self, request):
        if callable(self.handler):
            return self.handler(request)
        if self._handler_instance is None:
            bin_dir = os.path.join(self.app_root, "bin")
            if bin_dir not in sys.path:
                sys.path.insert(0, bin_dir)
            module = importlib.import_module("vtpivot_rest_handler")
            self._handler_instance = module.TestConnectionHandler("", "")
        answer = self._handler_instance.handle(json.dumps(request))
        return answer.get("status", 200), answer.get("payload")

    def restmap(self):
        return _read_conf(os.path.join(self.app_root, "default", "restmap.conf"))

    def exposed(self, rest, method):
        """Does splunkweb proxy this splunkd path (after /services[NS/o/a]/) for method?"""
        parts = rest.split("/")
        for pattern in BUILTIN_EXPOSED:
            wanted = pattern.split("/")
            if len(wanted) == len(parts) and all(
                    fnmatch.fnmatchcase(part, want) for part, want in zip(parts, wanted)):
                return True
        web = _read_conf(os.path.join(self.app_root, "default", "web.conf"))
        for stanza, keys in web.items():
            if not stanza.startswith("expose:"):
                continue
            methods = [m.strip().upper() for m in keys.get("methods", "GET").split(",")]
            if rest == keys.get("pattern", "").strip("/") and method in methods:
                return True
        return False


def _write_local(app_root, filename, text):
    local = os.path.join(app_root, "local")
    os.makedirs(local, exist_ok=True)
    with open(os.path.join(local, filename), "w", encoding="utf-8") as handle:
        handle.write(text)


def _entry_name(entry):
    return f"{entry['realm']}:{entry['username']}:"


def _now():
    return time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime())


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "Splunkd"

    def log_message(self, fmt, *args):  # quiet; see fake.requests
        pass

    # ---- plumbing ----------------------------------------------------------------------------
    @property
    def fake(self):
        return self.server.fake

    def do_GET(self):
        self._dispatch()

    def do_POST(self):
        self._dispatch()

    def do_DELETE(self):
        self._dispatch()

    def _dispatch(self):
        parts = urlsplit(self.path)
        self.query = dict(parse_qsl(parts.query, keep_blank_values=True))
        self.query_pairs = parse_qsl(parts.query, keep_blank_values=True)
        length = int(self.headers.get("Content-Length") or 0)
        self.raw_body = self.rfile.read(length).decode("utf-8") if length else ""
        ctype = self.headers.get("Content-Type", "")
        self.form_pairs = [] if "json" in ctype else parse_qsl(self.raw_body,
                                                                 keep_blank_values=True)
        self.form = {}
        for key, value in self.form_pairs:
            self.form.setdefault(key, []).append(value)
        self.json_mode = (self.query.get("output_mode") or self._form1("output_mode")) == "json"
        self.record = {"method": self.command, "path": parts.path,
                       "query": {k: v for k, v in self.query.items()},
                       "form_keys": sorted(self.form), "user": None, "status": None,
                       "via": "splunkd"}
        try:
            self._route(parts.path)
        except HTTPFail as fail:
            self._error(fail.status, fail.text)
        except Exception as exc:  # a fake bug: say so loudly
            self._error(500, f"fakesplunkd error: {type(exc).__name__}: {exc}")

    def _form1(self, key, default=None):
        values = self.form.get(key)
        return values[-1] if values else default

    def _send(self, status, body, ctype="application/json", headers=()):
        data = body if isinstance(body, bytes) else body.encode("utf-8")
        self.record["status"] = status
        with self.fake.lock:  # logged before the answer leaves: callers may look at once
            self.fake.requests.append(self.record)
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        # One request per connection, said explicitly: splunklib closes its connection right
        # after getresponse() and only keeps the body of a "Connection: close" answer.
        self.send_header("Connection", "close")
        self.close_connection = True
        for key, value in headers:
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _error(self, status, text):
        if self.json_mode or self.record.get("via") == "web":
            body = json.dumps({"messages": [{"type": "ERROR", "text": text}]})
            return self._send(status, body)
        body = (f'<?xml version="1.0" encoding="UTF-8"?>\n<response><messages>'
                f'<msg type="ERROR">{html.escape(text)}</msg></messages></response>')
        return self._send(status, body, "text/xml; charset=utf-8")

    # ---- routing ----------------------------------------------------------------------------
    def _route(self, path):
        locale = f"/{self.fake.locale}"
        if path.startswith(locale + "/splunkd/__raw/"):
            self.record["via"] = "web"
            return self._web_proxy(path[len(locale + "/splunkd/__raw"):])
        if path.startswith(locale + "/"):
            self.record["via"] = "web"
            return self._web(path[len(locale):])
        token = self._token_from_header()
        return self._rest(path, token)

    def _token_from_header(self):
        auth = self.headers.get("Authorization", "")
        for prefix in ("Splunk ", "Bearer "):
            if auth.startswith(prefix):
                return auth[len(prefix):].strip()
        return auth.strip() or None

    def _cookies(self):
        out = {}
        for part in self.headers.get("Cookie", "").split(";"):
            if "=" in part:
                key, value = part.strip().split("=", 1)
                out[key] = unquote(value)
        return out

    def _rest(self, path, token):
        match = re.match(r"^/servicesNS/([^/]+)/([^/]+)/(.+)$", path)
        if match:
            owner, app, rest = unquote(match.group(1)), unquote(match.group(2)), match.group(3)
        elif path.startswith("/services/"):
            owner, app, rest = "-", "-", path[len("/services/"):]
        else:
            raise HTTPFail(404, f"Not Found: {path}")
        who = self.fake.tokens.get(token or "")
        if who is None:
            raise HTTPFail(401, "call not properly authenticated")
        self.record["user"] = who["user"]
        ctx = _Context(self.fake, who, owner, app, token)
        segments = [unquote(s) for s in rest.rstrip("/").split("/")]
        if segments[:2] == ["storage", "passwords"]:
            return self._passwords(ctx, segments[2:])
        if segments[0] == "configs" and len(segments) >= 2 and segments[1] == "conf-vtpivot":
            return self._conf(ctx, segments[2:])
        if segments[0] == "properties" and len(segments) >= 2:
            return self._properties(ctx, segments[1:])
        if segments[:2] == ["apps", "local"]:
            return self._apps(ctx, segments[2:])
        if segments == ["vtpivot", "test_connection"]:
            return self._test_connection(ctx)
        raise HTTPFail(404, f"Not Found: /{rest}")

    # ---- splunkweb --------------------------------------------------------------------------
    def _web_proxy(self, splunkd_path):
        cookies = self._cookies()
        token = cookies.get(f"splunkd_{self.fake.port}")
        if not token or token not in self.fake.tokens:
            raise HTTPFail(401, "splunkweb session expired or missing; log in again")
        if self.command != "GET":
            form_key = cookies.get(f"splunkweb_csrf_token_{self.fake.port}")
            if not form_key or self.headers.get("X-Splunk-Form-Key") != form_key:
                raise HTTPFail(401, "Splunk cannot authenticate the request. CSRF validation "
                                    "failed.")
        match = re.match(r"^/servicesNS/[^/]+/[^/]+/(.+)$", splunkd_path) or \
            re.match(r"^/services/(.+)$", splunkd_path)
        rest = unquote(match.group(1)).rstrip("/") if match else ""
        if not self.fake.exposed(rest, self.command):
            raise HTTPFail(404, f"splunkweb does not expose /{rest} ({self.command})")
        return self._rest(splunkd_path, token)

    def _web(self, sub):
        if sub.startswith("/account/fake_login"):
            token = self.query.get("token", "")
            if token not in self.fake.tokens:
                raise HTTPFail(401, "unknown token")
            form_key = pysecrets.token_hex(16)
            return_to = self.query.get("return_to") or f"/{self.fake.locale}/app/vtpivot"
            if not return_to.startswith("/"):
                return_to = "/"
            port = self.fake.port
            return self._send(303, "", "text/plain", headers=(
                ("Location", return_to),
                ("Set-Cookie", f"splunkd_{port}={quote(token)}; Path=/; HttpOnly"),
                ("Set-Cookie", f"splunkweb_csrf_token_{port}={form_key}; Path=/")))
        match = re.match(r"^/static/app/([^/]+)/(.+)$", sub)
        if match:
            root = os.path.join(self.fake.app_root, "appserver", "static")
            return self._file(root, match.group(2))
        match = re.match(r"^/static/js/(.+)$", sub)
        if match:
            name = match.group(1)
            if name in self.fake.js_files:
                return self._file(os.path.dirname(self.fake.js_files[name]),
                                  os.path.basename(self.fake.js_files[name]))
            raise HTTPFail(404, f"no such js {name}")
        match = re.match(r"^/static/fakesplunkd/(.+)$", sub)
        if match:
            return self._file(WEB_DIR, match.group(1))
        match = re.match(r"^/app/([^/]+)/([^/?]+)$", sub)
        if match and match.group(1) == self.fake.app:
            token = self._cookies().get(f"splunkd_{self.fake.port}")
            if token not in self.fake.tokens:
                return self._send(303, "", "text/plain", headers=(
                    ("Location", f"/{self.fake.locale}/account/login"),))
            self.record["user"] = self.fake.tokens[token]["user"]
            return self._send(200, render_view(self.fake, match.group(2)),
                              "text/html; charset=utf-8")
        raise HTTPFail(404, f"Not Found: {sub}")

    def _file(self, root, relative):
        path = os.path.realpath(os.path.join(root, relative))
        if not path.startswith(os.path.realpath(root) + os.sep) or not os.path.isfile(path):
            raise HTTPFail(404, f"no file {relative}")
        ctype = {".js": "application/javascript", ".css": "text/css", ".png": "image/png",
                 ".html": "text/html"}.get(os.path.splitext(path)[1], "application/octet-stream")
        with open(path, "rb") as handle:
            return self._send(200, handle.read(), ctype)

    # ---- feeds --------------------------------------------------------------------------------
    def _feed(self, ctx, collection, entries, status=200):
        """entries: [(name, content dict, acl dict)] -> JSON or Atom feed."""
        base = f"/servicesNS/{ctx.owner}/{ctx.app}/{collection}"
        count = int(self.query.get("count", "30") or 30)
        offset = int(self.query.get("offset", "0") or 0)
        total = len(entries)
        if count > 0:
            entries = entries[offset:offset + count]
        else:
            entries = entries[offset:]
        if self.json_mode:
            body = {"links": {"create": f"{base}/_new"}, "origin": f"{self.fake.uri}{base}",
                    "updated": _now(), "generator": {"build": "fake", "version": VERSION},
                    "entry": [], "paging": {"total": total, "perPage": count,
                                            "offset": offset}, "messages": []}
            for name, content, acl in entries:
                link = f"{base}/{quote(name, safe='')}"
                body["entry"].append({
                    "name": name, "id": f"{self.fake.uri}{link}", "updated": _now(),
                    "links": {"alternate": link, "list": link, "edit": link, "remove": link},
                    "author": acl.get("owner", "nobody"), "acl": acl, "content": content})
            return self._send(status, json.dumps(body))
        ET.register_namespace("", ATOM_NS)
        ET.register_namespace("s", S_NS)
        ET.register_namespace("opensearch", "http://a9.com/-/spec/opensearch/1.1/")
        feed = ET.Element(f"{{{ATOM_NS}}}feed")
        ET.SubElement(feed, f"{{{ATOM_NS}}}title").text = collection
        ET.SubElement(feed, f"{{{ATOM_NS}}}id").text = f"{self.fake.uri}{base}"
        ET.SubElement(feed, "{http://a9.com/-/spec/opensearch/1.1/}totalResults").text = \
            str(total)
        for name, content, acl in entries:
            entry = ET.SubElement(feed, f"{{{ATOM_NS}}}entry")
            ET.SubElement(entry, f"{{{ATOM_NS}}}title").text = name
            link = f"{base}/{quote(name, safe='')}"
            ET.SubElement(entry, f"{{{ATOM_NS}}}id").text = f"{self.fake.uri}{link}"
            ET.SubElement(entry, f"{{{ATOM_NS}}}link", {"href": link, "rel": "alternate"})
            box = ET.SubElement(entry, f"{{{ATOM_NS}}}content", {"type": "text/xml"})
            top = ET.SubElement(box, f"{{{S_NS}}}dict")
            values = dict(content)
            values["eai:acl"] = acl
            for key, value in values.items():
                _xml_value(ET.SubElement(top, f"{{{S_NS}}}key", {"name": key}), value)
        body = b'<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(feed)
        return self._send(status, body, "text/xml; charset=utf-8")

    # ---- storage/passwords --------------------------------------------------------------------
    def _passwords(self, ctx, rest):
        fake = self.fake
        if rest and rest[-1] == "acl" and len(rest) == 2:
            return self._password_acl(ctx, rest[0])
        if len(rest) > 1:
            raise HTTPFail(404, "Not Found")
        if self.command == "GET":
            if not ctx.can_list_secrets:
                raise HTTPFail(403, "You (user=%s) do not have permission to perform this "
                                    "operation (requires capability: list_storage_passwords)."
                               % ctx.user)
            with fake.lock:
                visible = [e for e in fake.passwords if ctx.sees(e)]
            if rest:
                entry = _find(visible, rest[0])
                if entry is None:
                    raise HTTPFail(404, f"Could not find object id={rest[0]}")
                if not ctx.may_read(entry):
                    raise HTTPFail(403, f"You (user={ctx.user}) do not have permission to read "
                                        f"this object.")
                return self._feed(ctx, "storage/passwords", [self._secret_row(ctx, entry)])
            readable = [self._secret_row(ctx, e) for e in visible if ctx.may_read(e)]
            return self._feed(ctx, "storage/passwords", readable)
        if self.command == "POST":
            if not ctx.can_edit_secrets:
                raise HTTPFail(403, f"You (user={ctx.user}) do not have permission to perform "
                                    f"this operation (requires capability: "
                                    f"edit_storage_passwords).")
            if ctx.app == "-":
                raise HTTPFail(400, "cannot create or edit a secret in the wildcard namespace")
            password = self._form1("password")
            if not rest:  # create
                name, realm = self._form1("name"), self._form1("realm", "")
                if not name or password is None:
                    raise HTTPFail(400, "Missing argument: name and password are required")
                full = f"{realm}:{name}:"
                with fake.lock:
                    if fake.secret(full, ctx.app):
                        raise HTTPFail(409, f"An object with name={full} already exists")
                    entry = fake.add_secret(realm, name, password, app=ctx.app)
                return self._feed(ctx, "storage/passwords", [self._secret_row(ctx, entry)],
                                  status=201)
            with fake.lock:
                entry = _find([e for e in fake.passwords if ctx.sees(e)], rest[0])
                if entry is None:
                    raise HTTPFail(404, f"Could not find object id={rest[0]}")
                if not ctx.may_write(entry):
                    raise HTTPFail(403, f"You (user={ctx.user}) do not have permission to "
                                        f"edit this object.")
                if password is None:
                    raise HTTPFail(400, "Missing argument: password")
                entry["password"] = password
                fake._write_passwords_conf(entry["app"])
            return self._feed(ctx, "storage/passwords", [self._secret_row(ctx, entry)])
        if self.command == "DELETE":
            with fake.lock:
                entry = _find([e for e in fake.passwords if ctx.sees(e)], rest[0] if rest
                              else "")
                if entry is None:
                    raise HTTPFail(404, "Could not find object")
                if not (ctx.can_edit_secrets and ctx.may_write(entry)):
                    raise HTTPFail(403, f"You (user={ctx.user}) do not have permission to "
                                        f"delete this object.")
                fake.passwords.remove(entry)
                fake._write_passwords_conf(entry["app"])
            return self._feed(ctx, "storage/passwords", [])
        raise HTTPFail(405, "Method not allowed")

    def _secret_row(self, ctx, entry):
        content = {"clear_password": entry["password"],
                   "encr_password": encrypt(self.fake.pad, entry["password"]),
                   "password": "********", "realm": entry["realm"],
                   "username": entry["username"], "eai:acl": None}
        return _entry_name(entry), content, ctx.acl_of(entry)

    def _password_acl(self, ctx, name):
        fake = self.fake
        with fake.lock:
            entry = _find([e for e in fake.passwords if ctx.sees(e)], name)
            if entry is None:
                raise HTTPFail(404, f"Could not find object id={name}")
            if self.command == "GET":
                if not ctx.may_read(entry):
                    raise HTTPFail(403, "no permission")
                return self._feed(ctx, "storage/passwords", [(_entry_name(entry), {},
                                                              ctx.acl_of(entry))])
            if self.command != "POST":
                raise HTTPFail(405, "Method not allowed")
            if not ("admin_all_objects" in ctx.caps or ctx.may_write(entry)):
                raise HTTPFail(403, f"You (user={ctx.user}) do not have permission to change "
                                    f"the permissions of this object.")
            sharing = self._form1("sharing")
            if sharing not in ("user", "app", "global"):
                raise HTTPFail(400, "Argument sharing must be one of user, app, global")
            entry["sharing"] = sharing
            if self._form1("owner"):
                entry["owner"] = self._form1("owner")
            for kind in ("read", "write"):
                value = self._form1(f"perms.{kind}")
                if value is not None:
                    entry[kind] = [r.strip() for r in value.split(",") if r.strip()]
            return self._feed(ctx, "storage/passwords", [self._secret_row(ctx, entry)])

    # ---- configs/conf-vtpivot -----------------------------------------------------------------
    def _conf(self, ctx, rest):
        fake = self.fake
        if ctx.app not in (fake.app, "-"):
            # conf objects are app-scoped (default.meta [] export = none)
            if self.command == "GET" and not rest:
                return self._feed(ctx, "configs/conf-vtpivot", [])
            raise HTTPFail(404, "Could not find object in this namespace")
        acl = {"app": fake.app, "owner": "nobody", "sharing": "app",
               "perms": {"read": ["admin", "sc_admin", "vtpivot_user"],
                         "write": ["admin", "sc_admin"]},
               "can_write": ctx.may_write_conf, "modifiable": True, "removable": False}
        if self.command == "GET":
            stanzas = fake.conf_stanzas()
            if rest:
                if rest[0] not in stanzas:
                    raise HTTPFail(404, f"Could not find object id={rest[0]}")
                return self._feed(ctx, "configs/conf-vtpivot", [(rest[0], stanzas[rest[0]],
                                                                 acl)])
            return self._feed(ctx, "configs/conf-vtpivot",
                              [(name, keys, acl) for name, keys in stanzas.items()])
        if self.command == "POST":
            if not ctx.may_write_conf:
                raise HTTPFail(403, f"You (user={ctx.user}) do not have permission to write "
                                    f"vtpivot.conf.")
            values = {k: v[-1] for k, v in self.form.items() if k not in ("output_mode",)}
            for key, value in values.items():
                if "\n" in value or "\r" in value:
                    raise HTTPFail(400, f"value of {key} must be one line")
            with fake.lock:
                if rest:
                    stanza = rest[0]
                    if stanza not in fake.conf_stanzas():
                        raise HTTPFail(404, f"Could not find object id={stanza}")
                else:
                    stanza = values.pop("name", "")
                    if not stanza:
                        raise HTTPFail(400, "Missing argument: name")
                    if stanza in fake.conf_stanzas():
                        raise HTTPFail(409, f"An object with name={stanza} already exists")
                fake.conf_local.setdefault(stanza, {}).update(values)
                fake._write_conf_local()
                merged = fake.conf_stanzas()[stanza]
            return self._feed(ctx, "configs/conf-vtpivot", [(stanza, merged, acl)],
                              status=200 if rest else 201)
        raise HTTPFail(405, "Method not allowed")

    def _properties(self, ctx, rest):
        if rest[0] != "vtpivot" or ctx.app not in (self.fake.app, "-"):
            raise HTTPFail(404, f"Could not find conf {rest[0]}")
        stanzas = self.fake.conf_stanzas()
        return self._feed(ctx, "properties/vtpivot", [(s, {}, {}) for s in stanzas])

    # ---- apps/local ---------------------------------------------------------------------------
    def _apps(self, ctx, rest):
        fake = self.fake
        name = rest[0] if rest else None
        if name and name not in fake.apps:
            raise HTTPFail(404, f"Could not find app {name}")
        acl = {"app": "system", "owner": "nobody", "sharing": "app"}
        if self.command == "POST" and name:
            if "admin_all_objects" not in ctx.caps:
                raise HTTPFail(403, f"You (user={ctx.user}) do not have permission to edit "
                                    f"apps (requires capability: admin_all_objects).")
            value = self._form1("configured")
            if value is not None:
                fake.apps[name]["configured"] = value.lower() in ("1", "true")
        elif self.command != "GET":
            raise HTTPFail(405, "Method not allowed")
        names = [name] if name else sorted(fake.apps)
        rows = [(n, {"configured": fake.apps[n]["configured"], "visible": True,
                     "label": "VirusTotal Pivot" if n == fake.app else n}, acl) for n in names]
        return self._feed(ctx, "apps/local", rows)

    # ---- the custom endpoint ------------------------------------------------------------------
    def _test_connection(self, ctx):
        fake = self.fake
        stanza = fake.restmap().get("script:vtpivot_test_connection")
        if stanza is None:
            raise HTTPFail(404, "restmap.conf has no [script:vtpivot_test_connection]")
        needed = stanza.get("capability")
        if needed and needed not in ctx.caps:
            raise HTTPFail(403, f"You (user={ctx.user}) do not have permission to perform "
                                f"this operation (requires capability: {needed}).")
        pass_session = stanza.get("passSession", "false").lower() == "true"
        request = {
            "output_mode": "json", "output_mode_explicit": bool(self.json_mode),
            "server": {"rest_uri": fake.uri, "hostname": "fakesplunkd",
                       "servername": "fakesplunkd", "guid": "00000000-fake"},
            "restmap": {"name": "script:vtpivot_test_connection", "conf": stanza},
            "path_info": "", "query": [list(p) for p in self.query_pairs],
            "connection": {"src_ip": "127.0.0.1", "ssl": False, "listening_port": fake.port},
            "rest_path": "/vtpivot/test_connection", "lang": fake.locale,
            "method": self.command, "ns": {"app": ctx.app, "user": ctx.owner},
            "form": [list(p) for p in self.form_pairs],
        }
        if pass_session:
            request["session"] = {"user": ctx.user, "authtoken": ctx.token}
        if stanza.get("passPayload", "false").lower() == "true":
            request["payload"] = self.raw_body
        status, body = fake.call_rest_handler(request)
        return self._send(status, json.dumps(body))


class _Context:
    """Who asks, in which namespace."""

    def __init__(self, fake, who, owner, app, token):
        self.fake = fake
        self.user = who["user"]
        self.roles = fake.all_roles(who["roles"])
        self.caps = fake.capabilities(who["roles"])
        self.owner, self.app, self.token = owner, app, token

    @property
    def can_list_secrets(self):
        return bool({"admin_all_objects", "list_storage_passwords"} & self.caps)

    @property
    def can_edit_secrets(self):
        return bool({"admin_all_objects", "edit_storage_passwords"} & self.caps)

    @property
    def may_write_conf(self):
        return "admin_all_objects" in self.caps or bool({"admin", "sc_admin"} & self.roles)

    def sees(self, entry):
        return self.app == "-" or entry["app"] == self.app or entry["sharing"] == "global"

    def may_read(self, entry):
        return ("admin_all_objects" in self.caps or "*" in entry["read"]
                or bool(self.roles & set(entry["read"])))

    def may_write(self, entry):
        return ("admin_all_objects" in self.caps or "*" in entry["write"]
                or bool(self.roles & set(entry["write"])))

    def acl_of(self, entry):
        return {"app": entry["app"], "owner": entry["owner"], "sharing": entry["sharing"],
                "perms": {"read": list(entry["read"]), "write": list(entry["write"])},
                "can_write": self.may_write(entry), "can_change_perms": self.may_write(entry),
                "can_list": True, "modifiable": True, "removable": self.may_write(entry)}


def _find(entries, name):
    for candidate in (name, name + ":", ":" + name + ":"):
        for entry in entries:
            if _entry_name(entry) == candidate:
                return entry
    return None


def _xml_value(element, value):
    if isinstance(value, dict):
        box = ET.SubElement(element, f"{{{S_NS}}}dict")
        for key, item in value.items():
            _xml_value(ET.SubElement(box, f"{{{S_NS}}}key", {"name": key}), item)
    elif isinstance(value, (list, tuple)):
        box = ET.SubElement(element, f"{{{S_NS}}}list")
        for item in value:
            _xml_value(ET.SubElement(box, f"{{{S_NS}}}item"), item)
    elif isinstance(value, bool):
        element.text = "1" if value else "0"
    elif value is not None:
        element.text = str(value)


# ---- the harness page -------------------------------------------------------------------------
def render_view(fake, view):
    """A Simple XML view as Splunk would show it: chrome, title, <html> panels, then the
    view's stylesheet and script loaded the way Simple XML loads them (require.js)."""
    path = os.path.join(fake.app_root, "default", "data", "ui", "views", f"{view}.xml")
    if not os.path.isfile(path):
        raise HTTPFail(404, f"no view {view}")
    root = ET.parse(path).getroot()
    label = root.findtext("label") or view
    panels = []
    for node in root.iter("html"):
        inner = (node.text or "") + "".join(ET.tostring(child, encoding="unicode",
                                                         method="html")
                                            for child in node)
        panels.append(f'<div class="dashboard-row"><div class="dashboard-cell">'
                      f'<div class="dashboard-panel"><div class="panel-body html">{inner}'
                      f'</div></div></div></div>')
    static = f"/{fake.locale}/static/app/{fake.app}"
    styles = "".join(f'<link rel="stylesheet" href="{static}/{html.escape(s.strip())}">'
                     for s in (root.get("stylesheet") or "").split(",") if s.strip())
    scripts = json.dumps([f"{static}/{s.strip()}" for s in (root.get("script") or "").split(",")
                          if s.strip()])
    config = json.dumps({"MRSPARKLE_PORT_NUMBER": str(fake.port), "LOCALE": fake.locale,
                         "MRSPARKLE_ROOT_PATH": "", "APP": fake.app, "PAGE": view})
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>{html.escape(label)} | Splunk</title>
<link rel="stylesheet" href="/{fake.locale}/static/fakesplunkd/chrome.css">
{styles}
<script>window.$C = {config};</script>
<script src="/{fake.locale}/static/js/require.js"></script>
<script src="/{fake.locale}/static/fakesplunkd/config.js"></script>
</head><body class="locale-{fake.locale}">
<header class="splunk-header"><span class="splunk-logo">splunk&gt;<b>enterprise</b></span>
<span class="splunk-app">Apps &#9662;</span><span class="splunk-right">Administrator &#9662;
&nbsp; Messages &#9662; &nbsp; Settings &#9662; &nbsp; Activity &#9662; &nbsp; Help &#9662;
</span></header>
<nav class="app-bar"><span class="app-nav">Search &nbsp; Datasets &nbsp; Reports &nbsp;
Alerts &nbsp; Dashboards</span><span class="app-label">VirusTotal Pivot</span></nav>
<div class="dashboard-body"><div class="dashboard-header"><h2>{html.escape(label)}</h2>
</div>{''.join(panels)}</div>
<script>require({scripts});</script>
</body></html>"""
