"""Pytest plugin: a real redis-server for the shared-state tests, and a fixture that yields
each storage backend in turn.

- ``redis_server`` (session): starts ``redis-server`` on 127.0.0.1 and a free port, without
  persistence, and stops it at the end. When redis-server is not installed the tests that
  need it FAIL with a clear message (CI installs it), unless ``VTPIVOT_SKIP_REDIS=1``.
- ``redis_url`` (function): the server's URL, database flushed before the test.
- ``state_backend`` (function, parametrized sqlite/file/redis): an opened backend on a
  fresh state folder (or a flushed Redis); ``state_backend.name`` says which.
- ``backend_factory``: ``backend_factory(kind)`` opens another backend sharing the same
  state (a second "process" view), and gives the kwargs a subprocess needs.
- ``run_workers(script, payloads)``: runs one real Python process per payload (the app's
  bin/ and lib/ on its path, the payload as JSON in argv[1]) and returns what each printed
  last as JSON. Concurrency tests use real processes: threads would share one connection.
"""
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

import pytest

REDIS_HINT = ("redis-server is not installed: install it (apt-get install redis-server) or set "
              "VTPIVOT_SKIP_REDIS=1 to skip the Redis backend tests")


class RedisServer:
    def __init__(self, port, process, workdir):
        self.port = port
        self.process = process
        self.workdir = workdir
        self.url = "redis://127.0.0.1:%d/0" % port

    def ping(self, timeout=0.5):
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=timeout) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def flush(self):
        with socket.create_connection(("127.0.0.1", self.port), timeout=2) as sock:
            sock.sendall(b"FLUSHALL\r\n")
            if not sock.recv(16).startswith(b"+OK"):
                raise RuntimeError("FLUSHALL failed")


def _free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _start_redis():
    exe = shutil.which("redis-server") or (
        "/usr/bin/redis-server" if os.path.exists("/usr/bin/redis-server") else None)
    if exe is None:
        pytest.fail(REDIS_HINT, pytrace=False)
    workdir = tempfile.mkdtemp(prefix="vtpivot-redis-")
    last_error = ""
    for _attempt in range(3):  # the free port may be taken between probe and bind
        port = _free_port()
        process = subprocess.Popen(
            [exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", workdir, "--daemonize", "no"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        server = RedisServer(port, process, workdir)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and process.poll() is None:
            if server.ping():
                return server
            time.sleep(0.05)
        if process.poll() is None:
            process.kill()
        last_error = process.communicate(timeout=5)[0].decode("utf-8", "replace")[-500:]
    shutil.rmtree(workdir, ignore_errors=True)
    pytest.fail("redis-server did not start: %s" % last_error, pytrace=False)


@pytest.fixture(scope="session")
def redis_server():
    if os.environ.get("VTPIVOT_SKIP_REDIS") == "1":
        pytest.skip("VTPIVOT_SKIP_REDIS=1")
    server = _start_redis()
    try:
        yield server
    finally:
        server.process.terminate()
        try:
            server.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait()
        if server.process.stdout:
            server.process.stdout.close()
        shutil.rmtree(server.workdir, ignore_errors=True)


@pytest.fixture
def redis_url(redis_server):
    redis_server.flush()
    return redis_server.url


BACKEND_KINDS = ("sqlite", "file", "redis")


@pytest.fixture
def backend_factory(request, tmp_path):
    """backend_factory(kind) -> a new backend over this test's shared state.
    backend_factory.options(kind) -> the open_backend kwargs (for subprocesses)."""
    from vtpivot_app.storage_backends import open_backend

    opened = []
    state_dir = str(tmp_path / "var" / "lib" / "vtpivot")

    def options(kind):
        # A function-scoped fixture is set up (flushed) once per test, however often asked.
        url = request.getfixturevalue("redis_url") if kind == "redis" else None
        return {"kind": kind, "state_dir": state_dir, "redis_url": url}

    def factory(kind):
        backend = open_backend(**options(kind))
        opened.append(backend)
        return backend

    factory.options = options
    factory.state_dir = state_dir
    yield factory
    for backend in opened:
        backend.close()


@pytest.fixture(params=BACKEND_KINDS)
def state_backend(request, backend_factory):
    return backend_factory(request.param)


REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def worker_env():
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([os.path.join(REPO, "bin"), os.path.join(REPO, "lib")])
    env.pop("PYTHONSTARTUP", None)
    return env


WORKER_PROLOGUE = """
import sys as _sys


def start_barrier():
    # Set up first (imports, connections), then wait for the common start time, so that
    # slow start-ups on a busy machine do not spread the processes out.
    print("READY", flush=True)
    return float(_sys.stdin.readline())
"""


def run_workers(script, payloads, timeout=180, lead_time=0.3):
    """Runs `script` once per payload, in parallel. A script that calls start_barrier()
    gets one start time shared by all (given once every process is ready)."""
    code = WORKER_PROLOGUE + script
    procs = [subprocess.Popen([sys.executable, "-c", code, json.dumps(payload)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, env=worker_env())
             for payload in payloads]
    results = []
    try:
        uses_barrier = "start_barrier()" in script
        if uses_barrier:
            for proc in procs:
                line = proc.stdout.readline()
                if line.strip() != b"READY":
                    proc.wait(timeout=timeout)
                    raise AssertionError("worker failed before start:\n" +
                                         proc.stderr.read().decode("utf-8", "replace"))
            start_at = ("%r\n" % (time.time() + lead_time)).encode()
            for proc in procs:
                proc.stdin.write(start_at)
                proc.stdin.flush()
        for proc in procs:
            out, err = proc.communicate(timeout=timeout)
            assert proc.returncode == 0, "worker failed:\n" + err.decode("utf-8", "replace")
            results.append(json.loads(out.decode("utf-8").strip().splitlines()[-1]))
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    return results
