"""fakevt: a faithful local stand-in for the VirusTotal API v3 (tests, demo, benchmarks).

    from fakevt import FakeVirusTotal
    with FakeVirusTotal(dataset="basic", keys={"k1": "public"}) as vt:
        vt.url            # http://127.0.0.1:<port>/api/v3
        vt.calls("/domains/example.com")

Stdlib only; runs on Python 3.9 and 3.13. See README.md.
"""

from .dataset import Dataset, load_dataset, write_dataset
from .server import FakeVirusTotal, BUILTIN_DATASETS, DEFAULT_QUOTAS, encode_cursor, decode_cursor

__all__ = ["FakeVirusTotal", "Dataset", "load_dataset", "write_dataset", "BUILTIN_DATASETS",
           "DEFAULT_QUOTAS", "encode_cursor", "decode_cursor"]
