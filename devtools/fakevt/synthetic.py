"""In-memory datasets for benchmarks: fast, deterministic (seeded), realistic object sizes.

    from fakevt import synthetic
    ds = synthetic.lookup_dataset(n_domains=10000, n_ips=10000, n_files=10000, seed=1)
    ds.domain_ids[:3], ds.ip_ids[:3], ds.file_ids[:3]      # what to look up
    pg = synthetic.pivot_dataset(seed=1)
    pg.seed_domain; synthetic.reachable(pg, "domains", pg.seed_domain, depth=2)

Objects are built from a pool of prototypes (each derived from a real capture by builders.py,
so each is 20-30 KB of JSON with a full last_analysis_results map); each indicator gets a
shallow copy with its own id, links, hashes, dates and DNS records. That keeps generation at a
few microseconds per object, so a 10,000-indicator benchmark measures the client, not us.

Names: domains under the reserved ``.example`` TLD; IPv4 addresses in 198.18.0.0/15 (RFC 2544,
reserved for benchmarking: 131,072 addresses); file hashes are the md5/sha1/sha256 of a
seeded label (a consistent triple, any of the three finds the file).
"""

import ipaddress

from . import builders as b
from .dataset import Dataset, normalize_id

BENCH_NET = ipaddress.ip_network("198.18.0.0/15")
PROTOTYPES = 16
_AS = [(64496 + i, name) for i, name in enumerate([
    "Bluehaven Hosting Ltd", "Kestrel VPS LLC", "Orbital Cloud SRL", "Northgate Datacenters",
    "Pinecrest Networks", "Lumen Example Transit", "Harbor Colocation", "Vantage Edge CDN",
    "Summit Broadband", "Riverbend Telecom", "Ironclad Hosting", "Meridian Cloud",
    "Copperline ISP", "Skyward Hosting", "Atlas Backbone", "Fjord Internet AS"])]
_REGISTRARS = ["NameSilo, LLC", "GoDaddy.com, LLC", "Tucows Domains Inc.", "Porkbun LLC",
               "NameCheap, Inc.", "Gandi SAS", "Key-Systems GmbH", "MarkMonitor Inc."]
_ISSUERS = ["LE-R10", "LE-R11", "Sectigo", "DigiCert", "GoDaddy", None]
_LABELS = ["trojan.formbook/xloader", "trojan.agenttesla/msil", "trojan.lokibot/stealer",
           "ransomware.lockbit/filecoder", "downloader.emotet/heodo", "trojan.redline/stealer"]
BASE_TIME = b.ts("2026-11-30T12:00:00")


def bench_ip(index):
    """The index-th benchmark IPv4 address (198.18.0.1, 198.18.0.2, ...)."""
    return str(BENCH_NET.network_address + 1 + index)


class SyntheticDataset(Dataset):
    """A Dataset whose objects are made on demand from prototypes (see module doc)."""

    def __init__(self, name, seed):
        Dataset.__init__(self, name=name, description="synthetic (seed=%d)" % seed)
        self.seed = seed
        self._specs = {"domains": {}, "ip_addresses": {}, "files": {}}
        self._protos = {"domains": [], "ip_addresses": [], "files": []}
        self._build_prototypes()

    def _build_prototypes(self):
        rng = b.rng_for("synthetic-protos", self.seed)
        for i in range(PROTOTYPES):
            bad = i % 4 == 0
            mal = rng.randint(3, 12) if bad else 0
            self._protos["domains"].append(b.make_domain(
                "proto-%d.example" % i, creation_date=BASE_TIME - rng.randint(30, 5000) * 86400,
                last_analysis_date=BASE_TIME - rng.randint(0, 30) * 86400,
                registrar=_REGISTRARS[i % len(_REGISTRARS)], issuer=_ISSUERS[i % len(_ISSUERS)],
                malicious=mal, suspicious=rng.randint(0, 2),
                categories={"Forcepoint ThreatSeeker": "phishing and other frauds"} if bad
                else {"BitDefender": "business"})["data"])
            asn, owner = _AS[i % len(_AS)]
            self._protos["ip_addresses"].append(b.make_ip(
                bench_ip(i), asn=asn, as_owner=owner, country=["US", "NL", "DE", "RO"][i % 4],
                network="198.18.0.0/15", last_analysis_date=BASE_TIME - rng.randint(0, 30) * 86400,
                malicious=rng.randint(1, 6) if bad else 0)["data"])
            label = _LABELS[i % len(_LABELS)]
            self._protos["files"].append(b.make_file(
                "proto-%d" % i, first_submission_date=BASE_TIME - rng.randint(1, 900) * 86400,
                last_analysis_date=BASE_TIME - rng.randint(0, 30) * 86400,
                malicious=rng.randint(20, 60) if i % 3 else 0,
                threat_label=label if i % 3 else None,
                threat_categories=[(label.split(".")[0], 20)],
                threat_names=[(label.split(".")[1].split("/")[0], 15)])["data"])

    # -- building -----------------------------------------------------------------------------
    def add_spec(self, collection, oid, proto_index, **fields):
        oid = normalize_id(collection, oid)
        self._specs[collection][oid] = (proto_index % PROTOTYPES, fields)
        if collection == "files":
            self._hash_alias[oid] = oid
            for key in ("md5", "sha1"):
                if fields.get(key):
                    self._hash_alias[fields[key]] = oid
        return oid

    def add_file_spec(self, label, proto_index, **fields):
        md5, sha1, sha256 = b.hashes_for("%s|%s" % (self.seed, label))
        return self.add_spec("files", sha256, proto_index, md5=md5, sha1=sha1, sha256=sha256,
                             **fields)

    # -- the server's interface -----------------------------------------------------------------
    def canonical_id(self, collection, raw_id):
        oid = normalize_id(collection, raw_id)
        if collection == "files":
            return self._hash_alias.get(oid)
        if oid in self._specs.get(collection, {}):
            return oid
        return Dataset.canonical_id(self, collection, raw_id)

    def get(self, collection, oid):
        spec = self._specs.get(collection, {}).get(oid)
        if spec is None:
            return Dataset.get(self, collection, oid)
        proto_index, fields = spec
        proto = self._protos[collection][proto_index]
        data = dict(proto)
        data["id"] = oid
        data["links"] = {"self": "https://www.virustotal.com/api/v3/%s/%s" % (collection, oid)}
        attrs = dict(proto["attributes"])
        attrs.update(fields)
        if collection == "domains":
            attrs["tld"] = oid.rsplit(".", 1)[-1]
            attrs["last_dns_records"] = (
                [{"type": "A", "ttl": 300, "value": ip} for ip in fields.get("_a", [])] +
                [{"type": "NS", "ttl": 21600, "value": "ns%d.%s" % (n, oid)} for n in (1, 2)] +
                [{"type": "TXT", "ttl": 3600, "value": "v=spf1 -all"}])
            attrs.pop("_a", None)
        data["attributes"] = attrs
        if collection == "files":
            attrs["meaningful_name"] = fields.get("meaningful_name", oid[:10] + ".exe")
            attrs["names"] = [attrs["meaningful_name"]]
        return data

    def ids(self, collection):
        return sorted(set(self._specs.get(collection, {})) | set(Dataset.ids(self, collection)))


def _domain_fields(rng, index, a_records):
    return {"creation_date": BASE_TIME - rng.randint(10, 6000) * 86400,
            "last_analysis_date": BASE_TIME - rng.randint(0, 60) * 86400 - index,
            "_a": list(a_records)}


def lookup_dataset(n_domains=10000, n_ips=10000, n_files=10000, seed=1):
    """(a) N distinct domains, IPs and files, each a realistic-size object.

    Domain i resolves to IP i (when both exist), so ?relationships=resolutions has data.
    Attributes: domain_ids, ip_ids, file_ids (file_ids are sha256; md5s/sha1s lists too).
    """
    if n_ips > BENCH_NET.num_addresses - 2:
        raise ValueError("at most %d benchmark IPs" % (BENCH_NET.num_addresses - 2))
    ds = SyntheticDataset("synthetic-lookup", seed)
    rng = b.rng_for("lookup", seed)
    ds.domain_ids, ds.ip_ids, ds.file_ids, ds.md5s, ds.sha1s = [], [], [], [], []
    for i in range(n_ips):
        ds.ip_ids.append(ds.add_spec("ip_addresses", bench_ip(i), rng.randrange(PROTOTYPES),
                                     last_analysis_date=BASE_TIME - rng.randint(0, 90) * 86400))
    for i in range(n_domains):
        name = "d%05d-%d.bench.example" % (i, seed)
        a = [ds.ip_ids[i]] if i < n_ips else []
        ds.domain_ids.append(ds.add_spec("domains", name, rng.randrange(PROTOTYPES),
                                         **_domain_fields(rng, i, a)))
        if a:
            ds.add_resolution(name, a[0], BASE_TIME - rng.randint(0, 300) * 86400)
    for i in range(n_files):
        fid = ds.add_file_spec("lookup-file-%d" % i, rng.randrange(PROTOTYPES),
                               size=rng.randint(20000, 5000000),
                               meaningful_name="sample_%05d.exe" % i)
        ds.file_ids.append(fid)
        ds.md5s.append(ds._specs["files"][fid][1]["md5"])
        ds.sha1s.append(ds._specs["files"][fid][1]["sha1"])
    return ds


def pivot_dataset(seed=1, n_ips=10, domains_per_ip=28, n_files=4, domains_per_file=2):
    """(b) A pivot graph around one seed domain (``ds.seed_domain``).

    seed -> n_ips IPs (resolutions) -> domains_per_ip other domains each (resolutions, one
    page at limit=40) ; seed -> n_files communicating files -> domains_per_file new contacted
    domains each. With the defaults, depth 2 from the seed reaches 1 + 10 + 4 + 280 + 8 = 303
    nodes (ds.expected_depth2). Every node exists as an object.
    """
    if domains_per_ip + 1 > 40:
        raise ValueError("keep domains_per_ip < 40 so one page (limit=40) holds them")
    ds = SyntheticDataset("synthetic-pivot", seed)
    rng = b.rng_for("pivot", seed)
    seed_domain = "seed-%d.pivot.example" % seed
    ips = [bench_ip(1000 + i) for i in range(n_ips)]
    ds.add_spec("domains", seed_domain, 0, **_domain_fields(rng, 0, ips[:1]))
    for i, ip in enumerate(ips):
        ds.add_spec("ip_addresses", ip, i)
        ds.add_resolution(seed_domain, ip, BASE_TIME - (i + 1) * 86400)
        for j in range(domains_per_ip):
            name = "h%02d-%02d.pivot.example" % (i, j)
            ds.add_spec("domains", name, rng.randrange(PROTOTYPES),
                        **_domain_fields(rng, j, [ip]))
            ds.add_resolution(name, ip, BASE_TIME - rng.randint(1, 400) * 86400)
    files = []
    for k in range(n_files):
        fid = ds.add_file_spec("pivot-file-%d" % k, 1 + k)
        files.append(fid)
        contacted = []
        for m in range(domains_per_file):
            name = "c%02d-%02d.pivot.example" % (k, m)
            ds.add_spec("domains", name, rng.randrange(PROTOTYPES), **_domain_fields(rng, m, []))
            contacted.append(name)
        ds.add_related("files", fid, "contacted_domains", [seed_domain] + contacted)
        ds.add_related("files", fid, "contacted_ips", [ips[k % n_ips]])
    ds.add_related("domains", seed_domain, "communicating_files", files)
    ds.seed_domain = seed_domain
    ds.expected_depth2 = 1 + n_ips + n_files + n_ips * domains_per_ip + n_files * domains_per_file
    return ds


PIVOT_RELATIONSHIPS = {
    "domains": ("resolutions", "communicating_files"),
    "ip_addresses": ("resolutions", "communicating_files"),
    "files": ("contacted_domains", "contacted_ips"),
}


def reachable(ds, collection, oid, depth=2, relationships=PIVOT_RELATIONSHIPS):
    """Nodes (collection, id) reachable from (collection, oid) within `depth` hops (BFS)."""
    start = (collection, normalize_id(collection, oid))
    seen = {start}
    frontier = [start]
    for _ in range(depth):
        nxt = []
        for col, nid in frontier:
            for rel in relationships.get(col, ()):
                for item in ds.related(col, nid, rel):
                    if item["type"] == "resolution":
                        node = (("ip_addresses", item["ip_address"]) if col == "domains"
                                else ("domains", item["host_name"]))
                    else:
                        tcol = {"domain": "domains", "ip_address": "ip_addresses",
                                "file": "files"}.get(item["type"])
                        if tcol is None:
                            continue
                        node = (tcol, item["id"])
                    if node not in seen:
                        seen.add(node)
                        nxt.append(node)
        frontier = nxt
    return seen
