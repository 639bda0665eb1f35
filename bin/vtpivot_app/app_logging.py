"""The app's log: $SPLUNK_HOME/var/log/splunk/vtpivot.log, key=value, rotating, multi-process.

Splunk admins expect exactly this file (Splunk indexes var/log/splunk into _internal). Many
processes append at once (one lookup process per search), so:
- every process opens the file in append mode: each line is one write() to an O_APPEND fd;
- rotation happens under an exclusive lock file; other processes notice that the path now
  names a new inode and reopen (as logging.handlers.WatchedFileHandler does). A line written
  by a slow process to its old fd lands in the rotated file: nothing is lost.
Values are escaped so an indicator holding a newline cannot forge a log line, and every
registered secret (API key, proxy password) is replaced before anything is written.
"""
import logging
import os
import re
import time

try:
    import fcntl
except ImportError:  # Windows: rotation without a cross-process lock (best effort)
    fcntl = None

LOGGER_NAME = "vtpivot"
LOG_FILE = "vtpivot.log"
MAX_BYTES = 25 * 1024 * 1024
BACKUPS = 5
_secrets = set()
# fullmatch, never `$`: `$` also matches before a trailing newline ("x\n" is not safe).
_SAFE_VALUE = re.compile(r"[A-Za-z0-9_.:/@+\-]*")
_SAFE_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
MAX_VALUE_CHARS = 2000
# Escaped inside a quoted value: backslash, quote, C0/C1 controls, DEL, Unicode line and
# paragraph separators, and lone surrogates (undecodable input bytes kept by surrogateescape).
# Nothing that could end a line, a quoted value or a UTF-8 sequence reaches the file raw.
_UNSAFE_CHAR = re.compile(r'[\\"\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]')
_NAMED_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def register_secret(value):
    """Never let this string reach the log (keys, proxy passwords)."""
    if value and len(value) >= 4:
        _secrets.add(value)


def redact(text):
    for secret in _secrets:
        if secret in text:
            text = text.replace(secret, "********")
    return text


def format_value(value):
    """One key=value value: bare when safe, else double-quoted with escapes."""
    text = redact(str(value))
    if _SAFE_VALUE.fullmatch(text):
        return text if text else '""'
    # Cut before escaping: a cut after it could split an escape and leave a lone backslash
    # that escapes the closing quote (a forged field boundary).
    if len(text) > MAX_VALUE_CHARS:
        text = text[:MAX_VALUE_CHARS] + "..."
    text = _UNSAFE_CHAR.sub(_escape_char, text)
    return f'"{text}"'


def _escape_char(match):
    ch = match.group()
    named = _NAMED_ESCAPES.get(ch)
    if named:
        return named
    code = ord(ch)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def kv(**fields):
    """Render fields as `key=value key2="value two"` in the given order."""
    return " ".join(f"{_key(key)}={format_value(val)}" for key, val in fields.items())


def _key(name):
    name = str(name)
    return name if _SAFE_KEY.fullmatch(name) else re.sub(r"\W", "_", "k_" + name, flags=re.A)


class KeyValueFormatter(logging.Formatter):
    def format(self, record):
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(record.created))
        msecs = int(record.msecs)
        message = record.getMessage()
        fields = getattr(record, "kv", None)
        body = kv(**fields) if fields else ""
        event = f"event={format_value(message)}" if message else ""
        exc = ""
        if record.exc_info:
            exc = " exception=" + format_value(self.formatException(record.exc_info))
        return redact(f"{stamp}.{msecs:03d} +0000 level={record.levelname} pid={record.process} "
                      f"component={record.name} {event} {body}".rstrip() + exc)


class SharedRotatingFileHandler(logging.Handler):
    """Append-only handler safe for many writer processes (see module docstring)."""

    def __init__(self, path, max_bytes=MAX_BYTES, backups=BACKUPS):
        super().__init__()
        self.path = path
        self.max_bytes = max_bytes
        self.backups = backups
        self._fd = None
        self._ino = None

    def _open(self):
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
        self._ino = os.fstat(self._fd).st_ino

    def _reopen_if_rotated(self):
        try:
            current = os.stat(self.path).st_ino
        except FileNotFoundError:
            current = None
        if self._fd is None or current != self._ino:
            if self._fd is not None:
                os.close(self._fd)
            self._open()

    def _rotate(self):
        lock_path = self.path + ".lock"
        lock_fd = os.open(lock_path, os.O_WRONLY | os.O_CREAT, 0o640)
        try:
            if fcntl:
                fcntl.flock(lock_fd, fcntl.LOCK_EX)
            # Another process may have rotated while we waited for the lock.
            if os.path.exists(self.path) and os.stat(self.path).st_size >= self.max_bytes:
                for index in range(self.backups - 1, 0, -1):
                    older = f"{self.path}.{index}"
                    if os.path.exists(older):
                        os.replace(older, f"{self.path}.{index + 1}")
                os.replace(self.path, f"{self.path}.1")
        finally:
            if fcntl:
                fcntl.flock(lock_fd, fcntl.LOCK_UN)
            os.close(lock_fd)
        self._reopen_if_rotated()

    def emit(self, record):
        try:
            line = (self.format(record) + "\n").encode("utf-8", "replace")
            self.acquire()
            try:
                self._reopen_if_rotated()
                os.write(self._fd, line)
                if os.fstat(self._fd).st_size >= self.max_bytes:
                    self._rotate()
            finally:
                self.release()
        except Exception:
            self.handleError(record)

    def close(self):
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        super().close()


def setup_logging(log_dir, level="INFO", max_bytes=MAX_BYTES, backups=BACKUPS):
    """Configure and return the app logger (idempotent within a process)."""
    logger = logging.getLogger(LOGGER_NAME)
    path = os.path.join(log_dir, LOG_FILE)
    if not any(isinstance(h, SharedRotatingFileHandler) and h.path == path
               for h in logger.handlers):
        for handler in list(logger.handlers):
            logger.removeHandler(handler)
            handler.close()
        handler = SharedRotatingFileHandler(path, max_bytes=max_bytes, backups=backups)
        handler.setFormatter(KeyValueFormatter())
        logger.addHandler(handler)
    logger.setLevel(getattr(logging, str(level).upper(), logging.INFO))
    logger.propagate = False
    return logger


def get_logger(component=None):
    name = LOGGER_NAME if not component else f"{LOGGER_NAME}.{component}"
    return logging.getLogger(name)


def log_event(logger, level, event, **fields):
    """logger.log with structured key=value fields."""
    logger.log(level, event, extra={"kv": fields})
