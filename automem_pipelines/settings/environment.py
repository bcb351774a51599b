"""Reading a settings group from the environment, AutoMem's way.

Each group is a pydantic-settings model whose fields carry AutoMem's variable names
(``validation_alias``), their defaults and their allowed ranges, once. Values are stripped
and an empty value counts as unset, as AutoMem treats them. Every invalid value is reported,
each naming the variable and what it accepts, and reading goes on with the default so that
later checks (the embedding choice) still report their own problems in the same message.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

import annotated_types
from pydantic import AfterValidator, AliasChoices, BeforeValidator, ValidationError
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict


class SettingsError(ValueError):
    """One or more environment variables hold values we cannot use."""


@dataclass(frozen=True)
class Expect:
    """What a variable accepts, in words, for a type whose range is not a number range."""

    text: str


@dataclass(frozen=True)
class Secret:
    """Marks a credential: it reaches Dagster resources as ``dg.EnvVar`` of its variable."""


# The error type of a validator that words its own message (pydantic_core.PydanticCustomError).
OWN_MESSAGE = "automem_settings"

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _flag(value: Any) -> Any:
    if isinstance(value, str):
        low = value.lower()
        if low in _TRUE:
            return True
        if low in _FALSE:
            return False
        raise ValueError("not a boolean")
    return value


def _http_url(value: str | None) -> str | None:
    if value is not None and not value.startswith(("http://", "https://")):
        raise ValueError("not an http(s):// URL")
    return value


def _words(value: Any) -> Any:
    if isinstance(value, str):
        return tuple(t.strip() for t in value.split(",") if t.strip())
    return value


# AutoMem's booleans: 1/true/yes/on and 0/false/no/off, any case; nothing else.
Flag = Annotated[bool, BeforeValidator(_flag), Expect("one of 1/true/yes/on or 0/false/no/off")]
HttpUrl = Annotated[str, AfterValidator(_http_url), Expect("an http(s):// URL")]
CommaList = Annotated[tuple[str, ...], BeforeValidator(_words), Expect("a comma-separated list")]

_environment: ContextVar[Mapping[str, str] | None] = ContextVar("automem_environment", default=None)


def clean(value: str | None) -> str | None:
    """AutoMem treats an empty (or blank) value as unset."""
    if value is None or value.strip() == "":
        return None
    return value.strip()


def variable_names(field: FieldInfo) -> list[str]:
    alias = field.validation_alias
    if isinstance(alias, str):
        return [alias]
    if isinstance(alias, AliasChoices):
        return [choice for choice in alias.choices if isinstance(choice, str)]
    return []


class Environment(PydanticBaseSettingsSource):
    """The process environment, or the mapping given to ``Settings.from_env``."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        env = _environment.get()
        env = os.environ if env is None else env
        for name in variable_names(field):
            value = clean(env.get(name))
            if value is not None:
                return value, name, False
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        data: dict[str, Any] = {}
        for field_name, field in self.settings_cls.model_fields.items():
            value, key, _ = self.get_field_value(field, field_name)
            if value is not None:
                data[key] = value
        return data


class Group(BaseSettings):
    """A group of settings for one system, read from AutoMem's variables."""

    model_config = SettingsConfigDict(frozen=True, populate_by_name=True, extra="ignore")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, Environment(settings_cls))

    @classmethod
    def secret_fields(cls) -> dict[str, str]:
        """field name → variable name of every credential in the group."""
        return {
            name: variable_names(field)[0]
            for name, field in cls.model_fields.items()
            if any(isinstance(m, Secret) for m in field.metadata)
        }


def expected(field: FieldInfo) -> str:
    """What the field's variable accepts, from its type and its range (written once, on it)."""
    for meta in field.metadata:
        if isinstance(meta, Expect):
            return meta.text
    lo = next((m.ge for m in field.metadata if isinstance(m, annotated_types.Ge)), None)
    hi = next((m.le for m in field.metadata if isinstance(m, annotated_types.Le)), None)
    kind = "an integer" if int in _types(field.annotation) else "a number"
    if lo is not None and hi is not None:
        return f"{kind} from {lo} to {hi}"
    return kind


def _types(annotation: Any) -> set[Any]:
    args = getattr(annotation, "__args__", None)
    return set(args) if args else {annotation}


G = TypeVar("G", bound=Group)


@contextmanager
def environment(env: Mapping[str, str]) -> Iterator[None]:
    token = _environment.set(env)
    try:
        yield
    finally:
        _environment.reset(token)


def read_group(cls: type[G], env: Mapping[str, str], errors: list[str], **given: Any) -> G:
    """The group from ``env``; each invalid variable is added to ``errors`` and read as unset."""
    try:
        with environment(env):
            return cls(**given)
    except ValidationError as exc:
        bad: set[str] = set()
        for error in exc.errors():
            name = str(error["loc"][0]) if error["loc"] else cls.__name__
            field = _field_for(cls, name)
            if field is None:  # a check across fields: its message says it all
                errors.append(str(error["msg"]).removeprefix("Value error, "))
                continue
            bad.update(variable_names(field))
            if (
                error["type"] == OWN_MESSAGE
            ):  # a message of its own (one that must not echo the value)
                errors.append(str(error["msg"]))
            else:
                errors.append(f"{name}={error['input']!r} is not valid: expected {expected(field)}")
        with environment({k: v for k, v in env.items() if k not in bad}):
            return cls(**given)


def _field_for(cls: type[Group], name: str) -> FieldInfo | None:
    for field_name, field in cls.model_fields.items():
        if name == field_name or name in variable_names(field):
            return field
    return None
