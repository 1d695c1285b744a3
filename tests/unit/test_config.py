"""core.config: precedence, validation messages, secrets, directories, logging."""

from __future__ import annotations

import logging
import logging.handlers
import re
from collections.abc import Iterator
from datetime import time
from pathlib import Path

import pytest
from pydantic import ValidationError

from core.config import (
    ConfigError,
    LoggingSettings,
    RiskLimits,
    Settings,
    default_config_path,
    load_settings,
    redact_text,
    redact_uri,
    setup_logging,
    user_config_dir,
    user_data_dir,
    user_log_dir,
)
from core.session import SessionOptions

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "resources" / "default-config.toml"
SECRET = "wJalrXUtnFEMI-K7MDENG-bPxRfiCYEXAMPLEKEY"
ACCESS = "AKIAIOSFODNN7EXAMPLE"
S3_URI = f"s3://s3.example.com:trading?region=eu-west-1&access={ACCESS}&secret={SECRET}"


@pytest.fixture
def env(isolated_home: Path) -> dict[str, str]:
    """An environment with only the console's home set (no IBCONSOLE_* keys)."""
    return {"IBCONSOLE_HOME": str(isolated_home)}


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def problems_of(excinfo: pytest.ExceptionInfo[ConfigError]) -> list[str]:
    return excinfo.value.problems


# ---------------------------------------------------------------- defaults and directories


def test_load_settings_without_any_source_then_defaults(
    env: dict[str, str], isolated_home: Path
) -> None:
    settings = load_settings(env=env)

    assert settings.ib.host == "127.0.0.1"
    assert settings.ib.port is None
    assert settings.uses_simulator
    assert settings.ib.client_id == 1
    assert settings.ib.connect_timeout == 10.0
    assert settings.ib.readonly is False
    assert settings.sim.accounts == ("DU0000001",)
    assert settings.sim.state_file == isolated_home / "sim-gateway.json"
    assert settings.store.uri == f"lmdb://{isolated_home / 'arctic'}"
    assert settings.store.is_local
    assert settings.logging.file == isolated_home / "logs" / "ibconsole.log"
    assert settings.risk.max_order_quantity is None
    assert settings.risk.strategies == {}


def test_user_dirs_when_home_env_set_then_relocated(tmp_path: Path) -> None:
    env = {"IBCONSOLE_HOME": str(tmp_path)}

    assert user_data_dir(env) == tmp_path
    assert user_config_dir(env) == tmp_path
    assert user_log_dir(env) == tmp_path / "logs"
    assert default_config_path(env) == tmp_path / "config.toml"


def test_user_dirs_when_home_env_unset_then_platform_dirs() -> None:
    data = user_data_dir({})

    assert data.name == "ibconsole"
    assert default_config_path({}).name == "config.toml"


def test_settings_when_frozen_then_assignment_refused(env: dict[str, str]) -> None:
    settings = load_settings(env=env)

    with pytest.raises(ValidationError):
        settings.ib.port = 7497  # type: ignore[misc]


def test_template_when_loaded_then_equals_defaults(env: dict[str, str]) -> None:
    from_template = load_settings(TEMPLATE, env=env)

    assert from_template == load_settings(env=env)


def test_template_when_read_then_mentions_every_key() -> None:
    text = TEMPLATE.read_text(encoding="utf-8")
    missing = []
    for section, model in Settings.model_fields.items():
        assert f"[{section}]" in text
        sub = model.annotation
        assert isinstance(sub, type)
        for key in sub.model_fields:  # type: ignore[attr-defined]
            if key in ("strategies", "precautions"):
                continue  # tables of their own
            if not re.search(rf"^#? ?{key} =", text, re.MULTILINE):
                missing.append(f"{section}.{key}")

    assert missing == []


def test_template_when_loaded_then_ships_the_default_precautions(env: dict[str, str]) -> None:
    from core.precautions import DEFAULT_PRECAUTIONS

    settings = load_settings(TEMPLATE, env=env)

    shipped = settings.risk.effective_precautions().by_sec_type
    assert dict(shipped) == dict(DEFAULT_PRECAUTIONS)
    assert (
        load_settings(env=env).risk.effective_precautions() == settings.risk.effective_precautions()
    )


def test_precaution_when_off_then_only_that_cap_is_off(env: dict[str, str], tmp_path: Path) -> None:
    config = write(tmp_path / "c.toml", '[risk.precautions.STK]\nmax_order_value = "off"\n')

    caps = load_settings(config, env=env).risk.effective_precautions().for_contract("STK")

    assert caps.max_order_value is None
    assert caps.max_order_quantity == 2000  # left out: the default, not "no limit"


def test_precaution_when_misspelt_off_then_error_names_key(
    env: dict[str, str], tmp_path: Path
) -> None:
    config = write(tmp_path / "c.toml", '[risk.precautions.FUT]\nmax_price_pct = "of"\n')

    with pytest.raises(ConfigError, match=r"risk\.precautions\.FUT\.max_price_pct: 'of'"):
        load_settings(config, env=env)


# ---------------------------------------------------------------- precedence


def test_load_settings_when_all_sources_then_flags_beat_env_beat_file_beat_defaults(
    env: dict[str, str], tmp_path: Path
) -> None:
    config = write(
        tmp_path / "c.toml",
        '[ib]\nhost = "file-host"\nport = 4001\nclient_id = 5\naccount = "DU-FILE"\n',
    )
    env |= {"IBCONSOLE_IB__PORT": "4002", "IBCONSOLE_IB__CLIENT_ID": "6"}

    settings = load_settings(config, env=env, overrides={"ib.client_id": 7})

    assert settings.ib.connect_timeout == 10.0  # default
    assert settings.ib.host == "file-host"  # file
    assert settings.ib.account == "DU-FILE"  # file
    assert settings.ib.port == 4002  # env beats file
    assert settings.ib.client_id == 7  # flag beats env


def test_load_settings_when_default_file_exists_then_read(
    env: dict[str, str], isolated_home: Path
) -> None:
    write(isolated_home / "config.toml", "[ib]\nport = 7497\n")

    settings = load_settings(env=env)

    assert settings.ib.port == 7497
    assert not settings.uses_simulator


def test_load_settings_when_explicit_file_missing_then_error(
    env: dict[str, str], tmp_path: Path
) -> None:
    missing = tmp_path / "nope.toml"

    with pytest.raises(ConfigError) as excinfo:
        load_settings(missing, env=env)

    assert problems_of(excinfo) == [f"config file {missing} does not exist"]


def test_load_settings_when_file_not_toml_then_error_names_file(
    env: dict[str, str], tmp_path: Path
) -> None:
    config = write(tmp_path / "c.toml", "[ib\nport = 1\n")

    with pytest.raises(ConfigError, match=re.escape(str(config))):
        load_settings(config, env=env)


def test_load_settings_when_override_is_none_then_skipped(env: dict[str, str]) -> None:
    env["IBCONSOLE_IB__PORT"] = "4002"

    settings = load_settings(env=env, overrides={"ib.port": None, "ib.host": "10.1.1.1"})

    assert settings.ib.port == 4002
    assert settings.ib.host == "10.1.1.1"


def test_env_when_values_are_strings_then_converted(env: dict[str, str]) -> None:
    env |= {
        "IBCONSOLE_IB__READONLY": "true",
        "IBCONSOLE_IB__CONNECT_TIMEOUT": "2.5",
        "IBCONSOLE_SIM__ACCOUNTS": "DU1, DU2",
        "IBCONSOLE_RISK__MAX_ORDER_QUANTITY": "500",
        "IBCONSOLE_LOGGING__LEVEL": "debug",
    }

    settings = load_settings(env=env)

    assert settings.ib.readonly is True
    assert settings.ib.connect_timeout == 2.5
    assert settings.sim.accounts == ("DU1", "DU2")
    assert settings.risk.max_order_quantity == 500
    assert settings.logging.level == "DEBUG"


def test_env_when_value_none_then_file_value_cleared(env: dict[str, str], tmp_path: Path) -> None:
    config = write(tmp_path / "c.toml", "[ib]\nport = 7497\n")
    env["IBCONSOLE_IB__PORT"] = "none"

    settings = load_settings(config, env=env)

    assert settings.ib.port is None


def test_env_when_other_prefixed_variables_then_ignored(env: dict[str, str]) -> None:
    env |= {"IBCONSOLE_SOMETHING": "x", "OTHER__IB__PORT": "1"}

    settings = load_settings(env=env)

    assert settings.ib.port is None


def test_risk_when_strategy_overrides_then_merged_over_account_limits(
    env: dict[str, str], tmp_path: Path
) -> None:
    config = write(
        tmp_path / "c.toml",
        "[risk]\nmax_order_quantity = 1000\ndaily_loss_limit = 5000\n"
        "[risk.strategies.momo]\nmax_order_quantity = 200\n",
    )
    env["IBCONSOLE_RISK__STRATEGIES__MEANREV__DAILY_LOSS_LIMIT"] = "300"

    risk = load_settings(config, env=env).risk

    assert risk.limits_for("momo") == RiskLimits(max_order_quantity=200, daily_loss_limit=5000)
    assert risk.limits_for("meanrev") == RiskLimits(max_order_quantity=1000, daily_loss_limit=300)
    assert risk.limits_for("other") == RiskLimits(max_order_quantity=1000, daily_loss_limit=5000)
    assert risk.limits_for(None).max_order_quantity == 1000


# ---------------------------------------------------------------- validation messages


def test_load_settings_when_port_zero_then_message_names_key_value_and_source(
    env: dict[str, str],
) -> None:
    with pytest.raises(ConfigError) as excinfo:
        load_settings(env=env, overrides={"ib.port": 0})

    assert problems_of(excinfo) == [
        "ib.port: 0 is not a valid port (1-65535) (from the command line)"
    ]
    assert "ib.port: 0 is not a valid port (1-65535)" in str(excinfo.value)


def test_load_settings_when_unknown_key_in_file_then_message_names_key_and_file(
    env: dict[str, str], tmp_path: Path
) -> None:
    config = write(tmp_path / "config.toml", "[risk]\nmax_ordr_quantity = 10\n")

    with pytest.raises(ConfigError) as excinfo:
        load_settings(config, env=env)

    assert problems_of(excinfo) == [
        f"unknown key 'risk.max_ordr_quantity' in {config} "
        "(did you mean 'risk.max_order_quantity'?)"
    ]


def test_load_settings_when_unknown_keys_everywhere_then_each_named_with_source(
    env: dict[str, str], tmp_path: Path
) -> None:
    config = write(tmp_path / "c.toml", "[bogus]\nx = 1\n[risk.strategies.momo]\nmax_orders = 3\n")
    env["IBCONSOLE_IB__PROT"] = "4002"

    with pytest.raises(ConfigError) as excinfo:
        load_settings(config, env=env, overrides={"gui.colour": "red"})

    assert problems_of(excinfo) == [
        f"unknown key 'bogus' in {config}",
        f"unknown key 'risk.strategies.momo.max_orders' in {config} "
        "(did you mean 'risk.strategies.momo.max_working_orders'?)",
        "unknown key 'ib.prot' from environment variable IBCONSOLE_IB__PROT "
        "(did you mean 'ib.port'?)",
        "unknown key 'gui.colour' from the command line",
    ]


def test_load_settings_when_negative_limit_then_must_be_positive(
    env: dict[str, str], tmp_path: Path
) -> None:
    config = write(tmp_path / "c.toml", "[risk]\ndaily_loss_limit = -5\n")

    with pytest.raises(ConfigError) as excinfo:
        load_settings(config, env=env)

    assert problems_of(excinfo) == [f"risk.daily_loss_limit: -5 must be positive (in {config})"]


def test_load_settings_when_many_problems_then_all_reported_each_naming_its_key(
    env: dict[str, str], tmp_path: Path
) -> None:
    config = write(
        tmp_path / "c.toml",
        """
[ib]
host = ""
port = 70000
client_id = -1
connect_timeout = 0
[sim]
accounts = []
tick_interval = -1
[store]
uri = "ftp://example.com/x"
[risk]
max_order_quantity = "lots"
max_working_orders = 0
daily_loss_limit_pct = 150
fat_finger_pct = -2
[risk.strategies.momo]
max_order_notional = -1
[logging]
level = "LOUD"
max_bytes = 0
[gui]
theme = "pink"
""",
    )
    env["IBCONSOLE_IB__READONLY"] = "maybe"

    with pytest.raises(ConfigError) as excinfo:
        load_settings(config, env=env)

    problems = problems_of(excinfo)
    expected_keys = [
        "ib.host",
        "ib.port",
        "ib.client_id",
        "ib.connect_timeout",
        "ib.readonly",
        "sim.accounts",
        "sim.tick_interval",
        "store.uri",
        "risk.max_order_quantity",
        "risk.max_working_orders",
        "risk.daily_loss_limit_pct",
        "risk.fat_finger_pct",
        "risk.strategies.momo.max_order_notional",
        "logging.level",
        "logging.max_bytes",
        "gui.theme",
    ]
    assert [p.split(":")[0] for p in problems] == expected_keys
    assert "ib.port: 70000 is not a valid port (1-65535)" in problems[1]
    assert "ib.readonly: 'maybe' is not valid" in problems[4]
    assert problems[4].endswith("(from IBCONSOLE_IB__READONLY)")
    assert "risk.max_order_quantity: 'lots' is not valid" in problems[8]
    assert "risk.daily_loss_limit_pct: 150 must be a percentage" in problems[10]
    assert all(p.endswith(f"(in {config})") for i, p in enumerate(problems) if i != 4)


def test_config_error_when_several_problems_then_message_lists_each_on_a_line() -> None:
    error = ConfigError(["a: bad", "b: worse"])

    assert str(error) == "invalid configuration:\n  - a: bad\n  - b: worse"


# ---------------------------------------------------------------- secrets


def test_redact_uri_when_s3_keys_then_hidden() -> None:
    redacted = redact_uri(S3_URI)

    assert SECRET not in redacted
    assert ACCESS not in redacted
    assert redacted == "s3://s3.example.com:trading?region=eu-west-1&access=***&secret=***"


@pytest.mark.parametrize(
    ("text", "hidden"),
    [
        ("azure://AccountName=me;AccountKey=c2VjcmV0;Container=x", "c2VjcmV0"),
        ("https://user:hunter2@example.com/path", "hunter2"),
        ("connecting with password=hunter2 and token=abc123", "hunter2"),
        ("connecting with password=hunter2 and token=abc123", "abc123"),
    ],
)
def test_redact_text_when_secret_pairs_then_hidden(text: str, hidden: str) -> None:
    assert hidden not in redact_text(text)


def test_redact_text_when_no_secret_then_unchanged() -> None:
    text = "placed order orderId=5 qty=100 lmdb:///home/me/arctic"

    assert redact_text(text) == text


def test_settings_when_s3_uri_then_repr_str_and_redacted_hide_keys(env: dict[str, str]) -> None:
    env["IBCONSOLE_STORE__URI"] = S3_URI

    settings = load_settings(env=env)

    assert settings.store.uri == S3_URI  # the store still gets the real URI
    shown = [repr(settings), str(settings), repr(settings.store), str(settings.redacted())]
    for text in shown:
        assert SECRET not in text
        assert ACCESS not in text
    assert settings.redacted()["store"]["uri"].endswith("access=***&secret=***")


def test_load_settings_when_bad_uri_with_secret_then_message_hides_secret(
    env: dict[str, str],
) -> None:
    env["IBCONSOLE_STORE__URI"] = f"s4://host:bucket?secret={SECRET}"

    with pytest.raises(ConfigError) as excinfo:
        load_settings(env=env)

    assert "store.uri" in str(excinfo.value)
    assert SECRET not in str(excinfo.value)


def test_load_settings_when_secret_in_bad_field_then_value_not_echoed(
    env: dict[str, str],
) -> None:
    env["IBCONSOLE_STORE__URI"] = S3_URI
    env["IBCONSOLE_IB__PORT"] = "not-a-port"

    with pytest.raises(ConfigError) as excinfo:
        load_settings(env=env)

    assert SECRET not in str(excinfo.value)


# ---------------------------------------------------------------- logging


@pytest.fixture
def clean_root_logger() -> Iterator[logging.Logger]:
    root = logging.getLogger()
    before, level = list(root.handlers), root.level
    yield root
    for handler in list(root.handlers):
        if handler not in before:
            root.removeHandler(handler)
            handler.close()
    root.setLevel(level)


def test_setup_logging_when_called_twice_then_handlers_not_duplicated(
    clean_root_logger: logging.Logger, tmp_path: Path
) -> None:
    settings = LoggingSettings(level="DEBUG", file=tmp_path / "logs" / "app.log")
    before = len(clean_root_logger.handlers)

    setup_logging(settings)
    setup_logging(settings)

    assert len(clean_root_logger.handlers) == before + 2
    assert clean_root_logger.level == logging.DEBUG
    rotating = [
        h for h in clean_root_logger.handlers if isinstance(h, logging.handlers.RotatingFileHandler)
    ]
    assert len(rotating) == 1


def test_setup_logging_when_console_off_then_only_file_handler(
    clean_root_logger: logging.Logger, tmp_path: Path
) -> None:
    handlers = setup_logging(LoggingSettings(file=tmp_path / "a.log", console=False))

    assert [type(h) for h in handlers] == [logging.handlers.RotatingFileHandler]


def test_setup_logging_when_default_file_then_in_user_log_dir(
    clean_root_logger: logging.Logger, isolated_home: Path
) -> None:
    setup_logging(LoggingSettings(console=False))
    logging.getLogger("ibconsole.test").warning("hello")

    assert "hello" in (isolated_home / "logs" / "ibconsole.log").read_text(encoding="utf-8")


def test_setup_logging_when_record_written_then_format_has_time_level_logger_message(
    clean_root_logger: logging.Logger, tmp_path: Path
) -> None:
    log_file = tmp_path / "app.log"
    setup_logging(LoggingSettings(file=log_file, console=False))

    logging.getLogger("core.test").warning("order %s sent", 42)

    line = log_file.read_text(encoding="utf-8").strip().splitlines()[-1]
    assert re.match(
        r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} WARNING core\.test: order 42 sent$", line
    )


def test_setup_logging_when_settings_or_secret_logged_then_secret_absent_from_file(
    clean_root_logger: logging.Logger, tmp_path: Path, env: dict[str, str]
) -> None:
    log_file = tmp_path / "app.log"
    env["IBCONSOLE_STORE__URI"] = S3_URI
    settings = load_settings(env=env)
    setup_logging(LoggingSettings(file=log_file, console=False))
    log = logging.getLogger("core.test")

    log.info("settings: %s", settings)
    log.info("opening store %s", settings.store.uri)  # a careless caller
    try:
        raise RuntimeError(f"cannot open {settings.store.uri}")
    except RuntimeError:
        log.exception("store failed")

    text = log_file.read_text(encoding="utf-8")
    assert "opening store s3://s3.example.com:trading" in text
    assert "cannot open" in text
    assert SECRET not in text
    assert ACCESS not in text


def test_day_boundary_when_set_then_parsed_and_a_bad_zone_named(env: dict[str, str]) -> None:
    env["IBCONSOLE_IB__DAY_START"] = "17:00"
    env["IBCONSOLE_IB__DAY_TZ"] = "America/Chicago"
    settings = load_settings(env=env)
    assert (settings.ib.day_start, settings.ib.day_tz) == (time(17), "America/Chicago")
    assert SessionOptions.from_settings(settings).day_start == time(17)

    env["IBCONSOLE_IB__DAY_TZ"] = "Mars/Olympus"
    with pytest.raises(ConfigError, match=r"Mars/Olympus.*is not a time zone"):
        load_settings(env=env)
