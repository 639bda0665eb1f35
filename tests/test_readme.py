"""The README documents what the code ships: every error code, every lookup field, every
conf key, and it opens with the two set-up commands."""
import configparser
import os
import re

from vtpivot_app.errors import CODES

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
README = open(os.path.join(REPO, "README.md"), encoding="utf-8").read()


def test_readme_opens_with_the_two_commands():
    first_block = README.split("```")[1]
    assert "make demo" in first_block and "make test" in first_block


def test_every_error_code_is_in_the_troubleshooting_table():
    table = README[README.index("## Troubleshooting by error code"):]
    for code in CODES:
        assert f"| `{code}` |" in table, code


def test_every_lookup_output_field_is_documented():
    parser = configparser.RawConfigParser(strict=False)
    parser.read(os.path.join(REPO, "default", "transforms.conf"), encoding="utf-8")
    reference = README[README.index("### Field reference"):README.index("### What `vt_status`")]
    documented = set(re.findall(r"`([a-z0-9_]+)`", reference))
    for stanza in parser.sections():
        for field in (f.strip() for f in parser.get(stanza, "fields_list").split(",")):
            assert field in documented, f"{stanza}: {field} missing from the field reference"


def test_every_conf_key_is_in_the_spec():
    spec = open(os.path.join(REPO, "README", "vtpivot.conf.spec"), encoding="utf-8").read()
    parser = configparser.RawConfigParser(strict=False)
    parser.read(os.path.join(REPO, "default", "vtpivot.conf"), encoding="utf-8")
    for stanza in parser.sections():
        assert f"[{stanza}]" in spec
        for key in parser.options(stanza):
            assert re.search(rf"^{re.escape(key)} = ", spec, re.M), f"[{stanza}] {key}"


def test_every_vtpivot_option_is_documented():
    from vtpivot_app.pivot_command import OPTION_NAMES

    section = README[README.index("## The vtpivot command"):]
    for name in OPTION_NAMES:
        assert f"| `{name}` |" in section, name
