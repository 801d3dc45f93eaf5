"""What a credential looks like, so that none gets into a definition, a record, the registry, a log or a summary.

A value is refused when it holds, anywhere (after ``=``, ``_``, ``/`` or inside a longer string),
an AWS access key id, something shaped like an AWS secret access key (40 characters of base64
with both cases and high variety, so that git SHAs and S3 paths are not mistaken for one) or a
PEM private key (a PEM public key or certificate is not a secret); a setting is refused when its name
says it is a credential.
"""

from __future__ import annotations

import re
from typing import Any, Iterator, Mapping

from pipelines.errors import CredentialInConfigError

SECRET_KEY_NAMES = re.compile(r"(access_key|secret|session_token|password|passwd|credential|private_key)", re.I)
_ACCESS_KEY_ID = re.compile(r"(?<![A-Z0-9])(?:AKIA|ASIA)[A-Z0-9]{16}(?![A-Z0-9])")
_PRIVATE_KEY = re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----")
# what may be published: a public key (SDK v3's @step puts one in REMOTE_FUNCTION_SECRET_KEY, for the job to
# check the pickled function's signature) or a certificate; its base64 body is no secret access key
_PUBLIC_PEM = re.compile(r"-----BEGIN (?P<kind>(?:[A-Z]+ )?PUBLIC KEY|CERTIFICATE)-----[A-Za-z0-9+/=\s]*"
                         r"-----END (?P=kind)-----")
_BASE64_RUN = re.compile(r"[A-Za-z0-9+/]{40,}")
SECRET_LENGTH = 40
MIN_DISTINCT = 24  # a random 40-character base64 string has fewer distinct characters about once in 700


def _looks_random(window: str) -> bool:
    return (len(set(window)) >= MIN_DISTINCT and any(c.isupper() for c in window)
            and any(c.islower() for c in window))


def _secret_key_windows(text: str) -> Iterator[str]:
    """40-character windows of base64 runs that start or end at a run's edge or at a '/'."""
    for match in _BASE64_RUN.finditer(text):
        run = match.group()
        for start in range(len(run) - SECRET_LENGTH + 1):
            end = start + SECRET_LENGTH
            if start == 0 or run[start - 1] == "/" or end == len(run) or run[end] == "/":
                yield run[start:end]


def credential_kind(value: Any) -> str | None:
    """What kind of credential ``value`` holds somewhere in it ("an AWS access key id", ...), or None."""
    if not isinstance(value, str):
        return None
    if _ACCESS_KEY_ID.search(value):
        return "an AWS access key id"
    if _PRIVATE_KEY.search(value):
        return "a private key"
    if any(_looks_random(window) for window in _secret_key_windows(_PUBLIC_PEM.sub(" ", value))):
        return "an AWS secret access key"
    return None


def flatten(values: Any, path: str = "") -> list[tuple[str, Any]]:
    """(dotted path, leaf value) pairs of nested mappings and lists."""
    if isinstance(values, Mapping):
        children = [(f"{path}.{k}" if path else str(k), v) for k, v in values.items()]
    elif isinstance(values, (list, tuple)):
        children = [(f"{path}[{i}]", v) for i, v in enumerate(values)]
    else:
        return [(path, values)]
    return [pair for child_path, child in children for pair in flatten(child, child_path)]


def refuse_credentials(values: Any, source: str, check_names: bool = True) -> None:
    """CredentialInConfigError if a key (with ``check_names``) or any value in ``values`` looks like a secret."""
    for key, value in flatten(values):
        if check_names and SECRET_KEY_NAMES.search(key):
            raise CredentialInConfigError(
                f"{source}: '{key}' looks like a credential; credentials never go in configuration. "
                "Use an IAM role (--role-arn) and the standard AWS credential chain instead"
            )
        kind = credential_kind(value)
        if kind:
            raise CredentialInConfigError(
                f"{source}: the value of '{key}' holds what looks like {kind}; credentials never go in "
                "configuration, parameters or definitions: use an IAM role and the standard AWS credential chain"
            )


def redact(text: str, known: tuple[str, ...] = ()) -> str:
    """``text`` with every credential-shaped substring replaced by ``[REDACTED]`` (for logs). Occurrences of
    the ``known`` strings (paths this program made, say) are left as they are."""
    for safe in known:
        if safe and safe in text:
            return safe.join(redact(piece, known) for piece in text.split(safe))
    text = _ACCESS_KEY_ID.sub("[REDACTED]", text)
    if len(text) >= SECRET_LENGTH:
        for window in set(_secret_key_windows(text)):
            if _looks_random(window):
                text = text.replace(window, "[REDACTED]")
    return text
