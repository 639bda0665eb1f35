"""Build dist/vtpivot-<version>.tgz from an allow-list, reproducibly.

Reproducible means: entries sorted, fixed mtime, uid/gid 0, normalised modes (files 0644,
directories 0755), gzip header without a timestamp. Two builds of the same tree are
byte-identical (tests/test_foundation.py checks it).
"""
import argparse
import gzip
import io
import os
import sys
import tarfile

APP_ID = "vtpivot"
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Top-level entries that belong to the app. Everything else (tests/, src/, bench/, demo/,
# devtools/, Makefile, .ci/, node_modules/...) is development-only.
ALLOWED_TOP = (
    "app.manifest",
    "LICENSE",
    "README.md",
    "README",
    "default",
    "metadata",
    "bin",
    "lib",
    "lookups",
    "appserver",
    "static",
)
FIXED_MTIME = 1700000000  # any constant: Splunk does not read archive times


def excluded(rel_path):
    """Files never shipped even inside an allowed folder."""
    parts = rel_path.split("/")
    if any(p.startswith(".") for p in parts):  # dot-files and dot-folders
        return True
    if "__pycache__" in parts or rel_path.endswith((".pyc", ".pyo")):
        return True
    if parts[0] == "metadata" and parts[-1] == "local.meta":
        return True
    if parts[0] == "lib" and parts[-1] == ".stamp":
        return True
    return False


def collect(root=ROOT):
    """Return the sorted list of relative paths (files and folders) the package holds."""
    entries = []
    for top in ALLOWED_TOP:
        path = os.path.join(root, top)
        if os.path.isfile(path):
            entries.append(top)
        elif os.path.isdir(path):
            for dirpath, dirnames, filenames in os.walk(path):
                dirnames[:] = sorted(d for d in dirnames if not excluded(
                    os.path.relpath(os.path.join(dirpath, d), root).replace(os.sep, "/")))
                rel_dir = os.path.relpath(dirpath, root).replace(os.sep, "/")
                entries.append(rel_dir)
                for name in sorted(filenames):
                    rel = f"{rel_dir}/{name}"
                    if not excluded(rel):
                        entries.append(rel)
    return sorted(set(entries))


def build(out_path, root=ROOT):
    entries = collect(root)
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for rel in [""] + entries:
            src = os.path.join(root, rel) if rel else root
            info = tarfile.TarInfo(f"{APP_ID}/{rel}".rstrip("/"))
            info.mtime = FIXED_MTIME
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            if os.path.isdir(src):
                info.type = tarfile.DIRTYPE
                info.mode = 0o755
                tar.addfile(info)
            else:
                with open(src, "rb") as handle:
                    data = handle.read()
                info.size = len(data)
                info.mode = 0o644  # AppInspect flags executable bits; Splunk runs scripts itself
                tar.addfile(info, io.BytesIO(data))
    os.makedirs(os.path.dirname(os.path.abspath(out_path)), exist_ok=True)
    with open(out_path, "wb") as handle:
        with gzip.GzipFile(filename="", mode="wb", fileobj=handle, mtime=0) as gz:
            gz.write(raw.getvalue())
    return entries


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    if not os.path.isdir(os.path.join(ROOT, "lib")):
        sys.exit("lib/ is missing: run `make deps` first")
    entries = build(args.out)
    files = [e for e in entries if os.path.isfile(os.path.join(ROOT, e))]
    print(f"built {args.out}: {len(files)} files, {os.path.getsize(args.out)} bytes")


if __name__ == "__main__":
    main()
