# SPDX-License-Identifier: GPL-2.0-or-later
from pathlib import Path

import pytest

from obd2_bridge.config import ConfigError, load_config


def test_file_then_environment_then_command_line(tmp_path: Path) -> None:
    path = tmp_path / "bridge.toml"
    path.write_text(
        'adapter = "/dev/rfcomm0"\napi_url = "https://a.example"\ntoken = "file"\n'
        'slow_pids = ["COOLANT_TEMP"]\nbaudrate = 115200\n'
    )
    env = {"OBD2_API_URL": "https://b.example", "OBD2_DEVICE_TOKEN": "env"}
    config = load_config(path, {"token": "cli", "fast_pids": "rpm,SPEED"}, env).check()
    assert config.adapter == "/dev/rfcomm0"
    assert config.api_url == "https://b.example"
    assert config.token == "cli"
    assert config.baudrate == 115200
    assert config.fast_pids == ("RPM", "SPEED")
    assert config.slow_pids == ("COOLANT_TEMP",)


def test_bad_settings_name_themselves(tmp_path: Path) -> None:
    path = tmp_path / "bridge.toml"
    path.write_text('adapterr = "/dev/rfcomm0"\n')
    with pytest.raises(ConfigError, match="unknown setting 'adapterr'"):
        load_config(path, {}, {})
    with pytest.raises(ConfigError, match="token is not set"):
        load_config(
            None, {"adapter": "x", "api_url": "http://h"}, {"OBD2_BRIDGE_CONFIG": "/no"}
        ).check()
    with pytest.raises(ConfigError, match="unknown PID 'RPMM'"):
        load_config(
            None,
            {"adapter": "x", "api_url": "http://h", "token": "t", "fast_pids": "RPMM"},
            {"OBD2_BRIDGE_CONFIG": "/no"},
        ).check()
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "missing.toml", {}, {})
