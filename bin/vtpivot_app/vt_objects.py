"""VirusTotal JSON -> the flat summary records the object store keeps.

A summary holds only what the lookups and vtpivot show (a few hundred bytes to a few KB),
never the full 30-45 KB response: the store stays small and a cache hit is one json.loads.
It is the same whichever URL fetched the object, so every feature shares it.
"""

# The one fixed relationship set fetched with each object (`?relationships=`): every caller
# asks the same, so every caller shares the cached answer. All reachable with a public key.
OBJECT_RELATIONSHIPS = {
    "domain": ("resolutions", "communicating_files", "referrer_files", "subdomains", "siblings"),
    "ip": ("resolutions", "communicating_files", "referrer_files"),
    "file": ("contacted_domains", "contacted_ips", "execution_parents", "dropped_files"),
}
COLLECTIONS = {"domain": "domains", "ip": "ip_addresses", "file": "files"}
VT_TYPES = {"domain": "domain", "ip_address": "ip", "file": "file"}
MAX_NAMES = 25


def _stats(attributes):
    stats = attributes.get("last_analysis_stats") or {}
    return {
        "malicious": int(stats.get("malicious", 0) or 0),
        "suspicious": int(stats.get("suspicious", 0) or 0),
        "harmless": int(stats.get("harmless", 0) or 0),
        "undetected": int(stats.get("undetected", 0) or 0),
    }


def _common(attributes):
    fields = _stats(attributes)
    fields["reputation"] = attributes.get("reputation")
    fields["tags"] = [str(t) for t in (attributes.get("tags") or [])]
    fields["last_analysis_date"] = attributes.get("last_analysis_date")
    return fields


def cert_issuer(certificate):
    """'Let's Encrypt (R11)' from a last_https_certificate, or ''."""
    issuer = (certificate or {}).get("issuer") or {}
    org, cn = issuer.get("O", ""), issuer.get("CN", "")
    if org and cn and cn != org:
        return f"{org} ({cn})"
    return org or cn or ""


def _domain_fields(attributes):
    fields = _common(attributes)
    fields["creation_date"] = attributes.get("creation_date")
    fields["registrar"] = attributes.get("registrar") or ""
    fields["categories"] = sorted({str(v) for v in (attributes.get("categories") or {}).values()})
    fields["cert_issuer"] = cert_issuer(attributes.get("last_https_certificate"))
    fields["a_records"] = [r.get("value") for r in (attributes.get("last_dns_records") or [])
                           if r.get("type") in ("A", "AAAA") and r.get("value")]
    return fields


def _ip_fields(attributes):
    fields = _common(attributes)
    fields["asn"] = attributes.get("asn")
    fields["as_owner"] = attributes.get("as_owner") or ""
    fields["country"] = attributes.get("country") or ""
    fields["network"] = attributes.get("network") or ""
    fields["continent"] = attributes.get("continent") or ""
    return fields


def _file_fields(attributes):
    fields = _common(attributes)
    for key in ("md5", "sha1", "sha256", "size", "type_description", "meaningful_name",
                "first_submission_date"):
        fields[key] = attributes.get(key)
    fields["names"] = [str(n) for n in (attributes.get("names") or [])[:MAX_NAMES]]
    popular = attributes.get("popular_threat_classification") or {}
    fields["popular_threat_label"] = popular.get("suggested_threat_label") or ""
    return fields


FIELD_BUILDERS = {"domain": _domain_fields, "ip": _ip_fields, "file": _file_fields}


def related_from_descriptor(kind, object_id, relationship, item):
    """One related node {id, kind} from a descriptor (or full object) of a relationship."""
    item_type = item.get("type")
    item_id = str(item.get("id", ""))
    if item_type == "resolution":
        # A resolution id is the IP and the domain run together: 140.82.114.3github.com.
        attrs = item.get("attributes") or {}
        if kind == "domain":
            other = attrs.get("ip_address") or (item_id[: -len(object_id)]
                                                if item_id.endswith(object_id) else "")
            node = {"id": other, "kind": "ip"}
            stats = attrs.get("ip_address_last_analysis_stats")
        else:
            other = attrs.get("host_name") or (item_id[len(object_id):]
                                               if item_id.startswith(object_id) else "")
            node = {"id": other, "kind": "domain"}
            stats = attrs.get("host_name_last_analysis_stats")
        if attrs.get("date") is not None:
            node["date"] = attrs["date"]
        if stats:
            node["malicious"] = int(stats.get("malicious", 0) or 0)
        return node if node["id"] else None
    node_kind = VT_TYPES.get(item_type)
    if node_kind is None or not item_id:
        return None
    node = {"id": item_id, "kind": node_kind}
    stats = (item.get("attributes") or {}).get("last_analysis_stats")
    if stats:
        node["malicious"] = int(stats.get("malicious", 0) or 0)
    return node


def relationship_nodes(kind, object_id, relationship, items):
    nodes = []
    for item in items or []:
        node = related_from_descriptor(kind, object_id, relationship, item)
        if node is not None:
            nodes.append(node)
    return nodes


def summarize(kind, data):
    """Summary record of one VT object (`data` of a GET answer, with `?relationships=`)."""
    attributes = data.get("attributes") or {}
    object_id = str(data.get("id", ""))
    record = {"kind": kind, "id": object_id, "fields": FIELD_BUILDERS[kind](attributes),
              "relationships": {}, "relationship_cursors": {}}
    for name, rel in (data.get("relationships") or {}).items():
        items = rel.get("data")
        if isinstance(items, dict):  # one-to-one relationships answer a single object
            items = [items]
        record["relationships"][name] = relationship_nodes(kind, object_id, name, items)
        record["relationship_cursors"][name] = (rel.get("meta") or {}).get("cursor")
    return record


def aliases(kind, record):
    """Other ids that name the same object (a file's md5 and sha1)."""
    if kind != "file":
        return ()
    fields = record.get("fields", {})
    return tuple(h for h in (fields.get("md5"), fields.get("sha1")) if h and h != record["id"])


def resolution_ids(kind, record):
    """The multivalue `resolutions` of a lookup: IPs of a domain, domains of an IP."""
    seen = []
    for node in (record.get("relationships") or {}).get("resolutions") or ():
        node_id = node.get("id") if isinstance(node, dict) else None
        if node_id and node_id not in seen:
            seen.append(node_id)
    if kind == "domain":
        for value in (record.get("fields") or {}).get("a_records") or ():
            if value and value not in seen:
                seen.append(value)
    return seen

