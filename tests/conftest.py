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


import logging  # noqa: E402

import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _restore_app_logger():
    """Tests that call app_logging.setup_logging() in-process switch off propagation and add
    a file handler on the `vtpivot` logger; put it back so later tests' log capture works."""
    logger = logging.getLogger("vtpivot")
    saved = (list(logger.handlers), logger.level, logger.propagate)
    yield
    for handler in list(logger.handlers):
        if handler not in saved[0]:
            logger.removeHandler(handler)
            handler.close()
    logger.handlers[:] = saved[0]
    logger.setLevel(saved[1])
    logger.propagate = saved[2]
