"""End to end: the real bin/vt_lookup.py, spawned as Splunk spawns an external lookup (CSV
with a header on stdin, CSV on stdout, cwd a scratch folder, not the app), under both
Splunk-like interpreters (pyenv 3.9.18 and 3.13.0, without pytest), against the fake
VirusTotal server running in this process. Headers come from default/transforms.conf's
fields_list, so these tests follow the shipped contract."""
import os

import pytest

from lookup_helpers import (PY39, PY313, as_bytes, first_rows, lookup_env, lookup_input,
                            parse_output, read_all_files, require_interpreter, run_lookup,
                            transforms_command, transforms_fields)

PUBLIC = "test-public-key"
PREMIUM = "test-premium-key"
FILE = {"md5": "4dcba584d81e0e01451b9509cb07d87f",
        "sha1": "632a1983bfe662d8e7d7b6add143790a266a8659",
        "sha256": "1420de7b56a70aa9a5ed4a0d215641fe62b284769b863a0710c9d0546e41dbe8"}

pytestmark = pytest.mark.parametrize("python", [PY39, PY313], ids=["py3.9", "py3.13"])


class Splunk:
    """One search head: a SPLUNK_HOME, a scratch cwd, and the lookups run in it."""

    def __init__(self, tmp_path, vt, python, key=PUBLIC, **env):
        self.python = require_interpreter(python)
        self.vt = vt
        self.home = tmp_path / "splunk_home"
        self.cwd = tmp_path / "dispatch"
        self.cwd.mkdir(parents=True, exist_ok=True)
        self.key = key
        self.extra_env = {"VTPIVOT_NO_CLILIB": "1", "VTPIVOT_MAX_WAIT": "0",
                          "VTPIVOT_MAX_RETRIES": "1", "VTPIVOT_BACKOFF_BASE": "0.05"}
        self.extra_env.update(env)

    def env(self, key="__default__", **extra):
        env = lookup_env(self.home, self.vt.url, self.key if key == "__default__" else key)
        env.update(self.extra_env)
        env.update({k: str(v) for k, v in extra.items()})
        if env.get("VTPIVOT_NO_CLILIB") == "":
            del env["VTPIVOT_NO_CLILIB"]
        return env

    def lookup(self, stanza, queries, key="__default__", **extra):
        """Runs the transforms.conf stanza; returns (header, all rows, first rows, proc)."""
        header = transforms_fields(stanza)
        script, *args = transforms_command(stanza)
        assert script == "vt_lookup.py"
        stdin = lookup_input(header, queries)
        proc = run_lookup(self.python, args, stdin, self.env(key, **extra), str(self.cwd))
        assert proc.returncode == 0, proc.stderr.decode(errors="replace")[-3000:]
        assert proc.stderr == b"", proc.stderr.decode(errors="replace")[-3000:]
        out_header, rows = parse_output(proc.stdout)
        assert out_header == header  # the header is echoed
        firsts = first_rows(rows)
        assert [as_bytes(r["query"]) for r in firsts] == \
            [q if isinstance(q, bytes) else q.encode("utf-8") for q in queries]
        return header, rows, firsts, proc

    @property
    def log_path(self):
        return self.home / "var" / "log" / "splunk" / "vtpivot.log"

    def vt_call_lines(self):
        if not self.log_path.exists():
            return []
        return [line for line in self.log_path.read_text(encoding="utf-8").splitlines()
                if "event=vt_call" in line]


def by_query(firsts):
    return {r["query"]: r for r in firsts}


def test_domain_to_ips_to_domains_chain(fake_vt, tmp_path, python):
    sh = Splunk(tmp_path, fake_vt, python)
    _, rows, firsts, _ = sh.lookup("vt_domain", ["alpha.example"])
    assert firsts[0]["vt_status"] == "ok" and firsts[0]["vt_id"] == "alpha.example"
    ips = [r["resolutions"] for r in rows if r["resolutions"]]
    assert sorted(ips) == sorted(["192.0.2.10", "198.51.100.20", "2001:db8::10"])
    assert all(r["query"] == "alpha.example" for r in rows)
    # scalars on the first row only; multivalue rows carry query + values
    assert firsts[0]["registrar"] and all(r["registrar"] == "" for r in rows[1:])
    _, ip_rows, ip_firsts, _ = sh.lookup("vt_ip", ips)
    assert [r["vt_status"] for r in ip_firsts] == ["ok"] * 3
    for ip in ips:
        back = [r["resolutions"] for r in ip_rows if r["query"] == ip and r["resolutions"]]
        assert "alpha.example" in back, (ip, back)
    assert fake_vt.total_calls == 4  # 1 domain + 3 IPs
    assert fake_vt.calls("/domains/") == 1 and fake_vt.calls("/ip_addresses/") == 3


def test_every_vt_status(fake_vt, tmp_path, python):
    sh = Splunk(tmp_path, fake_vt, python)  # public key: 4 calls a minute, max_wait 0
    fake_vt.inject("transient", count=None, path=r"/domains/beta\.example$")
    queries = ["alpha.example", "nowhere-zz.example", "not a domain!", "corp.local",
               "beta.example", "google.com", "mail.alpha.example"]
    _, _, firsts, _ = sh.lookup("vt_domain", queries)
    got = [(r["vt_status"], r["vt_error"][:10]) for r in firsts]
    assert got == [("ok", ""), ("not_found", "[VTP-E013]"), ("invalid", "[VTP-E040]"),
                   ("skipped", "[VTP-E041]"), ("error", "[VTP-E030]"),
                   ("throttled", "[VTP-E020]"), ("throttled", "[VTP-E020]")]
    rows = by_query(firsts)
    assert "next call is possible at" in rows["google.com"]["vt_error"]
    assert rows["corp.local"]["vt_cache"] == rows["not a domain!"]["vt_cache"] == ""
    # alpha, nowhere, beta twice (503 + one retry): the 4 tokens of the minute
    assert fake_vt.total_calls == 4
    assert len(sh.vt_call_lines()) == 4


def test_inputs_are_answered_under_their_exact_value(fake_vt, tmp_path, python):
    sh = Splunk(tmp_path, fake_vt, python)
    queries = ["alpha[.]example", "hxxps://alpha[.]example/x", "ALPHA.EXAMPLE", "",
               "bücher.example", "xn--bcher-kva.example", "10.0.0.1", "192.168.1.1",
               "corp.local", "not a domain!", "alpha.example", "alpha[.]example", ""]
    _, rows, firsts, _ = sh.lookup("vt_domain", queries)
    assert [r["vt_id"] for r in firsts] == [
        "alpha.example", "alpha.example", "alpha.example", "", "xn--bcher-kva.example",
        "xn--bcher-kva.example", "", "", "corp.local", "", "alpha.example", "alpha.example", ""]
    assert [r["vt_status"] for r in firsts] == [
        "ok", "ok", "ok", "", "ok", "ok", "invalid", "invalid", "skipped", "invalid", "ok",
        "ok", ""]
    assert "vt_ip" in by_query(firsts)["10.0.0.1"]["vt_error"]
    # two distinct indicators behind all these spellings: two calls
    assert fake_vt.total_calls == 2
    assert fake_vt.calls("/domains/alpha.example") == 1
    assert fake_vt.calls("/domains/xn--bcher-kva.example") == 1
    # each spelling gets all its multivalue rows, in input order
    groups = []
    for row in rows:
        if row["query"] and (not groups or groups[-1] != row["query"] or row["vt_status"]):
            groups.append(row["query"])
    assert groups == [q for q in queries if q]
    assert len([r for r in rows if r["query"] == "ALPHA.EXAMPLE"]) == 3  # 3 resolutions


def test_ip_lookup_ipv6_private_invalid(fake_vt, tmp_path, python):
    sh = Splunk(tmp_path, fake_vt, python)
    queries = ["2001:DB8::10", "2001:db8:0:0:0:0:0:10", "10.0.0.1", "fe80::1", "127.0.0.1",
               "999.1.1.1", "alpha.example", "8.8.8.8", "192.0.2[.]10"]
    _, _, firsts, _ = sh.lookup("vt_ip", queries)
    got = {r["query"]: (r["vt_status"], r["vt_id"]) for r in firsts}
    assert got["2001:DB8::10"] == ("ok", "2001:db8::10")
    assert got["2001:db8:0:0:0:0:0:10"] == ("ok", "2001:db8::10")
    assert got["10.0.0.1"][0] == got["fe80::1"][0] == got["127.0.0.1"][0] == "skipped"
    assert got["999.1.1.1"][0] == got["alpha.example"][0] == "invalid"
    assert got["8.8.8.8"] == ("ok", "8.8.8.8") and got["192.0.2[.]10"] == ("ok", "192.0.2.10")
    assert fake_vt.total_calls == 3  # 2001:db8::10, 8.8.8.8, 192.0.2.10


def test_awkward_bytes_are_echoed_and_answered(fake_vt, tmp_path, python):
    sh = Splunk(tmp_path, fake_vt, python)
    big = "a" * (2 * 1024 * 1024) + ".example"
    queries = [big, b"\xff\xfe\xfdbad.example", b"nul\x00byte.example", 'quo"ted.example',
               "new\nline.example", 'both,"and"\r\nmore', "alpha.example", b"caf\xc3\xa9.example"]
    _, _, firsts, proc = sh.lookup("vt_domain", queries)
    statuses = [r["vt_status"] for r in firsts]
    assert statuses[:6] == ["invalid"] * 6
    assert statuses[6] == "ok"
    assert len(proc.stdout) > 2 * 1024 * 1024
    assert fake_vt.total_calls == 2  # alpha.example and café.example (IDN, not in dataset)
    assert statuses[7] == "not_found"
    for row in firsts[:6]:
        assert row["vt_error"].startswith("[VTP-E040]")


@pytest.mark.parametrize("fault, status, code, calls", [
    ("quota", "throttled", "VTP-E023", 1),      # QuotaExceeded opens the breaker: beta waits
    ("transient", "error", "VTP-E030", 2 + 1),
    ("hang", "error", "VTP-E030", 2 + 1),
    ("malformed", "error", "VTP-E033", 2 + 1),
    ("truncate", "error", "VTP-E033", 2 + 1),
    ("drop", "error", "VTP-E031", 2 + 1),
])
def test_server_faults_become_row_statuses(fake_vt, tmp_path, python, fault, status, code,
                                           calls):
    sh = Splunk(tmp_path, fake_vt, python, VTPIVOT_READ_TIMEOUT="0.3")
    options = {"seconds": 3} if fault == "hang" else {}
    fake_vt.inject(fault, count=None, path=r"/domains/alpha\.example$", **options)
    queries = ["alpha.example", "beta.example", "ALPHA.example"]
    _, _, firsts, _ = sh.lookup("vt_domain", queries)
    assert [r["query"] for r in firsts] == queries
    alpha, beta, alpha2 = firsts
    assert (alpha["vt_status"], alpha["vt_error"][:10]) == (status, f"[{code}]")
    assert (alpha2["vt_status"], alpha2["vt_error"]) == (alpha["vt_status"], alpha["vt_error"])
    if fault == "quota":
        assert (beta["vt_status"], beta["vt_error"][:10]) == ("throttled", "[VTP-E023]")
        assert "00:00" in beta["vt_error"] or "UTC" in beta["vt_error"]
    else:
        assert beta["vt_status"] == "ok"
    if fault == "hang":
        assert "timeout" in alpha["vt_error"]
    assert fake_vt.total_calls == calls
    assert len(sh.vt_call_lines()) == calls


def test_real_429_from_the_server_opens_the_breaker(fake_vt, tmp_path, python):
    # our budget set above the key's real quota: VirusTotal's own 429 is the last word
    sh = Splunk(tmp_path, fake_vt, python, VTPIVOT_PER_MINUTE="100")
    queries = ["alpha.example", "beta.example", "google.com", "mail.alpha.example",
               "www.alpha.example", "parked-01.example"]
    _, _, firsts, _ = sh.lookup("vt_domain", queries)
    assert [r["vt_status"] for r in firsts] == ["ok"] * 4 + ["throttled"] * 2
    assert all(r["vt_error"].startswith("[VTP-E023]") for r in firsts[4:])
    assert fake_vt.total_calls == 5  # the 6th never left: the breaker was open
    assert fake_vt.stats()["by_status"] == {"200": 4, "429": 1}


def test_second_run_is_all_cache_hits(fake_vt, tmp_path, python):
    sh = Splunk(tmp_path, fake_vt, python, key=PREMIUM, VTPIVOT_TIER="premium",
                VTPIVOT_PER_MINUTE="0")
    queries = ["alpha.example", "beta.example", "google.com", "alpha.example",
               "parked-01.example", "nowhere-zz.example"]
    _, _, first, _ = sh.lookup("vt_domain", queries)
    assert [r["vt_cache"] for r in first] == ["miss"] * 6
    assert fake_vt.total_calls == 5  # 5 distinct uncached indicators
    _, _, second, _ = sh.lookup("vt_domain", queries)
    assert fake_vt.total_calls == 5
    assert [r["vt_cache"] for r in second] == ["hit"] * 6
    assert [r["vt_status"] for r in second] == ["ok"] * 5 + ["not_found"]
    assert [r["vt_id"] for r in second] == [r["vt_id"] for r in first]


def test_cached_twins_never_call(fake_vt, tmp_path, python):
    sh = Splunk(tmp_path, fake_vt, python)
    queries = ["alpha.example", "beta.example", "corp.local"]
    _, _, cold, _ = sh.lookup("vt_domain_cached", queries)  # cold cache
    assert [r["vt_status"] for r in cold] == ["skipped", "skipped", "skipped"]
    assert cold[0]["vt_error"].startswith("[VTP-E080]")
    assert cold[1]["vt_error"].startswith("[VTP-E080]")
    assert cold[2]["vt_error"].startswith("[VTP-E041]")
    assert fake_vt.total_calls == 0
    sh.lookup("vt_domain", ["alpha.example"])
    assert fake_vt.total_calls == 1
    _, _, warm, _ = sh.lookup("vt_domain_cached", queries, key=None)  # needs no key at all
    assert [(r["vt_status"], r["vt_cache"]) for r in warm[:2]] == [("ok", "hit"),
                                                                   ("skipped", "miss")]
    assert fake_vt.total_calls == 1
    for stanza, query in (("vt_ip_cached", "8.8.8.8"), ("vt_hash_cached", FILE["md5"])):
        _, _, rows, _ = sh.lookup(stanza, [query])
        assert rows[0]["vt_status"] == "skipped" and rows[0]["vt_error"].startswith("[VTP-E080]")
    assert fake_vt.total_calls == 1


def test_no_key_every_row_is_e001_with_a_fix(fake_vt, tmp_path, python):
    sh = Splunk(tmp_path, fake_vt, python)
    queries = ["alpha.example", "beta.example", "not a domain!", ""]
    _, _, firsts, _ = sh.lookup("vt_domain", queries, key=None)
    for row in firsts[:2]:
        assert row["vt_status"] == "error"
        assert row["vt_error"].startswith("[VTP-E001]")
        assert "setup page" in row["vt_error"]  # says how to fix it
    assert firsts[2]["vt_status"] == "invalid"
    assert firsts[3]["vt_status"] == ""  # empty query: passed through
    assert fake_vt.total_calls == 0


def test_no_key_inside_splunk_is_e001(fake_vt, tmp_path, python):
    """As in Splunk: SPLUNK_HOME set and Splunk's splunk.clilib.cli_common importable (a
    stand-in that has no stored password), no VT_API_KEY."""
    stub = tmp_path / "splunk_py"
    (stub / "splunk" / "clilib").mkdir(parents=True)
    (stub / "splunk" / "__init__.py").write_text("")
    (stub / "splunk" / "clilib" / "__init__.py").write_text("")
    (stub / "splunk" / "clilib" / "cli_common.py").write_text(
        "def getConfStanza(conf, stanza):\n"
        "    raise Exception('stanza %s not found in %s.conf' % (stanza, conf))\n"
        "def decrypt(value):\n    raise AssertionError('nothing to decrypt')\n")
    sh = Splunk(tmp_path, fake_vt, python)
    _, _, firsts, _ = sh.lookup("vt_domain", ["alpha.example"], key=None,
                                VTPIVOT_NO_CLILIB="", PYTHONPATH=str(stub))
    assert firsts[0]["vt_status"] == "error"
    assert firsts[0]["vt_error"].startswith("[VTP-E001]")
    # and outside Splunk (plain Python, SPLUNK_HOME set): the credential module is missing
    _, _, plain, _ = sh.lookup("vt_domain", ["alpha.example"], key=None, VTPIVOT_NO_CLILIB="")
    assert plain[0]["vt_status"] == "error" and plain[0]["vt_error"].startswith("[VTP-E002]")
    assert fake_vt.total_calls == 0


def test_hash_lookup_by_md5_sha1_sha256(fake_vt, tmp_path, python):
    sh = Splunk(tmp_path, fake_vt, python)
    _, rows, firsts, _ = sh.lookup("vt_hash", [FILE["md5"]])
    assert (firsts[0]["vt_status"], firsts[0]["vt_id"]) == ("ok", FILE["sha256"])
    assert (firsts[0]["md5"], firsts[0]["sha1"], firsts[0]["sha256"]) == \
        (FILE["md5"], FILE["sha1"], FILE["sha256"])
    assert any(r["names"] for r in rows)
    _, _, again, _ = sh.lookup("vt_hash", [FILE["sha1"].upper(), FILE["sha256"],
                                           "not-a-hash", "0" * 31])
    assert [(r["vt_status"], r["vt_id"], r["vt_cache"]) for r in again[:2]] == \
        [("ok", FILE["sha256"], "hit")] * 2
    assert [r["vt_status"] for r in again[2:]] == ["invalid", "invalid"]
    assert fake_vt.total_calls == 1


def test_log_has_one_vt_call_per_request_and_never_the_key(fake_vt_factory, tmp_path, python):
    key = "E2E-DISTINCTIVE-KEY-0b7d1e55aa"
    vt = fake_vt_factory(keys={key: "premium"})
    sh = Splunk(tmp_path, vt, python, key=key, VTPIVOT_TIER="premium", VTPIVOT_PER_MINUTE="0")
    vt.inject("transient", count=1, path=r"/domains/beta\.example$")
    sh.lookup("vt_domain", ["alpha.example", "beta.example", "nowhere-zz.example"])
    sh.lookup("vt_ip", ["8.8.8.8", "192.0.2.10"])
    sh.lookup("vt_hash", [FILE["sha1"]])
    assert vt.total_calls == 7  # 3 domains (+1 retry), 2 IPs, 1 file
    assert sh.log_path.exists()
    assert len(sh.vt_call_lines()) == 7
    assert sum("event=lookup_done" in line
               for line in sh.log_path.read_text(encoding="utf-8").splitlines()) == 3
    files = read_all_files(str(sh.home))
    assert files and any(p.endswith(".sqlite") for p in files)
    for path, data in files.items():
        assert key.encode() not in data, path
    assert key not in os.listdir(str(sh.cwd))


def test_nul_byte_reason_names_the_real_character(fake_vt, tmp_path, python):
    sh = Splunk(tmp_path, fake_vt, python)
    _, _, firsts, _ = sh.lookup("vt_domain", [b"nul\x00byte.example"])
    assert firsts[0]["vt_status"] == "invalid"
    assert "U+0000" in firsts[0]["vt_error"], firsts[0]["vt_error"]


def test_a_fully_cached_lookup_never_imports_the_network_stack(fake_vt, tmp_path, python):
    """Splunk starts a lookup process per search: a cache hit must not pay for importing
    requests/urllib3/requests_cache."""
    import subprocess

    sh = Splunk(tmp_path, fake_vt, python, key=PREMIUM, VTPIVOT_TIER="premium")
    sh.lookup("vt_domain", ["alpha.example", "beta.example"])
    calls = fake_vt.total_calls
    header = transforms_fields("vt_domain")
    stdin = lookup_input(header, ["alpha.example", "beta.example"])
    probe = ("import sys, io; sys.path.insert(0, sys.argv[1]); import vtpivot_bootstrap; "
             "from vtpivot_app.lookup_runner import main; "
             "out = io.BytesIO(); main(['domain'], stdin=sys.stdin.buffer, stdout=out); "
             "print(sorted(m for m in ('requests', 'urllib3', 'requests_cache', 'splunklib') "
             "if m in sys.modules)); print(out.getvalue().count(b',hit,'))")
    bin_dir = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "bin")
    proc = subprocess.run([sh.python, "-c", probe, bin_dir], input=stdin, capture_output=True,
                          env=sh.env(), cwd=str(sh.cwd))
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")[-2000:]
    imported, hits = proc.stdout.decode().splitlines()
    assert imported == "[]"
    assert hits == "2" and fake_vt.total_calls == calls
