"""`make demo` end to end: the story's pivots are found, the PNG exists and is not blank, and
the second pivot makes no VirusTotal call."""
import json
import os
import subprocess
import sys
import zlib

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def png_pixels_vary(path):
    """True when the PNG's image data is not one flat colour (decoded with zlib only)."""
    with open(path, "rb") as handle:
        data = handle.read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat = 8, b""
    while pos < len(data):
        length = int.from_bytes(data[pos:pos + 4], "big")
        kind = data[pos + 4:pos + 8]
        if kind == b"IDAT":
            idat += data[pos + 8:pos + 8 + length]
        pos += 12 + length
    raw = zlib.decompress(idat)
    return len(set(raw)) > 64  # a blank page compresses to a handful of byte values


def test_demo_tells_the_story(tmp_path):
    facts = json.load(open(os.path.join(REPO, "demo", "scenario", "facts.json"),
                           encoding="utf-8"))
    out = tmp_path / "demo"
    proc = subprocess.run([sys.executable, os.path.join(REPO, "demo", "run_demo.py"),
                           "--skip-package", "--out", str(out)], capture_output=True,
                          text=True, timeout=600, cwd=REPO)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert summary["seed"] == facts["lookalike"]["domain"]
    assert sorted(summary["ips"]) == sorted(facts["lookalike"]["ips"])
    assert summary["lookalikes"] == [facts["impersonator"]["domain"]]
    assert {"greenleaf-bakery.example", "harborview-dental.example",
            "tristate-logistics.example", "wp-cdn-assets.example"} <= set(
        summary["old_letsencrypt"])
    assert sorted(summary["asns"]) == sorted(f"AS{a}" for a in facts["asns"])
    first, second = summary["pivot_calls"]
    assert first > 0 and second == 0
    assert summary["edges"] >= 20
    assert "northwind-supp1y.example" in proc.stdout and "3 different ASNs" in proc.stdout
    assert os.path.exists(summary["html"])
    assert summary["png"], "no screenshot: " + proc.stdout[-500:]
    assert os.path.getsize(summary["png"]) > 20000
    assert png_pixels_vary(summary["png"])
