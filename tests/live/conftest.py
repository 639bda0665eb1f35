"""Opt-in live suite: runs the app's SPL against a real Splunk with the package installed.

Configure with SPLUNK_URL (e.g. https://localhost:8089) and either SPLUNK_TOKEN or
SPLUNK_USER + SPLUNK_PASSWORD; SPLUNK_VERIFY=0 accepts a self-signed certificate (the
splunk/splunk container's). Without them nothing here is collected: `collect_ignore_glob`
keeps the test files out of `make test`, and should one be named explicitly the collection
hook deselects (never skips) it. Either way one line says the live tests were not run.
"""
import os

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
CONFIGURED = bool(os.environ.get("SPLUNK_URL") and (
    os.environ.get("SPLUNK_TOKEN") or (os.environ.get("SPLUNK_USER")
                                       and os.environ.get("SPLUNK_PASSWORD"))))
NOT_RUN = ("tests/live: live Splunk tests not run (set SPLUNK_URL and SPLUNK_TOKEN or "
           "SPLUNK_USER/SPLUNK_PASSWORD to run them against a real Splunk)")

collect_ignore_glob = [] if CONFIGURED else ["test_*.py"]
_deselected = []


def pytest_collection_modifyitems(config, items):
    if CONFIGURED:
        return
    live = [item for item in items if str(item.fspath).startswith(HERE + os.sep)]
    if live:
        _deselected.extend(live)
        config.hook.pytest_deselected(items=live)
        items[:] = [item for item in items if item not in live]


def pytest_terminal_summary(terminalreporter):
    if not CONFIGURED:
        terminalreporter.write_line(NOT_RUN + (" [%d deselected]" % len(_deselected)
                                               if _deselected else ""))


@pytest.fixture(scope="session")
def splunk():
    """A splunklib Service for the configured Splunk."""
    from urllib.parse import urlsplit

    from splunklib import client

    url = urlsplit(os.environ["SPLUNK_URL"])
    kwargs = {"host": url.hostname, "port": url.port or 8089, "scheme": url.scheme or "https",
              "app": "vtpivot", "owner": "nobody",
              "verify": os.environ.get("SPLUNK_VERIFY", "1") != "0"}
    if os.environ.get("SPLUNK_TOKEN"):
        kwargs["splunkToken"] = os.environ["SPLUNK_TOKEN"]
    else:
        kwargs["username"] = os.environ["SPLUNK_USER"]
        kwargs["password"] = os.environ["SPLUNK_PASSWORD"]
    return client.connect(**kwargs)


@pytest.fixture(scope="session")
def run_spl(splunk):
    """run_spl(query, **kwargs) -> (rows, messages) through the jobs API (oneshot, JSON;
    splunklib.results is not used: it needs a module the app does not vendor)."""
    import json

    def run(query, **kwargs):
        kwargs.setdefault("earliest_time", "-1h")
        kwargs.setdefault("latest_time", "now")
        stream = splunk.jobs.oneshot(query if query.lstrip().startswith("|")
                                     else "search " + query, output_mode="json", count=0,
                                     **kwargs)
        body = json.loads(stream.read().decode("utf-8") or "{}")
        messages = [(m.get("type", ""), m.get("text", "")) for m in body.get("messages", [])]
        return body.get("results", []), messages
    return run
