"""Configuration errors name the file, line and key, and never quote the file's content."""

from __future__ import annotations

import pytest

from pushsvc.config import ConfigError, build_config, load_config

LEAK = "YamlSecretLEAK0123456789abcdefghij"

BROKEN = {
    "unterminated quote": (
        f'server:\n  port: 8082\nauth:\n  secret: "{LEAK}\n  algorithm: HS256\n',
        "line 4",
        "auth.secret",
    ),
    "tab indentation": (f"auth:\n\tsecret: {LEAK}\n", "line 2", "auth"),
    "value with a colon": (f"auth:\n  secret: a: {LEAK}\n", "line 2", "auth.secret"),
    "undefined alias": (f"auth:\n  secret: *{LEAK}\n", "line 2", "auth.secret"),
    "unknown escape": (f'auth:\n  secret: "{LEAK}\\q{LEAK}"\n', "line 2", "auth.secret"),
    "unknown tag": (f"auth:\n  secret: !{LEAK} x\n", "line 2", "auth.secret"),
    "unclosed flow": (f"auth: {{secret: [{LEAK}\n", "line 1", "auth"),
    "a secret as a key": (f'auth:\n  {LEAK}: "x\n', "line 2", ""),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_yaml_errors_name_file_line_and_key_but_quote_nothing(tmp_path, case):
    text, line, key = BROKEN[case]
    path = tmp_path / "config.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(path, environ={})
    message = str(info.value)
    assert str(path) in message and f"{line}," in message
    if key:
        assert f"({key})" in message
    assert "\n" not in message
    for fragment in (LEAK, LEAK[:8], "Yaml", "LEAK"):
        assert fragment not in message, message


@pytest.mark.parametrize(
    "raw",
    [{"database": {"url": ["mysql://u:Pa55word@h/d"]}}, {"auth": {"secret": {"nested": "Pa55word"}}}],
)
def test_values_of_secret_keys_are_never_shown(raw):
    with pytest.raises(ConfigError) as info:
        build_config(raw, {})
    assert "Pa55word" not in str(info.value) and "<hidden>" in str(info.value)


def test_an_unknown_section_is_named():
    with pytest.raises(ConfigError, match="metrcs: unknown section"):
        build_config({"metrcs": {"require_auth": True}}, {})
