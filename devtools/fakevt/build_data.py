"""Regenerate the committed datasets: devtools/fakevt/data/basic and demo/scenario.

    PYTHONPATH=devtools python -m fakevt.build_data [--out-basic DIR] [--out-scenario DIR]

Deterministic: running it twice gives byte-identical files (tests check this).
"""

import argparse
import copy
import json
import os

from . import builders as b
from .dataset import write_dataset

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
BASIC_DIR = os.path.join(HERE, "data", "basic")
SCENARIO_DIR = os.path.join(REPO, "demo", "scenario")


def _real(name):
    with open(os.path.join(b.REAL_DIR, name), encoding="utf-8") as fh:
        return json.load(fh)


def _whois_record(domain, registrar, created, first_seen, country, rng):
    """A historical_whois item shaped like the real github.com ones (inline whois object)."""
    tpl = copy.deepcopy(_real("relationships_domain_historical_whois_github.com_2019.json")
                        ["data"][1])
    wm = {
        "Creation Date": b.iso(created),
        "DNSSEC": "unsigned",
        "Domain Name": domain.upper(),
        "Domain Status": "clientTransferProhibited https://icann.org/epp#clientTransferProhibited",
        "Name Server": "NS1.%s | NS2.%s" % (domain.upper(), domain.upper()),
        "Registrant Country": country,
        "Registrar": registrar,
        "Registry Expiry Date": b.iso(created + 365 * 86400),
        "Updated Date": b.iso(created + 3600),
    }
    tpl["attributes"] = {"first_seen_date": first_seen, "last_updated": created + 3600,
                         "registrant_country": country, "registrar_name": registrar,
                         "whois_map": wm}
    tpl["id"] = b.hexstr(rng, 64)
    del tpl["links"]
    return tpl


# =============================================================================================
# basic: small dataset for unit/HTTP tests
# =============================================================================================

BASIC_NOW = b.ts("2026-11-30T12:00:00")


def build_basic():
    objects, resolutions, rels = [], [], []
    now = BASIC_NOW

    # real captures, served as recorded
    objects.append(_real("domain_google.com_2026.json"))
    objects.append(_real("ip_8.8.8.8_2026.json"))
    real_files = _real("relationships_domain_communicating_files_github.com_2019.json")["data"]
    for item in real_files[:3]:
        objects.append({"data": item})

    def dom(name, **kw):
        kw.setdefault("last_analysis_date", now - 3 * 86400)
        objects.append(b.make_domain(name, **kw))

    def ip(addr, **kw):
        kw.setdefault("last_analysis_date", now - 5 * 86400)
        objects.append(b.make_ip(addr, **kw))

    dom("alpha.example", creation_date=b.ts("2015-04-01"), registrar="Tucows Domains Inc.",
        categories={"BitDefender": "business", "Sophos": "information technology"},
        a_records=["192.0.2.10", "198.51.100.20"], aaaa_records=["2001:db8::10"],
        issuer="DigiCert", reputation=5, harmless_ratio=0.68)
    dom("www.alpha.example", creation_date=b.ts("2015-04-01"), registrar="Tucows Domains Inc.",
        a_records=["192.0.2.10"], issuer="DigiCert")
    dom("mail.alpha.example", creation_date=b.ts("2015-04-01"), registrar="Tucows Domains Inc.",
        a_records=["192.0.2.10"], issuer=None)
    dom("beta.example", creation_date=b.ts("2026-10-20"), registrar="NameSilo, LLC",
        malicious=8, suspicious=2, categories={"Forcepoint ThreatSeeker": "phishing and other frauds"},
        a_records=["192.0.2.10"], issuer="LE-R11", reputation=-15, tags=[])
    dom("xn--bcher-kva.example", creation_date=b.ts("2019-06-15"), registrar="Key-Systems GmbH",
        a_records=["198.51.100.20"], issuer="LE-R10", country="DE")
    ip("192.0.2.10", asn=64500, as_owner="Example Hosting LLC", country="US",
       network="192.0.2.0/24", malicious=2, reputation=-3)
    ip("198.51.100.20", asn=64501, as_owner="Documentation Networks B.V.", country="NL",
       network="198.51.100.0/24", rir="RIPE NCC")
    ip("203.0.113.50", asn=64502, as_owner="Parking Example Inc.", country="US",
       network="203.0.113.0/24", suspicious=1)
    ip("2001:db8::10", asn=64500, as_owner="Example Hosting LLC", country="US",
       network="2001:db8::/32")

    # resolutions, both ways; alpha <-> 192.0.2.10 <-> beta makes a cycle
    resolutions += [
        {"domain": "alpha.example", "ip": "192.0.2.10", "date": now - 2 * 86400},
        {"domain": "alpha.example", "ip": "198.51.100.20", "date": now - 40 * 86400},
        {"domain": "alpha.example", "ip": "2001:db8::10", "date": now - 3 * 86400},
        {"domain": "www.alpha.example", "ip": "192.0.2.10", "date": now - 2 * 86400},
        {"domain": "beta.example", "ip": "192.0.2.10", "date": now - 6 * 86400},
        {"domain": "xn--bcher-kva.example", "ip": "198.51.100.20", "date": now - 9 * 86400},
    ]
    # pagination: 45 parked domains on 203.0.113.50 (> 40, so even limit=40 needs a cursor)
    for i in range(1, 46):
        name = "parked-%02d.example" % i
        dom(name, creation_date=b.ts("2021-01-01") + i * 86400 * 17,
            registrar="GoDaddy.com, LLC", a_records=["203.0.113.50"],
            issuer="GoDaddy" if i % 3 else None, suspicious=1 if i % 7 == 0 else 0,
            categories={"Forcepoint ThreatSeeker": "parked domain"})
        resolutions.append({"domain": name, "ip": "203.0.113.50",
                            "date": now - i * 3600, "resolver": "VirusTotal"})

    f_dropper = b.make_file("basic-dropper", first_submission_date=now - 10 * 86400,
                            last_analysis_date=now - 86400, malicious=48,
                            threat_label="trojan.lokibot/stealer",
                            threat_categories=[("trojan", 30), ("downloader", 8)],
                            threat_names=[("lokibot", 21), ("stealer", 6)],
                            meaningful_name="invoice_0042.exe",
                            names=["invoice_0042.exe", "invoice.exe"], times_submitted=4)
    f_payload = b.make_file("basic-payload", first_submission_date=now - 9 * 86400,
                            last_analysis_date=now - 86400, malicious=41,
                            threat_label="trojan.lokibot/stealer",
                            threat_categories=[("trojan", 25)], threat_names=[("lokibot", 18)],
                            meaningful_name="svchost_.exe", type_description="Win32 DLL",
                            names=["svchost_.exe"])
    f_clean = b.make_file("basic-clean", first_submission_date=b.ts("2024-03-01"),
                          last_analysis_date=now - 20 * 86400, malicious=0,
                          meaningful_name="alpha-setup.exe", names=["alpha-setup.exe"],
                          times_submitted=12)
    objects += [f_dropper, f_payload, f_clean]
    sd, sp, sc = (f["data"]["id"] for f in (f_dropper, f_payload, f_clean))

    def rel(collection, oid, relationship, items):
        rels.append({"collection": collection, "id": oid, "relationship": relationship,
                     "items": items})

    rel("domains", "beta.example", "communicating_files", [sd, sp])
    rel("ip_addresses", "192.0.2.10", "communicating_files", [sd])
    rel("domains", "alpha.example", "referrer_files", [sc])
    rel("domains", "alpha.example", "subdomains", ["www.alpha.example", "mail.alpha.example"])
    rel("domains", "www.alpha.example", "siblings", ["mail.alpha.example"])
    rel("domains", "www.alpha.example", "parent", ["alpha.example"])
    rel("domains", "mail.alpha.example", "parent", ["alpha.example"])
    rng = b.rng_for("basic-whois")
    rel("domains", "alpha.example", "historical_whois", [
        _whois_record("alpha.example", "Tucows Domains Inc.", b.ts("2015-04-01"),
                      now - 100 * 86400, "US", rng),
        _whois_record("alpha.example", "Tucows Domains Inc.", b.ts("2015-04-01"),
                      now - 500 * 86400, "US", rng)])
    rel("domains", "beta.example", "downloaded_files", [sp])          # premium only
    rel("domains", "beta.example", "urls", [{"id": b.hexstr(rng, 64),
                                             "context_attributes": {"url": "http://beta.example/login"}}])
    rel("files", sd, "contacted_domains", ["beta.example", "alpha.example"])
    rel("files", sd, "contacted_ips", ["192.0.2.10"])
    rel("files", sd, "dropped_files", [sp])
    rel("files", sp, "execution_parents", [sd])
    rel("files", sp, "contacted_domains", ["beta.example"])
    return {"name": "basic", "description": "small dataset for fakevt unit/HTTP tests "
                                            "(see devtools/fakevt/README.md)",
            "objects": objects, "resolutions": resolutions, "relationships": rels}


# =============================================================================================
# scenario: the phishing investigation of `make demo` (demo/scenario/STORY.md)
# =============================================================================================

TODAY = b.ts("2026-12-04")
LOOKALIKE_CREATED = b.ts("2026-09-03T14:22:10")

ASNS = {
    64496: ("Bluehaven Hosting Ltd", "NL", "RIPE NCC"),
    64499: ("Kestrel VPS LLC", "US", "ARIN"),
    64503: ("Orbital Cloud SRL", "RO", "RIPE NCC"),
}
LOOKALIKE_IPS = [          # ip, asn, date the look-alike was seen resolving to it
    ("203.0.113.77", 64496, "2026-11-20T08:14:02"),
    ("203.0.113.45", 64496, "2026-10-02T19:40:55"),
    ("198.51.100.23", 64499, "2026-09-18T03:05:31"),
    ("192.0.2.199", 64503, "2026-09-05T11:27:48"),
]
# other domains on those IPs: name, created, registrar, issuer, malicious, suspicious, ips
COHOSTED = [
    ("northwind-supp1y.example", "2026-08-21T09:12:00", "NameSilo, LLC", "LE-R10", 7, 1,
     ["203.0.113.77", "198.51.100.23"]),
    ("acme-finance-portal.example", "2026-10-11T22:03:41", "NameSilo, LLC", "LE-R11", 5, 3,
     ["203.0.113.45"]),
    ("invoice-viewer.example", "2026-10-27T06:51:10", "PDR Ltd. d/b/a PublicDomainRegistry.com",
     "LE-R11", 8, 1, ["203.0.113.77", "203.0.113.45"]),
    ("secure-docs-share.example", "2026-07-30T15:33:12", "NameSilo, LLC", "LE-R10", 6, 0,
     ["192.0.2.199", "203.0.113.77"]),
    ("harborview-dental.example", "2014-05-12T10:00:00", "Tucows Domains Inc.", "LE-R11", 0, 1,
     ["198.51.100.23"]),
    ("greenleaf-bakery.example", "2012-02-28T17:45:00", "GoDaddy.com, LLC", "LE-R10", 2, 1,
     ["203.0.113.45"]),
    ("tristate-logistics.example", "2016-11-03T13:20:00", "Network Solutions, LLC", "LE-R11",
     1, 0, ["192.0.2.199"]),
    ("wp-cdn-assets.example", "2020-03-02T08:00:00", "Porkbun LLC", "LE-R10", 0, 1,
     ["192.0.2.199"]),
    ("cloud-status-page.example", "2019-08-14T12:00:00", "Gandi SAS", "Sectigo", 0, 0,
     ["198.51.100.23"]),
    ("brightpath-consulting.example", "2018-05-22T12:00:00", "GoDaddy.com, LLC", "GoDaddy", 0, 0,
     ["203.0.113.77"]),
]
LE_OLD_DOMAINS = ["greenleaf-bakery.example", "harborview-dental.example",
                  "tristate-logistics.example", "wp-cdn-assets.example"]


def build_scenario():
    objects, resolutions, rels = [], [], []
    lad = TODAY - 86400 // 2                       # analysed the evening before "today"

    def rel(collection, oid, relationship, items):
        rels.append({"collection": collection, "id": oid, "relationship": relationship,
                     "items": items})

    # the company and its partner: old, clean, commercial CAs
    objects.append(b.make_domain(
        "acme-finance.example", creation_date=b.ts("2009-03-17T09:00:00"),
        last_analysis_date=lad, registrar="MarkMonitor Inc.", issuer="DigiCert",
        categories={"BitDefender": "financial", "Forcepoint ThreatSeeker": "financial data and services",
                    "Sophos": "banking"},
        a_records=["198.51.100.80"], mx=[(10, "mx1.acme-finance.example")], reputation=12,
        registrant_org="Acme Finance Group", country="US", harmless_ratio=0.7,
        txt=["v=spf1 include:_spf.acme-finance.example -all"]))
    objects.append(b.make_ip("198.51.100.80", asn=64510, as_owner="Acme Finance Group",
                             country="US", network="198.51.100.80/28",
                             last_analysis_date=lad))
    resolutions.append({"domain": "acme-finance.example", "ip": "198.51.100.80",
                        "date": b.ts("2026-12-01T00:10:00")})
    objects.append(b.make_domain(
        "northwind-supply.example", creation_date=b.ts("2011-06-08T12:00:00"),
        last_analysis_date=lad, registrar="GoDaddy.com, LLC", issuer="Sectigo",
        categories={"BitDefender": "business", "Forcepoint ThreatSeeker": "business and economy"},
        a_records=["192.0.2.40"], mx=[(10, "mail.northwind-supply.example")], reputation=3,
        registrant_org="Northwind Supply Co.", country="US", harmless_ratio=0.66))
    objects.append(b.make_ip("192.0.2.40", asn=64508, as_owner="Northwind Supply Co.",
                             country="US", network="192.0.2.32/28", last_analysis_date=lad))
    resolutions.append({"domain": "northwind-supply.example", "ip": "192.0.2.40",
                        "date": b.ts("2026-11-29T04:00:00")})

    # the look-alike
    objects.append(b.make_domain(
        "acme-flnance.example", creation_date=LOOKALIKE_CREATED, last_analysis_date=lad,
        registrar="NameSilo, LLC", issuer="LE-R11",
        cert_not_before=b.ts("2026-11-19T07:00:00"), malicious=9, suspicious=2,
        categories={"Forcepoint ThreatSeeker": "phishing and other frauds",
                    "Sophos": "phishing", "alphaMountain.ai": "Phishing (alphaMountain.ai)"},
        a_records=["203.0.113.77"], mx=[(10, "mail.acme-flnance.example")],
        nameservers=["ns1.dnsowl.example", "ns2.dnsowl.example"], reputation=-27,
        total_votes={"harmless": 0, "malicious": 4}, country="IS",
        expiration_date=LOOKALIKE_CREATED + 365 * 86400))
    rng = b.rng_for("scenario-whois")
    rel("domains", "acme-flnance.example", "historical_whois", [
        _whois_record("acme-flnance.example", "NameSilo, LLC", LOOKALIKE_CREATED,
                      LOOKALIKE_CREATED + 2 * 86400, "IS", rng)])
    for addr, asn, seen in LOOKALIKE_IPS:
        owner, country, rir = ASNS[asn]
        net = addr.rsplit(".", 1)[0] + ".0/24"
        objects.append(b.make_ip(addr, asn=asn, as_owner=owner, country=country, network=net,
                                 rir=rir, last_analysis_date=lad,
                                 malicious={"203.0.113.77": 6, "203.0.113.45": 4}.get(addr, 2),
                                 suspicious=1, reputation=-8))
        resolutions.append({"domain": "acme-flnance.example", "ip": addr, "date": b.ts(seen)})

    for i, (name, created, registrar, issuer, mal, sus, ips) in enumerate(COHOSTED):
        created_ts = b.ts(created)
        is_new = created_ts > TODAY - 365 * 86400
        cats = {"Forcepoint ThreatSeeker": "phishing and other frauds"} if mal >= 5 else (
            {"Forcepoint ThreatSeeker": "compromised websites"} if mal else
            {"BitDefender": "business"})
        objects.append(b.make_domain(
            name, creation_date=created_ts, last_analysis_date=lad - i * 7200,
            registrar=registrar, issuer=issuer, malicious=mal, suspicious=sus,
            categories=cats, a_records=ips[:1], reputation=-10 * mal // 3,
            country="IS" if is_new else "US",
            expiration_date=created_ts + (1 if is_new else 13) * 365 * 86400,
            cert_not_before=lad - (10 + 3 * i) * 86400))
        for j, addr in enumerate(ips):
            resolutions.append({"domain": name, "ip": addr,
                                "date": lad - (2 + 11 * j + i) * 86400})

    # communicating files
    f_exe = b.make_file(
        "scenario-remittance-exe", first_submission_date=b.ts("2026-11-18T10:03:00"),
        last_analysis_date=lad, malicious=52, threat_label="trojan.formbook/xloader",
        threat_categories=[("trojan", 34), ("spyware", 9)],
        threat_names=[("formbook", 22), ("xloader", 12)],
        meaningful_name="Remittance_Advice_Nov2026.exe",
        names=["Remittance_Advice_Nov2026.exe", "remittance.exe"], times_submitted=5,
        size=1183744, reputation=-30)
    f_net = b.make_file(
        "scenario-agenttesla", first_submission_date=b.ts("2026-10-29T16:41:00"),
        last_analysis_date=lad, malicious=47, threat_label="trojan.agenttesla/msil",
        threat_categories=[("trojan", 31), ("spyware", 12)],
        threat_names=[("agenttesla", 25), ("msil", 9)],
        meaningful_name="NW_PaymentPortal.exe", names=["NW_PaymentPortal.exe"],
        magic="PE32 executable for MS Windows (GUI) Intel 80386 Mono/.Net assembly",
        size=786432, reputation=-22)
    f_xlsm = b.make_file(
        "scenario-po-xlsm", first_submission_date=b.ts("2026-11-17T08:12:00"),
        last_analysis_date=lad, malicious=33, threat_label="downloader.formbook/xloader",
        threat_categories=[("downloader", 20), ("trojan", 8)],
        threat_names=[("formbook", 9), ("xloader", 4)],
        meaningful_name="Northwind_PO_88213.xlsm", names=["Northwind_PO_88213.xlsm"],
        type_description="Office Open XML Spreadsheet", type_tag="xlsx",
        magic="Microsoft Excel 2007+", tags=["macros", "xlsx", "auto-open"], size=48311)
    objects += [f_exe, f_net, f_xlsm]
    h_exe, h_net, h_xlsm = (f["data"]["id"] for f in (f_exe, f_net, f_xlsm))
    rel("domains", "acme-flnance.example", "communicating_files", [h_exe])
    rel("ip_addresses", "203.0.113.77", "communicating_files", [h_exe])
    rel("domains", "invoice-viewer.example", "communicating_files", [h_exe])
    rel("domains", "northwind-supp1y.example", "communicating_files", [h_net, h_xlsm])
    rel("ip_addresses", "198.51.100.23", "communicating_files", [h_net])
    rel("files", h_exe, "contacted_domains", ["acme-flnance.example", "invoice-viewer.example"])
    rel("files", h_exe, "contacted_ips", ["203.0.113.77"])
    rel("files", h_exe, "execution_parents", [h_xlsm])
    rel("files", h_xlsm, "contacted_domains", ["northwind-supp1y.example"])
    rel("files", h_xlsm, "dropped_files", [h_exe])
    rel("files", h_net, "contacted_domains", ["northwind-supp1y.example"])
    rel("files", h_net, "contacted_ips", ["198.51.100.23"])

    facts = {
        "today": "2026-12-04",
        "company_domain": "acme-finance.example",
        "partner_domain": "northwind-supply.example",
        "email": {"from": "j.miller@northwind-supply.example",
                  "reply_to": "accounts@acme-flnance.example",
                  "to": "a.chen@acme-finance.example",
                  "subject": "Updated remittance details - invoice NW-88213",
                  "date": "2026-12-03T09:41:00Z",
                  "attachment": "Northwind_PO_88213.xlsm"},
        "lookalike": {"domain": "acme-flnance.example", "creation_date": LOOKALIKE_CREATED,
                      "creation_date_iso": b.iso(LOOKALIKE_CREATED), "registrar": "NameSilo, LLC",
                      "ips": [ip for ip, _, _ in LOOKALIKE_IPS],
                      "cert_issuer": "Let's Encrypt", "verdict": "malicious"},
        "asns": sorted(ASNS),
        "as_owners": {str(k): v[0] for k, v in sorted(ASNS.items())},
        "ip_asn": {ip: asn for ip, asn, _ in LOOKALIKE_IPS},
        "impersonator": {"domain": "northwind-supp1y.example",
                         "impersonates": "northwind-supply.example",
                         "ips": ["203.0.113.77", "198.51.100.23"]},
        "cohosted_domains": sorted(c[0] for c in COHOSTED),
        "letsencrypt_old_domains": sorted(LE_OLD_DOMAINS),
        "communicating_files": [
            {"sha256": f["data"]["id"], "md5": f["data"]["attributes"]["md5"],
             "sha1": f["data"]["attributes"]["sha1"],
             "name": f["data"]["attributes"]["meaningful_name"],
             "threat_label": f["data"]["attributes"]["popular_threat_classification"]
             ["suggested_threat_label"],
             "malicious": f["data"]["attributes"]["last_analysis_stats"]["malicious"]}
            for f in (f_exe, f_net, f_xlsm)],
        "depth2_domains_from_lookalike": sorted(c[0] for c in COHOSTED),
    }
    spec = {"name": "scenario", "description": "phishing investigation for make demo "
                                               "(demo/scenario/STORY.md)",
            "objects": objects, "resolutions": resolutions, "relationships": rels}
    return spec, facts


def write_all(basic_dir=BASIC_DIR, scenario_dir=SCENARIO_DIR):
    write_dataset(build_basic(), basic_dir)
    spec, facts = build_scenario()
    write_dataset(spec, scenario_dir)
    with open(os.path.join(scenario_dir, "facts.json"), "w", encoding="utf-8") as fh:
        json.dump(facts, fh, indent=2)
        fh.write("\n")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--out-basic", default=BASIC_DIR)
    p.add_argument("--out-scenario", default=SCENARIO_DIR)
    args = p.parse_args(argv)
    write_all(args.out_basic, args.out_scenario)


if __name__ == "__main__":
    main()
