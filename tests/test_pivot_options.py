"""vtpivot's command line (options before or after the field, validation, record=t) and
record shaping (pivot_command.py), plus the splunklib class in bin/vtpivot.py."""
import importlib.util
import os

import pytest

from vtpivot_app.errors import OptionError, VTPivotError
from vtpivot_app.pivot import DEFAULT_RELATIONSHIPS, OUTPUT_FIELDS, PivotOptions
from vtpivot_app.pivot_command import (check_tier, input_fields, parse_arguments, seed_values,
                                       shape_records)

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def parse(line):
    return parse_arguments(line.split())


def error_of(line):
    with pytest.raises(OptionError) as info:
        parse(line)
    return info.value


def test_defaults():
    parsed = parse("domain")
    assert parsed.field == "domain"
    assert parsed.options == PivotOptions(kind="auto", depth=1, relationships=(), limit=10,
                                          max_nodes=300, wait=0)
    assert parsed.options.relationships_for("domain") == DEFAULT_RELATIONSHIPS["domain"]
    assert parsed.logging_level == ""


@pytest.mark.parametrize("line", [
    "depth=2 limit=5 type=domain domain",
    "domain depth=2 limit=5 type=domain",
    "depth=2 domain limit=5 type=Domain",
])
def test_options_before_or_after_the_field(line):
    parsed = parse(line)
    assert parsed.field == "domain"
    assert (parsed.options.depth, parsed.options.limit, parsed.options.kind) == (2, 5, "domain")


def test_all_options():
    parsed = parse("relationships=Resolutions,subdomains,,resolutions max_nodes=2000 "
                   "limit=40 depth=3 logging_level=debug type=domain q wait=600")
    assert parsed.options.relationships == ("resolutions", "subdomains")
    assert (parsed.options.max_nodes, parsed.options.limit, parsed.options.depth) == (2000, 40, 3)
    assert parsed.options.wait == 600
    assert parsed.logging_level == "DEBUG"
    # a list applies, per node type, the names valid for it
    assert parsed.options.relationships_for("ip") == ("resolutions",)
    assert parsed.options.relationships_for("hash") == ()


@pytest.mark.parametrize("line,words", [
    ("domain depth=0", "depth must be from 1 to 3"),
    ("domain depth=4", "depth must be from 1 to 3"),
    ("domain depth=two", "depth must be a whole number"),
    ("domain depth=", "depth must be a whole number"),
    ("domain limit=41", "VirusTotal answers 400 above 40"),
    ("domain limit=0", "limit must be from 1 to 40"),
    ("domain max_nodes=0", "max_nodes must be from 1 to 2000"),
    ("domain max_nodes=2001", "max_nodes must be from 1 to 2000"),
    ("domain wait=601", "wait must be from 0 to 600"),
    ("domain wait=-1", "wait must be from 0 to 600"),
    ("domain wait=1.5", "wait must be a whole number"),
    ("domain type=url", "type must be one of auto, domain, ip, hash"),
    ("domain logging_level=LOUD", "logging_level must be one of"),
    ("domain relationships=comments", "unknown relationship 'comments'"),
    ("domain relationships=,", "relationships needs at least one name"),
    ("type=ip relationships=subdomains ip", "none of these relationships applies to a ip"),
    ("domain depht=2", "unknown option 'depht'"),
    ("domain show_configuration=t", "unknown option 'show_configuration'"),
    ("domain logging_configuration=/etc/passwd", "unknown option 'logging_configuration'"),
    ("domain depth=1 depth=2", "option depth is given twice"),
    ("", "needs the field that holds the indicator"),
    ("depth=2", "needs the field that holds the indicator"),
    ("domain ip", "exactly one field, not 2 (domain, ip)"),
    ("domain 2", "exactly one field"),
])
def test_bad_arguments_are_one_clear_error(line, words):
    exc = error_of(line)
    assert exc.code == "VTP-E050"
    assert str(exc).startswith("[VTP-E050] ")
    assert words in str(exc)
    assert "Syntax: vtpivot" in str(exc)


@pytest.mark.parametrize("token", ["record=t", "record=true", "RECORD=1", "record=f"])
def test_record_is_refused(token):
    for line in (token + " domain", "domain " + token):
        exc = error_of(line)
        assert exc.code == "VTP-E051"
        assert "session key" in str(exc)


def test_a_relationship_not_for_the_seed_type_is_fine_when_deeper_hops_use_it():
    parsed = parse("type=ip relationships=resolutions,subdomains depth=2 ip")
    assert parsed.options.relationships_for("ip") == ("resolutions",)
    assert parsed.options.relationships_for("domain") == ("resolutions", "subdomains")


def test_premium_relationships_need_a_premium_key():
    options = parse("relationships=resolutions,downloaded_files d").options
    with pytest.raises(VTPivotError) as info:
        check_tier(options, "public")
    assert info.value.code == "VTP-E011"
    assert "downloaded_files" in str(info.value)
    check_tier(options, "premium")
    check_tier(parse("d").options, "public")


# ---- record shaping --------------------------------------------------------------------

class StubWalker:
    def __init__(self):
        self.seen, self.budget_checked = [], []

    def check_budget(self, seeds):
        self.budget_checked.append(list(seeds))

    def pivot(self, seed):
        self.seen.append(seed)
        row = dict.fromkeys(OUTPUT_FIELDS, "")
        row.update(seed=seed, src=seed, dst="x-" + seed, vt_status="ok")
        return [row, dict(row, dst="y-" + seed)]


def test_seed_values_of_single_and_multivalue_fields():
    assert seed_values("a.example") == ["a.example"]
    assert seed_values(["a.example", " ", "b.example"]) == ["a.example", "b.example"]
    assert seed_values(None) == [] and seed_values("  ") == []


def test_shaped_records_keep_input_fields_and_all_share_one_key_order():
    stub = StubWalker()
    records = [{"_time": "1", "domain": ["a.example", "b.example"], "src": "in", "host": "h"},
               {"_time": "2", "domain": "c.example", "other": "o"},
               {"_time": "3", "domain": ""}]
    out = list(shape_records(records, "domain", stub))
    assert stub.seen == ["a.example", "b.example", "c.example"]
    assert stub.budget_checked == [["a.example", "b.example", "c.example"]]
    assert len(out) == 7
    keys = list(out[0])
    assert keys == ["_time", "host", "other"] + list(OUTPUT_FIELDS)
    assert all(list(r) == keys for r in out)
    # input fields named like output fields (src, domain): the output wins
    assert out[0]["src"] == "a.example"
    assert out[0]["domain"] == ""           # the stub's edges carry no domain column
    assert out[0]["host"] == "h" and out[4]["host"] is None and out[4]["other"] == "o"
    assert out[-1]["vt_status"] == "invalid" and "[VTP-E040]" in out[-1]["vt_error"]


def test_input_fields_skip_output_names():
    assert input_fields([{"a": 1, "hop": 2}, {"b": 3, "a": 4}]) == ["a", "b"]


# ---- the splunklib command class --------------------------------------------------------

@pytest.fixture(scope="module")
def command_module():
    spec = importlib.util.spec_from_file_location("vtpivot_cmd",
                                                  os.path.join(REPO, "bin", "vtpivot.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_command_runs_on_the_search_head_only(command_module):
    cls = command_module.VTPivotCommand
    assert cls.name == "vtpivot"
    command = cls()
    assert command.configuration.distributed is False
    assert "##Syntax" in cls.__doc__ and "##Description" in cls.__doc__
    assert "##Example" in cls.__doc__


def test_every_argument_reaches_our_parser_and_record_stays_off(command_module):
    command = command_module.VTPivotCommand()
    assert command._protocol_v2_option_parser("record=t") == ["record=t"]
    assert command._protocol_v2_option_parser("depth=2") == ["depth=2"]
    assert "record" not in [name for name, _ in type(command).option_definitions]
    command.record = True
    assert command.record is False
    with pytest.raises(RuntimeError):
        command._prepare_recording(["x"], None, None)
