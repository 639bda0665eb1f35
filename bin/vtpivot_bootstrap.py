"""Make the app's code importable from every entry point in bin/.

Each script in bin/ imports this module first. It puts the vendored library folder
(<app>/lib) first on sys.path, ahead of whatever Splunk's own Python carries (an older
requests, for one), and makes sure the app package in bin/ resolves even when the script
was started from another working directory. Insert, never append: first match wins.
"""
import os
import sys

APP_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LIB_DIR = os.path.join(APP_ROOT, "lib")
BIN_DIR = os.path.join(APP_ROOT, "bin")

for _path in (BIN_DIR, LIB_DIR):  # LIB_DIR ends up first
    while _path in sys.path:
        sys.path.remove(_path)
    sys.path.insert(0, _path)
