"""Report a job's ``requirements.txt`` against this interpreter's installed distributions; install nothing.

A local run uses this machine's libraries. A job's requirements are listed with what is installed, so
a mismatch is visible in the job's log. Runs as a script too (it stands in for SDK v3's
``install_requirements.py``): ``python requirements_report.py requirements.txt``.
"""

from __future__ import annotations

import sys
from importlib import metadata
from pathlib import Path


def report(requirements: Path) -> list[str]:
    """One line per requirement: what is asked, what is installed here, and whether it satisfies."""
    try:
        from packaging.requirements import InvalidRequirement, Requirement
    except ImportError:  # packaging is not installed: list the lines as they are
        Requirement = None  # type: ignore[assignment,misc]
    lines = [f"{requirements.name} is not installed by the local engine; the job uses this interpreter's libraries:"]
    for raw in requirements.read_text(errors="replace").splitlines():
        text = raw.split("#", 1)[0].strip()
        if not text or text.startswith("-"):
            continue
        if Requirement is None:
            lines.append(f"  {text}")
            continue
        try:
            requirement = Requirement(text)
        except InvalidRequirement:
            lines.append(f"  {text}: not a requirement specifier")
            continue
        try:
            installed = metadata.version(requirement.name)
        except metadata.PackageNotFoundError:
            lines.append(f"  {text}: NOT INSTALLED here")
            continue
        fits = requirement.specifier.contains(installed, prereleases=True)
        lines.append(f"  {text}: {installed} installed{'' if fits else ' (DOES NOT SATISFY)'}")
    return lines


def main(argv: list[str]) -> int:
    path = Path(argv[0] if argv else "requirements.txt")
    if not path.is_file():
        print(f"{path}: no requirements file; nothing to report")
        return 0
    print("\n".join(report(path)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
