"""Pure evaluation of ConditionStep conditions, as the SDK emits them."""

from __future__ import annotations

import operator
from typing import Any, Callable, Mapping

from pipelines.errors import ExpressionError
from pipelines.local.expressions import Context, resolve

_COMPARISONS: dict[str, Callable[[Any, Any], bool]] = {
    "Equals": operator.eq,
    "GreaterThan": operator.gt,
    "GreaterThanOrEqualTo": operator.ge,
    "LessThan": operator.lt,
    "LessThanOrEqualTo": operator.le,
}
SUPPORTED = (*_COMPARISONS, "In", "Not", "Or")


def _comparable(left: Any, right: Any, kind: str) -> tuple[Any, Any]:
    """Numbers compare as numbers (numeric strings included); otherwise both must be the same type."""
    def number(v: Any) -> float | None:
        if isinstance(v, bool):
            return None
        if isinstance(v, (int, float)):
            return float(v)
        try:
            return float(v)
        except (TypeError, ValueError):
            return None

    if isinstance(left, (int, float)) and not isinstance(left, bool) or isinstance(right, (int, float)) and not isinstance(right, bool):
        a, b = number(left), number(right)
        if a is None or b is None:
            raise ExpressionError(f"condition {kind}: cannot compare {left!r} with {right!r}")
        return a, b
    if type(left) is not type(right) and kind != "Equals":
        raise ExpressionError(f"condition {kind}: cannot compare {left!r} with {right!r}")
    return left, right


def evaluate(condition: Mapping[str, Any], ctx: Context) -> bool:
    """Truth of one condition."""
    kind = condition.get("Type")
    if kind in _COMPARISONS:
        left, right = _comparable(resolve(condition["LeftValue"], ctx), resolve(condition["RightValue"], ctx), kind)
        return bool(_COMPARISONS[kind](left, right))
    if kind == "In":
        query = resolve(condition["QueryValue"], ctx)
        return any(_comparable(query, resolve(v, ctx), "In")[0] == _comparable(query, resolve(v, ctx), "In")[1]
                   for v in condition["Values"])
    if kind == "Not":
        return not evaluate(condition["Expression"], ctx)
    if kind == "Or":
        return any(evaluate(c, ctx) for c in condition["Conditions"])
    raise ExpressionError(f"unsupported condition type {kind!r}; supported: {', '.join(SUPPORTED)}")


def evaluate_all(conditions: list[Mapping[str, Any]], ctx: Context) -> bool:
    """A ConditionStep is true when all its conditions are (an implicit And)."""
    return all(evaluate(c, ctx) for c in conditions)
