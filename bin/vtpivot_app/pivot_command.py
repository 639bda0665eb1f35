"""Glue between splunklib's StreamingCommand (bin/vtpivot.py) and the walk (pivot.py).

- parse_arguments: the command line, options before OR after the field. splunklib alone
  reads `name=value` only before the field names and takes `vtpivot domain depth=2` as two
  field names, silently; so every argument reaches us as a bare token (see
  VTPivotCommand._protocol_v2_option_parser) and is parsed and validated here.
- connect: the API key and settings, read in the vtpivot app's namespace.
- shape_records: input record fields + edge fields, the same keys in the same order on
  every record of a chunk (splunkd takes the header from a chunk's first record).
"""
import os
from dataclasses import dataclass

from .errors import OptionError, VTPivotError
from .pivot import KINDS, OUTPUT_FIELDS, PUBLIC_RELATIONSHIPS, VALID_RELATIONSHIPS, PivotOptions

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
OPTION_NAMES = ("type", "depth", "relationships", "limit", "max_nodes", "wait",
                "logging_level")
RANGES = {"depth": (1, 3), "limit": (1, 40), "max_nodes": (1, 2000), "wait": (0, 600)}
TYPES = ("auto",) + KINDS
SYNTAX = ("vtpivot [type=auto|domain|ip|hash] [depth=1..3] [relationships=<list>] "
          "[limit=1..40] [max_nodes=1..2000] [wait=0..600] [logging_level=<level>] <field>")


@dataclass
class ParsedArguments:
    field: str
    options: PivotOptions
    logging_level: str = ""


def _option_error(message):
    return OptionError(f"{message}. Syntax: {SYNTAX}")


def parse_arguments(tokens):
    """ParsedArguments from the command's arguments, or OptionError (VTP-E050/E051)."""
    fields, values = [], {}
    for token in tokens:
        token = str(token)
        name, sep, value = token.partition("=")
        if not sep:
            fields.append(token)
            continue
        name = name.strip().lower()
        if name == "record":
            # splunklib's record=t writes the input, session key included, to disk.
            raise OptionError("record= is disabled for vtpivot: splunklib's recording writes "
                              "the session key to disk", code="VTP-E051")
        if name not in OPTION_NAMES:
            raise _option_error(f"unknown option {name!r} (options: "
                                f"{', '.join(OPTION_NAMES)})")
        if name in values:
            raise _option_error(f"option {name} is given twice")
        values[name] = value.strip()
    if not fields:
        raise _option_error("vtpivot needs the field that holds the indicator, e.g. "
                            "`vtpivot domain`")
    if len(fields) > 1:
        raise _option_error(f"vtpivot takes exactly one field, not {len(fields)} "
                            f"({', '.join(fields)}); options are written name=value")
    options = PivotOptions()
    for name, (low, high) in RANGES.items():
        if name in values:
            setattr(options, name, _int_in_range(name, values[name], low, high))
    if "type" in values:
        kind = values["type"].lower()
        if kind not in TYPES:
            raise _option_error(f"type must be one of {', '.join(TYPES)}, not "
                                f"{values['type']!r}")
        options.kind = kind
    if "relationships" in values:
        options.relationships = _relationships(values["relationships"], options)
    level = ""
    if "logging_level" in values:
        level = values["logging_level"].upper()
        if level not in LOG_LEVELS:
            raise _option_error(f"logging_level must be one of {', '.join(LOG_LEVELS)}")
    return ParsedArguments(field=fields[0], options=options, logging_level=level)


def _int_in_range(name, text, low, high):
    try:
        value = int(text)
    except ValueError:
        raise _option_error(f"{name} must be a whole number from {low} to {high}, not "
                            f"{text!r}") from None
    if not low <= value <= high:
        why = " (VirusTotal answers 400 above 40)" if name == "limit" else ""
        raise _option_error(f"{name} must be from {low} to {high}, not {value}{why}")
    return value


def _relationships(text, options):
    names = []
    for part in text.split(","):
        part = part.strip().lower()
        if part and part not in names:
            names.append(part)
    if not names:
        raise _option_error("relationships needs at least one name")
    known = sorted({r for rels in VALID_RELATIONSHIPS.values() for r in rels})
    for name in names:
        if name not in known:
            raise _option_error(f"unknown relationship {name!r} (known: {', '.join(known)})")
    if options.kind != "auto" and options.depth == 1:
        if not any(name in VALID_RELATIONSHIPS[options.kind] for name in names):
            raise _option_error(f"none of these relationships applies to a {options.kind} "
                                f"(valid: {', '.join(VALID_RELATIONSHIPS[options.kind])})")
    return tuple(names)


def check_tier(options, tier):
    """A premium relationship with a public key would cost a 403 per node: refuse early."""
    if tier == "premium" or not options.relationships:
        return
    public = {r for rels in PUBLIC_RELATIONSHIPS.values() for r in rels}
    premium = [r for r in options.relationships if r not in public]
    if premium:
        raise VTPivotError(f"relationship {', '.join(premium)} needs a premium key (the app's "
                           "key tier is public)", code="VTP-E011")


# ---- credentials and settings ----------------------------------------------------------
def connect(searchinfo, environ=None):
    """(settings, enricher, policy) for a search: the key and settings are read in the
    vtpivot app's namespace through the search's session key (not searchinfo.app's);
    VT_API_KEY in the environment wins (outside Splunk, tests). Raises CredentialError
    (VTP-E001/E002/E003) with what to fix."""
    from . import credentials, settings as settings_module
    from .enrichment import build_enricher

    environ = dict(os.environ if environ is None else environ)
    service = None
    session_key = getattr(searchinfo, "session_key", None)
    splunkd_uri = getattr(searchinfo, "splunkd_uri", None)
    if session_key and splunkd_uri and not environ.get("VT_API_KEY"):
        service = credentials.vtpivot_service(splunkd_uri, session_key)
    settings, conf_error = None, None
    if service is not None:
        try:
            stanzas = settings_module.read_conf_rest(service)
        except Exception as exc:  # noqa: BLE001 - REST unavailable: the files still hold it
            conf_error = exc
        else:
            # splunklib gives None for an empty conf value ("url ="): that is "", not "None".
            stanzas = {name: {k: ("" if v is None else v) for k, v in keys.items()}
                       for name, keys in stanzas.items()}
            settings = settings_module.from_stanzas(stanzas, environ)
    if settings is None:
        settings = settings_module.load_settings(environ=environ)
    api_key = credentials.get_api_key(service=service, environ=environ)
    # Read once here (one clear error when missing); the client factory reuses it.
    environ["VT_API_KEY"] = api_key
    enricher = build_enricher(settings, live=True, service=service, environ=environ)
    return settings, enricher, conf_error


# ---- records ---------------------------------------------------------------------------
def seed_values(value):
    """The seeds of one input field value: each value of a multivalue field, no blanks."""
    if value is None:
        return []
    values = value if isinstance(value, (list, tuple)) else [value]
    return [str(v).strip() for v in values if v is not None and str(v).strip()]


def input_fields(records):
    """Union of the input field names in first-seen order, minus those the output owns."""
    names = []
    seen = set(OUTPUT_FIELDS)
    for record in records:
        for name in record:
            if name not in seen:
                seen.add(name)
                names.append(name)
    return names


def shape_records(records, field, walker):
    """Generator of output records for one chunk of input records."""
    records = list(records)
    names = input_fields(records)
    walker.check_budget([v for r in records for v in seed_values(r.get(field))])
    for record in records:
        base = {name: record.get(name) for name in names}
        seeds = seed_values(record.get(field))
        if not seeds:
            row = dict.fromkeys(OUTPUT_FIELDS, "")
            row.update(vt_status="invalid",
                       vt_error=f"[VTP-E040] the field {field} is empty or missing")
            yield _merge(base, row)
            continue
        for seed in seeds:
            for row in walker.pivot(seed):
                yield _merge(base, row)


def _merge(base, row):
    out = dict(base)
    for name in OUTPUT_FIELDS:  # output wins over a clashing input field (never in base)
        out[name] = row.get(name, "")
    return out

