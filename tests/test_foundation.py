"""The foundation: the package, the vendored dependencies and the conf files."""
import configparser
import glob
import io
import json
import os
import subprocess
import sys
import tarfile

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "devtools"))
import build_package  # noqa: E402

PYTHON_STANZA_FILES = {
    "commands.conf": lambda name, keys: True,
    "transforms.conf": lambda name, keys: keys.get("external_type") == "python",
    "restmap.conf": lambda name, keys: name.startswith(("script:", "admin_external:")),
    "inputs.conf": lambda name, keys: "://" in name and name.split("://")[0] not in (
        "monitor", "batch", "tcp", "udp", "splunktcp", "fifo", "fschange", "http",
        "WinEventLog", "perfmon"),
    "alert_actions.conf": lambda name, keys: name != "default",
}


@pytest.fixture(scope="module")
def package(tmp_path_factory):
    out = tmp_path_factory.mktemp("pkg") / "vtpivot.tgz"
    build_package.build(str(out))
    return out


def extract(package, dest):
    with tarfile.open(package) as tar:
        if hasattr(tarfile, "data_filter"):  # 3.12+ (and 3.9.17+): refuse odd members
            tar.extractall(dest, filter="data")
        else:
            tar.extractall(dest)


def members(path):
    with tarfile.open(path) as tar:
        return tar.getmembers()


def parse_conf(path):
    """Parse a Splunk .conf the way Splunk reads it (case-sensitive keys, '#' comments,
    backslash line continuation). Raises on text that is not stanzas of key = value."""
    text = open(path, encoding="utf-8").read().replace("\\\n", " ")
    parser = configparser.RawConfigParser(strict=True, comment_prefixes=("#",),
                                          inline_comment_prefixes=None,
                                          empty_lines_in_values=False, delimiters=("=",))
    parser.optionxform = str
    parser.read_string("[__global__]\n" + text, source=path)
    return {s: dict(parser.items(s)) for s in parser.sections()}


def test_package_holds_exactly_the_allow_list(package):
    names = [m.name for m in members(package)]
    expected = {f"vtpivot/{e}" for e in build_package.collect()} | {"vtpivot"}
    assert set(names) == expected
    for name in names:
        parts = name.split("/")
        assert parts[0] == "vtpivot"
        assert not any(p.startswith(".") for p in parts), name
        assert "__pycache__" not in parts and not name.endswith((".pyc", ".pyo")), name
        assert len(parts) < 2 or parts[1] in build_package.ALLOWED_TOP, name
        assert "local" != (parts[1] if len(parts) > 1 else ""), name
    for dev_only in ("tests", "Makefile", "bench", "devtools", "src", "demo", ".ci"):
        assert f"vtpivot/{dev_only}" not in names
    assert "vtpivot/default/app.conf" in names and "vtpivot/bin/vt_lookup.py" in names


def test_package_has_no_executable_bits_nor_binaries(package):
    for member in members(package):
        if member.isfile():
            assert member.mode & 0o111 == 0, member.name
            assert not member.name.endswith((".so", ".pyd", ".dylib", ".exe", ".dll")), \
                member.name


def test_package_build_is_reproducible(tmp_path):
    first, second = tmp_path / "a.tgz", tmp_path / "b.tgz"
    build_package.build(str(first))
    build_package.build(str(second))
    assert first.read_bytes() == second.read_bytes()


def test_vendored_modules_import_from_the_packaged_tree(package, tmp_path):
    extract(package, tmp_path)
    lib = tmp_path / "vtpivot" / "lib"
    top_level = sorted({p.name.split(".")[0] for p in lib.iterdir()
                        if not p.name.endswith((".dist-info", ".egg-info"))
                        and (p.suffix == ".py" or (p / "__init__.py").exists())})
    assert {"requests", "requests_cache", "splunklib", "urllib3", "redis"} <= set(top_level)
    script = ("import importlib, sys; sys.path.insert(0, sys.argv[1]); "
              "mods = sys.argv[2:] + ['splunklib.searchcommands', 'splunklib.client']; "
              "[importlib.import_module(m) for m in mods]; "
              "bad = [m.__name__ for m in list(sys.modules.values()) if getattr(m, '__file__', '') "
              "and m.__file__.endswith(('.so', '.pyd')) and m.__file__.startswith(sys.argv[1])]; "
              "print(len(mods)); sys.exit(1 if bad else 0)")
    proc = subprocess.run([sys.executable, "-c", script, str(lib)] + top_level,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert int(proc.stdout.strip()) == len(top_level) + 2


def test_app_entry_points_import_from_the_packaged_tree(package, tmp_path):
    extract(package, tmp_path)
    bin_dir = tmp_path / "vtpivot" / "bin"
    script = ("import sys; sys.path.insert(0, sys.argv[1]); import vtpivot_bootstrap; "
              "import vtpivot_app.lookup_runner, vtpivot_app.enrichment, vtpivot_app.vt_client; "
              "print(sys.path[0])")
    proc = subprocess.run([sys.executable, "-c", script, str(bin_dir)], capture_output=True,
                          text=True, cwd=str(tmp_path))
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == str(tmp_path / "vtpivot" / "lib")


def test_every_conf_file_parses():
    paths = glob.glob(os.path.join(REPO, "default", "*.conf"))
    assert len(paths) >= 3
    for path in paths:
        parse_conf(path)


def test_every_python_stanza_declares_python_required():
    checked = 0
    for conf, is_python in PYTHON_STANZA_FILES.items():
        path = os.path.join(REPO, "default", conf)
        if not os.path.exists(path):
            continue
        for name, keys in parse_conf(path).items():
            if name in ("__global__", "default") or not is_python(name, keys):
                continue
            checked += 1
            assert keys.get("python.version") == "python3", f"{conf} [{name}]"
            assert keys.get("python.required", "").replace(" ", "") == "3.9,3.13", \
                f"{conf} [{name}] lacks python.required = 3.9, 3.13"
    assert checked >= 6  # three lookups and their three twins at the very least


def test_version_has_one_source_of_truth():
    app = parse_conf(os.path.join(REPO, "default", "app.conf"))
    version = app["id"]["version"]
    assert version.count(".") == 2 and all(p.isdigit() for p in version.split("."))
    assert app["launcher"]["version"] == version
    assert app["package"]["id"] == app["id"]["name"] == "vtpivot"
    assert 5 <= len(app["ui"]["label"]) <= 80
    manifest = json.load(open(os.path.join(REPO, "app.manifest"), encoding="utf-8"))
    assert manifest["info"]["id"]["version"] == version
    assert manifest["info"]["id"]["name"] == "vtpivot"


def test_vendored_tree_is_pure_python():
    lib = os.path.join(REPO, "lib")
    compiled = [p for p in glob.glob(os.path.join(lib, "**", "*"), recursive=True)
                if p.endswith((".so", ".pyd", ".dylib"))]
    assert compiled == []
    assert not os.path.isdir(os.path.join(lib, "bin"))


def test_requirements_are_all_pinned():
    for name in ("requirements.txt", "requirements-splunksdk.txt"):
        for line in open(os.path.join(REPO, name), encoding="utf-8"):
            line = line.split("#")[0].strip()
            if line:
                assert "==" in line, f"{name}: {line} is not pinned"
    text = io.open(os.path.join(REPO, "requirements-splunksdk.txt"), encoding="utf-8").read()
    assert "splunk-sdk==2.1.1" in text
