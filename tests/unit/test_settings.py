"""Settings: config/hub.toml documents every key; bad files stop start-up with file: key: reason."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from pydantic import BaseModel

from hub.app import build_router
from hub.errors import ConfigError
from hub.settings import Settings, load_settings

ROOT = Path(__file__).resolve().parents[2]
HUB_TOML = ROOT / "config" / "hub.toml"


def model_keys(model: type[BaseModel], prefix: str = "") -> set[str]:
    keys = set()
    for name, field in model.model_fields.items():
        keys.add(prefix + name)
        ann = field.annotation
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            keys |= model_keys(ann, f"{prefix}{name}.")
    return keys


def test_the_shipped_file_parses_and_matches_the_defaults_it_documents() -> None:
    s = load_settings(HUB_TOML, env={})
    d = Settings()
    # The file shows the defaults (plus an example device override and the example
    # village's name: the default is the site id, which no one should print on a poster).
    skip = {"health", "adapters", "rules_file", "village_name"}
    assert s.model_dump(exclude=skip) == d.model_dump(exclude=skip)
    assert s.village == "Thôn Đông" and d.village == d.site
    # rules_file is relative to the settings file's folder.
    assert s.rules_file == HUB_TOML.parent / "rules.toml" and s.rules_file.exists()
    assert s.health.kinds == d.health.kinds
    # Adapter roots and kinds are written out in the file; they are the adapters' own.
    assert build_router(s).filters == build_router(d).filters
    assert "ap-01" in s.health.devices


def test_every_key_is_in_the_file_and_commented() -> None:
    text = HUB_TOML.read_text(encoding="utf-8")
    data = tomllib.loads(text)
    present = set()

    def walk(node: dict[str, object], prefix: str = "") -> None:
        for k, v in node.items():
            present.add(prefix + k)
            if isinstance(v, dict) and prefix + k not in (
                "adapters",
                "health.kinds",
                "health.devices",
            ):
                walk(v, f"{prefix}{k}.")

    walk(data)
    # Keys shown commented out (optional ones without a default) count as documented.
    commented = {m.group(1) for m in re.finditer(r"^# ([a-z_]+) = ", text, re.M)}
    tables = [m.group(1) for m in re.finditer(r"^# \[([a-z_.-]+)\]", text, re.M)]
    for key in sorted(model_keys(Settings)):
        leaf = key.rsplit(".", 1)[-1]
        shown = key in present or leaf in commented or any(t.startswith(key) for t in tables)
        assert shown, f"{key} is not documented in hub.toml"
    # Each key has a description in the model too.
    for name, field in Settings.model_fields.items():
        assert field.description, name


@pytest.mark.parametrize(
    ("toml", "key", "reason"),
    [
        ("[mqtt]\nport = 70000\n", "mqtt.port", "less than or equal to 65535"),
        ("[mqtt]\nprot = 1\n", "mqtt.prot", "unknown key"),
        ('timezone = "Mars/Olympus"\n', "timezone", "unknown time zone"),
        ('site = "Thôn Đông"\n', "site", "should match pattern"),
        ("[adapters.lora]\nenabled = true\n", "adapters", "unknown adapter 'lora'"),
        (
            '[[health.kinds.ap.thresholds]]\nmetric = "x"\nop = "~"\nvalue = 1\n',
            "health.kinds.ap.thresholds.0.op",
            "Input should be",
        ),
        ("[health.kinds.ap\n", "(syntax)", "Expected"),
        ('[audio]\nsink = "bluetooth"\n', "audio.sink", "Input should be"),
        ('[http]\npublic_url = "thon-dong.vn"\n', "http.public_url", "http:// or https://"),
        ('[http]\npublic_url = "ftp://thon-dong.vn"\n', "http.public_url", "http:// or https://"),
        ('[http]\npublic_url = "http://a.vn/?x=1"\n', "http.public_url", "?query"),
    ],
)
def test_bad_files_name_file_key_and_reason(
    tmp_path: Path, toml: str, key: str, reason: str
) -> None:
    f = tmp_path / "bad.toml"
    f.write_text(toml, encoding="utf-8")
    with pytest.raises(ConfigError) as e:
        load_settings(f, env={})
    assert e.value.source.startswith(str(f))
    assert e.value.key == key
    assert reason in e.value.reason


def test_check_config_exits_2_with_the_key(tmp_path: Path) -> None:
    f = tmp_path / "hub.toml"
    f.write_text("[http]\nport = -1\n")
    r = subprocess.run(
        [sys.executable, "-m", "hub", "check-config", str(f)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 2
    assert r.stderr.startswith(f"{f}: http.port: ")
    ok = subprocess.run(
        [sys.executable, "-m", "hub", "check-config", str(HUB_TOML)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert ok.returncode == 0, ok.stderr


def test_run_refuses_a_bad_file_before_starting(tmp_path: Path) -> None:
    f = tmp_path / "hub.toml"
    f.write_text('log_level = "LOUD"\n')
    r = subprocess.run(
        [sys.executable, "-m", "hub", "run", "--config", str(f)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 2 and "log_level" in r.stderr


def test_env_overrides_every_level() -> None:
    s = load_settings(
        HUB_TOML,
        env={
            "LANGSO_SITE": "thon-tay",
            "LANGSO_MQTT__PORT": "1884",
            "LANGSO_MQTT__TLS": "true",
            "LANGSO_ADAPTERS__COLLECTD__ENABLED": "false",
            "LANGSO_ADAPTERS__COLLECTD__RENAME": '{"OpenWrt": "ap-nvh"}',
            "LANGSO_AUDIO__SINK": "null",
        },
    )
    assert (s.site, s.mqtt.port, s.mqtt.tls, s.audio.sink) == ("thon-tay", 1884, True, "null")
    assert s.adapters["collectd"].enabled is False
    assert s.adapters["collectd"].rename == {"OpenWrt": "ap-nvh"}


def test_a_bad_env_override_names_the_variable() -> None:
    with pytest.raises(ConfigError) as e:
        load_settings(HUB_TOML, env={"LANGSO_MQTT__PORT": "eighteen"})
    assert "LANGSO_MQTT__PORT" in e.value.source and e.value.key == "mqtt.port"


def test_no_default_password_anywhere() -> None:
    s = Settings()
    assert s.mqtt.password is None and s.mqtt.username is None


def test_the_public_url_is_kept_without_its_trailing_slash() -> None:
    s = load_settings(HUB_TOML, env={"LANGSO_HTTP__PUBLIC_URL": "http://192.168.1.10:8080/"})
    assert s.http.public_url == "http://192.168.1.10:8080"
    assert load_settings(HUB_TOML, env={"LANGSO_HTTP__PUBLIC_URL": ""}).http.public_url is None


def test_zone_names_only_for_zones_that_exist() -> None:
    with pytest.raises(ConfigError) as e:
        load_settings(HUB_TOML, env={"LANGSO_GPIO__ZONE_NAMES": '{"xom-bac": "Xóm Bắc"}'})
    assert e.value.key == "gpio" and "xom-bac" in e.value.reason


def test_https_needs_a_certificate_and_its_key_that_exist(tmp_path: Path) -> None:
    cert, key = tmp_path / "hub.crt", tmp_path / "hub.key"
    with pytest.raises(ConfigError) as e:
        load_settings(HUB_TOML, env={"LANGSO_HTTP__CERT_FILE": str(cert)})
    assert e.value.key == "http" and "go together" in e.value.reason
    both = {"LANGSO_HTTP__CERT_FILE": str(cert), "LANGSO_HTTP__KEY_FILE": str(key)}
    with pytest.raises(ConfigError) as e:
        load_settings(HUB_TOML, env=both)
    assert "no such file" in e.value.reason
    cert.write_text("x")
    key.write_text("x")
    assert load_settings(HUB_TOML, env=both).http.scheme == "https"
    assert load_settings(HUB_TOML).http.scheme == "http"
