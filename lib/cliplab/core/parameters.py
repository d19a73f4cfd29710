"""A notebook's parameters cell as the single source of truth for what a run accepts.

The cell tagged ``parameters`` in ``notebooks/PAPER.py`` declares each parameter as an annotated assignment
with a literal default and a trailing ``# help`` comment::

    seeds: int = 5  # independent seeds

The runner validates every value against these declarations *before* any work starts.
"""

from __future__ import annotations

import ast
import io
import json
import tokenize
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import jupytext

SCALARS = {"bool": bool, "int": int, "float": float, "str": str}
LISTS = {f"list[{name}]": kind for name, kind in SCALARS.items() if name != "bool"}
TRUE_WORDS = {"true", "1", "yes", "on"}
FALSE_WORDS = {"false", "0", "no", "off"}
RUNNER_OWNED = ("out_dir",)


class ParameterError(ValueError):
    """A parameter is unknown, ill-typed, or the parameters cell itself is malformed."""


@dataclass(frozen=True)
class Parameter:
    name: str
    type: str
    default: Any
    help: str

    def coerce(self, value: Any) -> Any:
        """Convert ``value`` (a CLI string or a YAML value) to this parameter's type, or raise ParameterError."""
        try:
            if self.type in SCALARS:
                return _coerce_scalar(SCALARS[self.type], value)
            kind = LISTS[self.type]
            if isinstance(value, str):
                value = _parse_list_string(value)
            if not isinstance(value, (list, tuple)):
                raise TypeError(f"expected a list, got {type(value).__name__}")
            return [_coerce_scalar(kind, v) for v in value]
        except (TypeError, ValueError) as err:
            raise ParameterError(f"parameter '{self.name}' expects {self.type}, got {value!r}: {err}") from None


def _coerce_scalar(kind: type, value: Any) -> Any:
    if kind is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in TRUE_WORDS | FALSE_WORDS:
            return value.strip().lower() in TRUE_WORDS
        raise ValueError("use true or false")
    if kind is int:
        if isinstance(value, bool) or isinstance(value, float) and not value.is_integer():
            raise ValueError("not an integer")
        return int(value) if not isinstance(value, str) else int(value.strip())
    if kind is float:
        if isinstance(value, bool):
            raise ValueError("not a number")
        return float(value)
    if not isinstance(value, str):
        raise ValueError("not a string")
    return value


def _parse_list_string(text: str) -> list[Any]:
    text = text.strip()
    if text.startswith("["):
        return json.loads(text)
    return [part.strip() for part in text.split(",") if part.strip()]


def _parameters_cell_source(notebook: Path) -> str:
    nb = jupytext.read(notebook)
    cells = [c for c in nb.cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    if len(cells) != 1:
        raise ParameterError(f"{notebook} must have exactly one cell tagged 'parameters', found {len(cells)}")
    return cells[0].source


def _trailing_comments(source: str) -> dict[int, str]:
    comments: dict[int, str] = {}
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type == tokenize.COMMENT:
            comments[tok.start[0]] = tok.string.lstrip("#").strip()
    return comments


def read_parameters(notebook: Path) -> dict[str, Parameter]:
    """Parse the notebook's parameters cell into ``{name: Parameter}`` (in declaration order)."""
    source = _parameters_cell_source(notebook)
    comments = _trailing_comments(source)
    params: dict[str, Parameter] = {}
    for node in ast.parse(source).body:
        if not isinstance(node, ast.AnnAssign) or not isinstance(node.target, ast.Name) or node.value is None:
            raise ParameterError(
                f"{notebook}: line {node.lineno} of the parameters cell is not 'name: type = literal  # help'"
            )
        name, type_name = node.target.id, ast.unparse(node.annotation)
        if type_name not in SCALARS and type_name not in LISTS:
            raise ParameterError(f"{notebook}: parameter '{name}' has unsupported type {type_name!r}")
        param = Parameter(name, type_name, None, comments.get(node.lineno, ""))
        default = param.coerce(ast.literal_eval(node.value))
        params[name] = Parameter(name, type_name, default, param.help)
    return params


def resolve(
    declared: Mapping[str, Parameter],
    *layers: Mapping[str, Any],
) -> dict[str, Any]:
    """Defaults overlaid by each layer in turn (params.yaml block, then --set values), all validated.

    Raises ParameterError naming the first unknown or ill-typed parameter and listing the valid ones.
    """
    values = {name: p.default for name, p in declared.items()}
    for layer in layers:
        for name, raw in layer.items():
            if name in RUNNER_OWNED:
                raise ParameterError(f"parameter '{name}' is set by the runner; use --out to choose where outputs go")
            if name not in declared:
                valid = ", ".join(f"{p.name} ({p.type})" for p in declared.values() if p.name not in RUNNER_OWNED)
                raise ParameterError(f"unknown parameter '{name}'. Valid parameters: {valid}")
            values[name] = declared[name].coerce(raw)
    return values


def parse_assignments(items: list[str]) -> dict[str, str]:
    """Turn ``["k=v", ...]`` from the command line into a dict, rejecting malformed items."""
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ParameterError(f"--set expects key=value, got {item!r}")
        out[key.strip()] = value
    return out
