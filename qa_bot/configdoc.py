"""docs/configuration.md, generated from the settings model so that it cannot drift.

Usage::

    .venv/bin/python -m qa_bot.configdoc > docs/configuration.md

Each section's docstring and each field's ``description`` in :mod:`qa_bot.settings` are the text;
the defaults and what each key accepts are read from the fields' types and bounds.
tests/test_settings.py fails when the page in the repository is not what this prints.
"""

from __future__ import annotations

import types
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel, IPvAnyNetwork
from pydantic.fields import FieldInfo

from qa_bot.settings import Settings

HEADER = """# Configuration

Every setting of `config.yaml`, generated from the settings model (`qa_bot/settings.py`) by
`.venv/bin/python -m qa_bot.configdoc > docs/configuration.md`; `tests/test_settings.py` fails
when this page is not current. Relative paths resolve against the config file's folder. Every key
is validated: a typo or a bad value stops with one line that names it and what is allowed.
"""

_BOUNDS = (("ge", "≥"), ("gt", ">"), ("le", "≤"), ("lt", "<"), ("min_length", "length ≥"), ("max_length", "length ≤"))
_NAMES: dict[Any, str] = {
    str: "text",
    int: "integer",
    float: "number",
    bool: "`true` \\| `false`",
    Path: "path",
    type(None): "`null`",
    IPvAnyNetwork: 'network (`"10.1.0.0/16"`)',
}


def reference() -> str:
    """The page: each section, each key, its default, what it accepts, what it does."""
    parts = [HEADER]
    for name, field in Settings.model_fields.items():
        section = field.annotation
        if not (isinstance(section, type) and issubclass(section, BaseModel)):
            continue  # base_dir: set by the loader, not a setting
        parts.append(f"\n## `{name}`\n\n{(section.__doc__ or '').strip()}\n")
        parts.append("\n| key | default | accepts | what it does |\n|---|---|---|---|\n")
        for key, sub in section.model_fields.items():
            default = sub.get_default(call_default_factory=True)
            shown = "(none)" if default is None else f"`{_value(default)}`"
            accepts = _type(sub.annotation) + _bounds(sub.metadata)
            parts.append(f"| `{key}` | {shown} | {accepts} | {sub.description or ''} |\n")
    return "".join(parts)


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _bounds(metadata: list[Any]) -> str:
    # A Field(...) inside Annotated[...] keeps its bounds in its own metadata.
    metadata = [m for item in metadata for m in (item.metadata if isinstance(item, FieldInfo) else [item])]
    found = [
        f"{symbol} {_value(getattr(m, attr))}"
        for m in metadata
        for attr, symbol in _BOUNDS
        if getattr(m, attr, None) is not None
    ]
    return f" ({', '.join(found)})" if found else ""


def _type(annotation: Any) -> str:
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is Literal:
        return " \\| ".join(f"`{a}`" for a in args)
    if origin in (Union, types.UnionType):
        return " or ".join(_type(a) for a in args)
    if origin is Annotated:
        return _type(args[0]) + _bounds(list(args[1:]))
    if origin is list:
        return f"list of {_type(args[0])}"
    return _NAMES.get(annotation, getattr(annotation, "__name__", str(annotation)))


if __name__ == "__main__":
    print(reference(), end="")
