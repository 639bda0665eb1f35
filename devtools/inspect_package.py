"""Run Splunk AppInspect (cloud tags, precert mode) on the package and fail on real findings.

splunk-appinspect exits 0 whatever it finds, so this reads the JSON report's summary and
exits 1 when failure, error or future_failure is above 0. The report is kept next to the
package (dist/appinspect-<name>.json) with the package's sha256, so `make demo` can reuse it
when the package has not changed.
"""
import hashlib
import json
import os
import subprocess
import sys

BLOCKING = ("failure", "error", "future_failure")


def sha256_of(path):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def report_path(package):
    base = os.path.basename(package).replace(".tgz", "")
    return os.path.join(os.path.dirname(package), f"appinspect-{base}.json")


def run_appinspect(package, reuse=False):
    """Return the AppInspect report dict, running the tool unless a report of this exact
    package (same sha256) already exists and reuse is asked for."""
    digest = sha256_of(package)
    out = report_path(package)
    if reuse and os.path.exists(out):
        with open(out, encoding="utf-8") as handle:
            report = json.load(handle)
        if report.get("vtpivot_package_sha256") == digest:
            report["vtpivot_reused"] = True
            return report
    tool = os.path.join(os.path.dirname(sys.executable), "splunk-appinspect")
    cmd = [tool, "inspect", package, "--mode", "precert", "--included-tags", "cloud",
           "--output-file", out, "--data-format", "json"]
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if not os.path.exists(out):
        sys.stderr.write(proc.stdout[-4000:])
        raise SystemExit("AppInspect produced no report")
    with open(out, encoding="utf-8") as handle:
        report = json.load(handle)
    report["vtpivot_package_sha256"] = digest
    with open(out, "w", encoding="utf-8") as handle:
        json.dump(report, handle, indent=1)
    return report


def findings(report, results=("failure", "error", "future_failure", "warning")):
    """Yield (result, check name, first message) for every non-passing check."""
    for app_report in report.get("reports", []):
        for group in app_report.get("groups", []):
            for check in group.get("checks", []):
                if check.get("result") in results:
                    # The message that gave the check its result (others may be notes).
                    messages = [m for m in check.get("messages") or []
                                if m.get("result") == check["result"]] or \
                        check.get("messages") or [{}]
                    yield check["result"], check["name"], messages[0].get("message", "")


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    reuse = "--reuse" in argv
    package = [a for a in argv if not a.startswith("--")][0]
    report = run_appinspect(package, reuse=reuse)
    summary = report.get("summary", {})
    print("AppInspect summary (%s): %s" % (
        "reused report" if report.get("vtpivot_reused") else "fresh run",
        ", ".join(f"{k}={summary.get(k, 0)}" for k in
                  ("success", "failure", "error", "future_failure", "warning",
                   "manual_check", "not_applicable", "skipped"))))
    for result, name, message in findings(report):
        print(f"  {result:14} {name}: {message[:300]}")
    bad = {k: summary.get(k, 0) for k in BLOCKING if summary.get(k, 0)}
    if bad:
        raise SystemExit(f"AppInspect found blocking results: {bad}")


if __name__ == "__main__":
    main()
