"""The image's hyperparameters, parsed strictly: SageMaker passes strings; an unknown name, a value of the
wrong type or out of range is an error naming the hyperparameter."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable

CALIBRATIONS = ("isotonic", "platt", "none")
_INT = re.compile(r"^[+-]?\d+$")
_FLOAT = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")


class HyperparameterError(ValueError):
    """A hyperparameter the image refuses."""


INT32_MAX = 2 ** 31 - 1  # XGBoost keeps rounds and depths in 32 bits
INT64_MAX = 2 ** 63 - 1  # and its seed in 64


def _integer(low: int, high: int = INT32_MAX) -> Callable[[str], int]:
    def parse(raw: str) -> int:
        if not _INT.fullmatch(raw):
            raise ValueError("is not an integer")
        if not low <= int(raw) <= high:
            raise ValueError(f"must be from {low} to {high}")
        return int(raw)
    return parse


def _number(low: float, high: float, low_open: bool = False) -> Callable[[str], float]:
    def parse(raw: str) -> float:
        if not _FLOAT.fullmatch(raw):
            raise ValueError("is not a number")
        value = float(raw)
        if value < low or value > high or (low_open and value == low):
            raise ValueError(f"must be in {'(' if low_open else '['}{low:g}, {high:g}]")
        return value
    return parse


def _calibration(raw: str) -> str:
    if raw not in CALIBRATIONS:
        raise ValueError(f"must be one of {', '.join(CALIBRATIONS)}")
    return raw


def _constraints(raw: str) -> tuple[int, ...]:
    """``(1,0,-1)``: +1 increasing, -1 decreasing, 0 free, one per feature in column order."""
    text = raw.strip()
    if not (text.startswith("(") and text.endswith(")")):
        raise ValueError("must look like (1,0,-1): one of -1, 0, 1 per feature")
    items = [item.strip() for item in text[1:-1].split(",") if item.strip()]
    if not items or any(item not in ("-1", "0", "1") for item in items):
        raise ValueError("must look like (1,0,-1): one of -1, 0, 1 per feature")
    return tuple(int(item) for item in items)


_PARSERS: dict[str, Callable[[str], Any]] = {
    "num_round": _integer(1), "max_depth": _integer(1), "eta": _number(0, 1, low_open=True),
    "subsample": _number(0, 1, low_open=True), "min_child_weight": _number(0, 1e9),
    "early_stopping_rounds": _integer(1), "seed": _integer(0, INT64_MAX), "calibration": _calibration,
    "monotone_constraints": _constraints,
}


@dataclass(frozen=True)
class Hyperparameters:
    """The parsed hyperparameters, with the image's defaults."""

    num_round: int
    max_depth: int = 6
    eta: float = 0.3
    subsample: float = 1.0
    min_child_weight: float = 1.0
    early_stopping_rounds: int | None = None
    seed: int = 0
    calibration: str = "isotonic"
    monotone_constraints: tuple[int, ...] = ()


def parse(raw: dict[str, Any]) -> Hyperparameters:
    """Hyperparameters from ``hyperparameters.json``; HyperparameterError for the first problem."""
    values: dict[str, Any] = {}
    for name, value in raw.items():
        if name not in _PARSERS:
            raise HyperparameterError(f"unknown hyperparameter {name!r}; this image accepts {', '.join(sorted(_PARSERS))}")
        if not isinstance(value, str):
            raise HyperparameterError(f"hyperparameter {name}: {value!r} must be a string (SageMaker passes strings)")
        try:
            values[name] = _PARSERS[name](value.strip())
        except ValueError as exc:
            raise HyperparameterError(f"hyperparameter {name}: {value!r} {exc}") from None
    if "num_round" not in values:
        raise HyperparameterError("hyperparameter num_round is required")
    return Hyperparameters(**values)
