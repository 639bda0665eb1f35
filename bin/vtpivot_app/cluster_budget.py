"""The VirusTotal budget one search head spends, when several share one key.

With `backend = redis` every member of a search head cluster shares one rate limiter, so the
configured budget (per_minute / per_day / per_month: the key's real quota) is spent once by
the whole cluster: nothing to divide.

Without a shared backend (the default `sqlite`, and Splunk Cloud, which offers no Redis) each
member counts alone. `[limits] cluster_members = <n>` then gives each member its share:
every non-zero limit divided by n, rounded down, so that n members together never spend more
than the key's quota. A share never rounds down to 0 (0 means "no limit"): it is at least 1,
and `oversubscribed` says when n members can then spend more than the limit (e.g. 4 calls a
minute shared by 5 members). The share is static: a member that is idle leaves its share
unused; that is the price of not sharing state.
"""
from dataclasses import dataclass

from .errors import ConfigError
from .quota import Budget

SHARED_BACKENDS = ("redis",)
MAX_MEMBERS = 100


@dataclass(frozen=True)
class BudgetShare:
    budget: Budget            # what this member may spend
    members: int              # the divisor applied (1 when shared or standalone)
    shared: bool              # the backend shares the limiter across members
    oversubscribed: bool      # members * share > the configured limit for some window

    def describe(self):
        b = self.budget
        limits = "%d/minute, %d/day, %d/month (0 = no limit)" % (
            b.per_minute, b.per_day, b.per_month)
        if self.shared:
            return "budget shared by all members through the %s backend: %s" % (
                "redis", limits)
        if self.members == 1:
            return "budget of this search head: " + limits
        text = "this member's share (1/%d of the key's budget): %s" % (self.members, limits)
        if self.oversubscribed:
            text += "; WARNING: a limit is smaller than cluster_members, so the members " \
                    "together may exceed it"
        return text


def cluster_members(settings):
    """The configured member count (1 when unset); ConfigError when out of range."""
    raw = getattr(settings, "cluster_members", 1)
    if raw is None or raw == "":
        raw = 1
    text = str(raw).strip()
    if isinstance(raw, bool) or not text.lstrip("-").isdigit():
        raise ConfigError("setting cluster_members must be a whole number, not %r"
                          % text[:20])
    members = int(text)
    if not 1 <= members <= MAX_MEMBERS:
        raise ConfigError("setting cluster_members must be between 1 and %d" % MAX_MEMBERS)
    return members


def share(settings):
    """BudgetShare for these settings (see the module docstring)."""
    limits = (int(settings.per_minute), int(settings.per_day), int(settings.per_month))
    members = cluster_members(settings)
    shared = str(getattr(settings, "backend", "sqlite")).lower() in SHARED_BACKENDS
    if shared or members == 1:
        return BudgetShare(Budget(*limits), 1, shared, False)
    shares, over = [], False
    for limit in limits:
        if limit == 0:
            shares.append(0)           # no limit stays no limit
            continue
        part = limit // members
        if part == 0:
            part, over = 1, True
        shares.append(part)
    return BudgetShare(Budget(*shares), members, False, over)


def effective_budget(settings):
    """The Budget this process's RateLimiter must enforce."""
    return share(settings).budget
