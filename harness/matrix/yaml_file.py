"""Reading a matrix file as YAML safely: size limit, no aliases (billion laughs), bounded
nesting, and every PyYAML failure turned into an InputError naming the file."""

from __future__ import annotations

from pathlib import Path

import yaml

from harness.errors import InputError

MAX_MATRIX_BYTES = 1_000_000
MAX_YAML_DEPTH = 32        # a real matrix nests 4 levels; deeper is a mistake or an attack


class _NoAliasLoader(yaml.SafeLoader):
    """Safe loader that refuses YAML aliases (no billion-laughs expansion, no shared nodes)
    and nesting deeper than MAX_YAML_DEPTH (PyYAML's composer recurses once per level, so
    '[' * 5000 would end in a RecursionError), and reports a scalar its constructor cannot
    convert (an impossible date, `!!int abc`, an integer beyond Python's 4300-digit limit)
    as a YAML error at its line instead of a bare ValueError."""

    _depth = 0

    def compose_node(self, parent, index):  # noqa: D401 - PyYAML hook
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.YAMLError(f"aliases (*name) are not allowed in a matrix "
                                 f"(line {event.start_mark.line + 1})")
        if self._depth >= MAX_YAML_DEPTH:
            event = self.peek_event()
            raise yaml.YAMLError(f"nesting deeper than {MAX_YAML_DEPTH} levels is not allowed "
                                 f"in a matrix (line {event.start_mark.line + 1})")
        self._depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_object(self, node, deep=False):  # noqa: D401 - PyYAML hook
        try:
            return super().construct_object(node, deep=deep)
        except (ValueError, TypeError, AttributeError, OverflowError, IndexError,
                KeyError) as exc:
            shown = (repr(node.value)[:60] if isinstance(node, yaml.ScalarNode)
                     else f"a {node.id}")
            why = f": {str(exc)[:200]}" if isinstance(exc, ValueError) else ""
            raise yaml.constructor.ConstructorError(
                None, None, f"cannot read {shown} as !!{node.tag.rsplit(':', 1)[-1]}{why}",
                node.start_mark) from None


def read_matrix_yaml(path: Path) -> tuple[str, object]:
    """The file's text and its parsed YAML (any type; the caller checks the shape)."""
    shown = str(path)
    if not path.is_file():
        raise InputError("matrix file not found", file=shown)
    if path.stat().st_size > MAX_MATRIX_BYTES:
        raise InputError(f"matrix file is larger than {MAX_MATRIX_BYTES} bytes", file=shown)
    try:
        text = path.read_text(encoding="utf-8")
    except (UnicodeDecodeError, OSError) as exc:
        raise InputError(f"cannot read matrix as UTF-8 text: {exc}", file=shown) from None
    try:
        data = yaml.load(text, Loader=_NoAliasLoader)  # noqa: S506 - SafeLoader subclass
    except yaml.YAMLError as exc:
        message = str(exc)  # quotes the offending token: a 900 kB tag would be all of it
        if len(message) > 1000:
            message = message[:1000] + " ..."
        raise InputError(f"not valid YAML: {message}", file=shown) from None
    except RecursionError:
        raise InputError("not valid YAML: nested too deeply", file=shown,
                         allowed=f"at most {MAX_YAML_DEPTH} levels") from None
    except (ValueError, TypeError, AttributeError, OverflowError, IndexError, KeyError) as exc:
        # PyYAML has let such errors escape from its constructors; never show a traceback.
        raise InputError(f"not valid YAML: {type(exc).__name__}: {str(exc)[:200]}",
                         file=shown) from None
    return text, data
