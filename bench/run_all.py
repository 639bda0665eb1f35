"""`make bench`: run every benchmark and print its figures (ratios against baselines that
each benchmark measures in the same run). Benchmarks are never tests: nothing here fails the
build because a number is slow; a benchmark that crashes does."""
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
BENCHES = [
    ("lookups (start-up, cached throughput, skewed stream vs vt-py)",
     [sys.executable, os.path.join(HERE, "bench_lookups.py")]),
    ("shared state (object store reads, rate limiter acquire)",
     [sys.executable, os.path.join(HERE, "bench_state.py")]),
    ("vtpivot depth-2 pivot vs naive walk", [sys.executable, os.path.join(HERE, "bench_pivot.py")]),
    ("graph layout and drag FPS in headless Chromium",
     ["node", os.path.join(HERE, "viz_bench.mjs")]),
]


def main():
    only = sys.argv[1:]
    failed = []
    for title, cmd in BENCHES:
        if only and not any(word in title for word in only):
            continue
        print(f"\n=== {title}\n$ {' '.join(os.path.relpath(c, REPO) if c.startswith(REPO) else c for c in cmd)}", flush=True)
        started = time.time()
        proc = subprocess.run(cmd, cwd=REPO)
        print(f"--- {time.time() - started:.1f} s, exit {proc.returncode}", flush=True)
        if proc.returncode:
            failed.append(title)
    if failed:
        sys.exit(f"benchmarks that crashed: {', '.join(failed)}")


if __name__ == "__main__":
    main()
