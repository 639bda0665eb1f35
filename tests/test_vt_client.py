"""VTClient at the HTTP level, against the fake VirusTotal server (devtools/fakevt).

Every assertion about "how many requests" reads the fake server's own counters. Retries never
really sleep: a SleepRecorder is injected and the delays it was asked for are checked.
"""
import base64
import http.client
import os
import ssl
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import pytest

from lookup_helpers import FakeClock, SleepRecorder, app_version, read_all_files, require_openssl
from vtpivot_app import app_logging, errors
from vtpivot_app.quota import Budget, RateLimiter, Throttled
from vtpivot_app.settings import Settings, validate
from vtpivot_app.storage_backends import open_backend
from vtpivot_app.quota import next_utc_midnight
from vtpivot_app.vt_client import MAX_PAGE_LIMIT, VTClient

PUBLIC = "test-public-key"
PREMIUM = "test-premium-key"
DOMAIN = "/domains/alpha.example"


def make_settings(url, state_dir, **overrides):
    values = dict(api_url=url, state_dir=str(state_dir), max_retries=2, backoff_base=0.5,
                  backoff_max=20.0, connect_timeout=2.0, read_timeout=5.0)
    values.update(overrides)
    return validate(Settings(**values))


def make_client(url, tmp_path, key=PREMIUM, limiter=None, sleep=None, clock=None,
                proxy_password="", **overrides):
    settings = make_settings(url, tmp_path / "state", **overrides)
    kwargs = {}
    if clock is not None:
        kwargs["clock"] = clock
    return VTClient(settings, key, limiter=limiter, sleep=sleep or SleepRecorder(),
                    proxy_password=proxy_password, **kwargs)


def make_limiter(state_dir, clock, per_minute=0, per_day=0):
    backend = open_backend("sqlite", str(state_dir))
    return RateLimiter(backend, Budget(per_minute=per_minute, per_day=per_day, per_month=0),
                       clock=clock, sleep=SleepRecorder())


@pytest.fixture
def app_log(tmp_path, monkeypatch):
    """SPLUNK_HOME in tmp, the app log configured at DEBUG there; handlers removed after."""
    home = tmp_path / "splunk_home"
    monkeypatch.setenv("SPLUNK_HOME", str(home))
    log_dir = home / "var" / "log" / "splunk"
    logger = app_logging.setup_logging(str(log_dir), "DEBUG")
    yield home, log_dir / "vtpivot.log"
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
        handler.close()


# ---- error classes ---------------------------------------------------------------------------

def test_ok_object_and_headers(fake_vt, tmp_path):
    client = make_client(fake_vt.url, tmp_path)
    data = client.get_object("domain", "alpha.example", ("resolutions",))
    assert data["id"] == "alpha.example" and "resolutions" in data["relationships"]
    headers = {k.lower(): v for k, v in fake_vt.last_headers.items()}
    assert headers["x-apikey"] == PREMIUM
    assert headers["user-agent"].startswith(f"vtpivot/{app_version()} ")
    assert fake_vt.calls(DOMAIN) == 1


@pytest.mark.parametrize("call, error_class, code, vt_code, http_status", [
    # limit above 40 (the client clamps get_relationship, so this goes through _get directly)
    (lambda c: c._get("domains/alpha.example/resolutions", {"limit": 41}, cacheable=True),
     errors.BadRequest, "VTP-E012", "BadRequestError", 400),
    (lambda c: c.get_object("domain", "alpha.example", ("no_such_relationship",)),
     errors.BadRequest, "VTP-E012", "InvalidArgumentError", 400),
    (lambda c: c.get_object("domain", "nowhere-at-all.example"),
     errors.NotFound, "VTP-E013", "NotFoundError", 404),
])
def test_client_errors_map_and_are_never_retried(fake_vt, tmp_path, call, error_class, code,
                                                 vt_code, http_status):
    sleep = SleepRecorder()
    client = make_client(fake_vt.url, tmp_path, sleep=sleep)
    with pytest.raises(error_class) as info:
        call(client)
    exc = info.value
    assert (exc.code, exc.vt_code, exc.http_status) == (code, vt_code, http_status)
    assert str(exc).startswith(f"[{code}] VirusTotal answered HTTP {http_status} {vt_code}")
    assert fake_vt.total_calls == 1 and sleep.delays == []


def test_401_without_key(fake_vt, tmp_path):
    sleep = SleepRecorder()
    client = make_client(fake_vt.url, tmp_path, key="", sleep=sleep)
    with pytest.raises(errors.AuthError) as info:
        client.get_object("domain", "alpha.example")
    assert info.value.code == "VTP-E010"
    assert info.value.vt_code == "AuthenticationRequiredError"
    assert fake_vt.total_calls == 1 and sleep.delays == []


def test_401_wrong_key(fake_vt, tmp_path):
    sleep = SleepRecorder()
    client = make_client(fake_vt.url, tmp_path, key="not-a-known-key-1234", sleep=sleep)
    with pytest.raises(errors.AuthError) as info:
        client.get_object("domain", "alpha.example")
    assert (info.value.code, info.value.vt_code, info.value.http_status) == \
        ("VTP-E010", "WrongCredentialsError", 401)
    assert "not-a-known-key-1234" not in str(info.value)
    assert fake_vt.total_calls == 1 and sleep.delays == []


def test_403_premium_relationship_with_public_key(fake_vt, tmp_path):
    sleep = SleepRecorder()
    client = make_client(fake_vt.url, tmp_path, key=PUBLIC, sleep=sleep)
    with pytest.raises(errors.Forbidden) as info:
        client.get_relationship("domain", "alpha.example", "urls")
    assert (info.value.code, info.value.vt_code, info.value.http_status) == \
        ("VTP-E011", "ForbiddenError", 403)
    assert fake_vt.total_calls == 1 and sleep.delays == []
    # the same relationship with a premium key is fine
    premium = make_client(fake_vt.url, tmp_path / "p", key=PREMIUM)
    assert isinstance(premium.get_relationship("domain", "alpha.example", "urls").items, list)


def test_429_quota_exceeded_is_not_retried(fake_vt, tmp_path):
    sleep = SleepRecorder()
    client = make_client(fake_vt.url, tmp_path, key=PUBLIC, sleep=sleep)
    for _ in range(4):  # a public key's 4 per minute
        client.get_object("domain", "alpha.example")
    with pytest.raises(errors.QuotaExceeded) as info:
        client.get_object("domain", "alpha.example")
    assert (info.value.code, info.value.vt_code, info.value.http_status) == \
        ("VTP-E023", "QuotaExceededError", 429)
    assert fake_vt.calls(DOMAIN) == 5 and sleep.delays == []


def test_429_too_many_requests_retried_honouring_retry_after(fake_vt_factory, tmp_path):
    vt = fake_vt_factory(minute_error="TooManyRequestsError", retry_after=7)
    vt.set_quota(PREMIUM, per_minute=0, per_day=None)  # every request is over the minute
    sleep = SleepRecorder()
    client = make_client(vt.url, tmp_path, sleep=sleep, max_retries=3)
    with pytest.raises(errors.TooManyRequests) as info:
        client.get_object("domain", "alpha.example")
    assert (info.value.code, info.value.vt_code) == ("VTP-E020", "TooManyRequestsError")
    assert vt.total_calls == 4  # max_retries + 1
    assert sleep.delays == [7.0, 7.0, 7.0]  # Retry-After, not the jittered backoff


def test_retry_after_longer_than_backoff_max_gives_up_at_once(fake_vt_factory, tmp_path):
    vt = fake_vt_factory(minute_error="TooManyRequestsError", retry_after=300)
    vt.set_quota(PREMIUM, per_minute=0, per_day=None)
    sleep = SleepRecorder()
    client = make_client(vt.url, tmp_path, sleep=sleep, max_retries=3, backoff_max=20)
    with pytest.raises(errors.TooManyRequests) as info:
        client.get_object("domain", "alpha.example")
    assert info.value.retry_after == 300
    assert vt.total_calls == 1 and sleep.delays == []


def test_503_mapped_to_transient_after_bounded_retries(fake_vt, tmp_path):
    fake_vt.inject("transient", count=None)
    sleep = SleepRecorder()
    client = make_client(fake_vt.url, tmp_path, sleep=sleep, max_retries=2, backoff_base=0.5)
    with pytest.raises(errors.Transient) as info:
        client.get_object("domain", "alpha.example")
    assert (info.value.code, info.value.http_status, info.value.vt_code) == \
        ("VTP-E030", 503, "TransientError")
    assert fake_vt.total_calls == 3  # max_retries + 1
    # jittered exponential backoff: 50-100 % of 0.5 s, then of 1 s
    assert len(sleep.delays) == 2
    assert 0.25 <= sleep.delays[0] <= 0.5 and 0.5 <= sleep.delays[1] <= 1.0


def test_503_then_success_is_two_requests(fake_vt, tmp_path):
    fake_vt.inject("transient", count=1)
    sleep = SleepRecorder()
    client = make_client(fake_vt.url, tmp_path, sleep=sleep)
    assert client.get_object("domain", "alpha.example")["id"] == "alpha.example"
    assert fake_vt.calls(DOMAIN) == 2 and len(sleep.delays) == 1


def test_backoff_is_capped_by_backoff_max(fake_vt, tmp_path):
    fake_vt.inject("transient", count=None)
    sleep = SleepRecorder()
    client = make_client(fake_vt.url, tmp_path, sleep=sleep, max_retries=4, backoff_base=10,
                         backoff_max=12)
    with pytest.raises(errors.Transient):
        client.get_object("domain", "alpha.example")
    assert fake_vt.total_calls == 5
    assert len(sleep.delays) == 4 and all(d <= 12 for d in sleep.delays)


def test_zero_retries_means_one_request(fake_vt, tmp_path):
    fake_vt.inject("transient", count=None)
    client = make_client(fake_vt.url, tmp_path, max_retries=0)
    with pytest.raises(errors.Transient):
        client.get_object("domain", "alpha.example")
    assert fake_vt.total_calls == 1


def test_timeout_is_transient_after_retries(fake_vt, tmp_path):
    fake_vt.inject("hang", count=None, seconds=5)
    sleep = SleepRecorder()
    client = make_client(fake_vt.url, tmp_path, sleep=sleep, max_retries=1, read_timeout=0.2)
    with pytest.raises(errors.Transient) as info:
        client.get_object("domain", "alpha.example")
    assert info.value.code == "VTP-E030" and "timeout" in str(info.value)
    assert fake_vt.total_calls == 2 and len(sleep.delays) == 1


@pytest.mark.parametrize("fault, error_class, code", [
    ("truncate", errors.MalformedResponse, "VTP-E033"),
    ("malformed", errors.MalformedResponse, "VTP-E033"),
    ("drop", errors.NetworkError, "VTP-E031"),
])
def test_broken_answers_are_retried_then_reported(fake_vt, tmp_path, fault, error_class, code):
    fake_vt.inject(fault, count=None)
    sleep = SleepRecorder()
    client = make_client(fake_vt.url, tmp_path, sleep=sleep, max_retries=2)
    with pytest.raises(error_class) as info:
        client.get_object("domain", "alpha.example")
    assert info.value.code == code
    assert fake_vt.total_calls == 3 and len(sleep.delays) == 2


@pytest.mark.parametrize("fault", ["truncate", "malformed", "drop"])
def test_broken_answer_once_then_success(fake_vt, tmp_path, fault):
    fake_vt.inject(fault, count=1)
    client = make_client(fake_vt.url, tmp_path)
    assert client.get_object("domain", "alpha.example")["id"] == "alpha.example"
    assert fake_vt.calls(DOMAIN) == 2


# ---- the circuit breaker ---------------------------------------------------------------------

def test_quota_exceeded_opens_the_shared_breaker_two_strikes(fake_vt, tmp_path):
    clock = FakeClock()
    limiter = make_limiter(tmp_path / "state", clock)
    client = make_client(fake_vt.url, tmp_path, limiter=limiter, clock=clock)
    fake_vt.inject("quota", count=None)

    # strike 1: one minute
    with pytest.raises(errors.QuotaExceeded):
        client.get_object("domain", "alpha.example")
    assert fake_vt.total_calls == 1
    opened = limiter.remaining()["circuit_open_until"]
    assert opened == pytest.approx(clock() + 60)
    # nothing leaves while it is open, in this client or another process's limiter
    other = make_limiter(tmp_path / "state", clock)
    for lim in (limiter, other):
        c = make_client(fake_vt.url, tmp_path, limiter=lim, clock=clock)
        with pytest.raises(Throttled) as info:
            c.get_object("domain", "beta.example")
        assert info.value.window == "circuit" and info.value.code == "VTP-E023"
    assert fake_vt.total_calls == 1

    # strike 2 within 15 minutes: the day is spent, open until 00:00 UTC
    clock.advance(61)
    with pytest.raises(errors.QuotaExceeded) as info:
        client.get_object("domain", "alpha.example")
    assert fake_vt.total_calls == 2
    midnight = next_utc_midnight(clock())
    assert limiter.remaining()["circuit_open_until"] == pytest.approx(midnight)
    assert info.value.retry_after == pytest.approx(midnight - clock())
    clock.advance(3600)
    if clock() < midnight:
        with pytest.raises(Throttled) as info:
            client.get_object("domain", "alpha.example")
        assert info.value.window == "circuit"
        assert "UTC" in str(info.value)
    assert fake_vt.total_calls == 2


def test_a_strike_after_15_minutes_is_a_minute_again(fake_vt, tmp_path):
    clock = FakeClock()
    limiter = make_limiter(tmp_path / "state", clock)
    client = make_client(fake_vt.url, tmp_path, limiter=limiter, clock=clock)
    fake_vt.inject("quota", count=2)
    with pytest.raises(errors.QuotaExceeded):
        client.get_object("domain", "alpha.example")
    clock.advance(16 * 60)
    with pytest.raises(errors.QuotaExceeded):
        client.get_object("domain", "alpha.example")
    assert limiter.remaining()["circuit_open_until"] == pytest.approx(clock() + 60)


def test_every_request_takes_one_token(fake_vt, tmp_path):
    clock = FakeClock()
    limiter = make_limiter(tmp_path / "state", clock, per_minute=3)
    client = make_client(fake_vt.url, tmp_path, limiter=limiter, clock=clock,
                         max_wait_seconds=0)
    fake_vt.inject("transient", count=1)
    client.get_object("domain", "alpha.example")  # 503 + retry: two tokens
    assert limiter.remaining()["used"]["minute"] == 2
    client.get_object("domain", "beta.example")
    with pytest.raises(Throttled) as info:
        client.get_object("domain", "google.com")
    assert info.value.window == "minute" and info.value.code == "VTP-E020"
    assert fake_vt.total_calls == 3


# ---- relationship pages and the HTTP cache ---------------------------------------------------

def test_relationship_page_cursor_and_count(fake_vt, tmp_path):
    client = make_client(fake_vt.url, tmp_path)
    page = client.get_relationship("ip", "203.0.113.50", "resolutions", limit=20)
    assert len(page.items) == 20 and page.count > 20 and page.cursor
    assert not page.from_cache
    seen = [item["id"] for item in page.items]
    while page.cursor:
        page = client.get_relationship("ip", "203.0.113.50", "resolutions", limit=20,
                                       cursor=page.cursor)
        seen += [item["id"] for item in page.items]
    assert len(seen) == len(set(seen)) == page.count
    descriptors = client.get_relationship("domain", "alpha.example", "resolutions",
                                          descriptors_only=True)
    assert descriptors.items and all(set(i) <= {"type", "id", "context_attributes"}
                                     for i in descriptors.items)


def test_relationship_limit_is_clamped_to_40(fake_vt, tmp_path):
    client = make_client(fake_vt.url, tmp_path)
    page = client.get_relationship("ip", "203.0.113.50", "resolutions", limit=500)
    assert len(page.items) == MAX_PAGE_LIMIT == 40
    assert fake_vt.requests()[-1].query == "limit=40"


def test_second_identical_page_is_served_from_http_cache(fake_vt, tmp_path):
    clock = FakeClock()
    limiter = make_limiter(tmp_path / "state", clock, per_minute=10)
    client = make_client(fake_vt.url, tmp_path, limiter=limiter, clock=clock)
    first = client.get_relationship("domain", "alpha.example", "resolutions", limit=2)
    assert fake_vt.total_calls == 1 and limiter.remaining()["used"]["minute"] == 1
    second = client.get_relationship("domain", "alpha.example", "resolutions", limit=2)
    assert second.from_cache and second.items == first.items and second.cursor == first.cursor
    assert fake_vt.total_calls == 1  # no request
    assert limiter.remaining()["used"]["minute"] == 1  # and no token
    # a new process (new client, same state folder) shares the cache
    other = make_client(fake_vt.url, tmp_path, limiter=limiter, clock=clock)
    assert other.get_relationship("domain", "alpha.example", "resolutions", limit=2).from_cache
    assert fake_vt.total_calls == 1
    # a different page is a different request
    client.get_relationship("domain", "alpha.example", "resolutions", limit=2,
                            cursor=first.cursor)
    assert fake_vt.total_calls == 2


def test_requests_carry_only_the_expected_headers(fake_vt, tmp_path):
    client = make_client(fake_vt.url, tmp_path)
    client.get_object("domain", "alpha.example")
    client.get_relationship("domain", "alpha.example", "resolutions")
    for rec in fake_vt.requests():
        names = {k.lower() for k in rec.headers}
        assert names <= {"host", "user-agent", "accept-encoding", "accept", "connection",
                         "x-apikey"}, (rec.path, rec.headers)


def test_objects_are_not_http_cached(fake_vt, tmp_path):
    client = make_client(fake_vt.url, tmp_path)
    client.get_object("domain", "alpha.example")
    client.get_object("domain", "alpha.example")
    assert fake_vt.calls(DOMAIN) == 2


# ---- where the key goes ----------------------------------------------------------------------

def test_key_only_in_the_x_apikey_header(fake_vt, tmp_path):
    key = "KEYinURLcheck-7c1e"
    fake_vt.set_key(key, "premium")
    client = make_client(fake_vt.url, tmp_path, key=key)
    client.get_relationship("domain", "alpha.example", "resolutions")
    client.get_object("domain", "alpha.example", ("resolutions",))
    for rec in fake_vt.requests():
        assert key not in rec.raw_path and key not in rec.query
        headers = {k.lower(): v for k, v in rec.headers.items()}
        assert headers["x-apikey"] == key
        assert [v for k, v in headers.items() if k != "x-apikey" and key in v] == []


def test_api_key_never_written_to_any_state_or_log_file(fake_vt, app_log, tmp_path):
    home, log_path = app_log
    key = "VTPIVOT-DISTINCTIVE-KEY-5e1f0c9a77"
    fake_vt.set_key(key, "premium")
    settings = make_settings(fake_vt.url, "")  # state under $SPLUNK_HOME/var/lib/vtpivot
    assert settings.resolved_state_dir.startswith(str(home))
    clock = FakeClock()
    limiter = make_limiter(settings.resolved_state_dir, clock, per_minute=100)
    client = VTClient(settings, key, limiter=limiter, sleep=SleepRecorder())
    client.get_object("domain", "alpha.example", ("resolutions",))
    for rel in ("resolutions", "subdomains", "siblings"):
        client.get_relationship("domain", "alpha.example", rel)
        client.get_relationship("domain", "alpha.example", rel)  # cache hit
    with pytest.raises(errors.NotFound):
        client.get_object("domain", "unknown-zz.example")
    fake_vt.inject("transient", count=1)
    client.get_relationship("ip", "192.0.2.10", "resolutions")
    files = read_all_files(str(home))
    names = {os.path.basename(p) for p in files}
    assert {"http_cache.sqlite", "vtpivot.log"} <= names, names
    assert any(n.endswith("-wal") for n in names), names  # WAL mode: pages may sit there
    log_text = files[str(log_path)].decode("utf-8")
    assert log_text.count("event=vt_call") >= 9
    for path, data in files.items():
        assert key.encode() not in data, path
        assert base64.b64encode(key.encode()) not in data, path


# ---- proxy -----------------------------------------------------------------------------------

class _ProxyHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_GET(self):
        server = self.server
        auth = self.headers.get("Proxy-Authorization", "")
        with server.lock:
            server.seen.append({"target": self.path, "auth": auth})
        if auth != server.expected_auth:
            body = b'{"error": "proxy authentication required"}'
            self.send_response(407)
            self.send_header("Proxy-Authenticate", 'Basic realm="test-proxy"')
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        target = urlsplit(self.path)
        upstream = http.client.HTTPConnection(target.hostname, target.port, timeout=10)
        headers = {k: v for k, v in self.headers.items()
                   if k.lower() not in ("proxy-authorization", "proxy-connection", "connection",
                                        "host", "keep-alive")}
        upstream.request("GET", target.path + ("?" + target.query if target.query else ""),
                         headers=headers)
        response = upstream.getresponse()
        body = response.read()
        upstream.close()
        self.send_response(response.status)
        for name, value in response.getheaders():
            if name.lower() not in ("transfer-encoding", "connection", "content-length"):
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def auth_proxy():
    """A forwarding HTTP proxy on 127.0.0.1 that requires Basic auth analyst:<password>."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _ProxyHandler)
    server.daemon_threads = True
    server.lock = threading.Lock()
    server.seen = []
    server.password = "Pr0xy/p@ss:w0rd-3c9b"
    server.expected_auth = "Basic " + base64.b64encode(
        ("analyst:" + server.password).encode()).decode()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_requests_go_through_the_authenticating_proxy(fake_vt, auth_proxy, app_log, tmp_path):
    _, log_path = app_log
    client = make_client(fake_vt.url, tmp_path,
                         proxy_url=f"http://127.0.0.1:{auth_proxy.server_address[1]}",
                         proxy_username="analyst", proxy_password=auth_proxy.password)
    assert client.get_object("domain", "alpha.example")["id"] == "alpha.example"
    assert len(auth_proxy.seen) == 1
    assert auth_proxy.seen[0]["target"].startswith(fake_vt.url + "/domains/alpha.example")
    assert auth_proxy.seen[0]["auth"] == auth_proxy.expected_auth
    assert fake_vt.calls(DOMAIN) == 1
    assert "proxy-authorization" not in {k.lower() for k in fake_vt.last_headers}
    assert auth_proxy.password not in log_path.read_text(encoding="utf-8")


def test_proxy_errors_never_reveal_the_proxy_password(fake_vt, auth_proxy, app_log, tmp_path):
    _, log_path = app_log
    port = auth_proxy.server_address[1]
    secrets = [auth_proxy.password, "Pr0xy%2Fp%40ss%3Aw0rd-3c9b"]
    # 1. the proxy refuses the credentials (407)
    client = make_client(fake_vt.url, tmp_path, proxy_url=f"http://127.0.0.1:{port}",
                         proxy_username="analyst", proxy_password=auth_proxy.password + "x")
    with pytest.raises(errors.VTError) as refused:
        client.get_object("domain", "alpha.example")
    assert refused.value.http_status == 407
    assert fake_vt.total_calls == 0 and len(auth_proxy.seen) == 1
    # 2. the proxy is not there at all
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        dead_port = probe.getsockname()[1]
    sleep = SleepRecorder()
    client = make_client(fake_vt.url, tmp_path / "b", sleep=sleep,
                         proxy_url=f"http://127.0.0.1:{dead_port}", proxy_username="analyst",
                         proxy_password=auth_proxy.password, max_retries=1)
    with pytest.raises(errors.NetworkError) as unreachable:
        client.get_object("domain", "alpha.example")
    assert unreachable.value.code == "VTP-E031" and "proxy" in str(unreachable.value)
    assert len(sleep.delays) == 1  # retried once
    log_text = log_path.read_text(encoding="utf-8")
    assert "vt_call" in log_text
    for secret in secrets:
        assert secret not in log_text
        assert secret not in str(refused.value) and secret not in str(unreachable.value)


# ---- TLS -------------------------------------------------------------------------------------

STRICT_CA_EXT = """
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
"""
# What many TLS-inspecting proxies generate: CA:TRUE not critical, no keyUsage.
WEAK_CA_EXT = """
basicConstraints = CA:TRUE
subjectKeyIdentifier = hash
"""
SERVER_EXT = """
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
"""


def _openssl(*args, cwd):
    proc = subprocess.run([require_openssl()] + list(args), cwd=cwd, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE)
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")


def make_pki(folder, ca_extensions):
    """CA (with the given v3 extensions) + a server certificate for 127.0.0.1 it signed."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "ca.cnf").write_text("[req]\ndistinguished_name = dn\nprompt = no\n"
                                   "[dn]\nCN = vtpivot test CA\n[v3_ca]\n" + ca_extensions)
    (folder / "srv.cnf").write_text("[v3_srv]\n" + SERVER_EXT)
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    _openssl("req", "-x509", "-new", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
             "-config", "ca.cnf", "-extensions", "v3_ca", cwd=folder)
    _openssl("req", "-new", *ec, "-keyout", "srv.key", "-out", "srv.csr",
             "-subj", "/CN=127.0.0.1", cwd=folder)
    _openssl("x509", "-req", "-in", "srv.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
             "-set_serial", "4242", "-out", "srv.pem", "-days", "2", "-extfile", "srv.cnf",
             "-extensions", "v3_srv", cwd=folder)
    return folder


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    root = tmp_path_factory.mktemp("pki")
    return {"strict": make_pki(root / "strict", STRICT_CA_EXT),
            "weak": make_pki(root / "weak", WEAK_CA_EXT)}


@pytest.fixture
def https_fake_vt():
    """The fake VirusTotal's own request handler behind TLS, with a server certificate from
    the CA given to start()."""
    from fakevt import FakeVirusTotal
    from fakevt.server import _Handler, _Server

    servers = []

    def start(pki_dir):
        fake = FakeVirusTotal(dataset="basic", keys={PREMIUM: "premium"})
        server = _Server(("127.0.0.1", 0), _Handler)
        server.fake = fake
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(str(pki_dir / "srv.pem"), str(pki_dir / "srv.key"))
        server.socket = context.wrap_socket(server.socket, server_side=True)
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                                  daemon=True)
        thread.start()
        servers.append(server)
        return fake, f"https://127.0.0.1:{server.server_address[1]}/api/v3"

    yield start
    for server in servers:
        server.fake._stopping.set()
        server.shutdown()
        server.server_close()


def test_tls_with_ca_bundle_path_and_pasted_pem(pki, https_fake_vt, tmp_path):
    fake, url = https_fake_vt(pki["strict"])
    ca_path = str(pki["strict"] / "ca.pem")
    by_path = make_client(url, tmp_path / "a", ca_bundle=ca_path)
    assert by_path.get_object("domain", "alpha.example")["id"] == "alpha.example"
    pem = (pki["strict"] / "ca.pem").read_text()
    by_text = make_client(url, tmp_path / "b", ca_bundle="\n  " + pem + "  \n")
    assert by_text.get_object("domain", "alpha.example")["id"] == "alpha.example"
    written = tmp_path / "b" / "state" / "ca_bundle.pem"
    assert written.read_text().strip() == pem.strip()
    assert oct(written.stat().st_mode & 0o777) == "0o600"
    assert fake.calls(DOMAIN) == 2


def test_tls_without_the_ca_fails_verification_never_retried(pki, https_fake_vt, tmp_path):
    fake, url = https_fake_vt(pki["strict"])
    sleep = SleepRecorder()
    client = make_client(url, tmp_path, sleep=sleep)  # default trust store: not our CA
    with pytest.raises(errors.TLSError) as info:
        client.get_object("domain", "alpha.example")
    assert info.value.code == "VTP-E032"
    assert "certificate verify failed" in str(info.value)
    assert sleep.delays == [] and fake.total_calls == 0


def test_tls_ca_without_strict_extensions(pki, https_fake_vt, tmp_path):
    """A CA certificate without keyUsage and with a non-critical basicConstraints (as many
    TLS-inspecting proxies make). The client uses ssl.create_default_context(), so each
    interpreter applies its own defaults:
    - Python 3.13 adds VERIFY_X509_STRICT: OpenSSL refuses the CA -> TLSError VTP-E032 whose
      message names the verification failure and OpenSSL's reason (the CA's key usage).
    - Python 3.9 has no strict flag by default (VERIFY_X509_TRUSTED_FIRST only): the same
      chain verifies and the call succeeds (measured here with 3.9.18 / OpenSSL 3.0)."""
    fake, url = https_fake_vt(pki["weak"])
    sleep = SleepRecorder()
    client = make_client(url, tmp_path, sleep=sleep, ca_bundle=str(pki["weak"] / "ca.pem"))
    strict = bool(ssl.create_default_context().verify_flags & ssl.VERIFY_X509_STRICT)
    assert strict == (sys.version_info >= (3, 13))
    if strict:
        with pytest.raises(errors.TLSError) as info:
            client.get_object("domain", "alpha.example")
        message = str(info.value)
        assert info.value.code == "VTP-E032"
        assert "certificate verify failed" in message
        # OpenSSL 3.0 reports the first strict check that fails (basicConstraints here)
        assert ("Basic Constraints of CA cert not marked critical" in message
                or "CA cert does not include key usage extension" in message), message
        assert "CA" in info.value.fix and "keyUsage" in info.value.fix
        assert sleep.delays == [] and fake.total_calls == 0
    else:
        assert client.get_object("domain", "alpha.example")["id"] == "alpha.example"
        assert fake.calls(DOMAIN) == 1


def test_tls_error_keeps_openssl_reason_with_the_real_object_url(pki, https_fake_vt,
                                                                 tmp_path):
    from vtpivot_app.vt_objects import OBJECT_RELATIONSHIPS

    fake, url = https_fake_vt(pki["strict"])
    client = make_client(url, tmp_path)  # our CA is not trusted: verification fails
    with pytest.raises(errors.TLSError) as info:
        client.get_object("domain", "alpha.example", OBJECT_RELATIONSHIPS["domain"])
    assert "unable to get local issuer certificate" in str(info.value), str(info.value)
