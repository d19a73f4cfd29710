"""Scoring one check over replicates: a pooled three-valued verdict and one verdict per replicate.

A metric measured over independent replicates (seeds, worlds) is stored flat as ``KEY.r0 … KEY.r{n-1}`` (and
``KEY`` = their mean, for prose and the 'ours' column). Inside a check, ``KEY`` then names the whole series.
Each comparison ``a < b`` of a check is pooled on the per-replicate differences ``a_i − b_i``: their mean with
a 95 % t-interval over replicates. The comparison holds when the whole interval is on its side, fails when
the whole interval is on the other, and is undecided (``None``) when it straddles. ``and``/``or``/``not``
combine these with Kleene's three-valued logic, so one undecided clause that could flip the check makes the
pooled verdict undecided. The same check is also evaluated on each replicate alone.
"""

from __future__ import annotations

import ast
import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats

REPLICATE_KEY = re.compile(r"^(?P<base>.+)\.r(?P<index>\d+)$")
CONFIDENCE = 0.95

_BINOPS: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
}
_CMPOPS: dict[type, Callable[[Any, Any], Any]] = {
    ast.Lt: operator.lt, ast.LtE: operator.le, ast.Gt: operator.gt, ast.GtE: operator.ge,
    ast.Eq: operator.eq, ast.NotEq: operator.ne,
}
_SYMBOLS = {ast.Lt: "<", ast.LtE: "≤", ast.Gt: ">", ast.GtE: "≥", ast.Eq: "=", ast.NotEq: "≠"}
_FUNCS: dict[str, Callable[..., Any]] = {"abs": np.abs, "min": np.minimum, "max": np.maximum}


class CheckError(ValueError):
    """A check names a metric that was not written, mixes replicate counts, or uses a disallowed construct."""


@dataclass(frozen=True)
class Comparison:
    """One pooled comparison of a check: ``left op right`` with the mean and CI of ``left`` over replicates.

    When ``right`` is not a constant, ``left`` is the difference ``a − b`` and ``right`` is 0.
    """

    left: str
    op: str
    right: str
    mean: float
    low: float
    high: float
    holds: bool | None

    def describe(self) -> str:
        mark = {True: "✓", False: "✗", None: "?"}[self.holds]
        interval = f"{self.mean:+.3g}" if self.low == self.high else f"{self.mean:+.3g} [{self.low:+.3g}, {self.high:+.3g}]"
        return f"{self.left} = {interval} {self.op} {self.right} {mark}"


@dataclass(frozen=True)
class Scored:
    """A check scored over ``n`` replicates: pooled verdict, per-replicate verdicts, and each comparison."""

    n: int
    pooled: bool | None
    per_replicate: tuple[bool, ...]
    comparisons: tuple[Comparison, ...]


def replicate_series(metrics: Mapping[str, float]) -> dict[str, np.ndarray]:
    """Group ``KEY.r{i}`` metrics into arrays; raises when the indices of a key are not 0 … n−1."""
    found: dict[str, dict[int, float]] = {}
    for key, value in metrics.items():
        match = REPLICATE_KEY.match(key)
        if match:
            found.setdefault(match["base"], {})[int(match["index"])] = float(value)
    series = {}
    for base, values in found.items():
        if sorted(values) != list(range(len(values))):
            raise CheckError(f"replicates of '{base}' are {sorted(values)}, not r0 … r{len(values) - 1}")
        series[base] = np.array([values[i] for i in range(len(values))])
    return series


def interval(values: np.ndarray) -> tuple[float, float, float]:
    """Mean and 95 % t-interval of the mean over replicates (a point when they are all equal or n = 1)."""
    mean = float(np.mean(values))
    if values.size < 2 or np.ptp(values) == 0:
        return mean, mean, mean
    half = float(stats.t.ppf(0.5 + CONFIDENCE / 2, values.size - 1) * stats.sem(values))
    return mean, mean - half, mean + half


def _dotted(node: ast.AST) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = _dotted(node.value)
        return None if base is None else f"{base}.{node.attr}"
    return None


def _literal(node: ast.AST) -> bool:
    """A number written in the check (``0.1``, ``-0.1``), as opposed to a metric."""
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        node = node.operand
    return isinstance(node, ast.Constant)


def _pooled_compare(op: ast.cmpop, d: np.ndarray) -> bool | None:
    """Does ``d op 0`` hold for the mean of d over replicates, by its whole CI (None: the CI straddles)?"""
    if isinstance(op, (ast.Eq, ast.NotEq)):
        truth = _CMPOPS[type(op)](d, 0)
        return bool(truth.all()) if truth.all() or not truth.any() else None
    _, low, high = interval(d)
    compare = _CMPOPS[type(op)]
    if compare(low, 0) and compare(high, 0):
        return True
    if not compare(low, 0) and not compare(high, 0):
        return False
    return None


class _Scorer:
    def __init__(self, expression: str, metrics: Mapping[str, float]) -> None:
        self.src = expression
        self.metrics = metrics
        self.series = replicate_series(metrics)
        self.n = 1
        self.comparisons: list[Comparison] = []

    def size(self, tree: ast.AST) -> int:
        counts = set()
        for node in ast.walk(tree):
            name = _dotted(node)
            if name is not None and name in self.series:
                counts.add(self.series[name].size)
        if len(counts) > 1:
            raise CheckError(f"check {self.src!r} mixes metrics with different replicate counts {sorted(counts)}")
        return counts.pop() if counts else 1

    def value(self, node: ast.AST) -> np.ndarray:
        name = _dotted(node)
        if name is not None:
            if name in self.series:
                return self.series[name]
            if name not in self.metrics:
                raise CheckError(f"check {self.src!r} uses metric '{name}', which metrics.json does not contain")
            return np.full(self.n, float(self.metrics[name]))
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
            return np.full(self.n, float(node.value))
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            return -self.value(node.operand)
        if isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
            return _BINOPS[type(node.op)](self.value(node.left), self.value(node.right))
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in _FUNCS:
            args = [self.value(a) for a in node.args]
            if node.func.id == "abs":
                if len(args) != 1:
                    raise CheckError(f"check {self.src!r}: abs takes one argument")
                return np.abs(args[0])
            result = args[0]
            for arg in args[1:]:
                result = _FUNCS[node.func.id](result, arg)
            return result
        raise CheckError(f"check {self.src!r}: {ast.unparse(node)!r} is not allowed in a check")

    def truth(self, node: ast.AST) -> tuple[bool | None, np.ndarray]:
        if isinstance(node, ast.BoolOp):
            parts = [self.truth(v) for v in node.values]
            pooled = [p for p, _ in parts]
            per = np.stack([r for _, r in parts])
            if isinstance(node.op, ast.And):
                verdict = False if False in pooled else (None if None in pooled else True)
                return verdict, per.all(axis=0)
            verdict = True if True in pooled else (None if None in pooled else False)
            return verdict, per.any(axis=0)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            pooled, per = self.truth(node.operand)
            return (None if pooled is None else not pooled), ~per
        if isinstance(node, ast.Compare):
            left_node, verdicts, per = node.left, [], np.ones(self.n, dtype=bool)
            for op, right_node in zip(node.ops, node.comparators):
                if type(op) not in _CMPOPS:
                    raise CheckError(f"check {self.src!r}: comparison {type(op).__name__} is not allowed")
                left, right = self.value(left_node), self.value(right_node)
                per = per & _CMPOPS[type(op)](left, right)
                verdict = _pooled_compare(op, left - right)
                verdicts.append(verdict)
                self.comparisons.append(self._describe(op, left_node, right_node, left, right, verdict))
                left_node = right_node
            pooled = False if False in verdicts else (None if None in verdicts else True)
            return pooled, per
        raise CheckError(f"check {self.src!r}: {ast.unparse(node)!r} is not a comparison or a combination of them")

    def _describe(self, op: ast.cmpop, left_node: ast.AST, right_node: ast.AST, left: np.ndarray,
                  right: np.ndarray, verdict: bool | None) -> Comparison:
        if np.ptp(right) == 0 and not (_literal(left_node) and not _literal(right_node)):
            mean, low, high = interval(left)
            return Comparison(ast.unparse(left_node), _SYMBOLS[type(op)], f"{right[0]:g}", mean, low, high, verdict)
        if np.ptp(left) == 0:
            mean, low, high = interval(right)
            flipped = {"<": ">", "≤": "≥", ">": "<", "≥": "≤"}.get(_SYMBOLS[type(op)], _SYMBOLS[type(op)])
            return Comparison(ast.unparse(right_node), flipped, f"{left[0]:g}", mean, low, high, verdict)
        mean, low, high = interval(left - right)
        text = f"{ast.unparse(left_node)} − ({ast.unparse(right_node)})"
        return Comparison(text, _SYMBOLS[type(op)], "0", mean, low, high, verdict)


def score(expression: str, metrics: Mapping[str, float]) -> Scored:
    """Score ``expression`` over the replicates its metrics carry (one replicate when they are all scalars)."""
    try:
        tree = ast.parse(expression, mode="eval")
    except SyntaxError as err:
        raise CheckError(f"check {expression!r} is not a valid expression: {err.msg}") from None
    scorer = _Scorer(expression, metrics)
    scorer.n = scorer.size(tree)
    pooled, per = scorer.truth(tree.body)
    return Scored(scorer.n, pooled, tuple(bool(v) for v in per), tuple(scorer.comparisons))
