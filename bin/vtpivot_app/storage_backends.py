"""Persistence behind the object store, the rate limiter and the enrichment queue.

Every process on the search head (one lookup process per search, several at once) and, with
Redis, every member of a search head cluster shares this state, so each backend is safe for
concurrent processes. Three implementations of one small interface (`StorageBackend`):

- ``sqlite`` (default): one file ``vtpivot_state.sqlite`` in the state folder, WAL mode,
  ``busy_timeout``, short ``BEGIN IMMEDIATE`` transactions for read-modify-write, bounded
  retries if SQLite still reports "database is locked".
- ``file``: fallback for a Python built without ``sqlite3``: one small file per entry written
  atomically (temp file + ``os.replace``), an OS lock file (fcntl, or msvcrt on Windows) around
  read-modify-write.
- ``redis``: for search head clusters; keys under ``vtpivot:``, every key with a TTL,
  WATCH/MULTI for read-modify-write, Lua scripts for the queue.

The interface is three groups of operations, so the classes above it are written once:

- key/value, in namespaces: ``get_many(ns, keys)``, ``put_many(ns, items, ttl)``,
  ``delete(ns, keys)``; values are strings (JSON made by the caller).
- ``update(ns, key, fn, ttl)``: atomic read-modify-write of one small value.
  ``fn(current: str | None) -> (new: str | None, result)``; ``new=None`` writes nothing.
  ``fn`` must be pure: it may run more than once (retries, optimistic concurrency).
- queue: ``queue_push / queue_claim / queue_ack / queue_release / queue_len / queue_peek``,
  with claims that expire (visibility timeout) so a crashed drainer loses nothing.

``ttl`` values are garbage-collection horizons in seconds, not freshness: the object store
decides freshness itself from what it stored, so a row may outlive its TTL a little.

Start-up cost matters (a lookup process that only reads the cache must start in well under
150 ms): nothing is opened or imported until first use; ``redis`` is imported only by the
Redis backend.
"""
from __future__ import annotations

import json
import logging
import os
import threading
import time
from dataclasses import dataclass
from collections.abc import Iterable, Mapping

from .errors import StateError

SQLITE_FILENAME = "vtpivot_state.sqlite"
FILE_BACKEND_DIRNAME = "vtpivot_files"
REDIS_PREFIX = "vtpivot:"
# Marker that limits the "sqlite3 is missing" warning to one per state folder per day.
SQLITE_MISSING_MARKER = "sqlite3_missing.logged"

# fn(current value or None) -> (new value or None to delete, what update() returns)
UpdateFn = "Callable[[str | None], tuple[str | None, object]]"

_log = logging.getLogger("vtpivot.storage")


class StorageError(StateError):
    """The state folder or the Redis server cannot be used (code VTP-E070)."""


@dataclass
class QueueRow:
    key: str
    payload: str
    first_queued_at: float
    visible_at: float
    attempts: int
    token: str | None = None


class StorageBackend:
    """The interface; see the module docstring. Subclasses implement every method."""

    name = "abstract"

    def get_many(self, ns: str, keys: Iterable[str]) -> dict[str, str]:
        raise NotImplementedError

    def put_many(self, ns: str, items: Mapping[str, str], ttl: float) -> None:
        raise NotImplementedError

    def delete(self, ns: str, keys: Iterable[str]) -> None:
        raise NotImplementedError

    def update(self, ns: str, key: str, fn: UpdateFn, ttl: float) -> object:
        raise NotImplementedError

    def queue_push(self, queue: str, key: str, payload: str, now: float,
                   max_len: int = 0) -> str:
        """Returns "queued", "exists" (already queued: nothing changes) or "full"."""
        raise NotImplementedError

    def queue_claim(self, queue: str, n: int, now: float, lease: float) -> list[QueueRow]:
        """Claims up to n items visible at `now`; they are invisible until now + lease."""
        raise NotImplementedError

    def queue_ack(self, queue: str, key: str, token: str) -> bool:
        """Removes the item if `token` is still its current claim."""
        raise NotImplementedError

    def queue_release(self, queue: str, key: str, token: str, visible_at: float) -> bool:
        raise NotImplementedError

    def queue_len(self, queue: str) -> int:
        raise NotImplementedError

    def queue_peek(self, queue: str, n: int) -> list[QueueRow]:
        raise NotImplementedError

    def purge_expired(self) -> int:
        """Deletes key/value rows past their TTL; returns how many (Redis: 0, it expires)."""
        return 0

    def close(self) -> None:
        pass


def open_backend(kind: str = "sqlite", state_dir: str = "", redis_url: str | None = None,
                 logger: logging.Logger | None = None) -> StorageBackend:
    """The backend named by `kind` (settings' ``backend``). Cheap: nothing is opened yet.

    ``sqlite`` falls back to ``file`` when the interpreter has no ``sqlite3`` module, with one
    warning per state folder per day (a marker file keeps every lookup process from
    repeating it; other processes log it at DEBUG).
    """
    logger = logger or _log
    kind = (kind or "sqlite").lower()
    if kind == "redis":
        if not redis_url:
            raise StorageError("backend = redis needs redis_url")
        return RedisBackend(redis_url, logger=logger)
    if not state_dir:
        raise StorageError("no state folder given for the %s backend" % kind)
    if kind == "sqlite":
        try:
            import sqlite3  # noqa: F401  (probe only)
        except ImportError:
            _warn_sqlite_missing(state_dir, logger)
            return FileBackend(state_dir, logger=logger)
        return SQLiteBackend(state_dir, logger=logger)
    if kind == "file":
        return FileBackend(state_dir, logger=logger)
    raise StorageError("unknown storage backend %r (sqlite, file or redis)" % kind)


_sqlite_warned = False


def _warn_sqlite_missing(state_dir, logger):
    global _sqlite_warned
    if _sqlite_warned:
        return
    _sqlite_warned = True
    marker = os.path.join(state_dir, SQLITE_MISSING_MARKER)
    try:
        fresh = time.time() - os.path.getmtime(marker) < 86400
    except OSError:
        fresh = False
    text = ("storage_fallback backend=file reason=\"this Python has no sqlite3 module\" "
            "detail=\"the cache, rate limiter and queue use plain files in %s; they work, "
            "but slower than SQLite\"" % os.path.join(state_dir, FILE_BACKEND_DIRNAME))
    if fresh:
        logger.debug(text)
        return
    logger.warning(text)
    try:
        ensure_state_dir(state_dir)
        with open(marker, "w") as fh:
            fh.write("%d\n" % int(time.time()))
    except OSError:
        pass  # the warning is said; the marker only spares other processes repeating it


def ensure_state_dir(path: str) -> None:
    """Creates the state folder (and parents) if missing; the folder itself is 0o700.

    An existing folder keeps its mode: the admin may have chosen it.
    """
    if os.path.isdir(path):
        return
    try:
        os.makedirs(path, mode=0o700, exist_ok=True)
        os.chmod(path, 0o700)
    except OSError as exc:
        raise StorageError("cannot create the state folder %s: %s" % (path, exc.strerror))


def _chance(p):
    import random

    return random.random() < p


def _chunks(seq, size):
    for i in range(0, len(seq), size):
        yield seq[i:i + size]


def _backoff(attempt, base=0.005, cap=0.25):
    # Full jitter: processes that collided do not collide again in lock step.
    import random  # only under contention: keep start-up light

    return random.uniform(0, min(cap, base * (2 ** attempt)))


# ---- SQLite ---------------------------------------------------------------------------------

class SQLiteBackend(StorageBackend):
    name = "sqlite"
    SCHEMA_VERSION = 1
    CHUNK = 900  # bound variables per statement: below the old 999 limit of SQLite < 3.32
    BUSY_TIMEOUT = 10.0  # seconds SQLite itself waits for a lock
    MAX_TOTAL_WAIT = 60.0  # then our own retries on "database is locked" give up
    PURGE_EVERY = 600.0

    _SCHEMA = (
        "CREATE TABLE IF NOT EXISTS kv (ns TEXT NOT NULL, k TEXT NOT NULL, v TEXT NOT NULL, "
        "purge_at REAL NOT NULL, PRIMARY KEY (ns, k)) WITHOUT ROWID",
        "CREATE INDEX IF NOT EXISTS kv_purge ON kv (purge_at)",
        "CREATE TABLE IF NOT EXISTS queue (q TEXT NOT NULL, k TEXT NOT NULL, "
        "payload TEXT NOT NULL, first_queued_at REAL NOT NULL, visible_at REAL NOT NULL, "
        "attempts INTEGER NOT NULL DEFAULT 0, token TEXT, PRIMARY KEY (q, k))",
        "CREATE INDEX IF NOT EXISTS queue_ready ON queue (q, visible_at, first_queued_at)",
    )

    def __init__(self, state_dir: str, logger: logging.Logger | None = None):
        self.state_dir = state_dir
        self.path = os.path.join(state_dir, SQLITE_FILENAME)
        self.logger = logger or _log
        self._conn = None
        self._pid = None
        self._lock = threading.RLock()  # one connection per process, shared by threads
        self._last_purge = 0.0

    # -- connection
    def _connection(self):
        if self._conn is not None and self._pid == os.getpid():
            return self._conn
        import sqlite3

        ensure_state_dir(self.state_dir)
        try:
            if not os.path.exists(self.path):
                # Create it 0o600 ourselves: SQLite would use the umask. -wal/-shm copy it.
                os.close(os.open(self.path, os.O_CREAT | os.O_RDWR, 0o600))
            conn = sqlite3.connect(self.path, timeout=self.BUSY_TIMEOUT, isolation_level=None,
                                   check_same_thread=False)
        except (OSError, sqlite3.Error) as exc:
            raise StorageError("cannot open %s: %s" % (self.path, exc))
        try:
            conn.execute("PRAGMA busy_timeout = %d" % int(self.BUSY_TIMEOUT * 1000))
            conn.execute("PRAGMA synchronous = NORMAL")  # WAL: durable enough for cache/counters
            if conn.execute("PRAGMA user_version").fetchone()[0] != self.SCHEMA_VERSION:
                self._retry(lambda: self._init_schema(conn))
        except BaseException:
            conn.close()
            raise
        self._conn, self._pid = conn, os.getpid()
        return conn

    @classmethod
    def _init_schema(cls, conn):
        # journal_mode is persistent in the file; it cannot change inside a transaction.
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("BEGIN IMMEDIATE")
        try:
            for stmt in cls._SCHEMA:
                conn.execute(stmt)
            conn.execute("PRAGMA user_version = %d" % cls.SCHEMA_VERSION)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def _retry(self, op):
        """Runs op() under the process lock, retrying "database is locked/busy" with bounded
        jittered backoff (BEGIN IMMEDIATE + busy_timeout make it rare; this makes it never
        reach the caller unless the database stays locked for MAX_TOTAL_WAIT)."""
        import sqlite3

        started = time.monotonic()
        attempt = 0
        while True:
            with self._lock:
                try:
                    return op()
                except sqlite3.OperationalError as exc:
                    text = str(exc).lower()
                    if "locked" not in text and "busy" not in text:
                        raise StorageError("SQLite error on %s: %s" % (self.path, exc))
                    if time.monotonic() - started > self.MAX_TOTAL_WAIT:
                        raise StorageError("%s stayed locked for %d s" %
                                           (self.path, self.MAX_TOTAL_WAIT))
                except sqlite3.DatabaseError as exc:
                    raise StorageError("SQLite error on %s: %s" % (self.path, exc))
            attempt += 1
            time.sleep(_backoff(attempt))

    def _read(self, fn):
        return self._retry(lambda: fn(self._connection()))

    def _write(self, fn):
        def op():
            conn = self._connection()
            conn.execute("BEGIN IMMEDIATE")
            try:
                result = fn(conn)
                conn.execute("COMMIT")
                return result
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
        return self._retry(op)

    # -- key/value
    def get_many(self, ns, keys):
        keys = list(dict.fromkeys(keys))
        if not keys:
            return {}

        now = time.time()

        def run(conn):
            out = {}
            for chunk in _chunks(keys, self.CHUNK):
                sql = ("SELECT k, v FROM kv WHERE ns = ? AND k IN (%s) AND purge_at >= ?" %
                       ",".join("?" * len(chunk)))
                out.update(conn.execute(sql, [ns] + chunk + [now]).fetchall())
            return out
        return self._read(run)

    def put_many(self, ns, items, ttl):
        if not items:
            return
        purge_at = time.time() + ttl
        rows = [(ns, k, v, purge_at) for k, v in items.items()]
        self._write(lambda conn: conn.executemany(
            "INSERT OR REPLACE INTO kv (ns, k, v, purge_at) VALUES (?, ?, ?, ?)", rows))
        if time.time() - self._last_purge > self.PURGE_EVERY:
            self.purge_expired()

    def delete(self, ns, keys):
        keys = list(keys)
        if not keys:
            return

        def run(conn):
            for chunk in _chunks(keys, self.CHUNK):
                conn.execute("DELETE FROM kv WHERE ns = ? AND k IN (%s)" % ",".join(
                    "?" * len(chunk)), [ns] + chunk)
        self._write(run)

    def update(self, ns, key, fn, ttl):
        def run(conn):
            row = conn.execute("SELECT v FROM kv WHERE ns = ? AND k = ? AND purge_at >= ?",
                               (ns, key, time.time())).fetchone()
            new, result = fn(row[0] if row else None)
            if new is not None:
                conn.execute("INSERT OR REPLACE INTO kv (ns, k, v, purge_at) "
                             "VALUES (?, ?, ?, ?)", (ns, key, new, time.time() + ttl))
            return result
        return self._write(run)

    def purge_expired(self):
        self._last_purge = time.time()
        return self._write(lambda conn: conn.execute(
            "DELETE FROM kv WHERE purge_at < ?", (time.time(),)).rowcount)

    # -- queue
    def queue_push(self, queue, key, payload, now, max_len=0):
        def run(conn):
            if conn.execute("SELECT 1 FROM queue WHERE q = ? AND k = ?",
                            (queue, key)).fetchone():
                return "exists"
            if max_len and conn.execute("SELECT count(*) FROM queue WHERE q = ?",
                                        (queue,)).fetchone()[0] >= max_len:
                return "full"
            conn.execute("INSERT INTO queue (q, k, payload, first_queued_at, visible_at, "
                         "attempts) VALUES (?, ?, ?, ?, ?, 0)", (queue, key, payload, now, now))
            return "queued"
        return self._write(run)

    def queue_claim(self, queue, n, now, lease):
        def run(conn):
            rows = conn.execute(
                "SELECT k, payload, first_queued_at, attempts FROM queue WHERE q = ? AND "
                "visible_at <= ? ORDER BY visible_at, first_queued_at LIMIT ?",
                (queue, now, int(n))).fetchall()
            out = []
            for k, payload, first, attempts in rows:
                token = os.urandom(8).hex()
                conn.execute("UPDATE queue SET visible_at = ?, attempts = attempts + 1, "
                             "token = ? WHERE q = ? AND k = ?", (now + lease, token, queue, k))
                out.append(QueueRow(k, payload, first, now + lease, attempts + 1, token))
            return out
        return self._write(run)

    def queue_ack(self, queue, key, token):
        return self._write(lambda conn: conn.execute(
            "DELETE FROM queue WHERE q = ? AND k = ? AND token = ?",
            (queue, key, token)).rowcount == 1)

    def queue_release(self, queue, key, token, visible_at):
        return self._write(lambda conn: conn.execute(
            "UPDATE queue SET visible_at = ?, token = NULL WHERE q = ? AND k = ? AND token = ?",
            (visible_at, queue, key, token)).rowcount == 1)

    def queue_len(self, queue):
        return self._read(lambda conn: conn.execute(
            "SELECT count(*) FROM queue WHERE q = ?", (queue,)).fetchone()[0])

    def queue_peek(self, queue, n):
        rows = self._read(lambda conn: conn.execute(
            "SELECT k, payload, first_queued_at, visible_at, attempts, token FROM queue "
            "WHERE q = ? ORDER BY visible_at, first_queued_at LIMIT ?",
            (queue, int(n))).fetchall())
        return [QueueRow(*row) for row in rows]

    def close(self):
        with self._lock:
            if self._conn is not None and self._pid == os.getpid():
                self._conn.close()
            self._conn = None


# ---- plain files ----------------------------------------------------------------------------

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None


class _FileLock:
    """Exclusive OS lock on a lock file around one read-modify-write (held for about a
    millisecond). The kernel drops it if the holder dies, so a crashed process never wedges
    the others; POSIX waiters block in the kernel and wake as soon as it is free (polling
    would waste most of the lock's throughput under contention)."""

    TIMEOUT = 30.0  # Windows only: msvcrt cannot block without a bound of its own

    def __init__(self, path):
        self.path = path
        self._fh = None

    def __enter__(self):
        try:
            self._fh = open(self.path, "a+b")
        except OSError as exc:
            raise StorageError("cannot open lock %s: %s" % (self.path, exc.strerror))
        if fcntl is not None:
            fcntl.flock(self._fh.fileno(), fcntl.LOCK_EX)
            return self
        import msvcrt

        started = time.monotonic()
        attempt = 0
        while True:
            try:
                self._fh.seek(0)
                msvcrt.locking(self._fh.fileno(), msvcrt.LK_NBLCK, 1)
                return self
            except OSError:
                if time.monotonic() - started > self.TIMEOUT:
                    self._fh.close()
                    raise StorageError("lock %s held for more than %d s" %
                                       (self.path, self.TIMEOUT))
                attempt += 1
                time.sleep(_backoff(attempt, base=0.001, cap=0.01))

    def __exit__(self, *exc):
        try:
            if fcntl is not None:
                fcntl.flock(self._fh.fileno(), fcntl.LOCK_UN)
            else:
                import msvcrt

                self._fh.seek(0)
                msvcrt.locking(self._fh.fileno(), msvcrt.LK_UNLCK, 1)
        finally:
            self._fh.close()


def _atomic_write(path, data):
    import tempfile

    directory = os.path.dirname(path)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-")  # 0o600
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(data)
        for attempt in range(10):
            try:
                os.replace(tmp, path)
                return
            except PermissionError:  # Windows: a reader has the target open
                if attempt == 9:
                    raise
                time.sleep(0.01 * (attempt + 1))
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


class FileBackend(StorageBackend):
    """One file per key/value entry: ``kv/<ns>/<h[:2]>/<h>`` (h = sha1 of the key), holding
    a one-line JSON header {"k": key, "p": purge_at} then the value. Each queue is one JSON
    document rewritten under its lock (queues are small: throttled indicators)."""

    name = "file"
    PURGE_CHANCE = 0.002  # a put starts a folder walk this often (walks cost ~ms per 1,000)

    def __init__(self, state_dir: str, logger: logging.Logger | None = None):
        self.state_dir = state_dir
        self.root = os.path.join(state_dir, FILE_BACKEND_DIRNAME)
        self.logger = logger or _log
        self._ready = False
        self._tlock = threading.RLock()

    def _prepare(self):
        if not self._ready:
            ensure_state_dir(self.state_dir)
            for sub in ("", "kv", "locks", "queue"):
                try:
                    os.makedirs(os.path.join(self.root, sub), mode=0o700, exist_ok=True)
                except OSError as exc:
                    raise StorageError("cannot create %s: %s" % (self.root, exc.strerror))
            self._ready = True

    def _kv_path(self, ns, key):
        import hashlib

        h = hashlib.sha1(key.encode("utf-8", "surrogatepass")).hexdigest()
        return os.path.join(self.root, "kv", _safe_name(ns), h[:2], h)

    def _lock(self, name):
        self._prepare()
        return _FileLock(os.path.join(self.root, "locks", _safe_name(name) + ".lock"))

    def _read_entry(self, path, key, now):
        try:
            with open(path, "r", encoding="utf-8") as fh:
                data = fh.read()
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError) as exc:
            self.logger.warning("storage_read_failed backend=file path=%s error=%s", path, exc)
            return None
        header, sep, value = data.partition("\n")
        try:
            meta = json.loads(header)
            if not sep or meta["k"] != key or meta["p"] < now:
                return None
        except (ValueError, KeyError, TypeError):
            return None  # torn or foreign file: a miss; the next put replaces it
        return value

    def _write_entry(self, ns, key, value, purge_at):
        path = self._kv_path(ns, key)
        header = json.dumps({"k": key, "p": purge_at}, separators=(",", ":"))
        try:
            os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
            _atomic_write(path, header + "\n" + value)
        except OSError as exc:
            raise StorageError("cannot write %s: %s" % (path, exc))

    def get_many(self, ns, keys):
        self._prepare()
        now = time.time()
        out = {}
        for key in dict.fromkeys(keys):
            value = self._read_entry(self._kv_path(ns, key), key, now)
            if value is not None:
                out[key] = value
        return out

    def put_many(self, ns, items, ttl):
        self._prepare()
        purge_at = time.time() + ttl
        for key, value in items.items():
            self._write_entry(ns, key, value, purge_at)
        if items and _chance(self.PURGE_CHANCE):
            self.purge_expired()

    def delete(self, ns, keys):
        self._prepare()
        for key in keys:
            try:
                os.unlink(self._kv_path(ns, key))
            except FileNotFoundError:
                pass
            except OSError as exc:
                raise StorageError("cannot delete %s entry: %s" % (ns, exc))

    def update(self, ns, key, fn, ttl):
        with self._tlock, self._lock("kv-" + ns):
            current = self._read_entry(self._kv_path(ns, key), key, time.time())
            new, result = fn(current)
            if new is not None:
                self._write_entry(ns, key, new, time.time() + ttl)
            return result

    def purge_expired(self):
        self._prepare()
        now = time.time()
        removed = 0
        for dirpath, _dirs, files in os.walk(os.path.join(self.root, "kv")):
            for name in files:
                if name.startswith(".tmp-"):
                    continue
                path = os.path.join(dirpath, name)
                try:
                    with open(path, "r", encoding="utf-8") as fh:
                        header = fh.readline()
                    if json.loads(header)["p"] < now:
                        os.unlink(path)
                        removed += 1
                except (OSError, ValueError, KeyError, TypeError):
                    continue
        return removed

    # -- queue: {"items": {key: {"p": payload, "f": first, "v": visible, "a": n, "t": tok}}}
    def _queue_path(self, queue):
        return os.path.join(self.root, "queue", _safe_name(queue) + ".json")

    def _queue_load(self, queue):
        try:
            with open(self._queue_path(queue), "r", encoding="utf-8") as fh:
                doc = json.load(fh)
            return doc["items"] if isinstance(doc.get("items"), dict) else {}
        except FileNotFoundError:
            return {}
        except (OSError, ValueError, AttributeError) as exc:
            self.logger.warning("queue_unreadable backend=file queue=%s error=%s "
                                "detail=\"starting an empty queue\"", queue, exc)
            return {}

    def _queue_save(self, queue, items):
        _atomic_write(self._queue_path(queue), json.dumps({"items": items},
                                                          separators=(",", ":")))

    def _queue_op(self, queue, fn):
        with self._tlock, self._lock("queue-" + queue):
            items = self._queue_load(queue)
            changed, result = fn(items)
            if changed:
                try:
                    self._queue_save(queue, items)
                except OSError as exc:
                    raise StorageError("cannot write queue %s: %s" % (queue, exc))
            return result

    def queue_push(self, queue, key, payload, now, max_len=0):
        def run(items):
            if key in items:
                return False, "exists"
            if max_len and len(items) >= max_len:
                return False, "full"
            items[key] = {"p": payload, "f": now, "v": now, "a": 0, "t": None}
            return True, "queued"
        return self._queue_op(queue, run)

    def queue_claim(self, queue, n, now, lease):
        def run(items):
            ready = sorted((it["v"], it["f"], k) for k, it in items.items() if it["v"] <= now)
            out = []
            for _v, _f, k in ready[:int(n)]:
                it = items[k]
                it.update(v=now + lease, a=it["a"] + 1, t=os.urandom(8).hex())
                out.append(QueueRow(k, it["p"], it["f"], it["v"], it["a"], it["t"]))
            return bool(out), out
        return self._queue_op(queue, run)

    def queue_ack(self, queue, key, token):
        def run(items):
            if key in items and items[key]["t"] == token:
                del items[key]
                return True, True
            return False, False
        return self._queue_op(queue, run)

    def queue_release(self, queue, key, token, visible_at):
        def run(items):
            if key in items and items[key]["t"] == token:
                items[key].update(v=visible_at, t=None)
                return True, True
            return False, False
        return self._queue_op(queue, run)

    def queue_len(self, queue):
        self._prepare()
        return len(self._queue_load(queue))  # atomic replace: a lock-free read is consistent

    def queue_peek(self, queue, n):
        self._prepare()
        items = self._queue_load(queue)
        order = sorted(items, key=lambda k: (items[k]["v"], items[k]["f"]))[:int(n)]
        return [QueueRow(k, items[k]["p"], items[k]["f"], items[k]["v"], items[k]["a"],
                         items[k]["t"]) for k in order]


def _safe_name(name):
    # Namespace and queue names are ours, but never let one become a path.
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in name) or "_"


# ---- Redis ----------------------------------------------------------------------------------

_LUA_PUSH = """
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then return 'exists' end
local max_len = tonumber(ARGV[4])
if max_len > 0 and redis.call('HLEN', KEYS[1]) >= max_len then return 'full' end
redis.call('HSET', KEYS[1], ARGV[1], cjson.encode({p=ARGV[2], f=ARGV[3], a=0, t=''}))
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
redis.call('EXPIRE', KEYS[1], ARGV[5])
redis.call('EXPIRE', KEYS[2], ARGV[5])
return 'queued'
"""

# ARGV: now, n, visible_until, token prefix. Returns a flat list key, item-json, ...
_LUA_CLAIM = """
local keys = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
local out = {}
for i, k in ipairs(keys) do
  local raw = redis.call('HGET', KEYS[1], k)
  if raw then
    local it = cjson.decode(raw)
    it.a = it.a + 1
    it.t = ARGV[4] .. i
    raw = cjson.encode(it)
    redis.call('HSET', KEYS[1], k, raw)
    redis.call('ZADD', KEYS[2], ARGV[3], k)
    out[#out + 1] = k
    out[#out + 1] = raw
  else
    redis.call('ZREM', KEYS[2], k)
  end
end
return out
"""

# ARGV: key, token, mode ('ack' | 'release'), visible_at
_LUA_SETTLE = """
local raw = redis.call('HGET', KEYS[1], ARGV[1])
if not raw then return 0 end
local it = cjson.decode(raw)
if it.t ~= ARGV[2] or ARGV[2] == '' then return 0 end
if ARGV[3] == 'ack' then
  redis.call('HDEL', KEYS[1], ARGV[1])
  redis.call('ZREM', KEYS[2], ARGV[1])
else
  it.t = ''
  redis.call('HSET', KEYS[1], ARGV[1], cjson.encode(it))
  redis.call('ZADD', KEYS[2], ARGV[4], ARGV[1])
end
return 1
"""


class RedisBackend(StorageBackend):
    """Keys: ``vtpivot:<ns>:<key>`` strings with EXPIRE; queue ``vtpivot:q:<name>:items``
    (hash key -> JSON) + ``vtpivot:q:<name>:ready`` (sorted set by visible-at time).

    Times in queue and rate-limit state come from each member's clock: keep the cluster on
    NTP (a skew of a second or two is harmless against minute and day windows).
    """

    name = "redis"
    CHUNK = 1000
    QUEUE_TTL = 30 * 86400  # an idle queue disappears after a month
    MAX_UPDATE_ATTEMPTS = 200

    def __init__(self, redis_url: str, logger: logging.Logger | None = None,
                 prefix: str = REDIS_PREFIX, socket_timeout: float = 5.0):
        self.redis_url = redis_url
        self.prefix = prefix
        self.logger = logger or _log
        self.socket_timeout = socket_timeout
        self._client = None
        self._scripts = {}

    @property
    def safe_url(self):
        """The URL without its password, for messages."""
        from urllib.parse import urlsplit, urlunsplit

        parts = urlsplit(self.redis_url)
        if parts.password is None:
            return self.redis_url
        host = parts.hostname or ""
        netloc = "%s:***@%s%s" % (parts.username or "", host,
                                  ":%d" % parts.port if parts.port else "")
        return urlunsplit(parts._replace(netloc=netloc))

    def _redis(self):
        if self._client is None:
            import redis

            try:
                self._client = redis.Redis.from_url(
                    self.redis_url, socket_timeout=self.socket_timeout,
                    socket_connect_timeout=self.socket_timeout, health_check_interval=30)
            except ValueError as exc:
                raise StorageError("invalid redis_url %s: %s" % (self.safe_url, exc))
        return self._client

    def _call(self, fn):
        import redis

        try:
            return fn(self._redis())
        except redis.exceptions.RedisError as exc:
            raise StorageError("Redis at %s failed: %s" % (self.safe_url, exc))

    def _script(self, name, source):
        if name not in self._scripts:
            self._scripts[name] = self._redis().register_script(source)
        return self._scripts[name]

    def _k(self, ns, key):
        return "%s%s:%s" % (self.prefix, ns, key)

    @staticmethod
    def _ttl(ttl):
        return max(1, int(ttl + 0.999))

    def get_many(self, ns, keys):
        keys = list(dict.fromkeys(keys))

        def run(r):
            out = {}
            for chunk in _chunks(keys, self.CHUNK):
                for key, value in zip(chunk, r.mget([self._k(ns, k) for k in chunk])):
                    if value is not None:
                        out[key] = value.decode("utf-8")
            return out
        return self._call(run) if keys else {}

    def put_many(self, ns, items, ttl):
        if not items:
            return
        ex = self._ttl(ttl)

        def run(r):
            pipe = r.pipeline(transaction=False)
            for key, value in items.items():
                pipe.set(self._k(ns, key), value, ex=ex)
            pipe.execute()
        self._call(run)

    def delete(self, ns, keys):
        names = [self._k(ns, k) for k in keys]
        if names:
            self._call(lambda r: r.delete(*names))

    def update(self, ns, key, fn, ttl):
        import redis

        name, ex = self._k(ns, key), self._ttl(ttl)

        def run(r):
            with r.pipeline() as pipe:
                for attempt in range(self.MAX_UPDATE_ATTEMPTS):
                    try:
                        pipe.watch(name)
                        raw = pipe.get(name)
                        new, result = fn(raw.decode("utf-8") if raw is not None else None)
                        if new is None:
                            pipe.unwatch()
                            return result
                        pipe.multi()
                        pipe.set(name, new, ex=ex)
                        pipe.execute()
                        return result
                    except redis.exceptions.WatchError:
                        time.sleep(_backoff(attempt, base=0.001, cap=0.05))
                raise StorageError("Redis key %s kept changing under %d attempts" %
                                   (name, self.MAX_UPDATE_ATTEMPTS))
        return self._call(run)

    def _qkeys(self, queue):
        base = "%sq:%s:" % (self.prefix, queue)
        return [base + "items", base + "ready"]

    @staticmethod
    def _row(key, raw, visible_at):
        it = json.loads(raw)
        return QueueRow(key, it["p"], float(it["f"]), visible_at, int(it["a"]), it["t"] or None)

    def queue_push(self, queue, key, payload, now, max_len=0):
        script = self._script("push", _LUA_PUSH)
        result = self._call(lambda r: script(keys=self._qkeys(queue), args=[
            key, payload, repr(float(now)), int(max_len), self.QUEUE_TTL]))
        return result.decode() if isinstance(result, bytes) else result

    def queue_claim(self, queue, n, now, lease):
        script = self._script("claim", _LUA_CLAIM)
        until = now + lease
        flat = self._call(lambda r: script(keys=self._qkeys(queue), args=[
            repr(float(now)), int(n), repr(float(until)), os.urandom(8).hex() + ":"]))
        return [self._row(flat[i].decode("utf-8"), flat[i + 1], until)
                for i in range(0, len(flat), 2)]

    def _settle(self, queue, key, token, mode, visible_at=0.0):
        script = self._script("settle", _LUA_SETTLE)
        return bool(self._call(lambda r: script(keys=self._qkeys(queue), args=[
            key, token or "", mode, repr(float(visible_at))])))

    def queue_ack(self, queue, key, token):
        return self._settle(queue, key, token, "ack")

    def queue_release(self, queue, key, token, visible_at):
        return self._settle(queue, key, token, "release", visible_at)

    def queue_len(self, queue):
        return int(self._call(lambda r: r.hlen(self._qkeys(queue)[0])))

    def queue_peek(self, queue, n):
        items_key, ready_key = self._qkeys(queue)

        def run(r):
            ranked = r.zrange(ready_key, 0, max(0, int(n) - 1), withscores=True)
            if not ranked or n <= 0:
                return []
            raws = r.hmget(items_key, [k for k, _s in ranked])
            return [self._row(k.decode("utf-8"), raw, score)
                    for (k, score), raw in zip(ranked, raws) if raw is not None]
        return self._call(run)

    def close(self):
        if self._client is not None:
            self._client.close()
            self._client = None
