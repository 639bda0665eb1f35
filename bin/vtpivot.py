"""The vtpivot streaming command (chunked protocol v2). Logic: vtpivot_app.pivot and
vtpivot_app.pivot_command; this file is the splunklib glue only."""
import sys
import time

import vtpivot_bootstrap  # noqa: F401  (puts lib/ first on sys.path)
from splunklib.searchcommands import Configuration, SearchMetric, StreamingCommand, dispatch

from vtpivot_app import app_logging, pivot_command
from vtpivot_app.errors import OptionError, VTPivotError
from vtpivot_app.indicators import IndicatorPolicy
from vtpivot_app.pivot import FatalPivotError, PivotWalker


@Configuration(distributed=False)
class VTPivotCommand(StreamingCommand):
    """
    ##Syntax

    vtpivot [type=auto|domain|ip|hash] [depth=<int>] [relationships=<list>] [limit=<int>]
            [max_nodes=<int>] [wait=<seconds>] [logging_level=<level>] <field>

    ##Description

    Walks VirusTotal relationships outward from the indicator in <field> (each value of a
    multivalue field is a seed), breadth-first up to `depth` hops (1-3, default 1), and
    writes one record per edge: src, relationship, dst, hop, resolution_date, the
    destination's verdicts and attributes, and the columns domain, ip and hash filled from
    the edge's ends (a domain->domain or file->file edge puts dst in related_domain or
    related_hash). Options may come before or after the field. Every node is fetched at most
    once per search and cached across searches; a seed that cannot be pivoted gives one
    record with vt_status and vt_error.

    ##Example

    | makeresults | eval domain="acme-flnance.example" | vtpivot domain depth=2
    | stats count BY domain, ip
    """

    # splunklib's own options (record, show_configuration, logging_configuration) are not
    # offered: every argument reaches parse_arguments as a bare token, and this read-only
    # property keeps recording (which writes the session key to disk) off whatever happens.
    record = property(lambda self: False, lambda self, value: None)

    def __init__(self):
        super().__init__()
        self.parsed = None
        self.walker = None
        self.started = None
        self.app_log = None

    def _protocol_v2_option_parser(self, arg):
        return [arg]

    def _prepare_recording(self, *args, **kwargs):
        raise RuntimeError("recording is disabled for vtpivot")

    def prepare(self):
        self.started = time.time()
        try:
            self.parsed = pivot_command.parse_arguments(self.fieldnames or [])
        except OptionError as exc:
            self.error_exit(exc, message=str(exc))
            return
        try:
            settings, enricher, conf_error = pivot_command.connect(self.metadata.searchinfo)
            pivot_command.check_tier(self.parsed.options, settings.tier)
        except VTPivotError as exc:
            self.error_exit(exc, message=f"{exc} {exc.fix}".strip())
            return
        logger = app_logging.setup_logging(settings.log_dir,
                                           self.parsed.logging_level or settings.log_level)
        if conf_error is not None:
            app_logging.log_event(logger, 30, "conf_rest_failed", fallback="files",
                                  error=type(conf_error).__name__)
        self.walker = PivotWalker(enricher, self.parsed.options,
                                  policy=IndicatorPolicy.from_settings(settings),
                                  warn=self.write_warning)
        self.app_log = logger

    def stream(self, records):
        try:
            yield from pivot_command.shape_records(records, self.parsed.field, self.walker)
        except FatalPivotError as exc:
            self.error_exit(exc, message=f"{exc} {exc.fix}".strip())
        if self._finished:
            self._write_metrics()

    def _write_metrics(self):
        stats = self.walker.stats
        elapsed = time.time() - (self.started or time.time())
        for name in ("vt_calls", "cache_hits", "nodes", "edges", "throttled_nodes"):
            # SearchMetric(elapsed, invocations, input count, output count): the count is
            # the output count; the input count is the number of seeds.
            self.write_metric(name, SearchMetric(round(elapsed, 3), stats.walks, stats.seeds,
                                                 getattr(stats, name)))
        app_logging.log_event(self.app_log, 20, "pivot_done",
                              sid=getattr(self.metadata.searchinfo, "sid", ""),
                              depth=self.parsed.options.depth, elapsed_ms=int(elapsed * 1000),
                              **stats.as_dict())


if __name__ == "__main__":
    dispatch(VTPivotCommand, sys.argv, sys.stdin, sys.stdout, __name__)
