"""Settings read from the environment, each checked as it is read: a value that is not what its variable
takes stops the start with an error naming the variable. Used by arena/settings.py and by the supervisor,
which reads its own few (PORT, WEB_PROCESSES) before Django is set up."""

import math
import os

from django.core.exceptions import ImproperlyConfigured

TRUE_WORDS = {"1", "true", "yes", "on"}
FALSE_WORDS = {"0", "false", "no", "off", ""}


def envbool(name: str, default: bool = False) -> bool:
    """A yes/no setting; a value that is neither (a typo) stops the start with a clear error."""
    value = os.environ.get(name)
    if value is None:
        return default
    word = value.strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise ImproperlyConfigured(f"{name}={value!r} is not a yes/no value; use one of 1/0, true/false, yes/no, on/off")


def envswitch(name: str) -> bool | None:
    """A yes/no setting that may also be left unset (or empty): None, for "decide for yourself"."""
    return envbool(name) if os.environ.get(name, "").strip() else None


def envlist(name: str, default: str = "") -> list[str]:
    """A comma-separated setting, items stripped of spaces, empty items dropped."""
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


def envnumber(name: str, default, kind: type, *, minimum=None, maximum=None, environ=None):
    """A number setting; unset or empty gives the default, anything else that is not a number of this kind,
    or below the minimum, stops the start with an error naming the variable. `environ`: another mapping to
    read it from (the environment a supervisor hands its programs)."""
    value = (os.environ if environ is None else environ).get(name, "").strip()
    if not value:
        return default
    what = "a whole number" if kind is int else "a number"
    allowed = what if minimum is None else f"{what} of at least {minimum}"
    try:
        number = kind(value)
    except ValueError:
        number = None
    if number is None or not math.isfinite(number):  # float() also reads "nan" and "inf"
        raise ImproperlyConfigured(f"{name}={value!r} is not {what}; use {allowed}")
    if minimum is not None and number < minimum:
        raise ImproperlyConfigured(f"{name}={value!r} is too small; use {allowed}")
    if maximum is not None and number > maximum:
        raise ImproperlyConfigured(f"{name}={value!r} is too large; use {what} of at most {maximum}")
    return number


def envint(name: str, default: int, *, minimum: int | None = None, maximum: int | None = None, environ=None) -> int:
    return envnumber(name, default, int, minimum=minimum, maximum=maximum, environ=environ)


def envport(name: str, default: int, *, environ=None) -> int:
    """A TCP port setting: 1-65535."""
    return envint(name, default, minimum=1, maximum=65535, environ=environ)


def envfloat(name: str, default: float, *, minimum: float | None = None) -> float:
    return envnumber(name, default, float, minimum=minimum)
