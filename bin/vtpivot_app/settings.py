"""Settings: vtpivot.conf (default/ then local/) or Splunk's REST API, then the environment.

Lookups get no session key, so they read the conf files of the app on disk, layered the way
Splunk layers them (default/ under local/). Commands, which have a session key, read the same
stanzas through REST (`configs/conf-vtpivot`) so that a search head cluster's replicated
settings are what they see. Outside Splunk (tests, command line) VT_API_URL and friends
override the files. Every value is validated: a bad one is a ConfigError naming the key.
"""
import configparser
import dataclasses
import os
import re

from .errors import ConfigError

APP_NAME = "vtpivot"
APP_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEFAULT_API_URL = "https://www.virustotal.com/api/v3"
TIERS = ("public", "premium")
BACKENDS = ("sqlite", "file", "redis")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


@dataclasses.dataclass
class Settings:
    # [api]
    api_url: str = DEFAULT_API_URL
    tier: str = "public"
    connect_timeout: float = 5.0
    read_timeout: float = 30.0
    max_retries: int = 3
    backoff_base: float = 1.0
    backoff_max: float = 20.0
    # [limits] (defaults: a public key's published quota)
    per_minute: int = 4
    per_day: int = 500
    per_month: int = 0
    max_wait_seconds: float = 3.0
    concurrency: int = 4
    queue_throttled: bool = True
    cluster_members: int = 1  # members sharing one key without a shared backend
    # [proxy] (the password lives in storage/passwords, never here)
    proxy_url: str = ""
    proxy_username: str = ""
    # [tls] a path to a CA bundle file, or PEM text pasted on the setup page
    ca_bundle: str = ""
    # [cache]
    backend: str = "sqlite"
    redis_url: str = ""
    state_dir: str = ""
    ttl_domain: int = 86400
    ttl_ip: int = 86400
    ttl_file: int = 7 * 86400
    ttl_not_found: int = 3600
    stale_max_age: int = 30 * 86400
    http_cache: bool = True
    # [indicators]
    never_send_domains: str = ""
    skip_popular_domains: bool = False
    # [logging]
    log_level: str = "INFO"

    def ttl_for(self, kind):
        return {"domain": self.ttl_domain, "ip": self.ttl_ip, "file": self.ttl_file}[kind]

    @property
    def splunk_home(self):
        # Outside Splunk (tests, command line) state goes to the user's home, never the app.
        return os.environ.get("SPLUNK_HOME") or os.path.join(os.path.expanduser("~"), ".vtpivot")

    @property
    def resolved_state_dir(self):
        """Mutable state lives under $SPLUNK_HOME/var, never inside the app folder."""
        return self.state_dir or os.path.join(self.splunk_home, "var", "lib", APP_NAME)

    @property
    def log_dir(self):
        return os.path.join(self.splunk_home, "var", "log", "splunk")


# conf stanza -> {conf key: Settings attribute}
CONF_KEYS = {
    "api": {"url": "api_url", "tier": "tier", "connect_timeout": "connect_timeout",
            "read_timeout": "read_timeout", "max_retries": "max_retries",
            "backoff_base": "backoff_base", "backoff_max": "backoff_max"},
    "limits": {"per_minute": "per_minute", "per_day": "per_day", "per_month": "per_month",
               "max_wait_seconds": "max_wait_seconds", "concurrency": "concurrency",
               "queue_throttled": "queue_throttled", "cluster_members": "cluster_members"},
    "proxy": {"url": "proxy_url", "username": "proxy_username"},
    "tls": {"ca_bundle": "ca_bundle"},
    "cache": {"backend": "backend", "redis_url": "redis_url", "state_dir": "state_dir",
              "ttl_domain": "ttl_domain", "ttl_ip": "ttl_ip", "ttl_file": "ttl_file",
              "ttl_not_found": "ttl_not_found", "stale_max_age": "stale_max_age",
              "http_cache": "http_cache"},
    "indicators": {"never_send_domains": "never_send_domains",
                   "skip_popular_domains": "skip_popular_domains"},
    "logging": {"level": "log_level"},
}

ENV_KEYS = {
    "VT_API_URL": "api_url",
    "VTPIVOT_TIER": "tier",
    "VTPIVOT_PER_MINUTE": "per_minute",
    "VTPIVOT_PER_DAY": "per_day",
    "VTPIVOT_PER_MONTH": "per_month",
    "VTPIVOT_MAX_WAIT": "max_wait_seconds",
    "VTPIVOT_BACKEND": "backend",
    "VTPIVOT_REDIS_URL": "redis_url",
    "VTPIVOT_STATE_DIR": "state_dir",
    "VTPIVOT_LOG_LEVEL": "log_level",
    "VTPIVOT_MAX_RETRIES": "max_retries",
    "VTPIVOT_BACKOFF_BASE": "backoff_base",
    "VTPIVOT_READ_TIMEOUT": "read_timeout",
    "VTPIVOT_CONNECT_TIMEOUT": "connect_timeout",
    "VTPIVOT_CLUSTER_MEMBERS": "cluster_members",
}

_TRUE = {"1", "true", "t", "yes", "y", "on"}
_FALSE = {"0", "false", "f", "no", "n", "off", ""}


def _coerce(attr, raw):
    """Turn a conf/env string into the attribute's type, or raise ConfigError naming it."""
    default = getattr(Settings, attr, None)
    text = str(raw).strip()
    try:
        if isinstance(default, bool):
            low = text.lower()
            if low in _TRUE:
                return True
            if low in _FALSE:
                return False
            raise ValueError(text)
        if isinstance(default, int):
            return int(text)
        if isinstance(default, float):
            return float(text)
    except ValueError:
        raise ConfigError(f"setting {attr} has an invalid value {text[:60]!r}") from None
    return text


def validate(settings):
    """Check ranges and enumerations; return the settings (normalized) or raise ConfigError."""
    s = settings
    s.tier = s.tier.lower()
    if s.tier not in TIERS:
        raise ConfigError(f"setting tier must be one of {', '.join(TIERS)}, not {s.tier!r}")
    s.backend = s.backend.lower()
    if s.backend not in BACKENDS:
        raise ConfigError(f"setting backend must be one of {', '.join(BACKENDS)}, "
                          f"not {s.backend!r}")
    if s.backend == "redis" and not s.redis_url:
        raise ConfigError("setting backend = redis needs redis_url")
    s.log_level = s.log_level.upper()
    if s.log_level not in LOG_LEVELS:
        raise ConfigError(f"setting log_level must be one of {', '.join(LOG_LEVELS)}")
    for attr in ("per_minute", "per_day", "per_month", "max_retries", "ttl_domain", "ttl_ip",
                 "ttl_file", "ttl_not_found", "stale_max_age"):
        if getattr(s, attr) < 0:
            raise ConfigError(f"setting {attr} must not be negative")
    if not 1 <= s.concurrency <= 32:
        raise ConfigError("setting concurrency must be between 1 and 32")
    if not 1 <= s.cluster_members <= 100:
        raise ConfigError("setting cluster_members must be between 1 and 100")
    if not 0 <= s.max_wait_seconds <= 60:
        raise ConfigError("setting max_wait_seconds must be between 0 and 60")
    if s.connect_timeout <= 0 or s.read_timeout <= 0:
        raise ConfigError("timeouts must be positive")
    if not s.api_url.startswith(("https://", "http://")):
        raise ConfigError("setting api_url must be an http(s) URL")
    s.api_url = s.api_url.rstrip("/")
    if "-----BEGIN" in s.ca_bundle:
        s.ca_bundle = _rewrap_pem(s.ca_bundle)
    return s


_PEM_BLOCK = re.compile(r"-----BEGIN ([A-Z0-9 ]+)-----(.*?)-----END \1-----", re.S)


def _rewrap_pem(text):
    """PEM pasted on the setup page is stored on one conf line (line breaks become spaces):
    rebuild the 64-column lines OpenSSL needs."""
    blocks = []
    for label, body in _PEM_BLOCK.findall(text):
        b64 = "".join(body.split())
        lines = [b64[i:i + 64] for i in range(0, len(b64), 64)]
        blocks.append("\n".join([f"-----BEGIN {label}-----"] + lines + [f"-----END {label}-----"]))
    if not blocks:
        raise ConfigError("setting ca_bundle holds no complete PEM certificate")
    return "\n".join(blocks) + "\n"


def read_conf_files(app_root=APP_ROOT, conf_path=None):
    """Return {stanza: {key: value}} from default/ then local/ vtpivot.conf (local wins)."""
    paths = [conf_path] if conf_path else [
        os.path.join(app_root, "default", "vtpivot.conf"),
        os.path.join(app_root, "local", "vtpivot.conf"),
    ]
    merged = {}
    for path in paths:
        if not path or not os.path.exists(path):
            continue
        parser = configparser.RawConfigParser(strict=False, comment_prefixes=("#", ";"),
                                              inline_comment_prefixes=None)
        parser.optionxform = str  # Splunk keys are case-sensitive
        try:
            with open(path, encoding="utf-8-sig") as handle:
                parser.read_file(handle)
        except (configparser.Error, UnicodeDecodeError) as exc:
            raise ConfigError(f"cannot parse {os.path.basename(path)}: {exc}") from None
        for section in parser.sections():
            merged.setdefault(section, {}).update(parser.items(section))
    return merged


def from_stanzas(stanzas, environ=None):
    """Build validated Settings from {stanza: {key: value}} plus environment overrides."""
    values = {}
    for stanza, keys in CONF_KEYS.items():
        for key, attr in keys.items():
            if key in stanzas.get(stanza, {}):
                values[attr] = _coerce(attr, stanzas[stanza][key])
    environ = os.environ if environ is None else environ
    for env, attr in ENV_KEYS.items():
        if environ.get(env):
            values[attr] = _coerce(attr, environ[env])
    return validate(Settings(**values))


def load_settings(app_root=APP_ROOT, environ=None, service=None):
    """The one way to get settings.

    service: a splunklib Service bound to the vtpivot namespace, when a session key exists;
    its conf endpoint wins over the files (it sees the cluster-replicated values).
    """
    environ = os.environ if environ is None else environ
    if service is not None:
        stanzas = read_conf_rest(service)
    else:
        stanzas = read_conf_files(app_root, environ.get("VTPIVOT_CONF"))
    return from_stanzas(stanzas, environ)


def read_conf_rest(service):
    """{stanza: {key: value}} of vtpivot.conf through splunkd's configs/conf-vtpivot."""
    stanzas = {}
    for stanza in service.confs[APP_NAME]:
        # splunklib gives None for an empty value (`url =`); str(None) would be "None".
        stanzas[stanza.name] = {k: ("" if v is None else v) for k, v in stanza.content.items()
                                if not k.startswith("eai:") and k != "disabled"}
    return stanzas


def app_version(app_root=APP_ROOT):
    """The app's version from default/app.conf [id] (the one source of truth)."""
    parser = configparser.RawConfigParser(strict=False)
    try:
        parser.read(os.path.join(app_root, "default", "app.conf"), encoding="utf-8")
        return parser.get("id", "version")
    except (configparser.Error, OSError):
        return "0"
