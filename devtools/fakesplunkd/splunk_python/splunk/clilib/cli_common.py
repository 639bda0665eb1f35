"""Fake splunk.clilib.cli_common: getConfStanza + decrypt over fakesplunkd's files."""
import base64
import configparser
import os


def _home():
    return os.environ["SPLUNK_HOME"]


def getConfStanza(conf, stanza):
    """The stanza from the apps' local/<conf>.conf files (first app in name order wins)."""
    apps = os.path.join(_home(), "etc", "apps")
    for app in sorted(os.listdir(apps)):
        path = os.path.join(apps, app, "local", conf + ".conf")
        if not os.path.exists(path):
            continue
        parser = configparser.RawConfigParser(strict=False, interpolation=None)
        parser.optionxform = str
        parser.read(path, encoding="utf-8")
        if parser.has_section(stanza):
            return dict(parser.items(stanza))
    raise KeyError("no stanza [%s] in %s.conf" % (stanza, conf))


def decrypt(value):
    with open(os.path.join(_home(), "etc", "auth", "splunk.secret"), "rb") as handle:
        pad = base64.b64decode(handle.read())
    if not value.startswith("$7$"):
        return value
    data = base64.b64decode(value[3:])
    return bytes(b ^ pad[i % len(pad)] for i, b in enumerate(data)).decode("utf-8")
