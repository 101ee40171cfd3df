"""``--help`` that reads as click's: value types as TEXT, INTEGER, PATH or ``[a|b]``, none for
flags, and arguments by their upper-case name.

typer (0.2x) prints the Python type hint of every parameter (``<bool>``, ``<list[str]>``,
``<SchedulerName>``), which reads oddly in a command's help. :class:`EngineGroup` sets each
parameter's ``metavar`` (the supported way to name a value) as a command is looked up, so that
help, usage lines and error messages all say the same.
"""

from __future__ import annotations

import difflib
import re
from typing import Any

from typer.core import TyperArgument, TyperGroup

#: The names click gives Python's types.
TYPE_NAMES = {"str": "TEXT", "int": "INTEGER", "float": "FLOAT", "bool": "BOOLEAN"}


def value_name(param: Any) -> str:
    """How ``--help`` names the value of a parameter ('' for a flag, which takes none)."""
    descriptor = param.type_descriptor
    if getattr(param, "is_flag", False):
        return ""
    if descriptor.is_choice:
        values = [getattr(c, "value", c) for c in descriptor.choices or ()]
        return "[" + "|".join(str(v) for v in values) + "]"
    if descriptor.is_path:
        return "PATH"
    bare = param.bare_type()
    if bare.startswith("list[") and bare.endswith("]"):
        bare = bare[5:-1]
    return TYPE_NAMES.get(bare, bare.upper())


def plain(params: list[Any]) -> None:
    """Name the values of ``params`` as click does (in place); a metavar already given stays."""
    for param in params:
        if param.metavar is not None:
            continue
        if isinstance(param, TyperArgument):
            param.metavar = str(param.name).upper()
            # The upper-case name says what to give; the type column would only repeat it.
            # typer reads an argument's type column from this method and offers no setting
            # for it (an option's is its metavar), so this instance's method is replaced.
            param.display_type_rich = _no_type  # type: ignore[method-assign]
        else:
            param.metavar = value_name(param)


def _no_type(ctx: Any) -> None:
    return None


class EngineGroup(TyperGroup):
    """The app's group: every command's parameters named as :func:`plain` names them."""

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        command = super().get_command(ctx, cmd_name)
        if command is not None:
            plain(command.get_params(ctx))  # with --help, which click adds
        return command

    def format_help(self, ctx: Any, formatter: Any) -> None:
        plain(self.get_params(ctx))
        super().format_help(ctx, formatter)


#: A choice click refused: the value given and the choices, quoted.
NOT_ONE_OF = re.compile(r"'(?P<given>[^']*)' is not one of (?P<choices>('[^']*'(, )?)+)")


def suggestion(message: str) -> str:
    """``message`` of a usage error, tidied, with "did you mean" for a misspelt choice."""
    message = message.replace("Value error, ", "")
    found = NOT_ONE_OF.search(message)
    if found is None:
        return message
    choices = re.findall(r"'([^']*)'", found["choices"])
    close = difflib.get_close_matches(found["given"], choices, n=1, cutoff=0.5)
    return f"{message.rstrip('.')}; did you mean {close[0]!r}?" if close else message
