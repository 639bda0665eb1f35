"""Run a fake splunkd (+ a fake VirusTotal) for the browser test or by hand.

    PYTHONPATH=devtools:bin:lib python -m fakesplunkd [--js NAME=PATH ...]

Copies the app's shipped folders into a temporary $SPLUNK_HOME/etc/apps/vtpivot (lib/ is
linked), points [api] url at the fake VirusTotal, prints one JSON line
({"web_url", "uri", "vt_url", "good_key", "splunk_home", "tokens"}) and serves until stdin
closes or the process is terminated. The temporary folder is removed at exit.
"""
import argparse
import json
import os
import secrets
import shutil
import signal
import sys
import tempfile
import threading

from . import FakeSplunkd
from .server import REPO_APP_ROOT

# bin/ is copied, not linked: Python resolves a script's folder through links, and the app
# would then read the repository's conf files instead of this app's.
SHIPPED_COPIES = ("default", "metadata", "appserver", "bin", "lookups")
SHIPPED_LINKS = ("lib",)


def make_app_home(base, app_root=REPO_APP_ROOT):
    """$SPLUNK_HOME with etc/apps/vtpivot holding copies (or links) of the app's folders."""
    app = os.path.join(base, "etc", "apps", "vtpivot")
    os.makedirs(app)
    for name in SHIPPED_COPIES:
        if os.path.isdir(os.path.join(app_root, name)):
            shutil.copytree(os.path.join(app_root, name), os.path.join(app, name),
                            ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for name in SHIPPED_LINKS:
        if os.path.isdir(os.path.join(app_root, name)):
            os.symlink(os.path.join(app_root, name), os.path.join(app, name))
    os.makedirs(os.path.join(base, "var", "log", "splunk"))
    return app


def main(argv=None):
    parser = argparse.ArgumentParser(prog="fakesplunkd")
    parser.add_argument("--js", action="append", default=[],
                        help="NAME=PATH of a library served at /en-US/static/js/NAME")
    args = parser.parse_args(argv)
    js_files = dict(item.split("=", 1) for item in args.js)

    from fakevt import FakeVirusTotal

    base = tempfile.mkdtemp(prefix="fakesplunkd-")
    os.environ["SPLUNK_HOME"] = base  # state and logs of the in-process handler go here
    os.environ.pop("VT_API_KEY", None)
    good_key = secrets.token_hex(32)
    try:
        app = make_app_home(base)
        vt = FakeVirusTotal(keys={good_key: "public"}).start()
        splunkd = FakeSplunkd(app_root=app, splunk_home=base, js_files=js_files).start()
        splunkd.conf_local.setdefault("api", {})["url"] = vt.url
        splunkd._write_conf_local()
        print(json.dumps({"web_url": splunkd.web_url, "uri": splunkd.uri, "vt_url": vt.url,
                          "good_key": good_key, "splunk_home": base, "app_root": app,
                          "port": splunkd.port, "tokens": sorted(splunkd.tokens)}), flush=True)
        done = threading.Event()
        signal.signal(signal.SIGTERM, lambda *a: done.set())
        threading.Thread(target=lambda: (sys.stdin.read(), done.set()), daemon=True).start()
        done.wait()
        splunkd.stop()
        vt.stop()
    finally:
        shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
