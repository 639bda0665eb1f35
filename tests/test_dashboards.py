"""Static checks of the app's dashboards, nav, visualization and UI conf files.

- every view parses; Simple XML views are version="1.1"; forms have a Submit button;
- every $token$ inside a <query> (Simple XML) or a data source query (Dashboard Studio) is
  escaped with |s, or is one of a few known-safe tokens;
- Dashboard Studio views hold a JSON definition that parses and uses the native network graph;
- the vtgraph viz stanza raises nothing Splunk does not know and declares drilldown;
- the nav names only views that exist.
Runs on Python 3.9 and 3.13 with pytest only.
"""
import configparser
import glob
import json
import os
import re
import xml.etree.ElementTree as ET

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VIEWS_DIR = os.path.join(REPO, "default", "data", "ui", "views")
VIEWS = sorted(glob.glob(os.path.join(VIEWS_DIR, "*.xml")))
SIMPLE_VIEWS = [p for p in VIEWS
                if not (ET.parse(p).getroot().tag == "dashboard" and ET.parse(p).getroot().get("version") == "2")]
# Tokens Splunk itself fills with values that cannot carry SPL (none is user-controlled text).
SAFE_TOKENS = {"earliest", "latest", "time.earliest", "time.latest", "job.sid"}
TOKEN_RE = re.compile(r"\$([^$\s]+)\$")
NETWORK_GRAPH_TYPES = {"splunk.networkGraph", "splunk.linkgraph"}


def view_id(path):
    return os.path.basename(path)


def is_studio(root):
    return root.tag == "dashboard" and root.get("version") == "2"


def unescaped_tokens(query):
    """Tokens in an SPL query that are neither |s-escaped nor known safe."""
    bad = []
    for match in TOKEN_RE.finditer(query):
        token = match.group(1)
        name, _, filters = token.partition("|")
        if filters.split("|")[-1] == "s" or (not filters and name in SAFE_TOKENS):
            continue
        bad.append(match.group(0))
    return bad


def studio_definition(root):
    definition = root.find("definition")
    assert definition is not None and definition.text, "a Studio view holds a <definition>"
    return json.loads(definition.text)


def test_views_exist():
    names = {view_id(p) for p in VIEWS}
    assert {"ioc_pivot.xml", "ioc_pivot_studio.xml"} <= names


@pytest.mark.parametrize("path", VIEWS, ids=view_id)
def test_view_parses_and_has_a_version(path):
    root = ET.parse(path).getroot()
    assert root.tag in ("form", "dashboard")
    label = root.find("label")
    assert label is not None and label.text and label.text.strip()
    if is_studio(root):
        studio_definition(root)
    else:
        assert root.get("version") == "1.1", "Simple XML views declare version=\"1.1\""


@pytest.mark.parametrize("path", SIMPLE_VIEWS, ids=view_id)
def test_simple_xml_queries_escape_tokens(path):
    root = ET.parse(path).getroot()
    queries = [q.text or "" for q in root.iter("query")]
    for query in queries:
        assert unescaped_tokens(query) == [], query


def spends_quota(root):
    """True when a view's searches can call VirusTotal (vtpivot or a non-cached vt_enrich_*)."""
    text = "\n".join(q.text or "" for q in root.iter("query"))
    return bool(re.search(r"\|\s*vtpivot\s", text) or re.search(r"`vt_enrich_(domain|ip|hash)\(", text)
                or re.search(r"\blookup\s+(local=\S+\s+)?vt_(domain|ip|hash)\s", text))


def test_spends_quota_detector():
    assert spends_quota(ET.fromstring("<form><search><query>| makeresults | vtpivot x</query></search></form>"))
    assert spends_quota(ET.fromstring("<form><search><query>| `vt_enrich_ip(ip)`</query></search></form>"))
    assert not spends_quota(ET.fromstring(
        "<form><search><query>| `vt_enrich_ip_cached(ip)` | vtpivotqueue action=status</query></search></form>"))


@pytest.mark.parametrize("path", VIEWS, ids=view_id)
def test_fieldsets_have_a_submit_button(path):
    """Forms whose searches can spend VirusTotal quota run only on Submit."""
    root = ET.parse(path).getroot()
    if not spends_quota(root):
        return  # nothing to spend: its inputs may search on change
    assert root.find("fieldset") is not None, "a quota-spending view asks before it searches"
    for fieldset in root.iter("fieldset"):
        assert fieldset.get("submitButton") == "true"
        assert fieldset.get("autoRun", "false") == "false", "typing must not spend quota"
        for element in fieldset:
            if element.tag == "input":
                assert element.get("searchWhenChanged", "false") == "false"


def test_ioc_pivot_runs_vtpivot_with_escaped_indicator_and_drills_down():
    root = ET.parse(os.path.join(VIEWS_DIR, "ioc_pivot.xml")).getroot()
    assert root.tag == "form"
    queries = "\n".join(q.text or "" for q in root.iter("query"))
    assert "eval indicator=$indicator|s$" in queries
    assert re.search(r"\|\s*vtpivot type=auto depth=\$depth\|s\$ relationships=\$relationships\|s\$ "
                     r"limit=20 max_nodes=300 indicator", queries)
    for macro in ("vt_enrich_domain(", "vt_enrich_ip(", "vt_enrich_hash("):
        assert "`" + macro in queries
    assert "lookup " not in queries, "VirusTotal lookups go through the vt_enrich_* macros"
    vizzes = [v for v in root.iter("viz") if v.get("type") == "vtpivot.vtgraph"]
    assert len(vizzes) == 1
    viz = vizzes[0]
    options = {o.get("name"): (o.text or "") for o in viz.findall("option")}
    assert options.get("drilldown") == "all"
    sets = {s.get("token"): s.text for s in viz.iter("set")}
    assert sets.get("form.indicator") == "$click.value$"
    assert sets.get("indicator") == "$click.value$"
    inputs = {i.get("token"): i for i in root.iter("input")}
    assert set(inputs) >= {"indicator", "depth", "relationships"}
    depth_choices = {c.get("value") for c in inputs["depth"].findall("choice")}
    assert depth_choices == {"1", "2"}


def test_studio_view_uses_the_native_network_graph():
    root = ET.parse(os.path.join(VIEWS_DIR, "ioc_pivot_studio.xml")).getroot()
    assert is_studio(root)
    assert root.get("theme") in ("light", "dark")
    definition = studio_definition(root)
    types = {v.get("type") for v in definition["visualizations"].values()}
    assert types & NETWORK_GRAPH_TYPES, types
    graph = next(v for v in definition["visualizations"].values() if v["type"] in NETWORK_GRAPH_TYPES)
    assert graph["dataSources"]["primary"] in definition["dataSources"]
    handlers = graph.get("eventHandlers", [])
    assert any(h["type"] == "drilldown.setToken" and h["options"]["tokens"][0]["token"] == "indicator"
               for h in handlers)
    for item in definition["layout"]["structure"]:
        assert item["item"] in definition["visualizations"]
    for input_id in definition["layout"].get("globalInputs", []):
        assert input_id in definition["inputs"]


def test_studio_queries_escape_tokens():
    checked = 0
    for path in VIEWS:
        root = ET.parse(path).getroot()
        if not is_studio(root):
            continue
        definition = studio_definition(root)
        for source in definition.get("dataSources", {}).values():
            query = source.get("options", {}).get("query", "")
            assert unescaped_tokens(query) == [], (view_id(path), query)
            if source.get("type") == "ds.chain":
                assert source["options"]["extend"] in definition["dataSources"]
            checked += 1
    assert checked >= 2


def test_token_escaping_check_catches_unescaped_tokens():
    # The checker itself: an unescaped or URL-escaped token is reported, |s is not.
    assert unescaped_tokens("| eval x=$tok$") == ["$tok$"]
    assert unescaped_tokens("| eval x=$tok|u$") == ["$tok|u$"]
    assert unescaped_tokens("| eval x=$tok|s$ | where y=$form.ind|h|s$") == []
    assert unescaped_tokens("earliest=$time.earliest$") == []


def read_conf(name):
    parser = configparser.RawConfigParser(strict=False, interpolation=None)
    parser.optionxform = str
    with open(os.path.join(REPO, "default", name)) as handle:
        text = re.sub(r"\\\n", " ", handle.read())  # Splunk's line continuations
    parser.read_string(text)
    return parser


def test_visualizations_conf_vtgraph():
    conf = read_conf("visualizations.conf")
    stanza = conf["vtgraph"]
    for key in ("label", "description", "search_fragment", "default_height"):
        assert stanza.get(key), key
    assert stanza["supports_drilldown"] == "true"
    assert int(stanza["default_height"]) >= 400
    viz_dir = os.path.join(REPO, "appserver", "static", "visualizations", "vtgraph")
    for name in ("formatter.html", "visualization.css", "preview.png"):
        assert os.path.isfile(os.path.join(viz_dir, name)), name


def test_formatter_names_match_the_viz_namespace():
    path = os.path.join(REPO, "appserver", "static", "visualizations", "vtgraph", "formatter.html")
    with open(path) as handle:
        names = re.findall(r'name="([^"]+)"', handle.read())
    assert names and all(n.startswith("{{VIZ_NAMESPACE}}.") for n in names)
    assert {n.split(".", 1)[1] for n in names} == {"sizeBy", "edgeLabels", "nodeLabels", "showLegend"}


def test_nav_lists_existing_views():
    root = ET.parse(os.path.join(REPO, "default", "data", "ui", "nav", "default.xml")).getroot()
    builtin = {"search", "datasets", "reports", "alerts", "dashboards"}
    names = {v.get("name") for v in root.iter("view")}
    assert {"ioc_pivot", "ioc_pivot_studio"} <= names
    existing = {os.path.splitext(view_id(p))[0] for p in VIEWS}
    assert names - builtin <= existing


def test_saved_searches_are_disabled_and_use_the_macros():
    conf = read_conf("savedsearches.conf")
    names = conf.sections()
    assert "vtpivot - External sender domains registered recently" in names
    assert "vtpivot - Indicators sharing infrastructure across ASNs" in names
    for name in names:
        stanza = conf[name]
        assert stanza["disabled"] == "1"
        assert stanza.get("is_scheduled", "0") == "0"
        assert "lookup " not in stanza["search"]
        assert stanza.get("description")
    assert "`vt_enrich_domain(sender_domain)`" in conf[names[0]]["search"]
    assert "vt_age_days < 90" in conf[names[0]]["search"]


def test_workflow_actions():
    conf = read_conf("workflow_actions.conf")
    pivot = conf["vtpivot_pivot"]
    vt = conf["vtpivot_open_in_virustotal"]
    for stanza in (pivot, vt):
        assert stanza["type"] == "link"
        assert stanza["link.target"] == "blank"
        fields = {f.strip() for f in stanza["fields"].split(",")}
        assert {"domain", "ip", "sha256", "md5", "hash"} <= fields
    assert pivot["link.uri"] == "/app/vtpivot/ioc_pivot?form.indicator=$@field_value$"
    assert vt["link.uri"] == "https://www.virustotal.com/gui/search/$@field_value$"
