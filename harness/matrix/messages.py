"""Turn pydantic's validation errors into messages a matrix author can act on."""

from __future__ import annotations

import typing

from pydantic import BaseModel, ValidationError

MAX_ERRORS_SHOWN = 5
MAX_VALUE_SHOWN = 80  # characters of a user's value quoted back in a message


def _shown(value) -> str:
    """repr of a user's value, cut short: a 900 kB string must not become the message."""
    try:
        text = repr(value)
    except (ValueError, RecursionError):  # an int beyond the str-conversion limit, a cycle
        return f"a {type(value).__name__}"
    return text if len(text) <= MAX_VALUE_SHOWN else text[:MAX_VALUE_SHOWN - 3] + "..."


def _path(loc: tuple) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "(top level)"


def _model_classes(annotation) -> list[type[BaseModel]]:
    """The pydantic model classes an annotation can hold (through lists, unions, Annotated)."""
    found = []
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    for arg in typing.get_args(annotation):
        found.extend(_model_classes(arg))
    return found


def _strip_tags(loc: tuple, root: type[BaseModel]
                ) -> tuple[tuple, type[BaseModel] | None, list[type[BaseModel]]]:
    """Drop discriminator tags pydantic inserts into locations; return the parent model of
    the last element so an unknown key can be answered with the allowed keys, and the
    models the location itself can hold."""
    clean: list = []
    current: list[type[BaseModel]] = [root]
    parent: type[BaseModel] | None = root
    for part in loc:
        if isinstance(part, int):
            clean.append(part)
            continue
        by_name = {c.__name__: c for c in current}
        tagged = [c for c in current if part in _tags(c)]
        if len(current) > 1 and tagged:
            current = tagged
            continue
        if part in by_name and len(current) > 1:
            current = [by_name[part]]
            continue
        clean.append(part)
        parent = current[0] if len(current) == 1 else None
        fields = parent.model_fields if parent else {}
        current = _model_classes(fields[part].annotation) if part in fields else []
    return tuple(clean), parent, current


def _tags(cls: type[BaseModel]) -> set[str]:
    if "kind" in cls.model_fields:
        return set(typing.get_args(cls.model_fields["kind"].annotation))
    if "chain" in cls.model_fields:
        return {"chain"}
    return set()


def describe_validation_error(exc: ValidationError, root: type[BaseModel]) -> str:
    lines = []
    errors = exc.errors(include_url=False)
    for err in errors[:MAX_ERRORS_SHOWN]:
        kind = err["type"]
        ctx = err.get("ctx") or {}
        if kind == "invalid_key":
            # pydantic puts the offending key itself at the end of the location
            loc, _, models = _strip_tags(tuple(err["loc"][:-1]), root)
            allowed = (", ".join(models[0].model_fields) if len(models) == 1
                       else "text keys, see DESIGN.md")
            lines.append(f"{_path(loc)}: key {_shown(err['input'])} is not text "
                         f"(allowed: {allowed})")
            continue
        loc, parent, _ = _strip_tags(tuple(err["loc"]), root)
        if kind == "extra_forbidden":
            allowed = ", ".join(parent.model_fields) if parent else "see DESIGN.md"
            lines.append(f"{_path(loc)}: unknown key (allowed: {allowed})")
        elif kind == "missing":
            lines.append(f"{_path(loc)}: required field is missing")
        elif kind == "literal_error":
            lines.append(f"{_path(loc)}: {_shown(err['input'])} is not allowed "
                         f"(allowed: {ctx.get('expected')})")
        elif kind in ("union_tag_invalid", "union_tag_not_found"):
            lines.append(f"{_path(loc)}: needs 'kind' (allowed: baseline, quantize) or "
                         f"'chain' (a list of method names); got {_shown(err['input'])}")
        elif kind == "string_pattern_mismatch":
            lines.append(f"{_path(loc)}: {_shown(err['input'])} is not a valid name "
                         "(allowed: letters, digits, '-' and '_', starting with a letter or "
                         "digit, at most 64 characters)")
        else:
            msg = str(err["msg"]).removeprefix("Value error, ")
            # a whole-matrix check (duplicates, references) names its own field path
            lines.append(f"{_path(loc)}: {msg}" if loc else msg)
    if len(errors) > MAX_ERRORS_SHOWN:
        lines.append(f"... and {len(errors) - MAX_ERRORS_SHOWN} more errors")
    return "; ".join(lines)
