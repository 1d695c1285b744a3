"""The console's settings: defaults < TOML file < environment < command-line flags.

One frozen :class:`Settings` object holds everything the core needs to start: where
TWS (or the embedded simulated gateway) is, where the ArcticDB store lives, the risk
limits and how to log. :func:`load_settings` builds it in rising precedence:

1. the defaults written in the models below;
2. a TOML file: ``--config PATH`` (which must exist), else ``config.toml`` in the
   user's config directory if there is one (``resources/default-config.toml`` is a
   commented template);
3. environment variables ``IBCONSOLE_<SECTION>__<KEY>``, double underscore between the
   parts: ``IBCONSOLE_IB__PORT=7497``, ``IBCONSOLE_RISK__STRATEGIES__MOMO__MAX_ORDER_QUANTITY=500``
   (keys are matched lower-case; ``none``/``null``/empty means "not set");
4. overrides the caller passes as dotted keys, normally the command-line flags:
   ``{"ib.port": 7497}`` (a value of ``None`` means "flag not given" and is skipped).

Every problem is collected and reported at once as a :class:`ConfigError`, each message
naming the key, the bad value and where it came from: ``ib.port: 0 is not a valid port
(1-65535) (from IBCONSOLE_IB__PORT)``.

Secrets (the S3 keys in a store URI, anything named like a password or token) never
reach a log, an error message or the GUI: ``repr``/``str`` of every settings object and
:meth:`Settings.redacted` show ``***`` in their place, and the log handlers installed by
:func:`setup_logging` scrub them from every record as a second line of defence. The
real values stay available as attributes for the code that needs them (the store).

``IBCONSOLE_HOME`` relocates every directory the console uses (data, config, logs);
the tests set it to a temporary folder.
"""

from __future__ import annotations

import difflib
import logging
import logging.handlers
import math
import os
import re
import socket
import tomllib
import types
import typing
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, time
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import platformdirs
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from core.precautions import DEFAULT_KEY, DEFAULT_PRECAUTIONS, OFF, Precaution, Precautions

__all__ = [
    "APP_NAME",
    "ENV_PREFIX",
    "HOME_ENV",
    "ConfigError",
    "GuiSettings",
    "IBSettings",
    "LoggingSettings",
    "PrecautionSettings",
    "RedactingFilter",
    "RiskLimits",
    "RiskSettings",
    "Settings",
    "SimSettings",
    "StoreSettings",
    "TradingHours",
    "default_config_path",
    "default_writer",
    "load_settings",
    "redact_text",
    "redact_uri",
    "secrets_in",
    "setup_logging",
    "user_config_dir",
    "user_data_dir",
    "user_log_dir",
]

log = logging.getLogger(__name__)

APP_NAME = "ibconsole"
#: Environment variables that set a key start with this and use ``__`` between parts.
ENV_PREFIX = "IBCONSOLE_"
#: Environment variable that relocates every directory of the console.
HOME_ENV = "IBCONSOLE_HOME"
REDACTED = "***"

LOG_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
STORE_SCHEMES = ("lmdb", "mem", "s3", "s3s", "azure")


# --------------------------------------------------------------------------- directories


def _environ(env: Mapping[str, str] | None) -> Mapping[str, str]:
    return os.environ if env is None else env


def user_data_dir(env: Mapping[str, str] | None = None) -> Path:
    """Where the console keeps its data (store, simulated gateway state).

    ``$IBCONSOLE_HOME`` if set, else the platform's user data directory.
    """
    home = _environ(env).get(HOME_ENV)
    if home:
        return Path(home).expanduser()
    return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))


def user_config_dir(env: Mapping[str, str] | None = None) -> Path:
    """Where the console looks for ``config.toml``: ``$IBCONSOLE_HOME`` or the platform's."""
    home = _environ(env).get(HOME_ENV)
    if home:
        return Path(home).expanduser()
    return Path(platformdirs.user_config_dir(APP_NAME, appauthor=False))


def user_log_dir(env: Mapping[str, str] | None = None) -> Path:
    """Where the rotating log file goes: ``$IBCONSOLE_HOME/logs`` or the platform's."""
    home = _environ(env).get(HOME_ENV)
    if home:
        return Path(home).expanduser() / "logs"
    return Path(platformdirs.user_log_dir(APP_NAME, appauthor=False))


def default_config_path(env: Mapping[str, str] | None = None) -> Path:
    """The config file read when no ``--config`` is given (it need not exist)."""
    return user_config_dir(env) / "config.toml"


def _context_env(info: ValidationInfo) -> Mapping[str, str] | None:
    ctx = info.context
    if isinstance(ctx, Mapping):
        env = ctx.get("env")
        if isinstance(env, Mapping):
            return env
    return None


# --------------------------------------------------------------------------- secrets

#: Names whose values are secret wherever they appear as ``name=value`` (URI query
#: parameters, Azure connection strings, log lines).
_SECRET_NAMES = (
    r"access|access_?key(?:_?id)?|secret|secret_?(?:access_?)?key|password|passwd|pwd"
    r"|token|session_?token|api_?key|accountkey|sharedaccesssignature|sig"
)
_SECRET_PAIR = re.compile(rf"(?i)(?<![\w-])((?:{_SECRET_NAMES}))(\s*=\s*)([^&;,\s'\"]+)")
_USERINFO = re.compile(r"(?i)([a-z][a-z0-9+.-]*://[^/@:\s]*:)([^@/\s]+)(@)")
_SECRET_FIELD = re.compile(r"(?i)(secret|password|passwd|token|api_?key|credential)")


def redact_uri(uri: str) -> str:
    """``uri`` with every secret replaced by ``***``.

    Covers ArcticDB's S3 form (``s3://host:bucket?access=KEY&secret=SECRET``), Azure
    connection strings (``AccountKey=...``) and ``scheme://user:password@host``.
    """
    return redact_text(uri)


def redact_text(text: str) -> str:
    """Replace the values of secret-looking ``name=value`` pairs and URI passwords."""
    text = _USERINFO.sub(rf"\g<1>{REDACTED}\g<3>", text)
    return _SECRET_PAIR.sub(rf"\g<1>\g<2>{REDACTED}", text)


def secrets_in(text: str) -> list[str]:
    """The secret values :func:`redact_text` hides in ``text`` (e.g. a URI's keys and
    password), so a message that repeats one bare can be scrubbed too."""
    found = [m.group(2) for m in _USERINFO.finditer(text)]
    found += [m.group(3) for m in _SECRET_PAIR.finditer(text)]
    return [value for value in found if value]


def _is_secret_field(name: str) -> bool:
    return bool(_SECRET_FIELD.search(name))


def _redact_value(name: str, value: Any) -> Any:
    """The displayable form of a field's value."""
    if value is None:
        return None
    if _is_secret_field(name):
        return REDACTED
    if name == "uri" and isinstance(value, str):
        return redact_uri(value)
    return value


# --------------------------------------------------------------------------- models


class _Section(BaseModel):
    """Base of every settings model: frozen, unknown keys refused, secrets never shown."""

    model_config = ConfigDict(frozen=True, extra="forbid", validate_default=True)

    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        for name, value in super().__repr_args__():
            yield name, (value if name is None else _redact_value(name, value))

    def redacted(self) -> dict[str, Any]:
        """Plain data (JSON-able) of this section with every secret replaced by ``***``."""
        out: dict[str, Any] = {}
        for name in type(self).model_fields:
            value = getattr(self, name)
            if isinstance(value, _Section):
                out[name] = value.redacted()
            elif isinstance(value, Mapping):
                out[name] = {
                    k: v.redacted() if isinstance(v, _Section) else _redact_value(k, v)
                    for k, v in value.items()
                }
            elif isinstance(value, Path):
                out[name] = str(value)
            elif isinstance(value, tuple):
                out[name] = list(value)
            else:
                out[name] = _redact_value(name, value)
        return out


def _must_be_positive(value: float | None) -> float | None:
    if value is None:
        return None
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{_show(value)} must be a finite positive number")
    if value <= 0:
        raise ValueError(f"{_show(value)} must be positive")
    return value


#: Default of a field whose ``before`` validator computes the real default (a path in
#: the user's directories, which depends on the environment being loaded).
_COMPUTED: Any = None


def _as_path(value: Any) -> Path:
    if isinstance(value, str | os.PathLike):
        return Path(value).expanduser()
    raise ValueError(f"{_show(value)} is not a file path")


class IBSettings(_Section):
    """Where TWS / IB Gateway is; ``port=None`` runs the embedded simulated gateway."""

    host: str = "127.0.0.1"
    port: int | None = None
    client_id: int = 1
    connect_timeout: float = 10.0
    readonly: bool = False
    account: str = ""
    #: The trading day starts at ``day_start`` in ``day_tz`` (IB's US day: midnight,
    #: New York); the console rolls over there (core/tradingday.py).
    day_tz: str = "America/New_York"
    day_start: time = time(0)

    @field_validator("day_tz")
    @classmethod
    def _day_tz(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{v!r} is not a time zone (e.g. America/New_York)") from None
        return v

    @field_validator("host")
    @classmethod
    def _host(cls, v: str) -> str:
        v = v.strip()
        if not v:
            raise ValueError("the host must not be empty")
        return v

    @field_validator("port")
    @classmethod
    def _port(cls, v: int | None) -> int | None:
        if v is not None and not 1 <= v <= 65535:
            raise ValueError(f"{v} is not a valid port (1-65535)")
        return v

    @field_validator("client_id")
    @classmethod
    def _client_id(cls, v: int) -> int:
        if not 0 <= v <= 2**31 - 1:
            raise ValueError(f"{v} is not a valid client id (0-2147483647)")
        return v

    @field_validator("connect_timeout")
    @classmethod
    def _timeout(cls, v: float) -> float:
        _must_be_positive(v)
        return v


class SimSettings(_Section):
    """The embedded simulated gateway (used when ``ib.port`` is not set)."""

    seed: int = 0
    #: Where the gateway keeps its accounts between runs; default in the user data dir.
    state_file: Path = Field(default=_COMPUTED)
    accounts: tuple[str, ...] = ("DU0000001",)
    tick_interval: float = 0.25

    @field_validator("state_file", mode="before")
    @classmethod
    def _state_file(cls, v: Any, info: ValidationInfo) -> Any:
        if v is None or v == "":
            return user_data_dir(_context_env(info)) / "sim-gateway.json"
        return _as_path(v)

    @field_validator("accounts", mode="before")
    @classmethod
    def _split_accounts(cls, v: Any) -> Any:
        if isinstance(v, str):
            return tuple(a.strip() for a in v.split(",") if a.strip())
        return v

    @field_validator("accounts")
    @classmethod
    def _accounts(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        v = tuple(a.strip() for a in v)
        if not v or not all(v):
            raise ValueError(f"{list(v)!r} must list at least one non-empty account id")
        return v

    @field_validator("tick_interval")
    @classmethod
    def _tick_interval(cls, v: float) -> float:
        _must_be_positive(v)
        return v


class StoreSettings(_Section):
    """The ArcticDB store. ``uri`` defaults to ``lmdb://<user data dir>/arctic``.

    S3 stores use ArcticDB's form ``s3://HOST:BUCKET?access=KEY&secret=SECRET&...``; the
    keys are secrets and are shown as ``***`` everywhere but in ``uri`` itself.
    """

    uri: str = Field(default=_COMPUTED)
    #: This console's name in the store (its journals, its lease). Empty: derived from
    #: the account, the client id and the machine (:meth:`Settings.store_writer`), which
    #: is unique on a desk without configuration. Letters, digits, ``_`` and ``-``.
    writer: str = ""
    #: How long the writer's lease lasts without renewal: a console killed without
    #: closing holds its name this long (renewed every third of it while running).
    lease_seconds: float = 30.0
    #: A store call (an ArcticDB read or write) not answered in this time is reported
    #: as failing; the data it carried is kept and written again.
    call_timeout: float = 10.0
    #: At shutdown, how long to wait for the fills journal before giving up (and
    #: naming the fills not written: IB replays them at the next connect).
    shutdown_timeout: float = 15.0

    @field_validator("writer")
    @classmethod
    def _writer(cls, v: str) -> str:
        v = v.strip()
        if v and not re.fullmatch(r"[A-Za-z0-9_\-]+", v):
            raise ValueError(f"{_show(v)} must be letters, digits, _ and - only")
        return v

    @field_validator("lease_seconds", "call_timeout", "shutdown_timeout")
    @classmethod
    def _positive(cls, v: float) -> float:
        _must_be_positive(v)
        return v

    @field_validator("uri", mode="before")
    @classmethod
    def _uri(cls, v: Any, info: ValidationInfo) -> Any:
        if v is None or v == "":
            return f"lmdb://{user_data_dir(_context_env(info)) / 'arctic'}"
        if isinstance(v, str):
            v = v.strip()
            scheme, sep, rest = v.partition("://")
            if not sep or scheme.lower() not in STORE_SCHEMES or not rest:
                raise ValueError(
                    f"{redact_uri(v)!r} is not an ArcticDB URI "
                    "(lmdb://PATH, mem://, s3://HOST:BUCKET?..., s3s://..., azure://...)"
                )
        return v

    @property
    def is_local(self) -> bool:
        """True for an LMDB (or in-memory) store on this machine."""
        return self.uri.lower().startswith(("lmdb://", "mem://"))


@dataclass(frozen=True, slots=True)
class TradingHours:
    """Hours in which opening orders are allowed, in a time zone, on some weekdays.

    ``end`` before ``start`` means the window crosses midnight. Weekdays are
    ``date.weekday()`` numbers (Monday 0).
    """

    start: time
    end: time
    tz: str = "America/New_York"
    weekdays: frozenset[int] = frozenset(range(5))

    @classmethod
    def parse(cls, text: str, tz: str = "America/New_York") -> TradingHours:
        """``"09:30-16:00"`` (optionally ``"09:30-16:00 Europe/London"``)."""
        parts = text.split()
        if len(parts) == 2:
            tz = parts[1]
        elif len(parts) != 1:
            raise ValueError(f"trading hours {text!r}: expected 'HH:MM-HH:MM [zone]'")
        try:
            a, b = parts[0].split("-")
            start, end = time.fromisoformat(a), time.fromisoformat(b)
            ZoneInfo(tz)
        except (ValueError, ZoneInfoNotFoundError) as exc:
            raise ValueError(f"trading hours {text!r}: {exc}") from exc
        return cls(start, end, tz)

    def allows(self, at: datetime) -> bool:
        """True when ``at`` (timezone-aware) falls inside the window."""
        local = at.astimezone(ZoneInfo(self.tz))
        t = local.time()
        if self.start <= self.end:
            inside = self.start <= t < self.end
            day = local.weekday()
        else:  # crosses midnight: the part after midnight belongs to the previous day
            inside = t >= self.start or t < self.end
            day = local.weekday() if t >= self.start else (local.weekday() - 1) % 7
        return inside and day in self.weekdays

    def describe(self) -> str:
        """``09:30-16:00 America/New_York``."""
        return f"{self.start:%H:%M}-{self.end:%H:%M} {self.tz}"

    def __str__(self) -> str:
        return self.describe()


class RiskLimits(_Section):
    """Limits of one scope (the account or a strategy); ``None`` means no limit.

    The one definition: ``[risk]`` and ``[risk.strategies.NAME]`` in the config are
    read into it, and :class:`core.risk.RiskManager` checks orders against it (core.risk
    re-exports it). Every limit is positive, or ``None`` for no limit. Quantities are in
    units of the contract (shares, contracts); notionals, exposures and losses in the
    account's base currency; percentages in percent (5 means 5 %).
    """

    #: Largest quantity of one order.
    max_order_quantity: float | None = None
    #: Largest value of one order (quantity x price x multiplier).
    max_order_notional: float | None = None
    #: Largest absolute position in one contract.
    max_position_quantity: float | None = None
    #: Largest absolute value of the position in one contract.
    max_position_notional: float | None = None
    #: Largest sum of the absolute values of all positions.
    max_gross_exposure: float | None = None
    #: Largest absolute value of long minus short exposure.
    max_net_exposure: float | None = None
    #: Most orders working at once.
    max_working_orders: int | None = None
    #: Most new orders or modifications per second.
    max_orders_per_second: float | None = None
    #: The day's loss (realized + unrealized) at which ``risk.breach_action`` is taken
    #: (REDUCING by default, or HALTED, or the emergency stop).
    daily_loss_limit: float | None = None
    #: The same as a percentage of the day's starting net liquidation value.
    daily_loss_limit_pct: float | None = None
    #: Fall of the day's P&L from its high-water mark at which the breach action is taken.
    max_drawdown: float | None = None
    #: Largest distance of a limit or stop price from the market (mid, else last), in %.
    fat_finger_pct: float | None = None
    #: Hours in which opening orders are allowed: ``"09:30-16:00 America/New_York"`` in
    #: the config (the zone defaults to New York), a :class:`TradingHours` in code.
    trading_hours: TradingHours | None = None

    @field_validator(
        "max_order_quantity",
        "max_order_notional",
        "max_position_quantity",
        "max_position_notional",
        "max_gross_exposure",
        "max_net_exposure",
        "max_working_orders",
        "max_orders_per_second",
        "daily_loss_limit",
        "max_drawdown",
        "fat_finger_pct",
    )
    @classmethod
    def _positive(cls, v: float | None) -> float | None:
        return _must_be_positive(v)

    @field_validator("daily_loss_limit_pct")
    @classmethod
    def _percent(cls, v: float | None) -> float | None:
        _must_be_positive(v)
        if v is not None and v > 100:
            raise ValueError(f"{_show(v)} must be a percentage between 0 and 100")
        return v

    @field_validator("trading_hours", mode="before")
    @classmethod
    def _hours(cls, v: Any) -> Any:
        if isinstance(v, str):
            return TradingHours.parse(v) if v.strip() else None
        return v

    @classmethod
    def from_config(cls, config: Any) -> RiskLimits:
        """Only the limits of ``config`` (a :class:`RiskSettings` or anything with the
        same attributes), without its other settings."""
        return cls(**{name: getattr(config, name, None) for name in cls.model_fields})

    def is_empty(self) -> bool:
        """True when no limit is set."""
        return all(getattr(self, name) is None for name in type(self).model_fields)


#: A precautionary cap as the config writes it: a positive number, ``"off"``, or not
#: given (``None``: the shipped default applies).
CapValue = float | Literal["off"] | None


class PrecautionSettings(_Section):
    """``[risk.precautions.STK]`` and friends: one security type's precautionary caps.

    A key left out keeps the shipped default (:data:`core.precautions.DEFAULT_PRECAUTIONS`);
    ``"off"`` turns that cap off, explicitly.
    """

    #: Largest quantity of one order (shares, contracts, base currency for forex).
    max_order_quantity: CapValue = None
    #: Largest value of one order: quantity x price x multiplier.
    max_order_value: CapValue = None
    #: Largest distance of a limit or stop price from the market, in percent.
    max_price_pct: CapValue = None

    @field_validator("max_order_quantity", "max_order_value", "max_price_pct", mode="before")
    @classmethod
    def _cap(cls, v: Any) -> Any:
        if v is False or (isinstance(v, str) and v.strip().lower() == OFF):
            return OFF
        if isinstance(v, str):
            try:
                return float(v)
            except ValueError:
                raise ValueError(f'{v!r} is neither a number nor "off"') from None
        return v

    @field_validator("max_order_quantity", "max_order_value", "max_price_pct")
    @classmethod
    def _positive_cap(cls, v: CapValue) -> CapValue:
        if isinstance(v, float | int):
            _must_be_positive(v)
        return v


class RiskSettings(RiskLimits):
    """Account-level limits plus per-strategy overrides (``[risk.strategies.NAME]``)
    and the precautionary caps per security type (``[risk.precautions.TYPE]``)."""

    #: What a daily-loss or drawdown breach does: "reducing", "halt" or "emergency_stop".
    breach_action: Literal["reducing", "halt", "emergency_stop"] = "reducing"
    #: Stale market data makes that "contract" reduce-only, or the whole "account", or is
    #: "ignore"d.
    on_stale_data: Literal["contract", "account", "ignore"] = "contract"
    #: Move to REDUCING while the gateway has lost IB (1100) or the socket is down.
    reduce_on_link_lost: bool = True
    strategies: dict[str, RiskLimits] = Field(default_factory=dict)
    #: Per security type (STK, FUT, CASH, OPT, FOP, default); merged over the defaults.
    precautions: dict[str, PrecautionSettings] = Field(
        default_factory=lambda: {
            sec_type: PrecautionSettings(
                max_order_quantity=cap.max_order_quantity,
                max_order_value=cap.max_order_value,
                max_price_pct=cap.max_price_pct,
            )
            for sec_type, cap in DEFAULT_PRECAUTIONS.items()
        }
    )

    @field_validator("precautions", mode="before")
    @classmethod
    def _sec_types(cls, v: Any) -> Any:
        # Environment keys arrive lower-case ("stk"); IB's security types are upper.
        if isinstance(v, Mapping):
            return {(k if k.lower() == DEFAULT_KEY else k.upper()): sub for k, sub in v.items()}
        return v

    def effective_precautions(self) -> Precautions:
        """The shipped caps with this config's values over them (``"off"`` -> no cap)."""
        merged = dict(DEFAULT_PRECAUTIONS)
        for sec_type, own in self.precautions.items():
            base = merged.get(sec_type) or merged.get(DEFAULT_KEY) or Precaution()
            values = {}
            for name in PrecautionSettings.model_fields:
                given = getattr(own, name)
                if given is None:
                    values[name] = getattr(base, name)
                else:
                    values[name] = None if given == OFF else float(given)
            merged[sec_type] = Precaution(**values)
        return Precautions(merged)

    def limits_for(self, strategy: str | None) -> RiskLimits:
        """The limits that apply to one strategy's orders.

        A strategy's own value wins where it sets one; the account-level value applies
        to every key it leaves unset. (The account-level limits still bound the account
        as a whole: that is the risk manager's job.)
        """
        account = {name: getattr(self, name) for name in RiskLimits.model_fields}
        own = self.strategies.get(strategy) if strategy is not None else None
        if own is not None:
            account.update(
                {k: v for k in RiskLimits.model_fields if (v := getattr(own, k)) is not None}
            )
        return RiskLimits(**account)


class LoggingSettings(_Section):
    """Log level, the rotating log file (default in the user log dir) and the console."""

    level: str = "INFO"
    file: Path = Field(default=_COMPUTED)
    console: bool = True
    max_bytes: int = 5_000_000
    backup_count: int = 5

    @field_validator("level")
    @classmethod
    def _level(cls, v: str) -> str:
        level = v.strip().upper()
        if level not in LOG_LEVELS:
            raise ValueError(f"{v!r} is not a log level ({', '.join(LOG_LEVELS)})")
        return level

    @field_validator("file", mode="before")
    @classmethod
    def _file(cls, v: Any, info: ValidationInfo) -> Any:
        if v is None or v == "":
            return user_log_dir(_context_env(info)) / "ibconsole.log"
        return _as_path(v)

    @field_validator("max_bytes", "backup_count")
    @classmethod
    def _positive_int(cls, v: int) -> int:
        _must_be_positive(v)
        return v


class GuiSettings(_Section):
    """Window behaviour."""

    #: Ask for confirmation before sending an order worth more than this (None: never).
    confirm_above_notional: float | None = 25_000.0
    #: Ask before "cancel all" (the emergency stop always asks for its second press).
    confirm_cancel_all: bool = True
    theme: Literal["dark", "light"] = "dark"
    #: Lines kept in the log view.
    max_log_lines: int = 10_000
    #: The ticket's quantity when an instrument is chosen, per security type (a size is
    #: never carried from one instrument to another: 100 AAPL is not 100 ES).
    default_quantity: dict[str, float] = Field(
        default_factory=lambda: {"STK": 100.0, "FUT": 1.0, "CASH": 20_000.0, "OPT": 1.0}
    )

    @field_validator("default_quantity", mode="before")
    @classmethod
    def _quantity_keys(cls, v: Any) -> Any:
        if isinstance(v, Mapping):
            return {k.upper(): q for k, q in v.items()}
        return v

    @field_validator("default_quantity")
    @classmethod
    def _quantities(cls, v: dict[str, float]) -> dict[str, float]:
        for q in v.values():
            _must_be_positive(q)
        return v

    def quantity_for(self, sec_type: str, min_size: float = 1.0) -> float:
        """The ticket's starting quantity for an instrument of ``sec_type``."""
        return self.default_quantity.get(sec_type.upper(), max(min_size, 1.0))

    @field_validator("confirm_above_notional")
    @classmethod
    def _notional(cls, v: float | None) -> float | None:
        return _must_be_positive(v)

    @field_validator("max_log_lines")
    @classmethod
    def _lines(cls, v: int) -> int:
        _must_be_positive(v)
        return v


class Settings(_Section):
    """Everything the console is configured with; build it with :func:`load_settings`.

    Frozen: change a copy with ``settings.model_copy(update=...)`` or reload.
    ``repr``/``str`` and :meth:`redacted` never show a secret.
    """

    ib: IBSettings = Field(default_factory=IBSettings)
    sim: SimSettings = Field(default_factory=SimSettings)
    store: StoreSettings = Field(default_factory=StoreSettings)
    risk: RiskSettings = Field(default_factory=RiskSettings)
    logging: LoggingSettings = Field(default_factory=LoggingSettings)
    gui: GuiSettings = Field(default_factory=GuiSettings)

    @property
    def uses_simulator(self) -> bool:
        """True when no TWS port is configured: the console runs its embedded gateway."""
        return self.ib.port is None

    @property
    def store_writer(self) -> str:
        """This console's writer name in the store: ``[store] writer``, else derived
        (:func:`default_writer`) from the account, client id and machine."""
        ib = self.ib
        return self.store.writer or default_writer(ib.account, ib.client_id, ib.host, ib.port)


def default_writer(
    account: str, client_id: int, host: str = "127.0.0.1", port: int | None = None
) -> str:
    """A writer name unique on a desk without configuration: ``ACCOUNT-cCLIENT-MACHINE``.

    Two consoles on one gateway differ by client id (the gateway refuses a second
    connection with the same one); consoles on different machines by the machine's
    name. Without a configured account (the gateway's first), the gateway stands in
    for it (``sim`` for the embedded one), so two gateways on one machine differ too.
    The name stays the same across restarts, so a console finds its journals again.
    """
    machine = socket.gethostname().split(".")[0] or "host"
    where = account or ("sim" if port is None else f"{host}_{port}")
    return re.sub(r"[^A-Za-z0-9_\-]", "_", f"{where}-c{client_id}-{machine}")


# --------------------------------------------------------------------------- loading


class ConfigError(ValueError):
    """The configuration has problems; ``problems`` lists each one in plain words."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__(
            "invalid configuration:\n" + "\n".join(f"  - {p}" for p in self.problems)
            if len(self.problems) > 1
            else f"invalid configuration: {self.problems[0]}"
        )


def _show(value: Any) -> str:
    """A value as a message shows it: numbers bare, text quoted."""
    if isinstance(value, bool) or value is None:
        return repr(value)
    if isinstance(value, int | float):
        return f"{value:g}" if isinstance(value, float) else str(value)
    return repr(value)


def _unwrap(annotation: Any) -> Any:
    """The model class (or dict-of-model) inside ``X | None``."""
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return _unwrap(args[0])
    return annotation


def _unknown_keys(
    model: type[BaseModel], data: Mapping[str, Any], prefix: str = ""
) -> list[tuple[str, str]]:
    """Dotted keys in ``data`` that ``model`` does not have, each with a suggestion."""
    problems: list[tuple[str, str]] = []
    fields = model.model_fields
    for key, value in data.items():
        dotted = f"{prefix}{key}"
        if key not in fields:
            close = difflib.get_close_matches(key, list(fields), n=1)
            hint = f" (did you mean '{prefix}{close[0]}'?)" if close else ""
            problems.append((dotted, hint))
            continue
        annotation = _unwrap(fields[key].annotation)
        if not isinstance(value, Mapping):
            continue
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            problems += _unknown_keys(annotation, value, f"{dotted}.")
        elif typing.get_origin(annotation) is dict:
            inner = _unwrap(typing.get_args(annotation)[1])
            if isinstance(inner, type) and issubclass(inner, BaseModel):
                for name, sub in value.items():
                    if isinstance(sub, Mapping):
                        problems += _unknown_keys(inner, sub, f"{dotted}.{name}.")
    return problems


def _flatten(data: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    for key, value in data.items():
        if isinstance(value, Mapping):
            yield from _flatten(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", value


def _set_dotted(target: dict[str, Any], dotted: str, value: Any) -> None:
    parts = dotted.split(".")
    node = target
    for part in parts[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = node[part] = {}
        node = child
    node[parts[-1]] = value


class _Layer:
    """One source of settings: its data (nested dicts) and where each key came from."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.data: dict[str, Any] = {}
        self.origin: dict[str, str] = {}

    def set(self, dotted: str, value: Any, origin: str) -> None:
        _set_dotted(self.data, dotted, value)
        self.origin[dotted] = origin


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"{path} is not valid TOML: {exc}"]) from exc
    except OSError as exc:
        raise ConfigError([f"cannot read {path}: {exc.strerror or exc}"]) from exc


def _env_value(raw: str) -> Any:
    """Environment strings: ``none``/``null``/empty mean unset; the models convert the rest."""
    if raw.strip().lower() in ("", "none", "null"):
        return None
    return raw


def _layers(
    config_path: str | os.PathLike[str] | None,
    env: Mapping[str, str],
    overrides: Mapping[str, Any] | None,
) -> tuple[list[_Layer], list[str], Path | None]:
    problems: list[str] = []
    layers: list[_Layer] = []

    # The file: an explicit path must exist; the default one is optional.
    path: Path | None
    if config_path is not None:
        path = Path(config_path).expanduser()
        if not path.is_file():
            raise ConfigError([f"config file {path} does not exist"])
    else:
        path = default_config_path(env)
        if not path.is_file():
            path = None
    if path is not None:
        file_layer = _Layer(f"in {path}")
        data = _read_toml(path)
        for key, hint in _unknown_keys(Settings, data):
            problems.append(f"unknown key '{key}' in {path}{hint}")
        for dotted, value in _flatten(data):
            file_layer.set(dotted, value, f"in {path}")
        # Empty tables ([risk.strategies.x] with no keys) still name a strategy.
        _merge(file_layer.data, data)
        layers.append(file_layer)

    env_layer = _Layer("environment")
    for name in sorted(env):
        if not name.startswith(ENV_PREFIX) or "__" not in name[len(ENV_PREFIX) :]:
            continue  # IBCONSOLE_HOME and other single-word variables are not keys
        parts = [p.lower() for p in name[len(ENV_PREFIX) :].split("__")]
        dotted = ".".join(parts)
        if not all(parts):
            problems.append(f"environment variable {name} does not name a key")
            continue
        for key, hint in _unknown_keys(Settings, _nested(dotted, None)):
            problems.append(f"unknown key '{key}' from environment variable {name}{hint}")
        env_layer.set(dotted, _env_value(env[name]), f"from {name}")
    layers.append(env_layer)

    flag_layer = _Layer("flags")
    for dotted, value in (overrides or {}).items():
        if value is None:
            continue  # a flag that was not given
        for key, hint in _unknown_keys(Settings, _nested(dotted, None)):
            problems.append(f"unknown key '{key}' from the command line{hint}")
        flag_layer.set(dotted, value, "from the command line")
    layers.append(flag_layer)
    return layers, problems, path


def _nested(dotted: str, value: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    _set_dotted(out, dotted, value if value is not None else "")
    return out


def _merge(target: dict[str, Any], source: Mapping[str, Any]) -> None:
    for key, value in source.items():
        if isinstance(value, Mapping):
            child = target.get(key)
            if not isinstance(child, dict):
                child = target[key] = {}
            _merge(child, value)
        else:
            target[key] = value


def _origin_of(loc: tuple[int | str, ...], layers: list[_Layer]) -> str:
    """Which layer set the key at ``loc`` last (or its closest parent)."""
    dotted = ".".join(str(p) for p in loc)
    for layer in reversed(layers):
        probe = dotted
        while probe:
            if probe in layer.origin:
                return layer.origin[probe]
            probe = probe.rpartition(".")[0]
    return "in the defaults"


def _error_messages(exc: ValidationError, layers: list[_Layer]) -> list[str]:
    problems = []
    for err in exc.errors(include_url=False):
        loc = tuple(err["loc"])
        # Pydantic reports errors inside a union branch with the branch's type name.
        loc = tuple(p for p in loc if not (isinstance(p, str) and p in _TYPE_LOC_NAMES))
        key = ".".join(str(p) for p in loc)
        field = str(loc[-1]) if loc else ""
        value = err.get("input")
        shown = REDACTED if _is_secret_field(field) else _show(value)
        if isinstance(value, str) and field == "uri":
            shown = repr(redact_uri(value))
        if err["type"] == "value_error":
            ctx_error = err.get("ctx", {}).get("error")
            text = str(ctx_error) if ctx_error is not None else err["msg"]
        elif err["type"] == "extra_forbidden":
            text = "unknown key"
        else:
            text = f"{shown} is not valid: {err['msg'][0].lower()}{err['msg'][1:]}"
        problems.append(f"{key}: {text} ({_origin_of(loc, layers)})")
    return problems


_TYPE_LOC_NAMES = frozenset(
    {
        "int",
        "float",
        "str",
        "bool",
        "none",
        "is-instance[Path]",
        "function-after",
        "lax-or-strict",
        "literal['off']",
    }
)


def load_settings(
    config_path: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Settings:
    """Build the settings from defaults < TOML file < environment < overrides.

    Parameters
    ----------
    config_path:
        ``--config PATH``; it must exist. Without it ``config.toml`` in the user config
        directory is read if it exists.
    env:
        The environment to read ``IBCONSOLE_*`` variables (and ``IBCONSOLE_HOME``) from;
        ``os.environ`` by default.
    overrides:
        Dotted keys to values, normally the command-line flags (``{"ib.port": 7497}``).
        ``None`` values are skipped (a flag that was not given).

    Raises
    ------
    ConfigError
        With every problem found, each naming its key, value and source.
    """
    env = os.environ if env is None else env
    layers, problems, path = _layers(config_path, env, overrides)
    # Every section is validated with the context (so its default paths follow ``env``).
    merged: dict[str, Any] = {name: {} for name in Settings.model_fields}
    for layer in layers:
        _merge(merged, layer.data)
    # Keys already reported as unknown would be reported again by pydantic.
    _drop_unknown(Settings, merged)
    try:
        settings = Settings.model_validate(merged, context={"env": env})
    except ValidationError as exc:
        problems += _error_messages(exc, layers)
        settings = None
    if problems:
        raise ConfigError(problems)
    assert settings is not None
    log.debug("settings loaded (file: %s)", path or "none")
    return settings


def _drop_unknown(model: type[BaseModel], data: dict[str, Any]) -> None:
    fields = model.model_fields
    for key in list(data):
        if key not in fields:
            del data[key]
            continue
        value = data[key]
        annotation = _unwrap(fields[key].annotation)
        if not isinstance(value, dict):
            continue
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            _drop_unknown(annotation, value)
        elif typing.get_origin(annotation) is dict:
            inner = _unwrap(typing.get_args(annotation)[1])
            if isinstance(inner, type) and issubclass(inner, BaseModel):
                for sub in value.values():
                    if isinstance(sub, dict):
                        _drop_unknown(inner, sub)


# --------------------------------------------------------------------------- logging


class RedactingFilter(logging.Filter):
    """Scrubs secrets (``secret=...``, ``password=...``, URI passwords) from every record.

    The settings never log their secrets; this catches anyone else who might (an
    exception message quoting a URI, a library's debug line).
    """

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = redact_text(message)
        if clean != message:
            record.msg, record.args = clean, None
        if record.exc_info and record.exc_info[1] is not None and not record.exc_text:
            # Render the traceback now so that the formatter uses the scrubbed text.
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact_text(record.exc_text)
        if record.stack_info:
            record.stack_info = redact_text(record.stack_info)
        return True


_HANDLER_TAG = "_ibconsole_handler"


def setup_logging(settings: LoggingSettings) -> list[logging.Handler]:
    """Configure the root logger: level, rotating file, console; safe to call again.

    A second call replaces the handlers a first call installed (never duplicates them),
    so the level or file can be changed at run time. Handlers installed by anyone else
    are left alone. Returns the handlers installed.
    """
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, _HANDLER_TAG, False):
            root.removeHandler(handler)
            handler.close()

    formatter = logging.Formatter(LOG_FORMAT)
    redactor = RedactingFilter()
    handlers: list[logging.Handler] = []
    settings.file.parent.mkdir(parents=True, exist_ok=True)
    file_handler = logging.handlers.RotatingFileHandler(
        settings.file,
        maxBytes=settings.max_bytes,
        backupCount=settings.backup_count,
        encoding="utf-8",
    )
    handlers.append(file_handler)
    if settings.console:
        handlers.append(logging.StreamHandler())
    for handler in handlers:
        handler.setFormatter(formatter)
        handler.addFilter(redactor)
        setattr(handler, _HANDLER_TAG, True)
        root.addHandler(handler)
    root.setLevel(settings.level)
    return handlers
