"""Build realistic VT objects by deriving them from real captures (data/real/).

Every builder deep-copies a real object (google.com, 8.8.8.8, a github.com communicating
file), keeps its key order and nested shapes, and replaces the fields that carry meaning:
verdicts (a full last_analysis_results map consistent with last_analysis_stats), dates,
registrar, certificate issuer, DNS records, ASN, hashes, threat label... Everything is
deterministic: randomness comes from random.Random seeded by the object's id.
"""

import calendar
import copy
import hashlib
import json
import os
import random
import time

DATA_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")
REAL_DIR = os.path.join(DATA_DIR, "real")

_TEMPLATES = {}


def _load(name):
    if name not in _TEMPLATES:
        with open(os.path.join(REAL_DIR, name), encoding="utf-8") as fh:
            _TEMPLATES[name] = json.load(fh)
    return _TEMPLATES[name]


def domain_template():
    return _load("domain_google.com_2026.json")["data"]


def ip_template():
    return _load("ip_8.8.8.8_2026.json")["data"]


def file_template():
    return _load("relationships_domain_communicating_files_github.com_2019.json")["data"][0]


def ts(text):
    """'2026-09-02' or '2026-09-02T10:11:12' (UTC) -> epoch seconds."""
    fmt = "%Y-%m-%dT%H:%M:%S" if "T" in text else "%Y-%m-%d"
    return calendar.timegm(time.strptime(text, fmt))


def iso(epoch, style="Z"):
    t = time.gmtime(int(epoch))
    if style == "Z":
        return time.strftime("%Y-%m-%dT%H:%M:%SZ", t)
    if style == "rdap":
        return time.strftime("%Y-%m-%dT%H:%M:%S.000+00:00", t)
    if style == "cert":
        return time.strftime("%Y-%m-%d %H:%M:%S", t)
    return time.strftime("%Y-%m-%d", t)


def rng_for(*parts):
    digest = hashlib.sha256("|".join(str(p) for p in parts).encode("utf-8")).hexdigest()
    return random.Random(int(digest[:16], 16))


def hexstr(rng, n):
    return "".join(rng.choice("0123456789abcdef") for _ in range(n))


def hashes_for(key):
    """A consistent (md5, sha1, sha256) triple for a synthetic file named by `key`."""
    raw = ("fakevt-file|%s" % key).encode("utf-8")
    return (hashlib.md5(raw).hexdigest(), hashlib.sha1(raw).hexdigest(),
            hashlib.sha256(raw).hexdigest())


# -- verdicts --------------------------------------------------------------------------------

def network_results(template_results, malicious, suspicious, rng, bad="phishing",
                    harmless_ratio=0.6):
    """A full URL-scanner style results map and matching stats (domains and IPs)."""
    engines = list(template_results)
    order = engines[:]
    rng.shuffle(order)
    bad_set = set(order[:malicious])
    sus_set = set(order[malicious:malicious + suspicious])
    rest = [e for e in order if e not in bad_set and e not in sus_set]
    n_harmless = int(round(len(rest) * harmless_ratio))
    harmless_set = set(rest[:n_harmless])
    bad_words = [bad, bad, "malicious", "malware"] if bad != "malicious" else ["malicious"]
    results = {}
    stats = {"malicious": 0, "suspicious": 0, "undetected": 0, "harmless": 0, "timeout": 0}
    for name in engines:                       # keep the template's engine order
        entry = copy.deepcopy(template_results[name])
        if name in bad_set:
            entry["category"], entry["result"] = "malicious", rng.choice(bad_words)
        elif name in sus_set:
            entry["category"], entry["result"] = "suspicious", "suspicious"
        elif name in harmless_set:
            entry["category"], entry["result"] = "harmless", "clean"
        else:
            entry["category"], entry["result"] = "undetected", "unrated"
        stats[entry["category"]] += 1
        results[name] = entry
    return results, stats


_MALWARE_NAME_FORMS = [
    "Trojan.GenericKD.%(n)d", "Trojan:Win32/%(Fam)s!ml", "W32/%(Fam)s.%(L)s!tr",
    "Win32:%(Fam)s-%(L)s [Trj]", "HEUR:Trojan-Spy.Win32.%(Fam)s.gen", "%(Fam)s.Trojan",
    "Gen:Variant.%(Fam)s.%(n2)d", "TrojanSpy.Win32.%(FAM)s.YXE%(L)s",
    "Trojan.Win32.%(Fam)s.4!c", "Malicious (score: %(s)d)", "ML.Attribute.HighConfidence",
    "a variant of Win32/Spy.%(Fam)s.%(L)s", "Trojan ( 005%(h)s )", "Spyware.%(Fam)s",
]


def file_results(template_results, malicious, family, rng, date_tag, unsupported=2):
    engines = list(template_results)
    order = engines[:]
    rng.shuffle(order)
    bad_set = set(order[:malicious])
    unsup_set = set(order[malicious:malicious + unsupported])
    fam = family[:1].upper() + family[1:]
    results = {}
    stats = {"failure": 0, "harmless": 0, "malicious": 0, "suspicious": 0, "timeout": 0,
             "type-unsupported": 0, "undetected": 0}
    for name in engines:
        entry = copy.deepcopy(template_results[name])
        entry["engine_update"] = date_tag
        if name in bad_set:
            form = rng.choice(_MALWARE_NAME_FORMS)
            entry["category"] = "malicious"
            entry["result"] = form % {"n": rng.randint(40000000, 70000000), "Fam": fam,
                                      "FAM": fam.upper(), "L": rng.choice("ABCDEFGH"),
                                      "n2": rng.randint(10000, 99999),
                                      "s": rng.randint(80, 100), "h": hexstr(rng, 5)}
        elif name in unsup_set:
            entry["category"], entry["result"] = "type-unsupported", None
        else:
            entry["category"], entry["result"] = "undetected", None
        stats[entry["category"]] += 1
        results[name] = entry
    return results, stats


# -- certificates ------------------------------------------------------------------------------

ISSUERS = {
    "LE-R10": {"C": "US", "O": "Let's Encrypt", "CN": "R10"},
    "LE-R11": {"C": "US", "O": "Let's Encrypt", "CN": "R11"},
    "DigiCert": {"C": "US", "O": "DigiCert Inc", "CN": "DigiCert Global G2 TLS RSA SHA256 2020 CA1"},
    "Sectigo": {"C": "GB", "ST": "Greater Manchester", "L": "Salford", "O": "Sectigo Limited",
                "CN": "Sectigo RSA Domain Validation Secure Server CA"},
    "GoDaddy": {"C": "US", "ST": "Arizona", "L": "Scottsdale", "O": "GoDaddy.com, Inc.",
                "CN": "Go Daddy Secure Certificate Authority - G2"},
}


def certificate(domain, issuer_key, not_before, rng):
    cert = copy.deepcopy(domain_template()["attributes"]["last_https_certificate"])
    issuer = dict(ISSUERS[issuer_key])
    lets_encrypt = issuer["O"] == "Let's Encrypt"
    days = 90 if lets_encrypt else 395
    cert["cert_signature"]["signature"] = hexstr(rng, len(cert["cert_signature"]["signature"]))
    ext = cert["extensions"]
    ext["subject_key_identifier"] = hexstr(rng, 40)
    ext["authority_key_identifier"] = {"keyid": hexstr(rng, 40)}
    ext["subject_alternative_name"] = [domain, "www." + domain]
    if lets_encrypt:
        cn = issuer["CN"].lower()
        ext["ca_information_access"] = {"CA Issuers": "http://%s.i.lencr.org/" % cn}
        ext["crl_distribution_points"] = ["http://%s.c.lencr.org/%d.crl" % (cn, rng.randint(1, 120))]
        ext["certificate_policies"] = ["2.23.140.1.2.1"]
    else:
        ext["ca_information_access"] = {"CA Issuers": "http://crt.example.net/%s.crt"
                                        % issuer_key.lower()}
        ext["crl_distribution_points"] = ["http://crl.example.net/%s.crl" % issuer_key.lower()]
    ext["1.3.6.1.4.1.11129.2.4.2"] = hexstr(rng, 64)
    cert["validity"] = {"not_after": iso(not_before + days * 86400 - 1, "cert"),
                        "not_before": iso(not_before, "cert")}
    cert["thumbprint_sha256"] = hexstr(rng, 64)
    cert["thumbprint"] = hexstr(rng, 40)
    cert["serial_number"] = hexstr(rng, 36 if lets_encrypt else 32)
    cert["issuer"] = issuer
    cert["subject"] = {"CN": domain}
    return cert


# -- domains ---------------------------------------------------------------------------------

def _whois_text(domain, registrar, created, updated, expires, nameservers, registrant_org,
                country):
    lines = [
        "Creation Date: %s" % iso(created),
        "DNSSEC: unsigned",
        "Domain Name: %s" % domain.upper(),
        "Domain Name: %s" % domain,
        "Domain Status: clientTransferProhibited https://icann.org/epp#clientTransferProhibited",
    ]
    lines += ["Name Server: %s" % ns.upper() for ns in nameservers]
    lines += [
        "Registrant Country: %s" % country,
        "Registrant Organization: %s" % registrant_org,
        "Registrant State/Province: REDACTED FOR PRIVACY",
        "Registrar: %s" % registrar,
        "Registrar Abuse Contact Email: abuse@registrar.example.net",
        "Registrar IANA ID: %d" % (abs(hash_int(registrar)) % 3000 + 100),
        "Registrar Registration Expiration Date: %s" % iso(expires),
        "Registry Domain ID: %d_DOMAIN_EXAMPLE-VRSN" % (abs(hash_int(domain)) % 10 ** 10),
        "Registry Expiry Date: %s" % iso(expires),
        "Updated Date: %s" % iso(updated),
    ]
    return "\n".join(lines)


def hash_int(text):
    return int(hashlib.sha256(text.encode("utf-8")).hexdigest()[:12], 16)


def _rdap(domain, registrar, created, updated, expires, nameservers, registrant_org,
          whois_date):
    rd = copy.deepcopy(domain_template()["attributes"]["rdap"])
    text = json.dumps(rd)
    text = text.replace("GOOGLE.COM", domain.upper()).replace("google.com", domain)
    text = text.replace("Google LLC", registrant_org)
    text = text.replace("MarkMonitor Inc.", registrar).replace("Markmonitor Inc.", registrar)
    rd = json.loads(text)
    rd["handle"] = "%d_DOMAIN_EXAMPLE-VRSN" % (hash_int(domain) % 10 ** 10)
    when = {"registrar expiration": expires + 86400, "expiration": expires,
            "registration": created, "last changed": updated,
            "last update of RDAP database": whois_date}
    for ev in rd["events"]:
        if ev["event_action"] in when:
            ev["event_date"] = iso(when[ev["event_action"]], "rdap")
    template_ns = rd["nameservers"][0]
    rd["nameservers"] = []
    for ns in nameservers:
        entry = copy.deepcopy(template_ns)
        entry["ldh_name"] = ns
        entry["events"][0]["event_date"] = iso(created, "rdap")
        rd["nameservers"].append(entry)
    rd["status"] = ["client transfer prohibited"]
    return rd


def make_domain(name, *, creation_date, last_analysis_date, registrar, malicious=0,
                suspicious=0, bad_result="phishing", categories=None, a_records=(),
                aaaa_records=(), nameservers=None, mx=None, issuer="LE-R11",
                cert_not_before=None, tags=(), reputation=0, total_votes=None,
                registrant_org="REDACTED FOR PRIVACY", country="IS", popularity_ranks=None,
                expiration_date=None, harmless_ratio=0.6, txt=None):
    """A full domain object ({"data": ...}) derived from the real google.com capture."""
    rng = rng_for("domain", name)
    tpl = domain_template()
    data = {"id": name, "type": "domain", "links": copy.deepcopy(tpl["links"]),
            "attributes": copy.deepcopy(tpl["attributes"])}
    data["links"]["self"] = "https://www.virustotal.com/api/v3/domains/%s" % name
    a = data["attributes"]
    lad = int(last_analysis_date)
    created = int(creation_date)
    expires = int(expiration_date or (created + 365 * 86400))
    updated = created + rng.randint(1, 5) * 3600
    nameservers = list(nameservers or ["ns1.%s" % name, "ns2.%s" % name])
    whois_date = lad - rng.randint(2, 20) * 86400
    a["reputation"] = reputation
    a["tld"] = name.rsplit(".", 1)[-1]
    a["tags"] = list(tags)
    a["expiration_date"] = expires
    a["jarm"] = hexstr(rng, 62)
    results, stats = network_results(tpl["attributes"]["last_analysis_results"], malicious,
                                     suspicious, rng, bad_result, harmless_ratio)
    a["last_analysis_stats"] = stats
    a["last_update_date"] = updated
    a["whois_date"] = whois_date
    a["rdap"] = _rdap(name, registrar, created, updated, expires, nameservers,
                      registrant_org, whois_date)
    records = []
    for ip in a_records:
        records.append({"type": "A", "ttl": rng.choice([60, 300, 600, 3600]), "value": ip})
    for ip in aaaa_records:
        records.append({"type": "AAAA", "ttl": 300, "value": ip})
    for ns in nameservers:
        records.append({"type": "NS", "ttl": 21600, "value": ns})
    records.append({"type": "SOA", "ttl": 3600, "value": nameservers[0],
                    "rname": "hostmaster.%s" % name, "serial": int(iso(updated, "d").replace("-", "")) * 100 + 1,
                    "refresh": 10800, "retry": 3600, "expire": 604800, "minimum": 3600})
    for prio, host in (mx or []):
        records.append({"type": "MX", "ttl": 3600, "priority": prio, "value": host})
    for value in (txt or ["v=spf1 -all"]):
        records.append({"type": "TXT", "ttl": 3600, "value": value})
    a["last_dns_records"] = records
    a["whois"] = _whois_text(name, registrar, created, updated, expires, nameservers,
                             registrant_org, country)
    a["total_votes"] = dict(total_votes or {"harmless": 0, "malicious": 0})
    a["last_analysis_date"] = lad
    a["last_analysis_results"] = results
    a["creation_date"] = created
    a["last_dns_records_date"] = lad + 300
    if issuer:
        nb = int(cert_not_before or (lad - rng.randint(5, 60) * 86400))
        a["last_https_certificate"] = certificate(name, issuer, nb, rng)
        a["last_https_certificate_date"] = lad + 300
    else:
        del a["last_https_certificate"]
        del a["last_https_certificate_date"]
    a["categories"] = dict(categories or {})
    if popularity_ranks:
        a["popularity_ranks"] = popularity_ranks
    else:
        a["popularity_ranks"] = {}
    a["last_modification_date"] = lad + 700
    a["registrar"] = registrar
    return {"data": data}


# -- IP addresses ------------------------------------------------------------------------------

def _ip_whois(network, start, end, as_owner, handle, country, asn, reg_date):
    return "\n".join([
        "NetRange: %s - %s" % (start, end),
        "CIDR: %s" % network,
        "NetName: %s" % handle,
        "NetHandle: NET-%s-1" % start.replace(".", "-").replace(":", "-"),
        "NetType: Direct Allocation",
        "OriginAS: AS%d" % asn,
        "Organization: %s (%s)" % (as_owner, handle),
        "RegDate: %s" % iso(reg_date, "d"),
        "Updated: %s" % iso(reg_date + 86400 * 30, "d"),
        "OrgName: %s" % as_owner,
        "OrgId: %s" % handle,
        "Country: %s" % country,
        "OrgAbuseEmail: abuse@%s.example.net" % handle.lower(),
    ])


def make_ip(ip, *, asn, as_owner, country, network, last_analysis_date, malicious=0,
            suspicious=0, bad_result="malicious", continent=None, rir="ARIN", tags=(),
            reputation=0, total_votes=None, crowdsourced_context=None, jarm=True,
            harmless_ratio=0.6):
    """A full ip_address object derived from the real 8.8.8.8 capture."""
    import ipaddress
    rng = rng_for("ip", ip)
    tpl = ip_template()
    data = {"id": ip, "type": "ip_address", "links": copy.deepcopy(tpl["links"]),
            "attributes": copy.deepcopy(tpl["attributes"])}
    data["links"]["self"] = "https://www.virustotal.com/api/v3/ip_addresses/%s" % ip
    a = data["attributes"]
    lad = int(last_analysis_date)
    net = ipaddress.ip_network(network, strict=False)
    start, end = str(net.network_address), str(net.broadcast_address)
    handle = "".join(ch for ch in as_owner.upper() if ch.isalnum())[:8] or "NET"
    results, stats = network_results(tpl["attributes"]["last_analysis_results"], malicious,
                                     suspicious, rng, bad_result, harmless_ratio)
    a["country"] = country
    a["last_analysis_date"] = lad
    del a["last_https_certificate"]
    del a["last_https_certificate_date"]
    a["last_analysis_stats"] = stats
    a["network"] = str(net)
    a["regional_internet_registry"] = rir
    a["tags"] = list(tags)
    a["asn"] = int(asn)
    a["reputation"] = reputation
    if crowdsourced_context:
        a["crowdsourced_context"] = crowdsourced_context
    else:
        del a["crowdsourced_context"]
    reg_date = lad - rng.randint(400, 3000) * 86400
    a["whois"] = _ip_whois(str(net), start, end, as_owner, handle, country, asn, reg_date)
    if jarm:
        a["jarm"] = hexstr(rng, 62)
    else:
        del a["jarm"]
    a["last_modification_date"] = lad + 900
    a["as_owner"] = as_owner
    a["last_analysis_results"] = results
    a["total_votes"] = dict(total_votes or {"harmless": 0, "malicious": 0})
    rd = json.loads(json.dumps(tpl["attributes"]["rdap"])
                    .replace("NET-8-8-8-0-2", "NET-%s-1" % start.replace(".", "-").replace(":", "-"))
                    .replace("8.8.8.0", start).replace("8.8.8.255", end).replace("8.8.8.8", ip)
                    .replace("Google LLC", as_owner).replace("GOGL", handle))
    rd["ip_version"] = "v%d" % net.version
    rd["start_address"], rd["end_address"] = start, end
    rd["name"] = handle
    for ev in rd.get("events", []):
        ev["event_date"] = iso(reg_date, "rdap")
    a["rdap"] = rd
    a["whois_date"] = lad - rng.randint(2, 40) * 86400
    a["continent"] = continent or {"US": "NA", "CA": "NA", "NL": "EU", "DE": "EU",
                                   "FR": "EU", "GB": "EU", "RU": "EU", "LT": "EU",
                                   "SG": "AS", "HK": "AS", "JP": "AS"}.get(country, "EU")
    return {"data": data}


# -- files -------------------------------------------------------------------------------------

def make_file(key, *, first_submission_date, last_analysis_date, malicious=0,
              threat_label=None, threat_categories=(), threat_names=(), size=None,
              type_description="Win32 EXE", type_tag="peexe",
              magic="PE32 executable for MS Windows (GUI) Intel 80386, for MS Windows",
              meaningful_name=None, names=(), tags=("peexe",), reputation=0,
              times_submitted=1, hashes=None):
    """A full file object derived from a real communicating_files item (github.com, 2019)."""
    rng = rng_for("file", key)
    tpl = file_template()
    md5, sha1, sha256 = hashes or hashes_for(key)
    data = {"attributes": copy.deepcopy(tpl["attributes"]), "id": sha256,
            "links": {"self": "https://www.virustotal.com/api/v3/files/%s" % sha256},
            "type": "file"}
    a = data["attributes"]
    lad = int(last_analysis_date)
    first = int(first_submission_date)
    family = "generic"
    if threat_label:
        family = threat_label.split(".", 1)[-1].split("/")[0]
    a["authentihash"] = hexstr(rng, 64)
    a["creation_date"] = first - rng.randint(1, 20) * 86400
    a["first_submission_date"] = first
    a["last_analysis_date"] = lad
    results, stats = file_results(tpl["attributes"]["last_analysis_results"], malicious,
                                  family, rng, iso(lad, "d").replace("-", ""))
    a["last_analysis_results"] = results
    a["last_analysis_stats"] = stats
    a["last_modification_date"] = lad + 140
    a["last_submission_date"] = max(first, lad - rng.randint(0, 3) * 86400)
    a["magic"] = magic
    a["md5"] = md5
    a["meaningful_name"] = meaningful_name or (names[0] if names else sha256[:12] + ".exe")
    a["names"] = list(names) or [a["meaningful_name"]]
    a["pe_info"]["imphash"] = hexstr(rng, 32)
    if threat_label:
        a["popular_threat_classification"] = {
            "suggested_threat_label": threat_label,
            "popular_threat_category": [{"count": c, "value": v} for v, c in threat_categories],
            "popular_threat_name": [{"count": c, "value": v} for v, c in threat_names],
        }
    a["reputation"] = reputation
    a["sha1"] = sha1
    a["sha256"] = sha256
    a["size"] = int(size or rng.randint(150000, 2500000))
    a["ssdeep"] = "%d:%s:%s" % (rng.choice([6144, 12288, 24576, 49152]),
                                "".join(rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/") for _ in range(40)),
                                "".join(rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/") for _ in range(12)))
    a["tags"] = list(tags)
    a["times_submitted"] = times_submitted
    a["total_votes"] = {"harmless": 0, "malicious": 1 if malicious else 0}
    a["type_description"] = type_description
    a["type_tag"] = type_tag
    a["unique_sources"] = max(1, times_submitted // 2)
    a["vhash"] = hexstr(rng, 26)
    a["exiftool"]["TimeStamp"] = time.strftime("%Y:%m:%d %H:%M:%S+00:00",
                                               time.gmtime(a["creation_date"]))
    return {"data": data}
