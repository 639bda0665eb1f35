"""`make demo`: the phishing investigation of demo/scenario/STORY.md, end to end, offline.

It runs the app's real entry points the way Splunk runs them (the lookups as CSV over
stdin/stdout, vtpivot over the chunked protocol v2) under a Splunk-like Python 3.9, against
the local VirusTotal stand-in (devtools/fakevt) serving the scenario dataset on 127.0.0.1.
Then it draws the pivot with the app's own graph bundle (a standalone HTML page and a PNG
screenshot from headless Chromium), builds the package and reports AppInspect's summary.

With --live and VT_API_KEY set, the same lookups and pivot run against the real VirusTotal
for the one indicator given with --indicator, within the key's budget.
"""
import argparse
import collections
import csv
import datetime
import io
import json
import os
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(REPO, "devtools"))
from splunk_chunked import run_command, searchinfo  # noqa: E402  (the splunkd side)

SCENARIO = os.path.join(HERE, "scenario")
DEMO_KEY = "demo-premium-key"
PY39 = os.environ.get("PY39") or os.path.expanduser("~/.pyenv/versions/3.9.18/bin/python")
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                  "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--hide-scrollbars"]


# ---- printing --------------------------------------------------------------------------
def title(text):
    print(f"\n\033[1m{text}\033[0m" if sys.stdout.isatty() else f"\n== {text}")


def table(rows, columns, limit=40):
    """A readable fixed-width table of dict rows."""
    rows = list(rows)
    shown = [[str(r.get(c, "")) for c in columns] for r in rows[:limit]]
    widths = [min(42, max([len(c)] + [len(v) for v in col]))
              for c, col in zip(columns, zip(*shown) if shown else [[]] * len(columns))]
    line = "  ".join(c.ljust(w) for c, w in zip(columns, widths))
    print("  " + line)
    print("  " + "  ".join("-" * w for w in widths))
    for values in shown:
        print("  " + "  ".join((v if len(v) <= w else v[:w - 1] + "~").ljust(w)
                               for v, w in zip(values, widths)))
    if len(rows) > limit:
        print(f"  ... {len(rows) - limit} more rows")


def day(epoch):
    if not epoch:
        return ""
    return datetime.datetime.fromtimestamp(int(epoch), tz=datetime.timezone.utc).strftime(
        "%Y-%m-%d")


# ---- the VirusTotal side -----------------------------------------------------------------
class FakeVT:
    """The local VirusTotal stand-in as a subprocess (like a real remote service)."""

    def __init__(self, dataset):
        env = dict(os.environ, PYTHONPATH=os.path.join(REPO, "devtools"))
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "fakevt", "--dataset", dataset, "--port", "0",
             "--key", f"{DEMO_KEY}:premium"], stdout=subprocess.PIPE, env=env, text=True)
        ready = json.loads(self.proc.stdout.readline())
        self.url, self.control = ready["url"], ready["control"]

    def total_calls(self):
        from urllib.request import urlopen

        with urlopen(self.control + "/stats", timeout=10) as response:
            return json.loads(response.read().decode("utf-8"))["total"]

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=10)


class Calls:
    """Counts VirusTotal calls per step: from the stand-in's request log offline, from the
    app's own log (one event=vt_call line per request) when live."""

    def __init__(self, vt, log_path):
        self.vt, self.log_path = vt, log_path

    def now(self):
        if self.vt is not None:
            return self.vt.total_calls()
        if not os.path.exists(self.log_path):
            return 0
        with open(self.log_path, encoding="utf-8", errors="replace") as handle:
            return sum(1 for line in handle if "event=vt_call" in line and "cache=miss" in line)


# ---- the app's entry points, as Splunk runs them ----------------------------------------
def lookup(kind, values, env):
    """Run bin/vt_lookup.py like Splunk: header from transforms.conf, CSV in, CSV out."""
    header = fields_list(f"vt_{kind}")
    buf = io.StringIO(newline="")
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    for value in values:
        writer.writerow([value] + [""] * (len(header) - 1))
    proc = subprocess.run([PY39, os.path.join(REPO, "bin", "vt_lookup.py"), kind],
                          input=buf.getvalue().encode("utf-8"), stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, env=env, cwd=env["SPLUNK_HOME"], check=True)
    return fold_multivalue(csv.DictReader(io.StringIO(proc.stdout.decode("utf-8"),
                                                      newline="")))


def fold_multivalue(rows):
    """What Splunk does with several answer rows for one query: multivalue fields."""
    folded = collections.OrderedDict()
    for row in rows:
        record = folded.setdefault(row["query"], {})
        for name, value in row.items():
            if value != "":
                record.setdefault(name, [])
                if value not in record[name]:
                    record[name].append(value)
    return [{k: (v[0] if len(v) == 1 else v) for k, v in rec.items()}
            for rec in folded.values()]


def as_list(value):
    return value if isinstance(value, list) else ([value] if value else [])


def fields_list(stanza):
    path = os.path.join(REPO, "default", "transforms.conf")
    current = None
    for line in open(path, encoding="utf-8"):
        line = line.strip()
        if line.startswith("["):
            current = line[1:-1]
        elif current == stanza and line.startswith("fields_list"):
            return [f.strip() for f in line.split("=", 1)[1].split(",")]
    raise SystemExit(f"no fields_list for {stanza}")


def vtpivot(args, seed_field, seed, env):
    """`| makeresults | eval <field>=<seed> | vtpivot <args>` over the chunked protocol."""
    info = searchinfo(args, app="search", splunkd_uri="https://127.0.0.1:1",
                      dispatch_dir=env["SPLUNK_HOME"])
    answer = run_command([PY39, os.path.join(REPO, "bin", "vtpivot.py")], info,
                         [[{"_time": str(int(time.time())), seed_field: seed}]], env=env,
                         timeout=300)
    if answer.returncode != 0 or answer.errors():
        raise SystemExit(f"vtpivot failed: {answer.errors()} {answer.stderr[-2000:]}")
    return answer


def stats_count_by(records, *fields):
    """`| stats count BY a, b` (rows where every BY field has a value)."""
    counts = collections.Counter(tuple(r.get(f, "") for f in fields) for r in records
                                 if all(r.get(f) for f in fields))
    return [dict(zip(fields + ("count",), key + (str(n),))) for key, n in sorted(counts.items())]


# ---- the graph -----------------------------------------------------------------------------
def write_graph_html(records, out_dir):
    """A standalone page: the app's visualization bundle, loaded through require.js with
    stand-ins for Splunk's viz API, fed the vtpivot edge list (what the dashboard shows)."""
    viz_dir = os.path.join(REPO, "appserver", "static", "visualizations", "vtgraph")
    parts = {
        "require": os.path.join(REPO, "src", "viz", "node_modules", "requirejs", "require.js"),
        "stubs": os.path.join(REPO, "src", "viz", "harness", "splunk_stubs.js"),
        "viz": os.path.join(viz_dir, "visualization.js"),
        "css": os.path.join(viz_dir, "visualization.css"),
    }
    missing = [p for p in parts.values() if not os.path.exists(p)]
    if missing:
        raise SystemExit(f"graph bundle missing ({missing[0]}): run `make viz`")
    text = {k: open(p, encoding="utf-8").read() for k, p in parts.items()}
    columns = ["src", "src_type", "relationship", "dst", "dst_type", "dst_malicious",
               "src_malicious", "dst_asn", "dst_as_owner", "dst_creation_date",
               "dst_cert_issuer", "resolution_date"]
    rows = [[r.get(c, "") for c in columns] for r in records if r.get("dst")]
    data = json.dumps({"fields": [{"name": c} for c in columns], "rows": rows})
    # The viz module is anonymous AMD: name it so the page can require it inline.
    viz_js = text["viz"].replace("define(", "define('vtgraph',", 1)
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>vtpivot: acme-flnance.example pivot</title>
<style>{text["css"]}
html, body {{ margin: 0; background: #f2f4f5; font-family: sans-serif; }}
h1 {{ font-size: 16px; margin: 10px 14px 4px; color: #1a1c20; }}
p.sub {{ font-size: 12px; margin: 0 14px 8px; color: #5c6773; }}
#panel {{ position: relative; width: 1360px; height: 800px; margin: 0 14px; background: #fff; }}
</style>
<script>{text["require"]}</script>
<script>{text["stubs"]}</script>
<script>{viz_js}</script>
</head><body>
<h1>vtpivot domain depth=2 from acme-flnance.example</h1>
<p class="sub">{len(rows)} edges &middot; the vtgraph visualization of the vtpivot app, rendered offline</p>
<div id="panel"></div>
<script>
require(['vtgraph'], function (Viz) {{
  var viz = new Viz({{ el: document.getElementById('panel') }});
  var data = {data};
  viz.updateView(viz.formatData(data, {{}}), {{}});
  viz.reflow();  // Splunk Web calls reflow once the panel has its size
  window.vizReady = true;
}});
</script>
</body></html>"""
    path = os.path.join(out_dir, "graph.html")
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(page)
    return path


def find_chromium():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


def screenshot(html_path, png_path):
    chromium = find_chromium()
    if not chromium:
        return "Chromium is not installed (apt-get install chromium): no PNG this time"
    profile = os.path.join(os.path.dirname(png_path), "chromium-profile")
    shutil.rmtree(profile, ignore_errors=True)
    cmd = [chromium] + CHROMIUM_FLAGS + [
        f"--user-data-dir={profile}", "--window-size=1390,880",
        "--virtual-time-budget=15000", f"--screenshot={png_path}",
        "file://" + os.path.abspath(html_path)]
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120)
    shutil.rmtree(profile, ignore_errors=True)
    if not os.path.exists(png_path):
        return f"Chromium made no screenshot: {proc.stderr.decode('utf-8', 'replace')[-500:]}"
    return ""


# ---- the story ------------------------------------------------------------------------------
def investigate(seed, env, calls, out_dir):
    summary = {"seed": seed}
    title(f"1. The reply-to domain: | makeresults | eval domain=\"{seed}\" | `vt_enrich_domain(domain)`")
    before = calls.now()
    domain = lookup("domain", [seed], env)[0]
    created = domain.get("creation_date")
    table([{"domain": seed, "vt_status": domain.get("vt_status"),
            "malicious": domain.get("malicious", ""), "created": day(created),
            "age_days": domain.get("age_days", ""), "registrar": domain.get("registrar", ""),
            "cert_issuer": domain.get("cert_issuer", "")}],
          ["domain", "vt_status", "malicious", "created", "age_days", "registrar",
           "cert_issuer"])
    ips = as_list(domain.get("resolutions"))
    print(f"  resolutions: {', '.join(ips) or '(none)'}   [{calls.now() - before} VT call(s)]")
    summary.update(domain=domain, ips=ips)

    title("2. Its IP addresses: | mvexpand vt_resolutions | `vt_enrich_ip(ip_address)`")
    before = calls.now()
    ip_rows = lookup("ip", ips, env)
    table([{"ip_address": r["query"], "asn": r.get("asn", ""), "as_owner": r.get("as_owner", ""),
            "country": r.get("country", ""), "malicious": r.get("malicious", ""),
            "domains_seen": len(as_list(r.get("resolutions")))} for r in ip_rows],
          ["ip_address", "asn", "as_owner", "country", "malicious", "domains_seen"])
    print(f"  [{calls.now() - before} VT call(s) for {len(ips)} IPs]")
    neighbours = sorted({d for r in ip_rows for d in as_list(r.get("resolutions"))} - {seed})
    summary.update(ip_rows=ip_rows, neighbours=neighbours)

    title("3. Other domains on those IPs: | `vt_enrich_domain(other_domain)`")
    before = calls.now()
    other = lookup("domain", neighbours, env) if neighbours else []
    table([{"domain": r["query"], "created": day(r.get("creation_date")),
            "age_days": r.get("age_days", ""), "cert_issuer": r.get("cert_issuer", ""),
            "malicious": r.get("malicious", ""), "registrar": r.get("registrar", "")}
           for r in other],
          ["domain", "created", "age_days", "cert_issuer", "malicious", "registrar"])
    print(f"  [{calls.now() - before} VT call(s) for {len(neighbours)} domains]")
    summary["other"] = other

    args = ["domain", "depth=2"]
    title("4. | makeresults | eval domain=... | vtpivot domain depth=2 | stats count BY domain, ip")
    before = calls.now()
    first = vtpivot(args, "domain", seed, env)
    first_calls = calls.now() - before
    edges = first.records
    table(stats_count_by(edges, "domain", "ip"), ["domain", "ip", "count"], limit=60)
    metrics = first.metrics()
    print(f"  {len(edges)} edges; {first_calls} VT call(s) this run "
          f"(the lookups above had already cached some nodes); job metrics: "
          f"{', '.join(f'{k}={v}' for k, v in sorted(metrics.items()))}")
    before = calls.now()
    second = vtpivot(args, "domain", seed, env)
    second_calls = calls.now() - before
    print(f"  the same pivot again: {len(second.records)} edges, {second_calls} VT call(s) "
          f"(everything from the shared cache)")
    summary.update(edges=edges, pivot_calls=(first_calls, second_calls))

    title("5. Shared infrastructure by ASN: | stats dc(domain) values(ip) BY dst_asn, dst_as_owner")
    by_asn = collections.OrderedDict()
    for r in edges:
        if r.get("dst_type") == "ip" and r.get("dst_asn"):
            entry = by_asn.setdefault((r["dst_asn"], r.get("dst_as_owner", "")), set())
            entry.add(r["dst"])
    domains_by_ip = collections.defaultdict(set)
    for r in edges:
        if r.get("domain") and r.get("ip"):
            domains_by_ip[r["ip"]].add(r["domain"])
    asn_rows = [{"asn": f"AS{asn}", "as_owner": owner, "ips": ", ".join(sorted(ip_set)),
                 "domains": len(set().union(*(domains_by_ip[i] for i in ip_set)))}
                for (asn, owner), ip_set in by_asn.items()]
    table(asn_rows, ["asn", "as_owner", "ips", "domains"])
    summary["asn_rows"] = asn_rows

    html = write_graph_html(edges, out_dir)
    png = os.path.join(out_dir, "graph.png")
    if os.path.exists(png):
        os.remove(png)
    problem = screenshot(html, png)
    summary.update(html=html, png=png if not problem else "", graph_problem=problem)
    return summary


def narrative(summary, facts):
    title("What the analyst learns")
    domain = summary["domain"]
    created = domain.get("creation_date")
    age = domain.get("age_days", "?")
    owners = sorted({r.get("as_owner", "") for r in summary["ip_rows"] if r.get("as_owner")})
    lines = [
        f"- {summary['seed']} was registered {day(created)} ({age} days ago) at "
        f"{domain.get('registrar', '?')}, {domain.get('malicious', 0)} engines flag it "
        f"malicious; its certificate comes from {domain.get('cert_issuer', '?')}.",
        f"- It resolved to {len(summary['ips'])} IP addresses owned by {len(owners)} different "
        f"ASNs: {', '.join(owners)}.",
    ]
    partner = facts.get("partner_domain", "")
    lookalikes = [r["query"] for r in summary["other"]
                  if partner and r["query"] != partner and _similar(r["query"], partner)]
    if lookalikes:
        lines.append(f"- Among the {len(summary['other'])} domains sharing those IPs, "
                     f"{', '.join(lookalikes)} impersonates the partner {partner}.")
    old_le = [r["query"] for r in summary["other"]
              if "let's encrypt" in str(r.get("cert_issuer", "")).lower()
              and str(r.get("age_days", "0")).isdigit() and int(r["age_days"]) > 3 * 365]
    if old_le:
        lines.append(f"- Years-old domains on the same hosts use Let's Encrypt certificates: "
                     f"{', '.join(old_le)} (compromised or resold sites serving the kit).")
    first, second = summary["pivot_calls"]
    lines.append(f"- vtpivot walked {len(summary['edges'])} edges at depth 2 with {first} "
                 f"VirusTotal call(s); re-running it cost {second}.")
    print("\n".join(lines))
    return lookalikes, old_le


def _similar(a, b):
    """A look-alike: same length and at most two characters differ (l/1, i/l...)."""
    a, b = a.split(".")[0], b.split(".")[0]
    return len(a) == len(b) and 0 < sum(x != y for x, y in zip(a, b)) <= 2


def package_summary(package):
    title("The package and AppInspect (Splunk Cloud, precert)")
    if not package or not os.path.exists(package):
        print(f"  no package at {package}: run `make package`")
        return
    tools_python = os.path.join(REPO, ".venv", "tools", "bin", "python")
    python = tools_python if os.path.exists(tools_python) else sys.executable
    proc = subprocess.run([python, os.path.join(REPO, "devtools", "inspect_package.py"),
                           package, "--reuse"], stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True)
    print(f"  {package} ({os.path.getsize(package)} bytes)")
    for line in proc.stdout.splitlines():
        print("  " + line)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--package", default="")
    parser.add_argument("--out", default=os.path.join(HERE, "out"))
    parser.add_argument("--live", action="store_true",
                        help="run against the real VirusTotal (needs VT_API_KEY)")
    parser.add_argument("--indicator", default="", help="the domain to pivot from (--live)")
    parser.add_argument("--skip-package", action="store_true")
    args = parser.parse_args(argv)

    out_dir = os.path.abspath(args.out)
    splunk_home = os.path.join(out_dir, "splunk_home")
    shutil.rmtree(out_dir, ignore_errors=True)  # a fresh cache: the first run shows its calls
    os.makedirs(splunk_home)
    facts = json.load(open(os.path.join(SCENARIO, "facts.json"), encoding="utf-8"))
    env = dict(os.environ, SPLUNK_HOME=splunk_home, VTPIVOT_LOG_LEVEL="INFO")
    env.pop("VTPIVOT_CONF", None)
    vt = None
    if args.live:
        if not env.get("VT_API_KEY") or not args.indicator:
            raise SystemExit("--live needs VT_API_KEY in the environment and --indicator "
                             "<domain>; it spends real quota (about 15 calls at depth 2).")
        seed = args.indicator
        print(f"LIVE against {env.get('VT_API_URL', 'https://www.virustotal.com/api/v3')}: "
              "the budget in vtpivot.conf applies (a public key: 4/min, 500/day; rows "
              "beyond it come back throttled).")
    else:
        vt = FakeVT(SCENARIO)
        seed = facts["lookalike"]["domain"]
        env.update(VT_API_URL=vt.url, VT_API_KEY=DEMO_KEY, VTPIVOT_TIER="premium",
                   VTPIVOT_PER_MINUTE="120", VTPIVOT_PER_DAY="5000")
        email = facts["email"]
        print(f"The story ({os.path.relpath(os.path.join(SCENARIO, 'STORY.md'), REPO)}): "
              f"{email['to']} received \"{email['subject']}\" from {email['from']} "
              f"(a compromised partner mailbox), reply-to {email['reply_to']}.\n"
              f"Offline: VirusTotal is played by devtools/fakevt at {vt.url}.")
    calls = Calls(vt, os.path.join(splunk_home, "var", "log", "splunk", "vtpivot.log"))
    try:
        summary = investigate(seed, env, calls, out_dir)
        lookalikes, old_le = narrative(summary, facts)
        total = calls.now()
    finally:
        if vt is not None:
            vt.stop()
    title("VirusTotal calls and cache")
    print(f"  {total} VirusTotal call(s) in all; log: "
          f"{os.path.relpath(calls.log_path, REPO)}")
    title("The graph")
    print(f"  HTML: {os.path.relpath(summary['html'], REPO)}")
    print(f"  PNG:  {os.path.relpath(summary['png'], REPO) if summary['png'] else summary['graph_problem']}")
    if not args.skip_package:
        package_summary(args.package)
    result = {"seed": seed, "ips": summary["ips"], "lookalikes": lookalikes,
              "old_letsencrypt": old_le, "pivot_calls": summary["pivot_calls"],
              "asns": [r["asn"] for r in summary["asn_rows"]], "edges": len(summary["edges"]),
              "html": summary["html"], "png": summary["png"], "total_calls": total}
    with open(os.path.join(out_dir, "summary.json"), "w", encoding="utf-8") as handle:
        json.dump(result, handle, indent=1)
    return result


if __name__ == "__main__":
    main()
