"""Datasets served by the fake VirusTotal server.

A dataset answers three questions for the server:

* ``canonical_id(collection, raw_id)``: the id VirusTotal would answer with (files: the sha256
  for any of md5/sha1/sha256; domains: lower-case; IPs: the compressed textual form), or None.
* ``get(collection, canonical_id)``: the stored ``data`` dict of one object (type, id, links,
  attributes), or None.
* ``related(collection, canonical_id, relationship)``: the ordered list of related items, each a
  dict with ``type`` and ``id`` and optionally ``attributes`` (an inline full object, e.g. a whois
  record), ``context_attributes``, and for resolutions ``date``/``resolver``/``host_name``/
  ``ip_address``.

On disk (see README.md)::

    <dataset>/
      dataset.json                        optional: {"name": ..., "description": ...}
      objects/domains/<id>.json           {"data": {...}} exactly as VT serves it
      objects/ip_addresses/<id>.json      (IPv6: ':' in the file name is written as '_')
      objects/files/<sha256>.json
      relations.json                      {"resolutions": [...], "relationships": [...]}

The object's own ``data.id`` is authoritative, not the file name.
"""

import ipaddress
import json
import os
import re
import shutil

# Collections the server knows, and the object type VT gives their members.
COLLECTION_TYPES = {
    "domains": "domain",
    "ip_addresses": "ip_address",
    "files": "file",
}
TYPE_COLLECTIONS = {v: k for k, v in COLLECTION_TYPES.items()}
TYPE_COLLECTIONS.update({"resolution": "resolutions", "whois": "whois",
                         "ssl_cert": "ssl_certificates", "url": "urls",
                         "comment": "comments"})

# Relationships VT documents per collection -> type of the related objects. One-to-one
# relationships (their `data` is a single descriptor or null) are listed in ONE_TO_ONE.
RELATIONSHIPS = {
    "domains": {
        "caa_records": "domain", "cname_records": "domain", "collections": "collection",
        "comments": "comment", "communicating_files": "file", "downloaded_files": "file",
        "graphs": "graph", "historical_ssl_certificates": "ssl_cert",
        "historical_whois": "whois", "immediate_parent": "domain", "mx_records": "domain",
        "ns_records": "domain", "parent": "domain", "referrer_files": "file",
        "related_comments": "comment", "related_references": "reference",
        "related_threat_actors": "collection", "resolutions": "resolution",
        "siblings": "domain", "soa_records": "domain", "subdomains": "domain", "urls": "url",
        "user_votes": "vote", "votes": "vote",
    },
    "ip_addresses": {
        "collections": "collection", "comments": "comment", "communicating_files": "file",
        "downloaded_files": "file", "graphs": "graph",
        "historical_ssl_certificates": "ssl_cert", "historical_whois": "whois",
        "related_comments": "comment", "related_references": "reference",
        "related_threat_actors": "collection", "referrer_files": "file",
        "resolutions": "resolution", "urls": "url", "user_votes": "vote", "votes": "vote",
    },
    "files": {
        "analyses": "analysis", "behaviours": "file_behaviour", "bundled_files": "file",
        "carbonblack_children": "file", "carbonblack_parents": "file",
        "collections": "collection", "comments": "comment", "compressed_parents": "file",
        "contacted_domains": "domain", "contacted_ips": "ip_address", "contacted_urls": "url",
        "dropped_files": "file", "email_attachments": "file", "email_parents": "file",
        "embedded_domains": "domain", "embedded_ips": "ip_address", "embedded_urls": "url",
        "execution_parents": "file", "graphs": "graph", "itw_domains": "domain",
        "itw_ips": "ip_address", "itw_urls": "url", "memory_pattern_domains": "domain",
        "memory_pattern_ips": "ip_address", "memory_pattern_urls": "url",
        "overlay_children": "file", "overlay_parents": "file", "pcap_children": "file",
        "pcap_parents": "file", "pe_resource_children": "file",
        "pe_resource_parents": "file", "related_references": "reference",
        "related_threat_actors": "collection", "screenshots": "screenshot",
        "similar_files": "file", "submissions": "submission",
        "urls_for_embedded_js": "url", "user_votes": "vote", "votes": "vote",
    },
}
ONE_TO_ONE = {("domains", "parent"), ("domains", "immediate_parent")}

# What a public (free) key may read; everything else answers 403 ForbiddenError to it.
PUBLIC_RELATIONSHIPS = {
    "domains": {"resolutions", "subdomains", "siblings", "communicating_files",
                "referrer_files", "historical_whois", "historical_ssl_certificates",
                "parent"},
    "ip_addresses": {"resolutions", "communicating_files", "referrer_files",
                     "historical_whois", "historical_ssl_certificates"},
    "files": {"contacted_domains", "contacted_ips", "contacted_urls", "execution_parents",
              "bundled_files", "dropped_files"},
}

# Relationships for which VT reports meta.count (evidence: the docs' resolutions example and
# the real 2026 comments capture; the real communicating_files/historical_whois captures have
# no count).
COUNTED_RELATIONSHIPS = {"resolutions", "comments"}

_HEX = re.compile(r"^[0-9a-f]+$")


def normalize_id(collection, raw_id):
    """The canonical form the fake server looks an id up by (not a validity check)."""
    value = (raw_id or "").strip()
    if collection == "domains":
        return value.lower().rstrip(".")
    if collection == "ip_addresses":
        try:
            return str(ipaddress.ip_address(value))
        except ValueError:
            return value
    if collection == "files":
        return value.lower()
    return value


def resolution_id(ip, domain):
    """VT's resolution id: the IP and the host name run together."""
    return "%s%s" % (ip, domain)


class Dataset:
    """In-memory dataset (also the base class for lazily generated synthetic datasets)."""

    def __init__(self, name="dataset", description=""):
        self.name = name
        self.description = description
        self._objects = {c: {} for c in COLLECTION_TYPES}
        self._hash_alias = {}          # md5/sha1/sha256 -> sha256
        self._relations = {}           # (collection, id, rel) -> [item, ...]
        self._resolutions = []         # raw resolution records, for introspection

    # -- building -----------------------------------------------------------------------
    def add_object(self, obj):
        """Add a VT object: either ``{"data": {...}}`` or the ``data`` dict itself."""
        data = obj.get("data", obj)
        otype = data["type"]
        collection = TYPE_COLLECTIONS.get(otype)
        if collection not in COLLECTION_TYPES:
            raise ValueError("unsupported object type %r" % otype)
        oid = normalize_id(collection, data["id"])
        if oid != data["id"]:
            raise ValueError("object id %r is not canonical (expected %r)" % (data["id"], oid))
        self._objects[collection][oid] = data
        if collection == "files":
            attrs = data.get("attributes", {})
            self._hash_alias[oid] = oid
            for key in ("md5", "sha1", "sha256"):
                h = attrs.get(key)
                if h:
                    self._hash_alias[h.lower()] = oid
        return oid

    def add_resolution(self, domain, ip, date, resolver="VirusTotal"):
        """A domain resolved to an IP: appears under both ends' `resolutions`."""
        domain = normalize_id("domains", domain)
        ip = normalize_id("ip_addresses", ip)
        rec = {"domain": domain, "ip": ip, "date": int(date), "resolver": resolver}
        self._resolutions.append(rec)
        item = {"type": "resolution", "id": resolution_id(ip, domain), "date": int(date),
                "host_name": domain, "ip_address": ip, "resolver": resolver}
        for key in (("domains", domain, "resolutions"), ("ip_addresses", ip, "resolutions")):
            lst = self._relations.setdefault(key, [])
            lst.append(item)
            lst.sort(key=lambda it: (-it["date"], it["id"]))   # newest first, like VT

    def add_related(self, collection, oid, relationship, items):
        """Append related items (ids or dicts) to (collection, oid, relationship)."""
        if relationship not in RELATIONSHIPS.get(collection, {}):
            raise ValueError("unknown relationship %s/%s" % (collection, relationship))
        target_type = RELATIONSHIPS[collection][relationship]
        oid = normalize_id(collection, oid)
        lst = self._relations.setdefault((collection, oid, relationship), [])
        for it in items:
            if isinstance(it, str):
                it = {"type": target_type, "id": it}
            else:
                it = dict(it)
                it.setdefault("type", target_type)
            tcol = TYPE_COLLECTIONS.get(it["type"])
            if tcol in COLLECTION_TYPES:
                it["id"] = normalize_id(tcol, it["id"])
            lst.append(it)

    # -- queries (the server's interface) -----------------------------------------------
    def canonical_id(self, collection, raw_id):
        oid = normalize_id(collection, raw_id)
        if collection == "files":
            return self._hash_alias.get(oid)
        return oid if oid in self._objects.get(collection, {}) else None

    def get(self, collection, oid):
        return self._objects.get(collection, {}).get(oid)

    def related(self, collection, oid, relationship):
        return self._relations.get((collection, oid, relationship), [])

    def ids(self, collection):
        return sorted(self._objects.get(collection, {}))

    def relationship_keys(self):
        return sorted(self._relations)

    @property
    def resolutions(self):
        return list(self._resolutions)


def _object_files(root):
    for collection in COLLECTION_TYPES:
        folder = os.path.join(root, "objects", collection)
        if not os.path.isdir(folder):
            continue
        for name in sorted(os.listdir(folder)):
            if name.endswith(".json"):
                yield collection, os.path.join(folder, name)


def load_dataset(path):
    """Load a dataset directory (format above) into a Dataset."""
    path = os.path.abspath(path)
    if not os.path.isdir(path):
        raise FileNotFoundError("dataset directory not found: %s" % path)
    meta = {}
    meta_path = os.path.join(path, "dataset.json")
    if os.path.exists(meta_path):
        with open(meta_path, encoding="utf-8") as fh:
            meta = json.load(fh)
    ds = Dataset(name=meta.get("name", os.path.basename(path)),
                 description=meta.get("description", ""))
    for collection, fpath in _object_files(path):
        with open(fpath, encoding="utf-8") as fh:
            obj = json.load(fh)
        if TYPE_COLLECTIONS.get(obj["data"]["type"]) != collection:
            raise ValueError("%s: a %s object filed under %s" % (fpath, obj["data"]["type"],
                                                                  collection))
        ds.add_object(obj)
    rel_path = os.path.join(path, "relations.json")
    if os.path.exists(rel_path):
        with open(rel_path, encoding="utf-8") as fh:
            rel = json.load(fh)
        for r in rel.get("resolutions", []):
            ds.add_resolution(r["domain"], r["ip"], r["date"], r.get("resolver", "VirusTotal"))
        for r in rel.get("relationships", []):
            ds.add_related(r["collection"], r["id"], r["relationship"], r["items"])
    return ds


def object_filename(oid):
    """File name used when writing an object to a dataset directory."""
    return oid.replace(":", "_").replace("/", "_") + ".json"


def write_dataset(ds_spec, path):
    """Write a dataset spec (objects + resolutions + relationships) to `path`.

    ``ds_spec`` is a dict: {"name", "description", "objects": [{"data":...}],
    "resolutions": [{"domain","ip","date","resolver"}], "relationships": [{"collection",
    "id","relationship","items"}]}. Output is deterministic (sorted keys where order does
    not carry meaning).
    """
    os.makedirs(path, exist_ok=True)
    if os.path.isdir(os.path.join(path, "objects")):
        shutil.rmtree(os.path.join(path, "objects"))      # no stale objects
    with open(os.path.join(path, "dataset.json"), "w", encoding="utf-8") as fh:
        json.dump({"name": ds_spec["name"], "description": ds_spec.get("description", "")},
                  fh, indent=2)
        fh.write("\n")
    for obj in ds_spec["objects"]:
        data = obj["data"]
        folder = os.path.join(path, "objects", TYPE_COLLECTIONS[data["type"]])
        os.makedirs(folder, exist_ok=True)
        with open(os.path.join(folder, object_filename(data["id"])), "w",
                  encoding="utf-8") as fh:
            json.dump(obj, fh, indent=1, ensure_ascii=False)
            fh.write("\n")
    with open(os.path.join(path, "relations.json"), "w", encoding="utf-8") as fh:
        json.dump({"resolutions": ds_spec.get("resolutions", []),
                   "relationships": ds_spec.get("relationships", [])}, fh, indent=1,
                  ensure_ascii=False)
        fh.write("\n")
