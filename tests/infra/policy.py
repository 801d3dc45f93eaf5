"""A small evaluator of IAM policies, enough to say whether the template lets a principal make a call.

Same-account rules: an explicit Deny in any applicable policy wins; otherwise the call is allowed when the caller's
identity policies or the resource's policy (the bucket policy for S3, naming the caller) allow it. A KMS key's
policy is the only gate to the key (our key policy has no statement handing control to IAM policies), so KMS calls
are allowed by the key policy alone. Actions match case-insensitively with ``*`` and ``?``; resources and
condition values case-sensitively. The condition operators are those the template uses; any other one fails loudly,
so that a new condition is taught here before a test relies on it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping


@dataclass(frozen=True)
class Request:
    """One authorization request: who calls, which action on which resource, and the request's context keys."""

    principal: str
    action: str
    resource: str
    context: Mapping[str, Any] = field(default_factory=dict)
    why: str = ""  # what made the call, for the failure message

    def __str__(self) -> str:
        context = f" {dict(self.context)}" if self.context else ""
        return f"{self.principal} {self.action} on {self.resource}{context} ({self.why})"


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _match(pattern: str, value: str, case: bool = True) -> bool:
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, value, 0 if case else re.IGNORECASE) is not None


def _principal_matches(statement: Mapping[str, Any], principal: str) -> bool:
    if "Principal" not in statement:
        return True  # an identity policy's statement: its principal is whoever holds it
    named = statement["Principal"]
    if named == "*":
        return True
    return any(p == "*" or p == principal for p in _listed(named.get("AWS", [])))


def _as_text(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def _condition_holds(operator: str, key: str, expected: Any, context: Mapping[str, Any]) -> bool:
    base, if_exists = (operator[:-8], True) if operator.endswith("IfExists") else (operator, False)
    present = key in context
    if base == "Null":
        return (not present) == (_as_text(expected) == "true")
    if not present:
        return if_exists or base.startswith("StringNot")
    actual = _as_text(context[key])
    expected_values = [_as_text(v) for v in _listed(expected)]
    checks = {
        "StringEquals": lambda: actual in expected_values,
        "StringNotEquals": lambda: actual not in expected_values,
        "StringLike": lambda: any(_match(v, actual) for v in expected_values),
        "StringNotLike": lambda: not any(_match(v, actual) for v in expected_values),
        "Bool": lambda: actual in expected_values,
        "ArnLike": lambda: any(_match(v, actual) for v in expected_values),
        "ArnEquals": lambda: actual in expected_values,
    }
    if base not in checks:
        raise AssertionError(f"the evaluator does not know the condition operator {operator}: teach it first")
    return checks[base]()


def statement_applies(statement: Mapping[str, Any], request: Request) -> bool:
    """True if ``statement`` covers the request: principal, action, resource and every condition."""
    if not _principal_matches(statement, request.principal):
        return False
    if "NotAction" in statement or "NotResource" in statement or "NotPrincipal" in statement:
        raise AssertionError("the evaluator does not know NotAction, NotResource or NotPrincipal: teach it first")
    if not any(_match(a, request.action, case=False) for a in _listed(statement["Action"])):
        return False
    if not any(_match(r, request.resource) for r in _listed(statement["Resource"])):
        return False
    return all(_condition_holds(operator, key, expected, request.context)
               for operator, keys in statement.get("Condition", {}).items() for key, expected in keys.items())


def _statements(policies: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    return [s for policy in policies for s in _listed(policy["Statement"])]


@dataclass
class Account:
    """The policies of the template, rendered: what each principal holds, and the resources' own policies."""

    identity: Mapping[str, list[Mapping[str, Any]]]  # principal ARN -> its identity policies
    bucket_policy: Mapping[str, Any]
    bucket_arn: str
    key_policy: Mapping[str, Any]
    key_arn: str

    def decide(self, request: Request) -> str:
        """"allowed", "denied explicitly" or "not allowed" (the implicit deny)."""
        if request.action.lower().startswith("kms:") and request.resource == self.key_arn:
            policies = [self.key_policy]
        else:
            in_bucket = request.resource == self.bucket_arn or request.resource.startswith(self.bucket_arn + "/")
            policies = [*self.identity.get(request.principal, []), *([self.bucket_policy] if in_bucket else [])]
        applicable = [s for s in _statements(policies) if statement_applies(s, request)]
        if any(s["Effect"] == "Deny" for s in applicable):
            return "denied explicitly"
        return "allowed" if any(s["Effect"] == "Allow" for s in applicable) else "not allowed"


def refused(account: Account, requests: Iterable[Request]) -> list[str]:
    """One line per request the account's policies do not allow, with the verdict."""
    return [f"{verdict}: {request}" for request in requests if (verdict := account.decide(request)) != "allowed"]

