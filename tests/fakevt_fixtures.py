"""pytest plugin: fixtures for the fake VirusTotal server (devtools/fakevt).

Register from tests/conftest.py with ``pytest_plugins = ["fakevt_fixtures"]`` (tests/ on
sys.path, which pytest's rootdir-relative import gives by default).

* ``fake_vt``: an in-process server with the basic dataset; keys "test-public-key" (public:
  4/min, 500/day, like VirusTotal) and "test-premium-key" (premium). Counts start at zero.
* ``fake_vt_factory``: ``fake_vt_factory(dataset=..., keys=..., quotas=..., ...)`` starts a
  server with any FakeVirusTotal options; all are stopped at teardown.
"""

import os
import sys

import pytest

_DEVTOOLS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                         "devtools")
if _DEVTOOLS not in sys.path:
    sys.path.insert(0, _DEVTOOLS)

from fakevt import FakeVirusTotal  # noqa: E402

PUBLIC_KEY = "test-public-key"
PREMIUM_KEY = "test-premium-key"
DEFAULT_KEYS = {PUBLIC_KEY: "public", PREMIUM_KEY: "premium"}


@pytest.fixture
def fake_vt_factory():
    started = []

    def make(**options):
        options.setdefault("dataset", "basic")
        options.setdefault("keys", dict(DEFAULT_KEYS))
        vt = FakeVirusTotal(**options).start()
        started.append(vt)
        return vt

    yield make
    for vt in reversed(started):
        vt.stop()


@pytest.fixture
def fake_vt(fake_vt_factory):
    return fake_vt_factory()
