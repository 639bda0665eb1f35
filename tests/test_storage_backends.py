"""The storage backends behind the cache, the rate limiter and the queue."""
import json
import os
import stat
import subprocess
import sys
import textwrap

import pytest

from redis_fixture import run_workers, worker_env
from vtpivot_app.errors import StateError
from vtpivot_app.storage_backends import (FILE_BACKEND_DIRNAME, SQLITE_FILENAME, FileBackend,
                                          RedisBackend, SQLiteBackend, StorageError,
                                          open_backend)


def test_kv_roundtrip(state_backend):
    b = state_backend
    assert b.get_many("obj", ["a", "b"]) == {}
    b.put_many("obj", {"a": "1", "b": '{"x":"\\u00e9t\u00e9 \u6f22\u5b57"}'}, ttl=60)
    assert b.get_many("obj", ["a", "b", "c", "a"]) == {
        "a": "1", "b": '{"x":"\\u00e9t\u00e9 \u6f22\u5b57"}'}
    assert b.get_many("other", ["a"]) == {}  # namespaces are separate
    b.put_many("obj", {"a": "2"}, ttl=60)
    assert b.get_many("obj", ["a"]) == {"a": "2"}
    b.delete("obj", ["a", "missing"])
    assert b.get_many("obj", ["a", "b"]).keys() == {"b"}


def test_kv_keys_with_odd_characters(state_backend):
    keys = ["domain:xn--bcher-kva.example", "k:with spaces/and/slashes", "k:" + "x" * 300,
            "k:\u00fcnic\u00f6de"]
    state_backend.put_many("obj", {k: k.upper() for k in keys}, ttl=60)
    assert state_backend.get_many("obj", keys) == {k: k.upper() for k in keys}


def test_get_many_in_chunks(state_backend):
    items = {"k%05d" % i: "v%d" % i for i in range(2500)}  # > one SQL / MGET chunk
    state_backend.put_many("obj", items, ttl=60)
    assert state_backend.get_many("obj", list(items) + ["nope"]) == items


def test_expired_rows_are_gone(state_backend):
    b = state_backend
    if b.name == "redis":
        b.put_many("obj", {"a": "1"}, ttl=30)
        ttl = b._redis().ttl("vtpivot:obj:a")
        assert 0 < ttl <= 30  # Redis expires it by itself
        return
    b.purge_expired()  # also resets the per-process purge timer: no automatic purge now
    b.put_many("obj", {"old": "1"}, ttl=-1)
    b.put_many("obj", {"new": "2"}, ttl=60)
    assert b.get_many("obj", ["old", "new"]) == {"new": "2"}
    assert b.purge_expired() == 1
    assert b.get_many("obj", ["new"]) == {"new": "2"}


def test_update_is_read_modify_write(state_backend):
    b = state_backend

    def incr(raw):
        n = int(raw or 0) + 1
        return str(n), n
    assert [b.update("st", "counter", incr, ttl=60) for _ in range(3)] == [1, 2, 3]
    assert b.update("st", "counter", lambda raw: (None, raw), ttl=60) == "3"  # None: no write
    assert b.get_many("st", ["counter"]) == {"counter": "3"}


def test_update_exception_leaves_value_unchanged(state_backend):
    b = state_backend
    b.update("st", "k", lambda raw: ("before", None), ttl=60)

    def boom(raw):
        raise RuntimeError("boom")
    with pytest.raises(RuntimeError):
        b.update("st", "k", boom, ttl=60)
    assert b.get_many("st", ["k"]) == {"k": "before"}
    assert b.update("st", "k", lambda raw: (raw + "!", raw), ttl=60) == "before"


INCREMENT_WORKER = textwrap.dedent("""
    import json, sys, time
    from vtpivot_app.storage_backends import open_backend
    args = json.loads(sys.argv[1])
    b = open_backend(**args["backend"])
    b.get_many("st", ["warm-up"])
    start_at = start_barrier()
    while time.time() < start_at:
        time.sleep(0.001)
    def incr(raw):
        n = int(raw or 0) + 1
        return str(n), n
    seen = [b.update("st", "counter", incr, ttl=600) for _ in range(args["n"])]
    print(json.dumps({"seen": seen}))
""")


def test_update_is_atomic_across_processes(backend_factory, state_backend):
    procs, n = 6, 150
    payload = {"backend": backend_factory.options(state_backend.name), "n": n}
    results = run_workers(INCREMENT_WORKER, [payload] * procs)
    seen = sorted(v for r in results for v in r["seen"])
    assert seen == list(range(1, procs * n + 1))  # no lost update, no duplicate
    assert state_backend.get_many("st", ["counter"]) == {"counter": str(procs * n)}


def test_state_dir_created_private(tmp_path):
    for kind in ("sqlite", "file"):
        state = tmp_path / kind / "var" / "lib" / "vtpivot"
        b = open_backend(kind, str(state))
        assert not state.exists()  # opening is lazy: nothing touched until first use
        b.put_many("obj", {"k": "v"}, ttl=60)
        assert stat.S_IMODE(os.stat(state).st_mode) == 0o700
        if kind == "sqlite":
            assert stat.S_IMODE(os.stat(state / SQLITE_FILENAME).st_mode) == 0o600
        else:
            root = state / FILE_BACKEND_DIRNAME
            assert stat.S_IMODE(os.stat(root).st_mode) == 0o700
            files = [os.path.join(d, f) for d, _, fs in os.walk(root / "kv") for f in fs]
            assert files and all(stat.S_IMODE(os.stat(f).st_mode) == 0o600 for f in files)
        b.close()


def test_sqlite_uses_wal_and_one_file(tmp_path):
    b = SQLiteBackend(str(tmp_path))
    b.put_many("obj", {"k": "v"}, ttl=60)
    assert b._connection().execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert sorted(p for p in os.listdir(tmp_path) if not p.startswith(SQLITE_FILENAME)) == []


def test_sqlite_unreadable_file_is_a_state_error(tmp_path):
    (tmp_path / SQLITE_FILENAME).write_bytes(b"this is not a database" * 100)
    b = open_backend("sqlite", str(tmp_path))
    with pytest.raises(StateError) as info:
        b.get_many("obj", ["k"])
    assert "[VTP-E070]" in str(info.value) and SQLITE_FILENAME in str(info.value)


def test_state_dir_not_creatable(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    b = open_backend("sqlite", str(blocker / "state"))
    with pytest.raises(StorageError, match="cannot create the state folder"):
        b.put_many("obj", {"k": "v"}, ttl=60)


def test_factory_choices(tmp_path):
    assert isinstance(open_backend("sqlite", str(tmp_path)), SQLiteBackend)
    assert isinstance(open_backend("FILE", str(tmp_path)), FileBackend)
    assert isinstance(open_backend("redis", "", redis_url="redis://127.0.0.1:1/0"),
                      RedisBackend)
    with pytest.raises(StorageError, match="needs redis_url"):
        open_backend("redis", str(tmp_path))
    with pytest.raises(StorageError, match="unknown storage backend"):
        open_backend("mongodb", str(tmp_path))
    with pytest.raises(StorageError, match="no state folder"):
        open_backend("sqlite", "")


def test_redis_unreachable_is_a_state_error_without_password():
    b = open_backend("redis", "", redis_url="redis://user:s3cret@127.0.0.1:1/0")
    b.socket_timeout = 0.5
    with pytest.raises(StateError) as info:
        b.get_many("obj", ["k"])
    assert "s3cret" not in str(info.value) and "127.0.0.1" in str(info.value)
    assert "***" in b.safe_url


def test_redis_keys_are_namespaced_and_expire(backend_factory):
    state_backend = backend_factory("redis")
    from vtpivot_app.enrichment_queue import EnrichmentQueue
    from vtpivot_app.object_store import ObjectStore
    from vtpivot_app.quota import Budget, RateLimiter

    ObjectStore(state_backend).put("domain", "example.com", {"a": 1})
    RateLimiter(state_backend, Budget()).acquire()
    EnrichmentQueue(state_backend).push("ip", "8.8.8.8")
    r = state_backend._redis()
    keys = [k.decode() for k in r.keys("*")]
    assert keys and all(k.startswith("vtpivot:") for k in keys)
    assert all(r.ttl(k) > 0 for k in keys), "every key must carry a TTL"


SQLITE_MISSING = textwrap.dedent("""
    import json, logging, sys
    sys.modules["sqlite3"] = None  # as on a Python built without it
    records = []
    class Keep(logging.Handler):
        def emit(self, record):
            records.append((record.levelname, record.getMessage()))
    log = logging.getLogger("probe")
    log.addHandler(Keep())
    log.setLevel(logging.DEBUG)
    from vtpivot_app.storage_backends import open_backend
    from vtpivot_app.object_store import ObjectStore
    from vtpivot_app.quota import Budget, RateLimiter
    state = sys.argv[2]
    b1 = open_backend("sqlite", state, logger=log)
    b2 = open_backend("sqlite", state, logger=log)
    store = ObjectStore(b2)
    store.put("domain", "example.com", {"fields": {"malicious": 1}})
    limiter = RateLimiter(b1, Budget(per_minute=2))
    limiter.acquire()
    print(json.dumps({"backends": [b1.name, b2.name], "records": records,
                      "hit": store.get("domain", "example.com").record,
                      "minute_left": limiter.remaining()["minute"]}))
""")


def test_factory_falls_back_to_files_without_sqlite3(tmp_path):
    state = str(tmp_path / "state")

    def run():
        proc = subprocess.run([sys.executable, "-c", SQLITE_MISSING, "{}", state],
                              capture_output=True, text=True, env=worker_env(), timeout=60)
        assert proc.returncode == 0, proc.stderr
        return json.loads(proc.stdout.strip().splitlines()[-1])
    first = run()
    assert first["backends"] == ["file", "file"]
    assert first["hit"] == {"fields": {"malicious": 1}}
    warnings = [m for level, m in first["records"] if level == "WARNING"]
    assert len(warnings) == 1 and "no sqlite3 module" in warnings[0]
    assert os.path.isdir(os.path.join(state, FILE_BACKEND_DIRNAME))
    assert not os.path.exists(os.path.join(state, SQLITE_FILENAME))
    # Another process the same day: the marker keeps it at DEBUG, the data is shared.
    second = run()
    assert [level for level, _ in second["records"]] == ["DEBUG"]
    assert (first["minute_left"], second["minute_left"]) == (1, 0)  # one shared limiter


def test_import_is_light():
    code = ("import sys, time; t = time.perf_counter()\n"
            "import vtpivot_app.storage_backends, vtpivot_app.object_store, "
            "vtpivot_app.quota, vtpivot_app.enrichment_queue\n"
            "print(round((time.perf_counter() - t) * 1000, 1), "
            "sorted(m for m in ('redis', 'requests', 'sqlite3', 'fcntl') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=worker_env(), timeout=60)
    assert out.returncode == 0, out.stderr
    ms, modules = out.stdout.split(" ", 1)
    assert "redis" not in modules and "requests" not in modules
    print("import time of the four state modules: %s ms" % ms)
