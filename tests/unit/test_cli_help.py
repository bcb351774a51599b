"""Every option of both command lines says what it does and what it defaults to."""

from __future__ import annotations

import argparse

import pytest

from automem_api import cli as api_cli
from automem_pipelines import cli


def _parsers(parser: argparse.ArgumentParser, name: str):
    """The parser and, recursively, every subcommand's."""
    yield name, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub_name, sub in action.choices.items():
                yield from _parsers(sub, f"{name} {sub_name}")


def _all_parsers():
    return [
        *_parsers(cli.build_parser(), "automem-pipelines"),
        *_parsers(api_cli.build_parser(), "automem-api"),
    ]


def _options(parser: argparse.ArgumentParser):
    for action in parser._actions:
        if isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)):
            continue
        yield action


def test_every_subcommand_is_walked():
    names = {name for name, _ in _all_parsers()}
    expected = {"demo", "reembed", "sync", "enrich", "import", "sample", "falkordb", "stack"}
    assert {f"automem-pipelines {n}" for n in expected} <= names
    assert "automem-api" in names


@pytest.mark.parametrize(("name", "parser"), _all_parsers(), ids=[n for n, _ in _all_parsers()])
def test_every_option_has_help_with_its_default(name, parser):
    text = "".join(parser.format_help().split())  # unwrapped (a wrap may split at a hyphen)
    for action in _options(parser):
        label = "/".join(action.option_strings) or action.dest
        assert action.help and action.help.strip(), f"{name} {label}: no help text"
        if not action.option_strings:
            continue  # a positional argument is required: it has no default
        rendered = action.help % {"default": action.default, "prog": parser.prog}
        assert "default" in rendered, f"{name} {label}: its help does not say the default"
        if action.default not in (None, False, argparse.SUPPRESS):
            assert str(action.default) in rendered, f"{name} {label}: default not shown"
        assert "".join(rendered.split()) in text, f"{name} {label}: help not printed"


def _help(*command: str) -> str:
    parser = cli.build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return " ".join(sub.choices[command[0]].format_help().split())


def test_help_shows_the_defaults():
    assert "(default 1000)" in _help("sample") and "(default 7)" in _help("sample")
    assert "(default: standard output)" in _help("sample")
    assert "default 32" in _help("reembed") and "(default: all of them)" in _help("reembed")
    assert "(default 3000)" in _help("stack") and "(default 8001)" in _help("stack")
    assert "(default info)" in " ".join(api_cli.build_parser().format_help().split())


def test_the_check_catches_an_option_without_help():
    parser = argparse.ArgumentParser(prog="x")
    parser.add_argument("--limit", type=int, default=5)
    with pytest.raises(AssertionError, match="no help text"):
        test_every_option_has_help_with_its_default("x", parser)
    parser = argparse.ArgumentParser(prog="x")
    parser.add_argument("--limit", type=int, default=5, help="at most this many")
    with pytest.raises(AssertionError, match="does not say the default"):
        test_every_option_has_help_with_its_default("x", parser)
