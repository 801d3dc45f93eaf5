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

from pipelines.errors import ConfigError, exit_code_of


def parser() -> argparse.ArgumentParser:
    """The ``images`` argument parser."""
    from pipelines.run import CONFIG_GROUP, add_local_config_arguments

    p = argparse.ArgumentParser(prog="python -m pipelines.run images",
                                description="List or build the environments of SageMaker framework images.")
    commands = p.add_subparsers(dest="command", required=True, metavar="{list,prepare}")
    listing = commands.add_parser("list", help="every image of the table, and which environments are built here")
    prepare = commands.add_parser("prepare", help="build the environments of IMAGE ... (once; later calls reuse them)")
    prepare.add_argument("images", nargs="*", metavar="IMAGE",
                         help="REPOSITORY:VERSION (sagemaker-scikit-learn:1.2-1) or an image URI")
    prepare.add_argument("--definition", type=Path, metavar="FILE", help="the images this definition's steps use")
    for command in (listing, prepare):
        add_local_config_arguments(command.add_argument_group(CONFIG_GROUP))
        command.set_defaults(kwargs=None)
    return p


def main(argv: Sequence[str]) -> int:
    """List or prepare image environments."""
    args = parser().parse_args(argv)
    return exit_code_of(lambda: run(args))


def run(args: argparse.Namespace) -> int:
    from pipelines.local.environments import Environments
    from pipelines.run import config_from_args

    config = config_from_args(args, os.environ)
    cache = config.environments_cache
    environments = Environments(Path(cache).expanduser().resolve() if cache else None)
    if args.command == "list":
        print(listing(environments))
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
        from pipelines.run import local_config

        found = image_libraries.images_in(build(local_config(config)).definition_dict)
    return found


def listing(environments: Any) -> str:
    """One line per SKLearn and XGBoost image, and per PyTorch or TensorFlow image that is built: its Python,
    and its environment here (folder, size) if built; then how many PyTorch and TensorFlow images there are."""
    from pipelines.local import image_libraries

    lines = [f"Image environments in {environments.cache}:"]
    frameworks = image_libraries.framework_images()
    for image in [*image_libraries.IMAGES.values(), *frameworks.values()]:
        built = environments.cached_image(image)
        if built is None:
            if image.repository not in (image_libraries.PYTORCH, image_libraries.TENSORFLOW):
                lines.append(f"  {image.name:<36} Python {image.python:<8} not built")
            continue
        installed = ", ".join(f"{n} {v}" for n, v in built.manifest["installed"].items())
        lines.append(f"  {image.name:<36} Python {image.python:<8} built: {installed} "
                     f"({_megabytes(built.root)} MB, {built.root})")
    for repository in (image_libraries.PYTORCH, image_libraries.TENSORFLOW):
        tags = [tag for name, tag in frameworks if name == repository]
        if tags:
            lines.append(f"  {repository}: {len(tags)} images, {tags[0]} to {tags[-1]} (REPOSITORY:VERSION-pyXY)")
    return "\n".join(lines)


def _megabytes(folder: Path) -> int:
    total = sum(path.stat().st_size for path in folder.rglob("*") if path.is_file() and not path.is_symlink())
    return round(total / 1e6)
