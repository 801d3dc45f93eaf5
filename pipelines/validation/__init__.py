"""Validate a pipeline definition before it is upserted or run: API shapes, the graph, service limits, security.

``validate(definition)`` returns every problem found (never stops at the first), each naming the
step and the field, as SageMaker would report it only at CreatePipeline or minutes into a run:

    Step 'Train': Arguments.ResourceConfig.InstanceCount: must be >= 1 (got 0)

The API shapes come from botocore's SageMaker service model (never a hand-copied list); expressions
(``Get``, ``Std:Join``, ``Std:JsonGet``) stand for values of the type they produce.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

from pipelines.validation.problems import Problem
from pipelines.validation.security import SecurityRules

__all__ = ["Problem", "SecurityRules", "validate", "problems_json", "require_valid"]


def validate(definition: Any, security: SecurityRules | None = None, text: str | None = None) -> list[Problem]:
    """Every problem of ``definition`` (a parsed definition JSON); ``text`` is its JSON as uploaded, for the
    size limit; ``security`` turns the security rules on."""
    from pipelines.validation import graph_checks, limits, security as security_checks, step_arguments
    from pipelines.validation.references import References

    if not isinstance(definition, dict) or not isinstance(definition.get("Steps"), list):
        return [Problem(None, "Steps", "a definition is a JSON object with a list of Steps", "graph")]
    problems = limits.check(definition, text if text is not None else json.dumps(definition))
    problems += graph_checks.check(definition)
    references = References(definition)
    problems += step_arguments.check(definition, references)
    if security is not None:
        problems += security_checks.check(definition, security)
    return problems


def problems_json(problems: list[Problem]) -> str:
    """The problems as a JSON list of {step, field, message, rule}, for CI."""
    return json.dumps([asdict(p) for p in problems], indent=2)


def require_valid(definition: Any, security: SecurityRules | None, text: str | None = None) -> None:
    """DefinitionInvalidError listing every problem, if there is one."""
    from pipelines.errors import DefinitionInvalidError

    problems = validate(definition, security, text)
    if problems:
        listing = "\n".join(f"  {p}" for p in problems)
        # SageMaker enforces its limits itself: skipping this check would not help
        skip = ("; --no-validate skips this check" if any(p.rule != "limit" for p in problems)
                else "; SageMaker refuses these too")
        raise DefinitionInvalidError(f"the definition has {len(problems)} problem{'s' if len(problems) > 1 else ''} "
                                     f"(nothing was uploaded or run{skip}):\n{listing}")
