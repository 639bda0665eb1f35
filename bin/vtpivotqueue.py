"""The vtpivotqueue generating command (chunked protocol v2): background enrichment queue and
quota panel. Logic: vtpivot_app.background; this file is the splunklib glue only."""
import sys

import vtpivot_bootstrap  # noqa: F401  (puts lib/ first on sys.path)
from splunklib.searchcommands import Configuration, GeneratingCommand, Option, dispatch, \
    validators

from vtpivot_app import background
from vtpivot_app.errors import VTPivotError

LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


@Configuration(type="reporting")
class VTPivotQueueCommand(GeneratingCommand):
    """
    ##Syntax

    | vtpivotqueue [action=status|list|drain] [max_calls=<int>] [max_items=<int>]
                   [logging_level=<level>]

    ##Description

    The queue of indicators that lookups and pivots could not enrich because the VirusTotal
    budget was spent, and the budget itself. `action=status` (default) gives one row: queue
    length, the oldest item's age, calls left this minute / day / month and the circuit
    breaker's state; it makes no VirusTotal call and needs no access to _internal.
    `action=list` shows up to `max_items` queued items (default 100) in drain order.
    `action=drain` enriches queued indicators with at most `max_calls` VirusTotal calls
    (default 3), stops at the first throttled answer, and leaves the rest queued; drained
    indicators are then cache hits for every lookup. Runs on the search head only.

    ##Example

    | vtpivotqueue action=status

    | vtpivotqueue action=drain max_calls=3
    """

    action = Option(require=False, default="status", validate=validators.Set(
        *background.ACTIONS))
    max_calls = Option(require=False, default=3, validate=validators.Integer(0, 10000))
    max_items = Option(require=False, default=100, validate=validators.Integer(1, 10000))
    logging_level = Option(require=False, default=None, validate=validators.Set(
        *(LEVELS + tuple(level.lower() for level in LEVELS))))

    # splunklib's record=t writes the whole input, session key included, to disk: this
    # read-only property hides the option (record=... is then an unknown option).
    record = property(lambda self: False, lambda self, value: None)

    def _prepare_recording(self, *args, **kwargs):
        raise RuntimeError("recording is disabled for vtpivotqueue")

    def generate(self):
        try:
            rows = background.run(self.action or "status", searchinfo=self.metadata.searchinfo,
                                  max_calls=self.max_calls, max_items=self.max_items,
                                  logging_level=(self.logging_level or "").upper() or None)
        except VTPivotError as exc:
            self.error_exit(exc, message=f"{exc} {exc.fix}".strip())
            return
        for row in rows:
            yield row


if __name__ == "__main__":
    dispatch(VTPivotQueueCommand, sys.argv, sys.stdin, sys.stdout, __name__)
