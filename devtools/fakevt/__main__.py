"""CLI: serve a dataset until SIGTERM/SIGINT.

    PYTHONPATH=devtools python -m fakevt --dataset basic --port 0 --key KEY:public

Prints ONE JSON line on stdout when ready: {"url": ..., "control": ..., "port": ..., "pid": ...}.
Keys may also come from the environment variable named by --keys-env (KEY:tier,KEY:tier), so
they need not appear on a command line.
"""

import argparse
import json
import os
import signal
import sys
import threading

from .server import BUILTIN_DATASETS, FakeVirusTotal


def _parse_key(text):
    key, sep, tier = text.rpartition(":")
    if not sep or not key or tier not in ("public", "premium"):
        raise argparse.ArgumentTypeError("expected KEY:public or KEY:premium, got %r" % text)
    return key, tier


def _parse_quota(text):
    # tier-or-key:per_minute:per_day ; "-" means unlimited
    bits = text.rsplit(":", 2)
    if len(bits) != 3:
        raise argparse.ArgumentTypeError("expected TIER:PER_MINUTE:PER_DAY, got %r" % text)

    def num(v):
        return None if v in ("-", "", "none") else int(v)
    return bits[0], num(bits[1]), num(bits[2])


def build_parser():
    p = argparse.ArgumentParser(prog="python -m fakevt", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", default="basic",
                   help="dataset directory, or a builtin: %s; or synthetic:lookup:N / "
                        "synthetic:pivot" % ", ".join(sorted(BUILTIN_DATASETS)))
    p.add_argument("--host", default="127.0.0.1", choices=["127.0.0.1", "localhost", "::1"])
    p.add_argument("--port", type=int, default=0, help="0 (default) picks a free port")
    p.add_argument("--key", action="append", type=_parse_key, default=[],
                   help="KEY:public or KEY:premium (repeatable)")
    p.add_argument("--keys-env", default=None,
                   help="name of an environment variable holding KEY:tier[,KEY:tier...]")
    p.add_argument("--quota", action="append", type=_parse_quota, default=[],
                   help="TIER_OR_KEY:PER_MINUTE:PER_DAY ('-' = unlimited), repeatable")
    p.add_argument("--retry-after", default=None,
                   help="send Retry-After on 429: seconds, or 'auto'")
    p.add_argument("--minute-error", default="QuotaExceededError",
                   choices=["QuotaExceededError", "TooManyRequestsError"])
    p.add_argument("--links-base", default=None,
                   help="base URL written in links (default: this server)")
    p.add_argument("--seed", type=int, default=1, help="seed of synthetic datasets")
    p.add_argument("--verbose", action="store_true", help="log requests to stderr")
    return p


def _dataset(spec, seed):
    if spec.startswith("synthetic:"):
        from . import synthetic
        bits = spec.split(":")
        if bits[1] == "lookup":
            n = int(bits[2]) if len(bits) > 2 else 10000
            return synthetic.lookup_dataset(n_domains=n, n_ips=n, n_files=n, seed=seed)
        if bits[1] == "pivot":
            return synthetic.pivot_dataset(seed=seed)
        raise SystemExit("unknown synthetic dataset %r" % spec)
    return spec


def main(argv=None):
    args = build_parser().parse_args(argv)
    keys = dict(args.key)
    if args.keys_env:
        for item in filter(None, os.environ.get(args.keys_env, "").split(",")):
            k, t = _parse_key(item.strip())
            keys[k] = t
    if not keys:
        keys = None            # the defaults: test-public-key / test-premium-key
    retry_after = args.retry_after
    if retry_after not in (None, "auto"):
        retry_after = int(retry_after)
    fake = FakeVirusTotal(dataset=_dataset(args.dataset, args.seed), keys=keys, host=args.host,
                          port=args.port, retry_after=retry_after,
                          minute_error=args.minute_error, links_base=args.links_base,
                          verbose=args.verbose)
    for target, per_minute, per_day in args.quota:
        fake.set_quota(target, per_minute, per_day)
    fake.start()

    done = threading.Event()

    def _stop(signum, frame):
        done.set()
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    sys.stdout.write(json.dumps({"url": fake.url, "control": fake.control_url,
                                 "port": fake.port, "pid": os.getpid(),
                                 "dataset": fake.dataset.name}) + "\n")
    sys.stdout.flush()
    while not done.wait(0.5):
        pass
    fake.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
