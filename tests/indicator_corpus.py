"""Classify a fixed corpus of tricky values and print the answers as JSON.

tests/test_indicators.py runs this under Python 3.9 and 3.13 and asserts identical output:
classification must not depend on the interpreter (ipaddress and unicodedata differ).
Standalone on purpose (no pytest): it puts bin/ and lib/ on sys.path itself.
"""
import ipaddress
import json
import os
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [os.path.join(REPO, "lib"), os.path.join(REPO, "bin")]

from vtpivot_app.indicators import IndicatorPolicy, classify  # noqa: E402

HAND_PICKED = [
    "", " ", "example.com", "EXAMPLE.COM.", "evil.com", "Evil.COM..", " 'evil.com' ", '"evil.com"',
    "<evil.com>", "\ufeffevil.com", "evil[.]com", "evil(.)com", "evil{.}com", "evil[dot]com",
    "evil(dot)com", "evil dot com", "evil [ . ] com", "evil\\.com", "hxxp://evil[.]com/a",
    "hXXps[:]//evil[.]com", "hxxps[://]evil.com", "h**p://evil.com", "h[xx]p://evil.com",
    "fxp://files.evil.com/x", "sfxp://files.evil.com", "user[@]evil.com", "hxxpcorp.com",
    "https://user:pw@Sub.Example.com:8443/path?q=1#f", "https://user@sub.evil.org:8443/p?q",
    "http://evil.com\\@good.com/", "//cdn.evil.net/x.js", "evil.com/login.php", "evil.com:443",
    "evil.com:", "evil.com:99999", "evil.com:8o", "http://", "http:///path", "http://:80/",
    "http://1.2.3.4/", "http://1.2.3.4:8080/x", "http://[2001:4860::8888]:443/",
    "[2001:4860::8888]", "[2001:4860::8888]:53", "[2001:4860::8888", "[1.2.3.4]", "[evil.com]",
    "[]", "[2001:4860::8888]x", "2001:4860::8888", "2001:4860:0:0:0:0:0:8888", "2001:4860::8888%eth0",
    "[fe80::1%25eth0]", "2001:4860:::8888", "2001:4860::88888", "1:2:3:4:5:6:7:8:9",
    "::ffff:8.8.8.8", "::ffff:10.0.0.1", "::FFFF:192.168.1.1", "[::ffff:127.0.0.1]:80",
    "::ffff:808:808", "64:ff9b::8.8.8.8", "64:ff9b::10.1.1.1", "64:ff9b::c0a8:101",
    "64:ff9b:1::8.8.8.8", "::8.8.8.8", "::ffff:0:8.8.8.8", "::", "::1", "0.0.0.0",
    "255.255.255.255", "1.2.3", "1.2.3.4.5", "01.2.3.4", "1.2.3.04", "256.1.1.1", "1.2.3.4.",
    "2130706433", "0x7f.0.0.1", "1.2.3.4/32", "10.0.0.0/8", "2001:db8::/32", "evil.com/24",
    "foo.123", "münchen.de", "MÜNCHEN.DE", "xn--mnchen-3ya.de", "bücher.example", "i\u2764.ws",
    "\u4f8b\u3048.\u30c6\u30b9\u30c8", "example\u3002com", "\uff45\uff56\uff49\uff4c.com",
    "\uff11.\uff12.\uff13.\uff14", "fa\u00df.de", "\u0440\u0443\u0441.\u0440\u0444",
    "xn--zz.com", "xn--.com", "ex\u200dample.com", "evil\u202ecom.exe", "a_b.evil.com",
    "_dmarc.google.com", "-bad.com", "bad-.com", "a..b.com", ".evil.com", "evil.c_m", "evil.c",
    "evil.co1", "a" * 63 + ".com", "a" * 64 + ".com", ".".join(["a" * 63] * 4),
    ".".join(["a" * 61] * 4) + ".com", "localhost", "LOCALHOST.", "intranet", "corp",
    "fileserver", "printer.local", "db.internal", "wiki.intranet", "x.corp", "nas.home",
    "pc.lan", "host.private", "router.home.arpa", "4.3.2.1.in-addr.arpa", "x.ip6.arpa",
    "abc.onion", "name.alt", "foo.invalid", "foo.test", "foo.example", "example.net",
    "www.example.org", "notexample.com", "example.com.evil.com", "localhost.evil.com",
    "mail.corp.acmewidgets.com", "corp.acmewidgets.com", "secret.acmewidgets.com",
    "x.secret.acmewidgets.com", "acmewidgets.com", "203.0.113.77", "198.51.100.1",
    "192.0.2.255", "d41d8cd98f00b204e9800998ecf8427e", "D41D8CD98F00B204E9800998ECF8427E",
    "da39a3ee5e6b4b0d3255bfef95601890afd80709",
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b85", "deadbeef",
    "deadbeefdeadbeef", "abc", "g" * 32, "a\x00b.com", "evil.com\x00", "a\tb.com", "evil.com\n",
    "evil.com\r\n", "a\x7fb.com", "a\x85b.com", "ex ample.com", "ex\u00a0ample.com", "\ud800.com",
    "x" * 2048, "x" * 2049, "a@b.c", "mailto:a@evil.com", "ftp://1.1.1.1", "tel:123",
]

# Edges of special ranges: the first and last address, and the neighbours just outside.
EDGE_NETWORKS = [
    "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16",
    "172.16.0.0/12", "192.0.0.0/24", "192.0.2.0/24", "192.88.99.0/24", "192.168.0.0/16",
    "198.18.0.0/15", "198.51.100.0/24", "203.0.113.0/24", "224.0.0.0/4", "240.0.0.0/4",
    "64:ff9b:1::/48", "100::/64", "2001::/23", "2001:db8::/32", "2002::/16", "3fff::/20",
    "fc00::/7", "fe80::/10", "ff00::/8", "2000::/3",
]


def corpus():
    values = list(HAND_PICKED)
    for cidr in EDGE_NETWORKS:
        net = ipaddress.ip_network(cidr)
        first, last = int(net.network_address), int(net.broadcast_address)
        top = (1 << net.max_prefixlen) - 1
        for number in (first - 1, first, last, last + 1):
            if 0 <= number <= top:
                values.append(str(ipaddress.ip_address(number)) if net.version == 4
                              else ipaddress.IPv6Address(number).exploded)
    return values


def main():
    never_send = ["*.corp.acmewidgets.com", "secret.acmewidgets.com", "*.bücher.de",
                  "198.51.100.0/25", "2001:4860:4860::8844"]
    modes = {
        "default": (None, IndicatorPolicy()),
        "docs": (None, IndicatorPolicy(never_send, allow_documentation=True)),
        "never_send": (None, IndicatorPolicy(never_send)),
        "domain": ("domain", IndicatorPolicy()),
        "ip": ("ip", IndicatorPolicy()),
        "hash": ("hash", IndicatorPolicy()),
    }
    out = []
    for value in corpus():
        row = {"input": value}
        for mode, (kind, policy) in modes.items():
            r = classify(value, kind, policy)
            row[mode] = [r.kind, r.value, r.status, r.reason, r.hash_type]
        out.append(row)
    json.dump(out, sys.stdout, ensure_ascii=True, indent=0, sort_keys=True)


if __name__ == "__main__":
    main()
