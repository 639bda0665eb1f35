"""Test set-up shared by the whole suite.

Puts the app's code where Splunk would have it (bin/ for the package, lib/ for the vendored
dependencies, first on sys.path), plus tests/ and devtools/ (the fake VirusTotal server and
the fake splunkd) for the test helpers.
"""
import os
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
for path in (os.path.join(REPO, "devtools"), os.path.join(REPO, "tests"),
             os.path.join(REPO, "bin"), os.path.join(REPO, "lib")):
    if path not in sys.path:
        sys.path.insert(0, path)

# Shared fixtures live in plugin modules owned by the pieces they serve.
pytest_plugins = [name for name in ("fakevt_fixtures", "redis_fixture")
                  if os.path.exists(os.path.join(REPO, "tests", name + ".py"))]
