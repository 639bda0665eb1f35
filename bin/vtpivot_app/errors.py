"""Stable error codes and the exception family every layer raises.

Codes are part of the user interface: they appear in `vt_error`, in search messages and in
the log, and the README's troubleshooting table lists each with its fix. Never renumber.
"""

# code -> (short title, what to do). The README table is generated from / checked against this.
CODES = {
    "VTP-E001": ("no VirusTotal API key configured",
                 "Enter the key on the app's setup page (Apps > VirusTotal Pivot > Set up), "
                 "or set VT_API_KEY outside Splunk."),
    "VTP-E002": ("the credential store is not reachable from this process",
                 "The lookup ran where Splunk's credential module is unavailable (for example on "
                 "an indexer): use `lookup local=true vt_...`, the vt_enrich_* macros, or the "
                 "cache-only twins vt_*_cached."),
    "VTP-E003": ("not allowed to read the VirusTotal key",
                 "Give the user the vtpivot_user role (it grants list_storage_passwords limited to "
                 "the vtpivot app's secret); see README 'Who gets what'."),
    "VTP-E010": ("VirusTotal rejected the API key",
                 "Check the key on the setup page (Test connection); a revoked or mistyped key "
                 "answers 401."),
    "VTP-E011": ("VirusTotal refused this request for this key",
                 "The relationship or endpoint needs a premium key; choose relationships "
                 "reachable with a public key, or set the key's tier to premium."),
    "VTP-E012": ("VirusTotal rejected the request as malformed",
                 "Report it with the log line (search index=_internal source=*vtpivot.log "
                 "status=bad_request)."),
    "VTP-E013": ("VirusTotal has no such object", "Nothing to fix: the indicator is unknown to "
                 "VirusTotal (cached for a short while so it is not asked again)."),
    "VTP-E020": ("the per-minute budget is spent",
                 "Wait for the time given; rows are queued for background enrichment. Raise "
                 "per_minute on the setup page only if the key's real quota is higher."),
    "VTP-E021": ("the daily budget is spent",
                 "Rows are queued and enriched after 00:00 UTC by the background job."),
    "VTP-E022": ("the monthly budget is spent",
                 "Rows are queued; the budget refills on the 1st of the month (UTC)."),
    "VTP-E023": ("VirusTotal reported the key's quota exceeded",
                 "The key is spent (perhaps shared with other tools): calls pause until the time "
                 "given (00:00 UTC for a daily quota)."),
    "VTP-E030": ("VirusTotal is unavailable",
                 "Transient (HTTP 5xx or timeout after retries): re-run later; cached answers are "
                 "served stale meanwhile."),
    "VTP-E031": ("cannot reach VirusTotal",
                 "Check the search head's outbound access, the proxy settings and DNS."),
    "VTP-E032": ("TLS verification failed",
                 "Set the proxy's CA bundle (path or pasted PEM) on the setup page; the CA must "
                 "be a valid CA certificate (Python 3.13 rejects CAs without basicConstraints "
                 "critical or keyUsage)."),
    "VTP-E033": ("VirusTotal sent a response that could not be read",
                 "Transient in most cases (truncated or malformed body): re-run later."),
    "VTP-E040": ("not a valid indicator", "Fix the input value (see vt_error for why)."),
    "VTP-E041": ("never sent to VirusTotal",
                 "Private, reserved or on the never-send list: internal names never leave."),
    "VTP-E050": ("invalid command option", "See `| vtpivot` syntax in the README."),
    "VTP-E051": ("record=t is refused",
                 "splunklib's record option writes the session key to disk; it is disabled."),
    "VTP-E060": ("invalid setting", "Fix the value named in the message in vtpivot.conf or on "
                 "the setup page."),
    "VTP-E070": ("the cache or state folder is not usable",
                 "Check that $SPLUNK_HOME/var/lib/vtpivot is writable by the splunk user; "
                 "for Redis, check redis_url and that the server answers."),
    "VTP-E080": ("not in the cache (cache-only lookup)",
                 "vt_*_cached never calls VirusTotal; run the live lookup with local=true, or "
                 "let the background job enrich the queued indicator."),
}


class VTPivotError(Exception):
    """Base of every error the app raises on purpose; str() starts with the stable code."""

    code = "VTP-E000"

    def __init__(self, message="", code=None):
        if code:
            self.code = code
        self.detail = message or CODES.get(self.code, ("error", ""))[0]
        super().__init__(self.detail)

    def __str__(self):
        return f"[{self.code}] {self.detail}"

    @property
    def fix(self):
        return CODES.get(self.code, ("", ""))[1]


class ConfigError(VTPivotError):
    code = "VTP-E060"


class CredentialError(VTPivotError):
    code = "VTP-E001"


class StateError(VTPivotError):
    code = "VTP-E070"


class OptionError(VTPivotError):
    code = "VTP-E050"


class VTError(VTPivotError):
    """An answer from VirusTotal (or the lack of one) that is not a usable object."""

    code = "VTP-E030"
    retryable = False

    def __init__(self, message="", http_status=None, vt_code=None, code=None, retry_after=None):
        super().__init__(message, code=code)
        self.http_status = http_status
        self.vt_code = vt_code
        self.retry_after = retry_after


class NotFound(VTError):
    code = "VTP-E013"


class BadRequest(VTError):
    code = "VTP-E012"


class AuthError(VTError):
    code = "VTP-E010"


class Forbidden(VTError):
    code = "VTP-E011"


class QuotaExceeded(VTError):
    """VirusTotal's QuotaExceededError: never retried, opens the shared circuit breaker."""

    code = "VTP-E023"


class TooManyRequests(VTError):
    code = "VTP-E020"
    retryable = True


class Transient(VTError):
    code = "VTP-E030"
    retryable = True


class NetworkError(VTError):
    code = "VTP-E031"
    retryable = True


class TLSError(VTError):
    code = "VTP-E032"


class MalformedResponse(VTError):
    code = "VTP-E033"
    retryable = True


# VirusTotal's documented error codes (body "error.code") -> our class.
VT_ERROR_CLASSES = {
    "BadRequestError": BadRequest,
    "InvalidArgumentError": BadRequest,
    "NotAvailableYet": Transient,
    "UnselectiveContentQueryError": BadRequest,
    "UnsupportedContentQueryError": BadRequest,
    "AuthenticationRequiredError": AuthError,
    "UserNotActiveError": AuthError,
    "WrongCredentialsError": AuthError,
    "ForbiddenError": Forbidden,
    "NotFoundError": NotFound,
    "AlreadyExistsError": BadRequest,
    "FailedDependencyError": Transient,
    "QuotaExceededError": QuotaExceeded,
    "TooManyRequestsError": TooManyRequests,
    "TransientError": Transient,
    "DeadlineExceededError": Transient,
}

# When the body is missing or unreadable, the HTTP status decides.
HTTP_STATUS_CLASSES = {
    400: BadRequest,
    401: AuthError,
    403: Forbidden,
    404: NotFound,
    429: TooManyRequests,
}


def error_from_response(http_status, body, retry_after=None):
    """Map an HTTP error answer (status + parsed JSON body or None) to a VTError."""
    vt_code, message = None, ""
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        vt_code = body["error"].get("code")
        message = str(body["error"].get("message") or "")[:300]
    cls = VT_ERROR_CLASSES.get(vt_code) if vt_code else None
    if cls is None:
        cls = HTTP_STATUS_CLASSES.get(http_status, Transient if http_status >= 500 else VTError)
    text = f"VirusTotal answered HTTP {http_status}"
    if vt_code:
        text += f" {vt_code}"
    if message:
        text += f": {message}"
    return cls(text, http_status=http_status, vt_code=vt_code, retry_after=retry_after)
