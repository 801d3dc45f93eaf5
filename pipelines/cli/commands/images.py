"""``python -m pipelines.run images``: the environments of SageMaker framework images that local jobs run on.

    python -m pipelines.run images list
    python -m pipelines.run images prepare [IMAGE ...] [--definition FILE]

``prepare`` builds (once) the environment of each IMAGE (``sagemaker-xgboost:1.7-1``, or an image URI) and of
the images a definition file's steps use; with neither, those of our lead-scoring pipeline. Run it where
the package index is reachable, then local runs work offline. Exit codes: 0 done; 1 an environment that
could not be built; 2 a usage or configuration error.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any, Sequence

from pipelines.cli import options
from pipelines.cli.parsing import CommandParser, run_parsed
from pipelines.cli.tables import print_rows, print_table
from pipelines.config import local_config
from pipelines.errors import ConfigError


def parser() -> argparse.ArgumentParser:
    """The ``images`` argument parser."""
    p = CommandParser(prog="python -m pipelines.run images",
                                description="List or build the environments of SageMaker framework images.")
    commands = p.add_subparsers(dest="command", required=True, metavar="{list,prepare}")
    listing = commands.add_parser("list", help="every image of the table, and which environments are built here")
    prepare = commands.add_parser("prepare", help="build the environments of IMAGE ... (once; later calls reuse them)")
    prepare.add_argument("images", nargs="*", metavar="IMAGE",
                         help="REPOSITORY:VERSION (sagemaker-scikit-learn:1.2-1) or an image URI")
    prepare.add_argument("--definition", type=Path, metavar="FILE", help="the images this definition's steps use")
    listing.add_argument("--json", action="store_true", help="print JSON instead of a table")
    for command in (listing, prepare):
        options.add_settings(command, ("config", "region", "environments_cache"))
    return p


def main(argv: Sequence[str]) -> int:
    """List or prepare image environments."""
    return run_parsed(parser(), argv, run)


def run(args: argparse.Namespace) -> int:
    from pipelines.local.environments import Environments
    config = options.config_from_args(args, os.environ)
    cache = config.environments_cache
    environments = Environments(Path(cache).expanduser().resolve() if cache else None)
    if args.command == "list":
        print_listing(environments, args.json)
        return 0
    for image in wanted(args, config):
        environment = environments.prepare(image, lambda line: print(f"  {line}", flush=True))
        print(f"{image.name}: ready in {environment.root}")
    return 0


def wanted(args: argparse.Namespace, config: Any) -> list[Any]:
    """The images to prepare: those named and those --definition's steps use; with neither, our pipeline's."""
    from pipelines.local import image_libraries

    try:
        found = [image_libraries.named(text) for text in args.images]
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    if args.definition is not None:
        from pipelines.local.target import read_definition_file

        used = image_libraries.images_in(read_definition_file(args.definition)[1])
        if not used:
            raise ConfigError(f"{args.definition} uses no image of the table; name one: "
                              f"{', '.join(i.name for i in image_libraries.IMAGES.values())}")
        found += [image for image in used if image not in found]
    if not found:
        from pipelines.lead_scoring import build

        found = image_libraries.images_in(build(local_config(config)).definition_dict)
    return found


def listing(environments: Any) -> list[dict[str, Any]]:
    """A row per SKLearn and XGBoost image, and per PyTorch or TensorFlow image that is built: its Python, and its
    environment here (libraries, size, folder) if built."""
    from pipelines.local import image_libraries

    rows = []
    for image in [*image_libraries.IMAGES.values(), *image_libraries.framework_images().values()]:
        built = environments.cached_image(image)
        if built is None and image.repository in (image_libraries.PYTORCH, image_libraries.TENSORFLOW):
            continue
        rows.append({"image": image.name, "python": image.python, "built": built is not None,
                     "libraries": dict(built.manifest["installed"]) if built else {},
                     "megabytes": _megabytes(built.root) if built else None,
                     "folder": str(built.root) if built else None})
    return rows


def print_listing(environments: Any, as_json: bool) -> None:
    """The rows of ``listing``, then how many PyTorch and TensorFlow images there are to prepare by name."""
    from pipelines.local import image_libraries

    rows = listing(environments)
    if as_json:
        print_rows(rows)
        return
    cells = [[row["image"], row["python"], f"{row['megabytes']} MB" if row["built"] else "not built",
              ", ".join(f"{n} {v}" for n, v in row["libraries"].items())] for row in rows]
    print_table(f"Image environments in {environments.cache}", ["Image", "Python", "Built", "Libraries"], cells,
                wide="Libraries")
    frameworks = image_libraries.framework_images()
    for repository in (image_libraries.PYTORCH, image_libraries.TENSORFLOW):
        tags = [tag for name, tag in frameworks if name == repository]
        if tags:
            print(f"{repository}: {len(tags)} images, {tags[0]} to {tags[-1]} (prepare one as REPOSITORY:VERSION-pyXY)")


def _megabytes(folder: Path) -> int:
    total = sum(path.stat().st_size for path in folder.rglob("*") if path.is_file() and not path.is_symlink())
    return round(total / 1e6)
