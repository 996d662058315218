"""How ``affect serve`` reads its settings: the one rule that names a setting's flag and its
environment variable, reading them (flag, else variable, else default), and naming in an error
whichever of the two the value came from.

    setting log_format  ->  flag --log-format  ->  variable AFFECT_LOG_FORMAT

``ServerConfig`` (the service's settings) and ``ServeOptions`` (the process's: log, ready file,
Ray) are each a frozen dataclass of ``Settings``; a field with help (``opt``) is a setting.
"""

from __future__ import annotations

import argparse
import difflib
import os
from collections.abc import Iterable, Mapping
from dataclasses import Field, dataclass, field, fields
from typing import Any, TypeVar

ENV_PREFIX = "AFFECT_"

# The AFFECT_* variables read outside these settings, so that a deployment whose one environment
# holds them is not warned of them (tests/test_serve_settings.py finds every name the code reads).
OTHER_VARIABLES = {
    "AFFECT_TARGET": "the Python client's target (affect_client)",
    "AFFECT_TOKEN": "the Python client's token (affect_client); the server's --token too",
    "AFFECT_NATIVE_STDERR": "affect serve's native stderr (affect_server.native_log)",
    "AFFECT_DATA_ROOT": "the data folder of tests, benchmarks and recipes (affect.datasets)",
    "AFFECT_CACHE_DIR": "the cache of ONNX graphs and benchmark baselines (affect.onnx)",
    "AFFECT_FER_MODEL": "the face benchmark's baseline weights (benchmarks.baselines)",
}

S = TypeVar("S", bound="Settings")


def opt(default: Any, help: str, *, choices: tuple[str, ...] = ()) -> Any:
    """A setting's default, its one-line help (``affect serve --help`` shows it) and, for an
    enumerated one, its choices (checked when the command line is read)."""
    return field(default=default, metadata={"help": help, "choices": choices})


def flag_of(setting: str) -> str:
    """``log_format`` -> ``--log-format``."""
    return "--" + setting.replace("_", "-")


def variable_of(setting: str) -> str:
    """``log_format`` -> ``AFFECT_LOG_FORMAT``."""
    return ENV_PREFIX + setting.upper()


@dataclass(frozen=True)
class Settings:
    """Settings filled from flags, then ``AFFECT_*`` environment variables, then defaults."""

    # Where from_args read each setting it was given, (setting, its flag or its variable), for
    # messages that name it (``source``). Not a setting: no flag, no variable (``settings``);
    # a field, so that ``dataclasses.replace`` keeps it. Empty for settings built in code.
    _given_by: tuple[tuple[str, str], ...] = field(default=(), repr=False, compare=False, kw_only=True)

    @classmethod
    def settings(cls) -> tuple[Field[Any], ...]:
        """The settings: the fields with a flag and a variable (each has its help)."""
        return tuple(f for f in fields(cls) if "help" in f.metadata)

    @classmethod
    def environment_variables(cls) -> dict[str, str]:
        """Each setting's environment variable, by setting name."""
        return {f.name: variable_of(f.name) for f in cls.settings()}

    def given_by(self, setting: str) -> str | None:
        """The flag or variable ``from_args`` read ``setting`` from; None when it was not given
        there (its default, or settings built in code)."""
        return dict(self._given_by).get(setting)

    def source(self, setting: str) -> str:
        """What an error about ``setting`` names: the flag or variable it came from, else its name."""
        return self.given_by(setting) or setting

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser | argparse._ArgumentGroup,
                      only: Iterable[str] | None = None) -> None:
        """A flag for each setting (those in ``only``, if given); an enumerated one refuses
        another value when the command line is read, naming its choices."""
        wanted = None if only is None else set(only)
        for f in cls.settings():
            if wanted is not None and f.name not in wanted:
                continue
            env, about = variable_of(f.name), f.metadata["help"]
            choices = f.metadata["choices"] or None
            if isinstance(f.default, bool):  # `--speech-adapt` alone turns it on; `--speech-adapt false` too
                parser.add_argument(flag_of(f.name), default=None, nargs="?", const="true", metavar="BOOL",
                                    help=f"{about} (env {env}, default {f.default!r}; alone: true)")
            else:
                shown = "unset" if f.default is None else repr(f.default)
                parser.add_argument(flag_of(f.name), default=None, choices=choices,
                                    help=f"{about} (env {env}, default {shown})")

    @classmethod
    def from_args(cls: type[S], args: argparse.Namespace | None = None, env: Mapping[str, str] | None = None) -> S:
        """Flags win over ``AFFECT_*`` environment variables, which win over defaults. A value
        that is not of its setting's kind, or not one of its choices, is refused (``SystemExit``)
        naming the flag or variable it came from."""
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        given_by: dict[str, str] = {}
        for f in cls.settings():
            raw = getattr(args, f.name, None) if args is not None else None
            source = flag_of(f.name)
            if raw is None:
                raw, source = env.get(variable_of(f.name)), variable_of(f.name)
            if raw is None or raw == "":
                continue
            given_by[f.name] = source
            kind: Any = type(f.default) if f.default is not None else str
            try:
                values[f.name] = _parse_bool(raw) if kind is bool else kind(raw)
            except ValueError:
                what = {bool: "true or false", int: "a whole number", float: "a number"}.get(kind, kind.__name__)
                raise SystemExit(f"affect serve: {source}: must be {what}, got {raw!r}") from None
        settings = cls(**values, _given_by=tuple(given_by.items()))
        settings.check_choices()
        return settings

    def check_choices(self) -> None:
        """Each enumerated setting holds one of its choices (``SystemExit`` naming its source)."""
        for f in self.settings():
            value, choices = getattr(self, f.name), f.metadata["choices"]
            if choices and value not in choices:
                raise SystemExit(f"affect serve: {self.source(f.name)}: must be one of {', '.join(choices)}, "
                                 f"got {value!r}")


def unread_variables(env: Iterable[str], known: Iterable[str]) -> list[str]:
    """A warning for each ``AFFECT_*`` variable in ``env`` that is not in ``known``: naming it,
    never its value (a token, say), with the known name closest to it, if one is close."""
    known = set(known)
    by_suffix = {name[len(ENV_PREFIX):]: name for name in known if name.startswith(ENV_PREFIX)}
    warnings = []
    for name in sorted(env):
        if not name.startswith(ENV_PREFIX) or name in known:
            continue
        close = difflib.get_close_matches(name[len(ENV_PREFIX):], by_suffix, n=1)  # the prefix, shared, would match all
        hint = f" (did you mean {by_suffix[close[0]]}?)" if close else ""
        warnings.append(f"{name} is ignored: no setting of affect reads it{hint}")
    return warnings


def _parse_bool(raw: object) -> bool:
    if isinstance(raw, bool):
        return raw
    value = str(raw).strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ValueError(raw)
