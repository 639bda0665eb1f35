"""External lookups vt_domain / vt_ip / vt_hash (and --cached twins), as Splunk runs them:
CSV on stdin, CSV on stdout. Usage: vt_lookup.py domain|ip|hash [--cached]"""
import sys

import vtpivot_bootstrap  # noqa: F401  (puts lib/ first on sys.path)
from vtpivot_app.lookup_runner import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
