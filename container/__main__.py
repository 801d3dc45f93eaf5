"""``python -m container train|serve``: what the image runs (SageMaker starts it as ``IMAGE train`` or
``IMAGE serve``)."""

from __future__ import annotations

import sys


def main(argv: list[str]) -> int:
    if argv[:1] == ["train"]:
        from container.train import main as train

        return train()
    if argv[:1] == ["serve"]:
        from container.serve import main as serve

        return serve()
    print(f"usage: python -m container train|serve (got {' '.join(argv) or 'nothing'})", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
