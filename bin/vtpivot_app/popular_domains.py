"""The optional skip list of very popular domains (`[indicators] skip_popular_domains`).

A week of DNS logs is mostly google.com, microsoft.com and their CDNs: asking VirusTotal
about them spends the budget on answers nobody needs. When the setting is on, a domain on
lookups/vtpivot_popular_domains.csv (column `domain`), or a subdomain of one, is `skipped`
with the reason "popular domain (skip list)" and never sent.

The shipped list is small and hand-written (well-known services only). It leaves out, on
purpose, platforms that hand out subdomains to their customers (blogspot.com, github.io,
herokuapp.com, azurewebsites.net, cloudfront.net, ...): a subdomain there is anyone's
content and may well be malicious. Admins replace the file with an export of a popularity
ranking (Tranco, Cisco Umbrella), keeping the header `domain` and the same rule.

The set is read once per process and file version (path + mtime + size): a lookup process
pays for it once, and an edited file is picked up by the next search.
"""
import csv
import io
import os
import threading

POPULAR_FILE = os.path.join("lookups", "vtpivot_popular_domains.csv")
REASON = "popular domain (skip list)"
_cache = {}
_lock = threading.Lock()


def read_popular_file(path):
    """frozenset of lower-case names from the `domain` column (or the first column when there
    is no header). Tolerates a missing file, a BOM, CRLF, blank and '#' comment rows, and
    entries written as `*.name` or `.name` (the same as `name`: subdomains always count)."""
    try:
        with open(path, encoding="utf-8-sig", errors="replace", newline="") as handle:
            text = handle.read().replace("\x00", "")
    except OSError:
        return frozenset()
    names, column = set(), 0
    try:
        for number, row in enumerate(csv.reader(io.StringIO(text, newline=""))):
            cells = [cell.strip() for cell in row]
            lowered = [c.lower() for c in cells]
            if number == 0 and "domain" in lowered:
                column = lowered.index("domain")
                continue
            if len(cells) <= column or not cells[column] or cells[column].startswith("#"):
                continue
            name = lowered[column].lstrip("*").strip(".")
            if name and " " not in name:
                names.add(name)
    except csv.Error:
        pass  # keep what was read before the malformed row
    return frozenset(names)


def popular_set(app_root):
    path = os.path.join(app_root, POPULAR_FILE)
    try:
        stat = os.stat(path)
        version = (stat.st_mtime_ns, stat.st_size)
    except OSError:
        version = None
    with _lock:
        cached = _cache.get(path)
        if cached is not None and cached[0] == version:
            return cached[1]
    names = read_popular_file(path) if version is not None else frozenset()
    with _lock:
        _cache[path] = (version, names)
    return names


def is_popular(name, app_root):
    """True when `name` (a normalized, lower-case domain) or one of its parent domains is on
    the skip list of the app at `app_root`."""
    names = popular_set(app_root)
    if not names or not name:
        return False
    suffix = name.lower().rstrip(".")
    while True:
        if suffix in names:
            return True
        dot = suffix.find(".")
        if dot < 0:
            return False
        suffix = suffix[dot + 1:]


def checker(app_root):
    """A one-argument callable for IndicatorPolicy(popular=...)."""
    return lambda name: is_popular(name, app_root)
