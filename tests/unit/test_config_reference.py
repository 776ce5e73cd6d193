"""docs/configuration.md is generated from the config definitions and must stay in step with them."""

from __future__ import annotations

import pathlib

import yaml

from pushsvc.config_reference import key_comments, render, settings, shipped_config_text

DOC = pathlib.Path(__file__).resolve().parents[2] / "docs" / "configuration.md"
# Keys whose config.yaml value is left empty on purpose: the default then depends on another key.
DERIVED_DEFAULTS = {"poller.interval"}


def test_the_reference_is_up_to_date():
    assert DOC.read_text(encoding="utf-8") == render(), (
        "docs/configuration.md is out of date: python -m pushsvc.config_reference > docs/configuration.md"
    )


def test_every_key_has_a_meaning_in_config_yaml():
    meanings = key_comments(shipped_config_text())
    missing = [f"{section}.{key}" for section, key, _, _ in settings() if not meanings.get(f"{section}.{key}")]
    assert not missing, f"keys without a comment in config.yaml: {missing}"


def test_config_yaml_shows_the_real_defaults():
    shipped = yaml.safe_load(shipped_config_text())
    for section, key, _, default in settings():
        dotted = f"{section}.{key}"
        assert key in shipped.get(section, {}), f"{dotted} is missing from config.yaml"
        value = shipped[section][key]
        if dotted in DERIVED_DEFAULTS:
            assert value is None, dotted
            continue
        expected = list(default) if isinstance(default, tuple) else default
        assert value == expected, f"{dotted}: config.yaml says {value!r}, the code's default is {default!r}"


def test_config_yaml_has_no_key_the_code_does_not_know():
    known = {f"{section}.{key}" for section, key, _, _ in settings()}
    shipped = yaml.safe_load(shipped_config_text())
    written = {f"{section}.{key}" for section, keys in shipped.items() for key in keys}
    assert written <= known, written - known


def test_comments_are_read_from_above_and_beside():
    text = "server:\n  # first line\n  # second line\n  host: x  # beside\n\n  # orphan\n\n  port: 1\n"
    assert key_comments(text) == {"server.host": "first line second line beside", "server.port": ""}
