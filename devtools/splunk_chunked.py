"""splunkd's side of the chunked search command protocol (v2), for the tests and the demo.

splunkd starts a chunked command with no arguments (`python vtpivot.py`: splunklib picks
protocol v2 when argv has one element), sends a `getinfo` chunk whose `searchinfo` carries
the session key, splunkd URI, app and arguments, reads the command's configuration chunk,
then sends `execute` chunks with CSV bodies (one `__mv_<field>` column per field,
multivalues encoded `$a$;$b$`) and reads one answer per chunk; the last has
`finished: true`. Frame: `chunked 1.0,<metadata bytes>,<body bytes>\\n` + JSON + CSV.
The frame format and searchinfo keys follow the real recordings in
tests/fixtures/splunk/ (see PROVENANCE.md there).
"""
import csv
import io
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass, field

HEADER = re.compile(rb"chunked\s+1.0\s*,\s*(\d+)\s*,\s*(\d+)\s*\n")
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def frame(metadata, body=""):
    meta = json.dumps(metadata).encode("utf-8")
    raw = body.encode("utf-8") if isinstance(body, str) else body
    return b"chunked 1.0,%d,%d\n" % (len(meta), len(raw)) + meta + raw


def read_frame(stream):
    """(metadata dict, body str) of the next chunk, or None at end of stream."""
    line = stream.readline()
    if not line:
        return None
    match = HEADER.match(line)
    if match is None:
        raise AssertionError("not a chunk header: %r" % line[:200])
    meta_len, body_len = int(match.group(1)), int(match.group(2))
    meta = _read_exactly(stream, meta_len)
    body = _read_exactly(stream, body_len)
    return (json.loads(meta.decode("utf-8")) if meta else {}), body.decode("utf-8")


def _read_exactly(stream, n):
    data = b""
    while len(data) < n:
        more = stream.read(n - len(data))
        if not more:
            raise AssertionError("stream ended inside a chunk")
        data += more
    return data


def encode_mv(values):
    return ";".join("$%s$" % str(v).replace("$", "$$") for v in values)


def records_to_csv(records):
    """CSV body as splunkd writes it: the plain columns, then one `__mv_<name>` column per
    field (filled only for multivalue values)."""
    names = []
    for record in records:
        for name in record:
            if name not in names:
                names.append(name)
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(names + ["__mv_" + name for name in names])
    for record in records:
        plain, multi = [], []
        for name in names:
            value = record.get(name, "")
            if isinstance(value, (list, tuple)):
                plain.append("\n".join(str(v) for v in value))
                multi.append(encode_mv(value) if len(value) > 1 else "")
            else:
                plain.append(value)
                multi.append("")
        writer.writerow(plain + multi)
    return out.getvalue()


def decode_mv(text):
    return [m.replace("$$", "$") for m in re.findall(r"\$((?:\$\$|[^$])*)\$(?:;|$)", text)]


def csv_to_records(body):
    """(header of plain field names, records) from a command's CSV body."""
    if not body:
        return [], []
    reader = csv.reader(io.StringIO(body, newline=""))
    header = next(reader)
    names = [h for h in header if not h.startswith("__mv_")]
    records = []
    for row in reader:
        record = {}
        for name, value in zip(header, row):
            if name.startswith("__mv_"):
                if value:
                    record[name[5:]] = decode_mv(value)
            elif name not in record:
                record[name] = value
        records.append(record)
    return names, records


def searchinfo(args, **overrides):
    """A getinfo searchinfo with the keys real splunkd sends (see the recordings)."""
    info = {
        "latest_time": "0", "earliest_time": "0", "splunk_version": "9.3.0",
        "username": "analyst", "owner": "analyst", "app": "search", "args": list(args),
        "raw_args": list(args),
        "search": "%7C%20makeresults%20%7C%20vtpivot%20" + "%20".join(args),
        "session_key": "fake-session-key", "sid": "1700000000.42",
        "splunkd_uri": "https://127.0.0.1:1", "dispatch_dir": tempfile.gettempdir(),
        "maxresultrows": 50000,
    }
    info.update(overrides)
    return info


@dataclass
class Answer:
    getinfo: dict
    chunks: list = field(default_factory=list)        # [(metadata, header, records)]
    returncode: int = None
    stderr: str = ""

    @property
    def records(self):
        return [r for _, _, recs in self.chunks for r in recs]

    @property
    def messages(self):
        """[(level, text)] from every chunk's inspector, getinfo's included."""
        out = []
        for meta in [self.getinfo] + [m for m, _, _ in self.chunks]:
            out += [tuple(m) for m in (meta.get("inspector") or {}).get("messages", [])]
        return out

    def errors(self):
        return [text for level, text in self.messages if level in ("ERROR", "FATAL")]

    def warnings(self):
        return [text for level, text in self.messages if level == "WARN"]

    def metrics(self):
        out = {}
        for meta, _, _ in self.chunks:
            for name, value in (meta.get("inspector") or {}).items():
                if name.startswith("metric."):
                    out[name[len("metric."):]] = value
        return out


def run_command(argv, info, chunks_of_records, env=None, timeout=60):
    """Run a chunked command as splunkd does, one chunk at a time; returns an Answer.

    argv: e.g. [sys.executable, "bin/vtpivot.py"] (no protocol argument: v2).
    chunks_of_records: a list of lists of records ({field: str | [values]}).
    """
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=err, env=env, cwd=REPO)
        # A hung command must fail the test, not hang it: kill it after `timeout` seconds.
        watchdog = threading.Timer(timeout, proc.kill)
        watchdog.start()
        try:
            proc.stdin.write(frame({"action": "getinfo", "preview": False,
                                    "searchinfo": info}))
            proc.stdin.flush()
            first = read_frame(proc.stdout)
            answer = Answer(getinfo=first[0] if first else {})
            if first is not None and not first[0].get("finished"):
                for index, records in enumerate(chunks_of_records):
                    last = index == len(chunks_of_records) - 1
                    try:
                        proc.stdin.write(frame({"action": "execute", "finished": last},
                                               records_to_csv(records) if records else ""))
                        proc.stdin.flush()
                    except BrokenPipeError:
                        break
                    reply = read_frame(proc.stdout)
                    if reply is None:
                        break
                    header, recs = csv_to_records(reply[1])
                    answer.chunks.append((reply[0], header, recs))
                    if reply[0].get("finished") and not last:
                        break
            proc.stdin.close()
            proc.wait(timeout=timeout)
        finally:
            watchdog.cancel()
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        err.seek(0)
        answer.stderr = err.read().decode("utf-8", "replace")
        answer.returncode = proc.returncode
    return answer


def command_argv(script="vtpivot.py"):
    return [sys.executable, os.path.join(REPO, "bin", script)]
