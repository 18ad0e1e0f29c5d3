"""One setting: its JSON Schema property (what `--about` and Meltano show) and how its value is read.

A value that cannot work is refused with a one-line `ConfigError` that names the setting and says
what a valid value is. The tap's settings themselves are listed in settings.py.
"""

from __future__ import annotations

import typing as t
from dataclasses import dataclass
from decimal import Decimal

from singer_sdk import typing as th

from tap_intercom_export.errors import ConfigError
from tap_intercom_export.timeutil import known_zone, unix


@dataclass(frozen=True)
class Setting:
    """One setting: JSON type, default, bounds, and the words of its description and errors."""

    name: str
    kind: str  # "string", "date-time", "integer", "number", "timezone" or "strings" (a list)
    title: str
    description: str
    default: t.Any = None
    minimum: int | None = None
    exclusive_minimum: int | None = None
    maximum: int | None = None
    allowed: tuple[str, ...] | None = None
    required: bool = False
    secret: bool = False
    #: What a number counts ("days"), for error messages.
    unit: str = ""
    #: Why the bounds are what they are, appended to the error.
    why: str = ""

    def jsonschema_type(self) -> th.JSONTypeHelper[t.Any]:
        """The property's type with its bounds (what `--about` and the SDK's validation see)."""
        if self.kind == "strings":
            return th.ArrayType(th.StringType)
        if self.kind in ("integer", "number"):
            numeric = th.IntegerType if self.kind == "integer" else th.NumberType
            return numeric(
                minimum=self.minimum,
                maximum=self.maximum,
                exclusive_minimum=self.exclusive_minimum,
            )
        return th.DateTimeType() if self.kind == "date-time" else th.StringType()

    def property(self) -> th.Property[t.Any]:
        """The property of the tap's config schema."""
        return th.Property(
            self.name,
            self.jsonschema_type(),
            required=self.required,
            secret=self.secret,
            default=self.default,
            allowed_values=list(self.allowed) if self.allowed else None,
            title=self.title,
            description=self.description,
        )

    def requirement(self) -> str:
        """What a valid value is, in words (`a whole number of days, 1 or more`)."""
        noun = "a whole number" if self.kind == "integer" else "a number"
        if self.unit:
            noun += f" of {self.unit}"
        if self.exclusive_minimum == 0:
            return f"{noun} greater than zero"
        if self.minimum is not None and self.maximum is not None:
            return f"{noun} from {self.minimum} to {self.maximum}"
        if self.minimum is not None:
            return f"{noun}, {self.minimum} or more"
        return noun

    def read(self, config: t.Mapping[str, t.Any]) -> t.Any:
        """The setting's value in `config` (its default when unset), or a ConfigError."""
        value = config.get(self.name)
        if value is None or value == "":
            value = self.default
        if value is None:
            return None
        if self.kind == "date-time":
            return _date_time(self.name, value)
        if self.kind == "timezone":
            return _timezone(self.name, value)
        if self.kind == "strings":
            if isinstance(value, (list, tuple)) and all(
                isinstance(v, str) and v.strip() for v in value
            ):
                return tuple(value)
            msg = f'Setting {self.name}={value!r} must be a list of dataset ids, e.g. ["conversation"].'
            raise ConfigError(msg)
        if self.kind == "string":
            if self.allowed and str(value).lower() not in self.allowed:
                msg = (
                    f"Unknown {self.name} {value!r}: set {self.name} to one of "
                    f"{', '.join(self.allowed)}."
                )
                raise ConfigError(msg)
            return str(value).lower() if self.allowed else str(value)
        return self._number(value)

    def _number(self, value: t.Any) -> int | float:
        # The SDK reads JSON numbers from config files as Decimal; a bool is not a number.
        ok = isinstance(value, (int, float, Decimal)) and not isinstance(value, bool)
        number = float(value) if ok else 0.0
        if self.kind == "integer":
            ok = ok and number.is_integer()
        ok = ok and (self.minimum is None or number >= self.minimum)
        ok = ok and (self.exclusive_minimum is None or number > self.exclusive_minimum)
        ok = ok and (self.maximum is None or number <= self.maximum)
        if not ok:
            why = f" ({self.why})" if self.why else ""
            msg = f"Setting {self.name}={value!r} must be {self.requirement()}{why}."
            raise ConfigError(msg)
        return int(number) if self.kind == "integer" else number


def _date_time(name: str, value: t.Any) -> int:
    try:
        return unix(value)
    except (AttributeError, TypeError, ValueError) as exc:
        msg = (
            f"Setting {name}={value!r} is not a date-time: use RFC 3339, e.g. 2024-01-31T00:00:00Z."
        )
        raise ConfigError(msg) from exc


def _timezone(name: str, value: t.Any) -> str:
    zone = known_zone(value)
    if zone is None:
        msg = (
            f"Setting {name}={value!r} is not a time zone: use an IANA name such as "
            "America/New_York, Europe/Paris or UTC."
        )
        raise ConfigError(msg)
    return zone
