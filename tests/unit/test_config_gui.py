"""The gui section: its default, the environment override and validation."""

from __future__ import annotations

import pytest

from pushsvc.config import ConfigError, build_config


def test_the_default_stall_threshold_is_two_minutes():
    assert build_config({}, {}).gui.stall_after_s == 120.0


def test_file_and_environment_set_the_threshold():
    assert build_config({"gui": {"stall_after_s": 900}}, {}).gui.stall_after_s == 900.0
    config = build_config({"gui": {"stall_after_s": 900}}, {"PUSHSVC_GUI_STALL_AFTER_S": "45.5"})
    assert config.gui.stall_after_s == 45.5


@pytest.mark.parametrize(
    ("raw", "environ", "message"),
    [
        ({"gui": {"stall_after_s": 0}}, {}, "gui.stall_after_s: must be positive, got 0.0"),
        ({"gui": {"stall_after_s": -5}}, {}, "gui.stall_after_s: must be positive, got -5.0"),
        ({}, {"PUSHSVC_GUI_STALL_AFTER_S": "nan"}, "gui.stall_after_s: must be a finite number of seconds, got nan"),
        ({}, {"PUSHSVC_GUI_STALL_AFTER_S": "inf"}, "gui.stall_after_s: must be a finite number of seconds, got inf"),
        ({"gui": {"stall_after_s": "soon"}}, {}, "gui.stall_after_s: expected a number, got 'soon'"),
        ({"gui": {"stall_after_s": True}}, {}, "gui.stall_after_s: expected a number, got True"),
        ({"gui": {"stall": 120}}, {}, "gui.stall: unknown key"),
        ({}, {"PUSHSVC_GUI_STALL": "1"}, "PUSHSVC_GUI_STALL: unknown setting (gui.stall)"),
    ],
)
def test_bad_values_name_the_key(raw, environ, message):
    with pytest.raises(ConfigError) as info:
        build_config(raw, environ)
    assert str(info.value) == message
