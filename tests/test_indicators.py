"""Tests of bin/vtpivot_app/indicators.py: classification, normalization, filtering."""
import ipaddress
import json
import os
import subprocess
import sys
import types

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vtpivot_app import indicators
from vtpivot_app.indicators import (DEFAULT_POLICY, Indicator, IndicatorPolicy, classify,
                                    collection_for, read_never_send_file, vt_link)

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
DOCS = IndicatorPolicy(allow_documentation=True)

MD5 = "d41d8cd98f00b204e9800998ecf8427e"
SHA1 = "da39a3ee5e6b4b0d3255bfef95601890afd80709"
SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

# (input, kind, value, status) with the default policy.
CASES = [
    # plain, case, whitespace, quotes, trailing dots
    ("evil.com", "domain", "evil.com", "ok"),
    ("EVIL.Com", "domain", "evil.com", "ok"),
    ("  evil.com\r\n", "domain", "evil.com", "ok"),
    ("'evil.com'", "domain", "evil.com", "ok"),
    ('"evil.com"', "domain", "evil.com", "ok"),
    ("<evil.com>", "domain", "evil.com", "ok"),
    ("evil.com.", "domain", "evil.com", "ok"),
    ("evil.com..", "domain", "evil.com", "ok"),
    ("_dmarc.evil.com", "domain", "_dmarc.evil.com", "ok"),
    ("bad-.evil.com", "domain", "bad-.evil.com", "ok"),
    # defanged
    ("evil[.]com", "domain", "evil.com", "ok"),
    ("evil(.)com", "domain", "evil.com", "ok"),
    ("evil{.}com", "domain", "evil.com", "ok"),
    ("evil[dot]com", "domain", "evil.com", "ok"),
    ("evil(DOT)com", "domain", "evil.com", "ok"),
    ("evil dot com", "domain", "evil.com", "ok"),
    ("evil [ . ] com", "domain", "evil.com", "ok"),
    ("evil\\.com", "domain", "evil.com", "ok"),
    ("hxxp://evil[.]com/x", "domain", "evil.com", "ok"),
    ("HXXPS[:]//evil[.]com", "domain", "evil.com", "ok"),
    ("hxxps[://]evil.com", "domain", "evil.com", "ok"),
    ("h**p://evil.com", "domain", "evil.com", "ok"),
    ("fxp://files.evil.com/a", "domain", "files.evil.com", "ok"),
    ("hxxpfoo.com", "domain", "hxxpfoo.com", "ok"),          # not a scheme: left alone
    ("1.2.3[.]4", "ip", "1.2.3.4", "ok"),
    ("hxxp://8.8.8[.]8:80/", "ip", "8.8.8.8", "ok"),
    # URLs and host:port
    ("https://user@Sub.Evil.com:8443/path?q", "domain", "sub.evil.com", "ok"),
    ("https://user:pw@sub.evil.com/", "domain", "sub.evil.com", "ok"),
    ("http://evil.com\\@good.com/", "domain", "evil.com", "ok"),   # browsers read \ as /
    ("//cdn.evil.net/x.js", "domain", "cdn.evil.net", "ok"),
    ("evil.com/login.php", "domain", "evil.com", "ok"),
    ("evil.com:443", "domain", "evil.com", "ok"),
    ("http://1.2.3.4:8080/x", "ip", "1.2.3.4", "ok"),
    ("ftp://1.1.1.1", "ip", "1.1.1.1", "ok"),
    # IDN
    ("münchen.de", "domain", "xn--mnchen-3ya.de", "ok"),
    ("MÜNCHEN.DE.", "domain", "xn--mnchen-3ya.de", "ok"),
    ("https://münchen.de/weg", "domain", "xn--mnchen-3ya.de", "ok"),
    ("xn--mnchen-3ya.de", "domain", "xn--mnchen-3ya.de", "ok"),
    ("рус.рф", "domain", "xn--p1acf.xn--p1ai", "ok"),
    ("i\u2764.ws", "domain", "xn--i-7iq.ws", "ok"),              # IDNA 2003 fallback
    ("\uff45\uff56\uff49\uff4c\uff0ecom", "domain", "evil.com", "ok"),  # full-width
    ("evil\u3002com", "domain", "evil.com", "ok"),               # ideographic full stop
    # IPv4 / IPv6
    ("8.8.8.8", "ip", "8.8.8.8", "ok"),
    ("8.8.8.8.", "ip", "8.8.8.8", "ok"),
    ("2001:4860:4860::8888", "ip", "2001:4860:4860::8888", "ok"),
    ("2001:4860:4860:0:0:0:0:8888", "ip", "2001:4860:4860::8888", "ok"),
    ("2001:4860:4860::8888%eth0", "ip", "2001:4860:4860::8888", "ok"),
    ("[2001:4860:4860::8888]", "ip", "2001:4860:4860::8888", "ok"),
    ("[2001:4860:4860::8888]:53", "ip", "2001:4860:4860::8888", "ok"),
    ("https://[2001:4860:4860::8888]:443/dns", "ip", "2001:4860:4860::8888", "ok"),
    ("[1.2.3.4]", "ip", "1.2.3.4", "ok"),
    ("::ffff:8.8.8.8", "ip", "8.8.8.8", "ok"),                  # IPv4-mapped: the v4 host
    ("::ffff:808:808", "ip", "8.8.8.8", "ok"),
    ("64:ff9b::8.8.8.8", "ip", "8.8.8.8", "ok"),                # NAT64: the v4 host
    ("::ffff:10.0.0.1", "ip", "10.0.0.1", "skipped"),
    ("[::FFFF:192.168.1.1]:80", "ip", "192.168.1.1", "skipped"),
    ("64:ff9b::c0a8:101", "ip", "192.168.1.1", "skipped"),
    ("64:ff9b:1::8.8.8.8", "ip", "64:ff9b:1::808:808", "skipped"),
    ("[fe80::1%25eth0]", "ip", "fe80::1", "skipped"),
    ("::", "ip", "::", "skipped"),
    ("::1", "ip", "::1", "skipped"),
    ("::8.8.8.8", "ip", "::808:808", "skipped"),                 # deprecated v4-compatible
    # hashes
    (MD5, "hash", MD5, "ok"),
    (MD5.upper(), "hash", MD5, "ok"),
    (" " + SHA1 + " ", "hash", SHA1, "ok"),
    (SHA256, "hash", SHA256, "ok"),
    # reserved and internal names
    ("localhost", "domain", "localhost", "skipped"),
    ("LOCALHOST.", "domain", "localhost", "skipped"),
    ("intranet", "domain", "intranet", "skipped"),
    ("printer.local", "domain", "printer.local", "skipped"),
    ("my.localhost", "domain", "my.localhost", "skipped"),
    ("db.internal", "domain", "db.internal", "skipped"),
    ("wiki.intranet", "domain", "wiki.intranet", "skipped"),
    ("dc1.ad.corp", "domain", "dc1.ad.corp", "skipped"),
    ("nas.home", "domain", "nas.home", "skipped"),
    ("pc.lan", "domain", "pc.lan", "skipped"),
    ("host.private", "domain", "host.private", "skipped"),
    ("router.home.arpa", "domain", "router.home.arpa", "skipped"),
    ("4.3.2.1.in-addr.arpa", "domain", "4.3.2.1.in-addr.arpa", "skipped"),
    ("b.a.ip6.arpa", "domain", "b.a.ip6.arpa", "skipped"),
    ("duckduckgogg42xjoc72x3sjasowoarfbgcmvfimaftt6twagswzczad.onion", "domain",
     "duckduckgogg42xjoc72x3sjasowoarfbgcmvfimaftt6twagswzczad.onion", "skipped"),
    ("name.alt", "domain", "name.alt", "skipped"),
    ("foo.invalid", "domain", "foo.invalid", "skipped"),
    ("foo.test", "domain", "foo.test", "skipped"),
    ("bücher.example", "domain", "xn--bcher-kva.example", "skipped"),
    ("example.com", "domain", "example.com", "skipped"),
    ("https://user@Sub.Example.com:8443/path?q", "domain", "sub.example.com", "skipped"),
    ("www.example.net", "domain", "www.example.net", "skipped"),
    ("example.org", "domain", "example.org", "skipped"),
    ("notexample.com", "domain", "notexample.com", "ok"),
    ("example.com.evil.com", "domain", "example.com.evil.com", "ok"),
    ("localhost.evil.com", "domain", "localhost.evil.com", "ok"),
    ("local.evil.com", "domain", "local.evil.com", "ok"),
]


@pytest.mark.parametrize("raw,kind,value,status", CASES)
def test_classify_table(raw, kind, value, status):
    result = classify(raw)
    assert (result.kind, result.value, result.status) == (kind, value, status), result
    assert result.query == raw                      # echoed untouched
    assert bool(result.reason) == (status != "ok")
    assert result.hash_type == (indicators.HASH_TYPES[len(value)] if kind == "hash" else "")


# (input, words the reason must contain)
INVALID = [
    ("", "empty value"),
    ("   ", "empty value"),
    ("''", "empty value"),
    ("x" * 2049, "value too long (2049 characters)"),
    ("x" * 100000, "value too long (100000 characters)"),
    ("a\x00b.com", "control character (U+0000)"),
    ("evil.com\x00", "control character (U+0000)"),
    ("a\x1bb.com", "control character (U+001B)"),
    ("a\x85b.com", "control character (U+0085)"),
    ("\ud800.com", "U+D800"),
    ("ex ample.com", "whitespace"),
    ("ex\u00a0ample.com", "whitespace"),
    ("fileserver", "not a fully qualified domain name"),
    ("deadbeef", "not a fully qualified domain name"),
    ("a" * 64 + ".com", "label longer than 63 characters (64)"),
    (".".join(["a" * 63] * 4) + ".com", "name longer than 253 characters"),
    ("x" * 2048, "name longer than 253 characters (2048)"),
    ("-bad.com", "starts with a hyphen"),
    ("a..b.com", "empty label"),
    (".evil.com", "empty label"),
    ("ev!l.com", "invalid character '!'"),
    ("evil.c_m", "'c_m' is not a valid top-level domain"),
    ("evil.c", "'c' is not a valid top-level domain"),
    ("xn--zz.com", "invalid punycode label"),
    ("xn--.com", "invalid punycode label"),
    ("evil\u202ecom", "not a valid internationalized domain name"),
    ("foo.123", "numeric top-level label"),
    ("1.2.3", "not a valid IPv4 address"),
    ("1.2.3.4.5", "not a valid IPv4 address"),
    ("256.1.1.1", "over 255"),
    ("010.1.1.1", "leading zeros"),
    ("2130706433", "not a valid IPv4 address"),
    ("0x7f.0.0.1", "numeric top-level label"),
    ("8.8.8.0/24", "network range (CIDR)"),
    ("2001:db8::/32", "network range (CIDR)"),
    ("2001:4860:::8888", "not a valid IPv6 address"),
    ("2001:4860::88888", "not a valid IPv6 address"),
    ("[2001:4860::8888", "unclosed '['"),
    ("[2001:4860::8888]x", "after ']'"),
    ("[evil.com]", "brackets must hold an IP address"),
    ("evil.com:99999", "invalid port"),
    ("evil.com:8o", "invalid port"),
    ("http://", "URL without a host"),
    ("http://:80/", "URL without a host"),
    ("user@evil.com", "email address"),
    ("user[@]evil.com", "email address"),
    (MD5[:-1], "not an md5, sha1 or sha256 hash (31 hex digits"),
    (SHA256 + "0", "not an md5, sha1 or sha256 hash (65 hex digits"),
    ("0" * 16, "not an md5, sha1 or sha256 hash"),
]


@pytest.mark.parametrize("raw,words", INVALID)
def test_invalid_values_say_why(raw, words):
    result = classify(raw)
    assert (result.kind, result.value, result.status, result.hash_type) == ("", "", "invalid", "")
    assert words in result.reason
    assert result.query == raw


@pytest.mark.parametrize("raw", [None, b"evil.com", 42, 1.5, ["evil.com"], object()])
def test_non_text_is_invalid(raw):
    result = classify(raw)
    assert (result.status, result.reason) == ("invalid", "not text")


def test_length_limit_is_2048_characters():
    assert classify(" " * 2040 + "evil.com").status == "ok"          # 2048 characters
    assert classify(" " * 2041 + "evil.com").reason == "value too long (2049 characters)"


# ---- special IP ranges: one address inside each edge, one just outside -------------------
EDGES = [
    # (inside, outside)
    ("10.0.0.0", "9.255.255.255"), ("10.255.255.255", "11.0.0.0"),
    ("100.64.0.0", "100.63.255.255"), ("100.127.255.255", "100.128.0.0"),
    ("127.0.0.1", "126.255.255.255"), ("127.255.255.255", "128.0.0.0"),
    ("169.254.0.0", "169.253.255.255"), ("169.254.255.255", "169.255.0.0"),
    ("172.16.0.0", "172.15.255.255"), ("172.31.255.255", "172.32.0.0"),
    ("192.0.0.0", "191.255.255.255"), ("192.0.0.255", "192.0.1.0"),
    ("192.88.99.0", "192.88.98.255"), ("192.88.99.255", "192.88.100.0"),
    ("192.168.0.0", "192.167.255.255"), ("192.168.255.255", "192.169.0.0"),
    ("198.18.0.0", "198.17.255.255"), ("198.19.255.255", "198.20.0.0"),
    ("192.0.2.0", "192.0.1.255"), ("192.0.2.255", "192.0.3.0"),
    ("198.51.100.0", "198.51.99.255"), ("203.0.113.255", "203.0.114.0"),
    ("224.0.0.0", "223.255.255.255"), ("0.255.255.255", "1.0.0.0"),
    ("2001::", "2000:ffff:ffff:ffff:ffff:ffff:ffff:ffff"),
    ("2001:1ff:ffff:ffff:ffff:ffff:ffff:ffff", "2001:200::"),
    ("2001:db8::", "2001:db7:ffff:ffff:ffff:ffff:ffff:ffff"),
    ("2001:db8:ffff:ffff:ffff:ffff:ffff:ffff", "2001:db9::"),
    ("2002:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "2003::"),
    ("3fff:fff:ffff:ffff:ffff:ffff:ffff:ffff", "3fff:1000::"),
    ("1fff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "2000::"),
    ("4000::", "3fff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"),
]


@pytest.mark.parametrize("inside,outside", EDGES)
def test_special_range_edges(inside, outside):
    assert classify(inside).status == "skipped"
    assert classify(outside).status == "ok"


@pytest.mark.parametrize("address,words", [
    ("0.0.0.0", "unspecified"), ("10.1.2.3", "private"), ("100.64.1.1", "carrier-grade NAT"),
    ("127.0.0.1", "loopback"), ("169.254.169.254", "link-local"), ("192.0.0.9", "IETF"),
    ("192.88.99.1", "6to4 relay"), ("198.18.0.1", "benchmarking"), ("224.0.0.251", "multicast"),
    ("240.0.0.1", "reserved"), ("255.255.255.255", "broadcast"), ("192.0.2.1", "documentation"),
    ("::", "unspecified"), ("::1", "loopback"), ("64:ff9b:1::1", "local-use NAT64"),
    ("100::1", "discard-only"), ("2001::1", "Teredo"), ("2001:2::1", "benchmarking"),
    ("2001:10::1", "ORCHID"), ("2001:20::1", "ORCHIDv2"), ("2001:db8::1", "documentation"),
    ("2002:c000:204::1", "6to4"), ("3fff::1", "documentation"), ("fd00::1", "unique local"),
    ("fe80::1", "link-local"), ("fec0::1", "site-local"), ("ff02::1", "multicast"),
    ("5f00::1", "SRv6"), ("::ffff:0:1.2.3.4", "reserved"),
])
def test_skip_reasons(address, words):
    result = classify(address)
    assert result.status == "skipped" and words in result.reason, result


def test_module_never_uses_ipaddress_global_flags():
    source = open(indicators.__file__, encoding="utf-8").read()
    for flag in ("is_private", "is_global", "is_reserved", "is_loopback", "is_link_local"):
        assert "." + flag not in source          # the docstring may name them


# ---- documentation ranges and names: only with a loopback API -----------------------------
DOCUMENTATION = ["192.0.2.1", "198.51.100.7", "203.0.113.200", "2001:db8::1", "3fff::42",
                 "example.com", "www.example.net", "example.org", "foo.example", "bar.test",
                 "bücher.example", "[2001:db8::1]:443", "http://203.0.113.5/x"]
NEVER_ALLOWED = ["10.0.0.1", "127.0.0.1", "::1", "fd00::1", "localhost", "db.internal",
                 "foo.invalid", "abc.onion", "::ffff:192.168.0.1", "100.64.0.1"]


@pytest.mark.parametrize("raw", DOCUMENTATION)
def test_documentation_allowed_only_by_policy(raw):
    assert classify(raw).status == "skipped"
    assert classify(raw, policy=DOCS).status == "ok"


@pytest.mark.parametrize("raw", NEVER_ALLOWED)
def test_private_never_allowed_even_with_documentation(raw):
    assert classify(raw, policy=DOCS).status == "skipped"


@pytest.mark.parametrize("url,allowed", [
    ("https://www.virustotal.com/api/v3", False),
    ("http://127.0.0.1:8080/api/v3", True),
    ("http://127.1.2.3/api/v3", True),
    ("http://[::1]:9000/api/v3", True),
    ("http://localhost:8080/api/v3", True),
    ("http://LOCALHOST/", True),
    ("http://localhost.evil.com/", False),
    ("http://127.0.0.1.evil.com/", False),
    ("http://127.0.0.1@evil.com/", False),
    ("http://evil.com/?127.0.0.1", False),
    ("http://10.0.0.5:8080/", False),
    ("http://[::ffff:127.0.0.1]/", False),
    ("", False), (None, False), ("not a url", False), ("http://[::1/", False),
])
def test_for_api_url(url, allowed):
    policy = IndicatorPolicy.for_api_url(url, never_send=["*.acmewidgets.com"])
    assert policy.allow_documentation is allowed
    assert classify("192.0.2.1", policy=policy).status == ("ok" if allowed else "skipped")
    assert classify("x.acmewidgets.com", policy=policy).status == "skipped"


# ---- never-send list ----------------------------------------------------------------------
NEVER_SEND = ["*.corp.acmewidgets.com", "secret.acmewidgets.com", ".vpn.acmewidgets.net",
              "*.BÜCHER.de", "Acme.LOCAL", "198.51.100.0/25", "2001:4860:4860::8844",
              "8.8.4.0/24"]


@pytest.mark.parametrize("raw,status", [
    ("corp.acmewidgets.com", "skipped"),            # *. matches the name itself
    ("mail.corp.acmewidgets.com", "skipped"),
    ("a.b.CORP.acmewidgets.com.", "skipped"),
    ("hxxps://x.corp.acmewidgets[.]com/login", "skipped"),
    ("xcorp.acmewidgets.com", "ok"),                 # a suffix of a label is not a subdomain
    ("acmewidgets.com", "ok"),
    ("secret.acmewidgets.com", "skipped"),           # exact name
    ("SECRET.acmewidgets.com", "skipped"),
    ("x.secret.acmewidgets.com", "ok"),              # exact patterns do not cover subdomains
    ("vpn.acmewidgets.net", "skipped"),              # leading dot works like *.
    ("a.vpn.acmewidgets.net", "skipped"),
    ("bücher.de", "skipped"),                        # IDN pattern normalized like values
    ("shop.xn--bcher-kva.de", "skipped"),
    ("8.8.4.4", "skipped"),
    ("http://[::ffff:8.8.4.4]/", "skipped"),
    ("8.8.8.8", "ok"),
    ("2001:4860:4860:0::8844", "skipped"),
    ("2001:4860:4860::8888", "ok"),
])
def test_never_send_patterns(raw, status):
    policy = IndicatorPolicy(NEVER_SEND)
    result = classify(raw, policy=policy)
    assert result.status == status, result
    if status == "skipped":
        assert "never-send" in result.reason


def test_never_send_wins_over_documentation_allowance():
    policy = IndicatorPolicy(NEVER_SEND, allow_documentation=True)
    assert classify("198.51.100.1", policy=policy).status == "skipped"
    assert classify("198.51.100.200", policy=policy).status == "ok"
    assert classify("x.example.com", policy=IndicatorPolicy(["*.example.com"], True)).status \
        == "skipped"


def test_unusable_patterns_are_reported_not_fatal():
    policy = IndicatorPolicy(["", "   ", "a.*.com", "ev!l.com", "1.2.3.4/99", None,
                              "ok.acmewidgets.com"])
    assert policy.never_send == ("ok.acmewidgets.com",)
    assert len(policy.ignored_patterns) == 6
    assert all(reason for _, reason in policy.ignored_patterns)


def test_shipped_never_send_file():
    path = os.path.join(REPO, "lookups", "vtpivot_never_send.csv")
    with open(path, encoding="utf-8", newline="") as handle:
        assert handle.readline().strip() == "pattern,comment"
    policy = IndicatorPolicy.from_files(REPO)
    assert set(policy.never_send) == {"*.corp.example.com", "*.internal", "*.local"}
    assert policy.ignored_patterns == ()
    assert classify("vpn.corp.example.com", policy=policy).reason.startswith("on the never")


def test_never_send_file_tolerates_odd_content(tmp_path):
    path = tmp_path / "never.csv"
    path.write_bytes(
        b"\xef\xbb\xbfcomment,Pattern\r\n"            # BOM, other column order, CRLF
        b"first,*.one.acmewidgets.com\r\n"
        b"\r\n"                                        # blank row
        b"short\r\n"                                   # missing column
        b"x,two.acmewidgets.com,extra,cells\r\n"
        b"x,# three.acmewidgets.com\r\n"               # comment row
        b"x,\"  four.acmewidgets.com  \"\r\n"
        b"x,fi\x00ve.acmewidgets.com\r\n"              # NUL byte
        b"x,\xffbad-utf8.acmewidgets.com\r\n")
    patterns = read_never_send_file(str(path))
    assert patterns[:4] == ["*.one.acmewidgets.com", "two.acmewidgets.com",
                            "four.acmewidgets.com", "five.acmewidgets.com"]
    policy = IndicatorPolicy(patterns)
    assert classify("a.one.acmewidgets.com", policy=policy).status == "skipped"
    assert classify("five.acmewidgets.com", policy=policy).status == "skipped"
    assert classify("three.acmewidgets.com", policy=policy).status == "ok"


def test_never_send_file_without_header_and_missing(tmp_path):
    path = tmp_path / "never.csv"
    path.write_text("*.a.acmewidgets.com,comment\nb.acmewidgets.com\n", encoding="utf-8")
    assert read_never_send_file(str(path)) == ["*.a.acmewidgets.com", "b.acmewidgets.com"]
    assert read_never_send_file(str(tmp_path / "absent.csv")) == []
    assert read_never_send_file(str(tmp_path)) == []              # a directory
    assert IndicatorPolicy.from_files(str(tmp_path)).never_send == ()


def test_from_settings(tmp_path):
    (tmp_path / "lookups").mkdir()
    (tmp_path / "lookups" / "vtpivot_never_send.csv").write_text(
        "pattern,comment\n*.file.acmewidgets.com,from the lookup\n", encoding="utf-8")
    settings = types.SimpleNamespace(never_send_domains=" *.conf.acmewidgets.com, x.acme.io ,,",
                                     api_url="https://www.virustotal.com/api/v3")
    policy = IndicatorPolicy.from_settings(settings, app_root=str(tmp_path))
    assert set(policy.never_send) == {"*.file.acmewidgets.com", "*.conf.acmewidgets.com",
                                      "x.acme.io"}
    assert policy.allow_documentation is False
    local = types.SimpleNamespace(never_send_domains="", api_url="http://127.0.0.1:8999/api/v3")
    assert IndicatorPolicy.from_settings(local, app_root=str(tmp_path)).allow_documentation


# ---- expected kinds -----------------------------------------------------------------------
@pytest.mark.parametrize("raw,expected,status,value_or_reason", [
    ("https://user@Sub.Evil.com:8443/p?q", "domain", "ok", "sub.evil.com"),
    ("evil[.]com", "domain", "ok", "evil.com"),
    ("8.8.8.8", "domain", "invalid", "an IP address: use vt_ip"),
    ("http://8.8.8.8/x", "domain", "invalid", "an IP address: use vt_ip"),
    ("10.0.0.1", "domain", "invalid", "an IP address: use vt_ip"),
    (MD5, "domain", "invalid", "a file hash: use vt_hash"),
    ("localhost", "domain", "skipped", "loopback name (localhost)"),
    ("8.8.8.8", "ip", "ok", "8.8.8.8"),
    ("http://[2001:4860::8888]:80/", "ip", "ok", "2001:4860::8888"),
    ("evil.com", "ip", "invalid", "a domain name: use vt_domain"),
    ("http://evil.com/", "ip", "invalid", "a domain name: use vt_domain"),
    (SHA1, "ip", "invalid", "a file hash: use vt_hash"),
    ("10.0.0.1", "ip", "skipped", "private address (10.0.0.0/8)"),
    (SHA256.upper(), "hash", "ok", SHA256),
    ("evil.com", "hash", "invalid", "not an md5, sha1 or sha256 hash"),
    ("8.8.8.8", "hash", "invalid", "not an md5, sha1 or sha256 hash"),
    ("abcd", "hash", "invalid", "not an md5, sha1 or sha256 hash (4 hex digits"),
    ("", "hash", "invalid", "empty value"),
    ("x" * 3000, "hash", "invalid", "value too long (3000 characters)"),
])
def test_expected_kind(raw, expected, status, value_or_reason):
    result = classify(raw, expected)
    assert result.status == status, result
    if status == "ok":
        assert (result.kind, result.value) == (expected, value_or_reason)
    else:
        assert value_or_reason in result.reason


def test_unknown_expected_kind_is_a_programming_error():
    with pytest.raises(ValueError):
        classify("evil.com", "url")


# ---- helpers ------------------------------------------------------------------------------
def test_vt_link_and_collection():
    assert vt_link(classify("Evil[.]com")) == "https://www.virustotal.com/gui/domain/evil.com"
    assert vt_link(classify("[2001:4860::8888]")) == \
        "https://www.virustotal.com/gui/ip-address/2001:4860::8888"
    assert vt_link(classify("8.8.8.8")) == "https://www.virustotal.com/gui/ip-address/8.8.8.8"
    assert vt_link(classify(MD5.upper())) == f"https://www.virustotal.com/gui/file/{MD5}"
    # A link to a skipped value would leak it the moment someone clicks it.
    assert vt_link(classify("10.0.0.1")) == ""
    assert vt_link(classify("nonsense value")) == ""
    assert [collection_for(k) for k in indicators.KINDS] == ["domains", "ip_addresses", "files"]
    with pytest.raises(ValueError):
        collection_for("url")


def test_indicator_is_frozen():
    result = classify("evil.com")
    with pytest.raises(Exception):
        result.value = "other.com"
    assert result == Indicator("evil.com", "domain", "evil.com", "ok", "", "")
    assert classify("evil.com", policy=DEFAULT_POLICY) == result


def test_plain_values_do_not_import_heavy_modules():
    code = (
        "import sys; sys.path[:0] = [%r, %r]\n"
        "from vtpivot_app.indicators import classify\n"
        "for v in ('evil.com', '8.8.8.8', 'hxxp://a[.]b.com/', '[::1]', %r):\n"
        "    classify(v)\n"
        "print(sorted(m for m in ('idna', 'requests', 'urllib3', 'splunklib') if m in sys.modules))\n"
        "classify('münchen.de'); print('idna' in sys.modules)\n"
    ) % (os.path.join(REPO, "lib"), os.path.join(REPO, "bin"), MD5)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split("\n")[:2] == ["[]", "True"]


# ---- same answers on Python 3.9 and 3.13 --------------------------------------------------
PYENV_ROOT = os.environ.get("PYENV_ROOT", os.path.expanduser("~/.pyenv"))
INTERPRETERS = {v: os.path.join(PYENV_ROOT, "versions", v, "bin", "python")
                for v in ("3.9.18", "3.13.0")}


def test_same_answers_on_python_39_and_313():
    missing = [f"{v} ({path})" for v, path in INTERPRETERS.items() if not os.path.exists(path)]
    if missing:
        pytest.skip("interpreter missing, cross-version check not run: " + ", ".join(missing))
    outputs = {}
    for version, python in INTERPRETERS.items():
        run = subprocess.run([python, os.path.join(HERE, "indicator_corpus.py")],
                             capture_output=True, check=True, env={"PATH": os.environ["PATH"]})
        outputs[version] = run.stdout
    corpus = json.loads(outputs["3.9.18"])
    assert len(corpus) >= 250
    assert outputs["3.9.18"] == outputs["3.13.0"]


# ---- properties ---------------------------------------------------------------------------
# An oracle written apart from the module's table, from the IANA special-purpose registries
# (entries not globally reachable) plus the ranges this app refuses on purpose.
ORACLE_V4 = [ipaddress.ip_network(n) for n in (
    "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16",
    "172.16.0.0/12", "192.0.0.0/24", "192.0.2.0/24", "192.88.99.0/24", "192.168.0.0/16",
    "198.18.0.0/15", "198.51.100.0/24", "203.0.113.0/24", "224.0.0.0/4", "240.0.0.0/4",
    "255.255.255.255/32")]
ORACLE_V6 = [ipaddress.ip_network(n) for n in (
    "::1/128", "::/128", "::ffff:0:0/96", "64:ff9b:1::/48", "100::/64", "2001::/23",
    "2001:db8::/32", "2002::/16", "3fff::/20", "fc00::/7", "fe80::/10", "ff00::/8")]
GLOBAL_UNICAST = ipaddress.ip_network("2000::/3")
PRIVATE_V4 = [ipaddress.ip_network(n) for n in (
    "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "127.0.0.0/8", "169.254.0.0/16",
    "100.64.0.0/10")]
PRIVATE_V6 = [ipaddress.ip_network(n) for n in ("fc00::/7", "fe80::/10", "::1/128")]
INTERNAL_SUFFIXES = ("local", "localhost", "internal", "intranet", "corp", "home", "lan",
                     "home.arpa", "private", "test", "invalid", "example", "onion", "alt",
                     "in-addr.arpa", "ip6.arpa", "example.com", "example.net", "example.org")
PROPERTY_NEVER_SEND = ["*.corp.acmewidgets.com", "secret.acmewidgets.com"]


def oracle_special(address):
    """True when the address must never be sent (documentation ranges included)."""
    if address.version == 6:
        if address.ipv4_mapped is not None:
            return oracle_special(address.ipv4_mapped)
        if address not in GLOBAL_UNICAST:
            return True
        return any(address in net for net in ORACLE_V6)
    return any(address in net for net in ORACLE_V4)


def on_internal_or_never_send(name):
    def under(suffix):
        return name == suffix or name.endswith("." + suffix)
    return (any(under(s) for s in INTERNAL_SUFFIXES) or under("corp.acmewidgets.com")
            or name == "secret.acmewidgets.com")


PROPERTY_SETTINGS = settings(max_examples=400, deadline=None,
                             suppress_health_check=[HealthCheck.too_slow])
# Text built from the pieces that matter to the parser (tokens, not single characters).
INDICATORISH = st.lists(st.sampled_from(
    list("abcdefxyz0123456789.:-_/[](){}@%\\ '\"<>?#*") +
    ["hxxp", "dot", "::", "ffff", "xn--", "ü", "\u3002", "\x00", "\t", "\u200d", "\ud800",
     "http://", "[.]", "64:ff9b::", ".com", ".local", "10.", "127.0.0.1", "fe80::", "%25"]),
    max_size=40).map("".join)


@PROPERTY_SETTINGS
@given(raw=st.one_of(st.text(), INDICATORISH),
       kind=st.sampled_from([None, "domain", "ip", "hash"]),
       docs=st.booleans())
def test_classify_never_raises(raw, kind, docs):
    result = classify(raw, kind, DOCS if docs else DEFAULT_POLICY)
    assert result.status in ("ok", "invalid", "skipped")
    assert result.query is raw
    if result.status == "invalid":
        assert result.kind == result.value == "" and result.reason
    else:
        assert result.kind in indicators.KINDS and result.value
        assert result.value.isascii() and result.value == result.value.lower()


def _check_ok_ip_is_public(result):
    if result.status == "ok" and result.kind == "ip":
        assert not oracle_special(ipaddress.ip_address(result.value)), result


@PROPERTY_SETTINGS
@given(address=st.one_of(st.ip_addresses(v=4), st.ip_addresses(v=6)))
def test_ip_verdict_matches_independent_oracle(address):
    result = classify(str(address))
    _check_ok_ip_is_public(result)
    if address.version == 6 and (int(address) >> 32) == 0x0064FF9B << 64:
        address = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)   # NAT64: its v4 host
    assert result.status == ("skipped" if oracle_special(address) else "ok"), result


@PROPERTY_SETTINGS
@given(raw=INDICATORISH)
def test_ok_ip_never_in_a_special_range_for_any_text(raw):
    _check_ok_ip_is_public(classify(raw))
    _check_ok_ip_is_public(classify(raw, "ip"))


LABEL = st.from_regex(r"[a-z0-9_][a-z0-9_-]{0,8}", fullmatch=True)
NAME_SUFFIX = st.sampled_from(INTERNAL_SUFFIXES + (
    "corp.acmewidgets.com", "secret.acmewidgets.com", "acmewidgets.com", "com", "de",
    "xn--p1ai", "co.uk", "localhost.com", "example.com.evil.net"))


@PROPERTY_SETTINGS
@given(labels=st.lists(LABEL, max_size=3), suffix=NAME_SUFFIX,
       style=st.sampled_from(["plain", "upper", "dot", "url", "defanged", "port"]))
def test_ok_domain_never_internal_or_never_send(labels, suffix, style):
    name = ".".join(labels + [suffix])
    raw = {"plain": name, "upper": name.upper(), "dot": name + ".",
           "url": f"https://u@{name}:8443/p?q", "defanged": name.replace(".", "[.]"),
           "port": f"{name}:80"}[style]
    policy = IndicatorPolicy(PROPERTY_NEVER_SEND)
    result = classify(raw, policy=policy)
    if result.status == "ok":
        assert result.kind == "domain"
        assert not on_internal_or_never_send(result.value), result
    if on_internal_or_never_send(name) and result.kind == "domain":
        assert result.status == "skipped", result


def _in(networks):
    return st.sampled_from(networks).flatmap(
        lambda net: st.integers(int(net.network_address), int(net.broadcast_address))
        .map(lambda n: ipaddress.ip_address(n) if net.version == 4 else ipaddress.IPv6Address(n)))


@PROPERTY_SETTINGS
@given(address=st.one_of(_in(PRIVATE_V4), _in(PRIVATE_V6)),
       port=st.integers(0, 65535),
       form=st.sampled_from(["plain", "url", "url_port", "brackets", "defanged", "mapped",
                             "userinfo", "upper", "trailing_dot", "quoted", "nat64", "exploded"]),
       kind=st.sampled_from([None, "ip"]),
       docs=st.booleans())
def test_private_addresses_in_any_wrapping_are_never_ok(address, port, form, kind, docs):
    text = str(address)
    host = f"[{text}]" if address.version == 6 else text
    if form in ("mapped", "nat64") and address.version == 4:
        prefix = "::ffff:" if form == "mapped" else "64:ff9b::"
        text, host = prefix + text, f"[{prefix}{text}]"
    raw = {"plain": text, "url": f"http://{host}/x", "url_port": f"https://{host}:{port}/",
           "brackets": f"[{text}]:{port}" if address.version == 6 else host,
           "defanged": "hxxp://" + host.replace(".", "[.]") + "/",
           "mapped": text, "nat64": text, "userinfo": f"ftp://u:p@{host}:{port}",
           "upper": text.upper(), "trailing_dot": text + ".", "quoted": f"'{text}'",
           "exploded": address.exploded}[form]
    result = classify(raw, kind, DOCS if docs else DEFAULT_POLICY)
    assert result.status != "ok", (raw, result)


def test_benchmarking_range_is_test_only_space_like_documentation():
    # The synthetic benchmark datasets use 198.18.0.0/15 addresses against a loopback server.
    loopback = IndicatorPolicy.for_api_url("http://127.0.0.1:8080/api/v3")
    public = IndicatorPolicy.for_api_url("https://www.virustotal.com/api/v3")
    assert classify("198.18.3.4", "ip", loopback).status == "ok"
    skipped = classify("198.18.3.4", "ip", public)
    assert skipped.status == "skipped" and "benchmarking" in skipped.reason


# ---- classify's fast path == its full path -------------------------------------------------
_FAST_LABEL = st.from_regex(r"[a-z0-9_-]{1,8}|[a-z0-9]{60,66}|xn--[a-z0-9]{1,6}", fullmatch=True)
_FAST_TLD = st.sampled_from(["com", "de", "io", "c", "co.uk", "xn--p1ai", "local", "test",
                             "example.com", "onion", "com1", "1com", "a" * 63, "a" * 64])
# Plain values, then near-misses: one edit that the fast path must decline or must agree on.
_FAST_NAME = st.builds(lambda labels, tld: ".".join(labels + [tld]),
                       st.lists(_FAST_LABEL, max_size=5), _FAST_TLD)
_FAST_IPV4 = st.one_of(
    st.ip_addresses(v=4).map(str),
    st.lists(st.sampled_from(["0", "00", "01", "1", "9", "10", "99", "100", "199", "249",
                              "250", "255", "256", "300", "1000", ""]), min_size=3,
             max_size=5).map(".".join))
_FAST_HASH = st.one_of(
    st.sampled_from([MD5, SHA1, SHA256, MD5.upper(), SHA1.upper(), SHA256[:63],
                     SHA256 + "0", MD5[:31] + "g"]),
    st.from_regex(r"[0-9a-fA-F]{30,66}", fullmatch=True))
_FAST_EDITS = st.sampled_from(["", "upper", "dot", "lead_dot", "space", "quote", "hyphen",
                               "double_dot", "port", "slash", "defang", "hxxp", "long",
                               "unicode", "nul"])


def _edit(value, edit):
    return {"": value, "upper": value.upper(), "dot": value + ".", "lead_dot": "." + value,
            "space": value + " ", "quote": f"'{value}'", "hyphen": "-" + value,
            "double_dot": value.replace(".", "..", 1), "port": value + ":80",
            "slash": value + "/x", "defang": value.replace(".", "[.]", 1),
            "hxxp": "hxxp" + value, "long": ("a" * 62 + ".") * 4 + value,
            "unicode": value + "\u00e9", "nul": value + "\udc00"}[edit]


@PROPERTY_SETTINGS
@given(value=st.one_of(_FAST_NAME, _FAST_IPV4, _FAST_HASH, INDICATORISH), edit=_FAST_EDITS,
       kind=st.sampled_from([None, "domain", "ip", "hash"]),
       policy=st.sampled_from([DEFAULT_POLICY, DOCS, IndicatorPolicy(PROPERTY_NEVER_SEND + [
           "*.com1", "blocked.de", "203.0.113.0/24", "8.8.8.8"])]))
def test_fast_path_matches_full_path(value, edit, kind, policy):
    raw = _edit(value, edit)
    assert classify(raw, kind, policy) == indicators._classify_full(raw, kind, policy)


# ---- _judge_domain's one walk == the never-send list, then the special-use names ----------

def judge_in_two_walks(raw, name, policy):
    """_judge_domain as first written: policy.never_send_domain, then its own walk over the
    special-use names (the oracle of the single walk)."""
    pattern = policy.never_send_domain(name)
    if pattern:
        return indicators.Indicator(raw, "domain", name, "skipped",
                                    f"on the never-send list ({pattern})", "")
    suffix = name
    while True:
        hit = indicators._RESERVED_NAMES.get(suffix)
        if hit:
            reason, documentation = hit
            if documentation and policy.allow_documentation:
                break
            return indicators.Indicator(raw, "domain", name, "skipped", reason, "")
        dot = suffix.find(".")
        if dot < 0:
            break
        suffix = suffix[dot + 1:]
    return None


LABELS = st.sampled_from(["a", "corp", "example", "test", "local", "internal", "localhost",
                          "invalid", "com", "onion", "arpa", "in-addr", "home", "lan"])
NAMES = st.lists(LABELS, min_size=1, max_size=4).map(".".join)


@settings(max_examples=400, deadline=None)
@given(name=NAMES, exact=st.lists(NAMES, max_size=3), wild=st.lists(NAMES, max_size=3),
       documentation=st.booleans())
def test_one_walk_judges_as_the_two_walks(name, exact, wild, documentation):
    policy = indicators.IndicatorPolicy(exact + ["*." + w for w in wild],
                                        allow_documentation=documentation)
    got = indicators._judge_domain(name, name, policy)
    expected = judge_in_two_walks(name, name, policy)
    if expected is not None:
        assert got == expected
    else:  # neither table names it: what follows (FQDN and TLD checks) is shared code
        assert got.status != "skipped", got
