"""Step caching as SageMaker Pipelines defines it.

A step with ``CacheConfig.Enabled`` reuses the latest successful run of the same step
(same pipeline, step name and type) whose cache key matches, if that run ended within
``ExpireAfter``. The key covers the attributes SageMaker documents per step type
("Default cache key attributes by pipeline step type"), with execution variables left
unresolved, so per-run values such as output prefixes that contain the execution id do
not defeat it. As on SageMaker, a changed object under an unchanged S3 URI does not
invalidate the cache.
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import datetime, timedelta
from typing import Any, Iterable

from pipelines.errors import DefinitionError

KEY_ATTRIBUTES: dict[str, tuple[str, ...]] = {
    "Processing": ("AppSpecification", "Environment", "ProcessingInputs"),
    "Training": ("AlgorithmSpecification", "CheckpointConfig", "DebugHookConfig", "DebugRuleConfigurations",
                 "Environment", "HyperParameters", "InputDataConfig"),
    "Transform": ("DataProcessing", "Environment", "ModelName", "TransformInput"),
}

_DURATION = re.compile(r"^P?(?:(\d+)Y)?(?:(\d+)M)?(?:(\d+)W)?(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?$")


def parse_duration(text: str) -> timedelta:
    """An ISO 8601 duration as CacheConfig.ExpireAfter accepts it: ``P30D``, ``30d``, ``T16m``, ``30dT5h``, ``PT1H``."""
    match = _DURATION.fullmatch(text.strip().upper()) if isinstance(text, str) else None
    if not match or not any(match.groups()) or text.strip().upper().endswith("T"):
        raise DefinitionError(f"{text!r} is not an ISO 8601 duration (e.g. P30D, PT1H, 30d, T16m)",
                              field="CacheConfig.ExpireAfter")
    years, months, weeks, days, hours, minutes, seconds = (int(g or 0) for g in match.groups())
    return timedelta(days=365 * years + 30 * months + 7 * weeks + days, hours=hours, minutes=minutes, seconds=seconds)


def is_cacheable(step: dict[str, Any]) -> bool:
    """True if the step type can be cached and its CacheConfig turns caching on."""
    return step.get("Type") in KEY_ATTRIBUTES and bool(step.get("CacheConfig", {}).get("Enabled"))


def expire_after(step: dict[str, Any]) -> timedelta | None:
    """The step's cache lifetime (None: no limit)."""
    text = step.get("CacheConfig", {}).get("ExpireAfter")
    return parse_duration(text) if text else None


def cache_key(step_type: str, arguments: dict[str, Any]) -> str:
    """A digest of the attributes that decide a cache hit for this step type."""
    attributes = {name: arguments.get(name) for name in KEY_ATTRIBUTES.get(step_type, ())}
    return hashlib.sha256(json.dumps([step_type, attributes], sort_keys=True, default=str).encode()).hexdigest()


def latest_hit(candidates: Iterable[tuple[str, dict[str, Any]]], key: str, lifetime: timedelta | None,
               now: datetime) -> tuple[str, dict[str, Any]] | None:
    """The newest (execution id, step record) that succeeded with ``key`` and has not expired."""
    best: tuple[datetime, str, dict[str, Any]] | None = None
    for execution_id, step in candidates:
        if step.get("status") != "Succeeded" or step.get("cache_key") != key or not step.get("end_time"):
            continue
        ended = datetime.fromisoformat(step["end_time"])
        if lifetime is not None and now - ended > lifetime:
            continue
        if best is None or ended > best[0]:
            best = (ended, execution_id, step)
    return (best[1], best[2]) if best else None


def output_uris(step_type: str, properties: dict[str, Any]) -> list[str]:
    """The S3 locations a cached step's outputs live at (a hit is only used while they exist)."""
    if step_type == "Processing":
        return [o["S3Output"]["S3Uri"] for o in properties.get("ProcessingOutputConfig", {}).get("Outputs", [])]
    if step_type == "Training":
        return [properties["ModelArtifacts"]["S3ModelArtifacts"]] if "ModelArtifacts" in properties else []
    if step_type == "Transform":
        return [properties["TransformOutput"]["S3OutputPath"]] if "TransformOutput" in properties else []
    return []
