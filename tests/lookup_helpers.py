"""Helpers shared by the HTTP-level tests (test_vt_client, test_enrichment, test_lookup_e2e).

No fixtures here: plain functions and small classes, importable from tests/ (on sys.path
through conftest.py) and from bench/.
"""
import configparser
import csv
import io
import os
import shutil
import subprocess

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(REPO, "bin")
LOOKUP_SCRIPT = os.path.join(BIN, "vt_lookup.py")
PY39 = os.path.expanduser("~/.pyenv/versions/3.9.18/bin/python")
PY313 = os.path.expanduser("~/.pyenv/versions/3.13.0/bin/python")


class SleepRecorder:
    """Injected instead of time.sleep: records the delays, never sleeps."""

    def __init__(self, clock=None):
        self.delays = []
        self.clock = clock

    def __call__(self, seconds):
        self.delays.append(seconds)
        if self.clock is not None:
            self.clock.advance(seconds)


class FakeClock:
    """A settable epoch clock (starts at the real time so TTL horizons stay sane)."""

    def __init__(self, start=None):
        import time

        self.now = float(start if start is not None else time.time())

    def __call__(self):
        return self.now

    def advance(self, seconds):
        self.now += float(seconds)


def app_version():
    parser = configparser.RawConfigParser(strict=False)
    parser.read(os.path.join(REPO, "default", "app.conf"), encoding="utf-8")
    return parser.get("id", "version")


def transforms_fields(stanza):
    """fields_list of one default/transforms.conf stanza, as a list (the shipped contract)."""
    parser = configparser.RawConfigParser(strict=False)
    parser.optionxform = str
    parser.read(os.path.join(REPO, "default", "transforms.conf"), encoding="utf-8")
    return [f.strip() for f in parser.get(stanza, "fields_list").split(",") if f.strip()]


def transforms_command(stanza):
    """external_cmd of a stanza split into script + args, e.g. ['vt_lookup.py', 'domain']."""
    parser = configparser.RawConfigParser(strict=False)
    parser.optionxform = str
    parser.read(os.path.join(REPO, "default", "transforms.conf"), encoding="utf-8")
    return parser.get(stanza, "external_cmd").split()


def lookup_input(header, queries):
    """CSV bytes as Splunk writes them: the header, then one row per query, other fields
    empty. `queries` items are str or bytes (bytes go in raw: invalid UTF-8 survives)."""
    out = io.BytesIO()
    out.write((",".join(header) + "\n").encode("ascii"))
    q = header.index("query")
    for query in queries:
        raw = query if isinstance(query, bytes) else query.encode("utf-8")
        cells = [b""] * len(header)
        if any(c in raw for c in (b",", b'"', b"\n", b"\r")) or raw[:1].isspace():
            raw = b'"' + raw.replace(b'"', b'""') + b'"'
        cells[q] = raw
        out.write(b",".join(cells) + b"\n")
    return out.getvalue()


def parse_output(raw_bytes):
    """CSV bytes from a lookup -> (header, [row dicts]) keeping every byte (surrogateescape;
    NUL restored)."""
    csv.field_size_limit(2 ** 31 - 1)
    text = raw_bytes.decode("utf-8", "surrogateescape").replace("\x00", "\udc00")
    reader = csv.reader(io.StringIO(text, newline=""))
    header = next(reader)
    rows = []
    for row in reader:
        rows.append({name: (row[i] if i < len(row) else "").replace("\udc00", "\x00")
                     for i, name in enumerate(header)})
    return header, rows


def as_bytes(text):
    return text.encode("utf-8", "surrogateescape")


def first_rows(rows):
    """The first output row of each answered input (rows carrying vt_status), in order,
    plus empty-query passthrough rows (which carry no status)."""
    return [r for r in rows if r.get("vt_status") or not r.get("query")]


def require_interpreter(path):
    """A missing interpreter is a failure with a clear message, never a skip."""
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        raise AssertionError(
            f"interpreter {path} is missing: the end-to-end tests run the lookup under the "
            "Splunk-like Pythons 3.9.18 and 3.13.0 (pyenv install 3.9.18 3.13.0)")
    return path


def require_openssl():
    path = shutil.which("openssl")
    if not path:
        raise AssertionError("the `openssl` command is missing: the TLS tests build their CA "
                             "with it (Debian: apt-get install openssl)")
    return path


def run_lookup(python, args, stdin_bytes, env, cwd, timeout=120):
    """Run bin/vt_lookup.py exactly as Splunk does: CSV on stdin, CSV on stdout."""
    proc = subprocess.run([python, LOOKUP_SCRIPT] + list(args), input=stdin_bytes,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=cwd,
                          timeout=timeout)
    return proc


def lookup_rows(kind, queries, env, cached=False, python=None, cwd=REPO):
    """Run the vt_<kind> lookup (or its cached twin) with transforms.conf's header and return
    its output rows; a non-zero exit fails the test with the script's stderr."""
    import sys

    args = [kind] + (["--cached"] if cached else [])
    stdin = lookup_input(transforms_fields("vt_" + kind), queries)
    proc = run_lookup(python or sys.executable, args, stdin, env, cwd)
    assert proc.returncode == 0, proc.stderr.decode("utf-8", "replace")
    return parse_output(proc.stdout)[1]


def lookup_env(splunk_home, api_url, api_key=None, **extra):
    """A clean environment (no inherited VT_/VTPIVOT_ variables)."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("VT_", "VTPIVOT_", "PYTHON"))}
    env["SPLUNK_HOME"] = str(splunk_home)
    env["VT_API_URL"] = api_url
    env["VTPIVOT_NO_CLILIB"] = "1"
    if api_key is not None:
        env["VT_API_KEY"] = api_key
    for key, value in extra.items():
        env[key] = str(value)
    return env


def read_all_files(root):
    """{path: bytes} of every file under root."""
    out = {}
    for folder, _, names in os.walk(root):
        for name in names:
            path = os.path.join(folder, name)
            with open(path, "rb") as handle:
                out[path] = handle.read()
    return out
