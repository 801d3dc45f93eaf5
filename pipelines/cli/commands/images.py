"""``python -m pipelines.run images``: the environments of SageMaker framework images that local jobs run on.

    python -m pipelines.run images list
    python -m pipelines.run images show IMAGE
    python -m pipelines.run images prepare [IMAGE ...] [--definition FILE] [--pipeline NAME [--store DIR]]

``list`` shows every image of the table and what its environment holds where built; ``show`` one image's
libraries, each as the image has it and as its environment here has it, with why they differ, then every other
package installed. ``prepare`` builds (once) the environment of each IMAGE (``sagemaker-xgboost:1.7-1``, or an image URI) and of
the images a definition's steps use: a file's, or a pipeline's by name (ours, built as a run builds it, or the
definition of the newest execution in the store of a pipeline run there); with none of these, those of our
lead-scoring pipeline. Run it where the package index is reachable, then local runs work offline. Exit codes:
0 done; 1 an environment that could not be built; 2 a usage or configuration error (an unknown pipeline name
among them: the line lists the known ones).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any, Sequence

from pipelines.catalog import PIPELINES, pipeline_module
from pipelines.cli import options
from pipelines.cli.parsing import CommandParser, run_parsed
from pipelines.cli.tables import print_rows, print_table
from pipelines.config import local_config
from pipelines.errors import ConfigError, NotFoundError


def parser() -> argparse.ArgumentParser:
    """The ``images`` argument parser."""
    p = CommandParser(prog="python -m pipelines.run images",
                                description="List or build the environments of SageMaker framework images.")
    commands = p.add_subparsers(dest="command", required=True, metavar="{list,show,prepare}")
    listing = commands.add_parser("list", help="every image of the table, and which environments are built here")
    show = commands.add_parser("show", help="one image's libraries: in the image, here, and why they differ")
    show.add_argument("image", metavar="IMAGE", help="REPOSITORY:VERSION (sagemaker-scikit-learn:1.2-1) or an image URI")
    prepare = commands.add_parser("prepare", help="build the environments of IMAGE ... (once; later calls reuse them)")
    prepare.add_argument("images", nargs="*", metavar="IMAGE",
                         help="REPOSITORY:VERSION (sagemaker-scikit-learn:1.2-1) or an image URI")
    prepare.add_argument("--definition", type=Path, metavar="FILE", help="the images this definition's steps use")
    prepare.add_argument("--pipeline", metavar="NAME", help=f"the images this pipeline's steps use: one of ours "
                         f"({', '.join(PIPELINES)}) or one with executions in --store")
    options.add_store_argument(prepare, "the local store whose executions name pipelines (--pipeline)")
    listing.add_argument("--json", action="store_true", help="print JSON instead of a table")
    for command in (listing, show, prepare):
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
    if args.command == "show":
        print_image(environments, args.image)
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
    definitions = []
    if args.definition is not None:
        from pipelines.local.target import read_definition_file

        definitions.append((str(args.definition), read_definition_file(args.definition)[1]))
    if args.pipeline is not None:
        definitions.append((f"pipeline {args.pipeline}", pipeline_definition(args.pipeline, config, args.store)))
    for label, document in definitions:
        used = image_libraries.images_in(document)
        if not used:
            raise ConfigError(f"{label} uses no image of the table; name one: "
                              f"{', '.join(i.name for i in image_libraries.IMAGES.values())}")
        found += [image for image in used if image not in found]
    if not found:
        found = image_libraries.images_in(pipeline_definition(PIPELINES[0], config, args.store))
    return found


def pipeline_definition(name: str, config: Any, store: Path) -> dict[str, Any]:
    """The definition of the pipeline ``name``: ours built as a run builds it, else the newest one an execution of
    that pipeline kept in ``store``; a ConfigError listing the known names if there is none."""
    if name in PIPELINES:
        return pipeline_module(name).build(local_config(config)).definition_dict
    from pipelines.local import executions

    try:
        return executions.latest_definition(store.resolve(), name)[0]
    except NotFoundError:
        stored = sorted({record.pipeline_name for record in executions.all_records(store.resolve())})
        raise ConfigError(f"no pipeline {name!r}: ours are {', '.join(PIPELINES)}; "
                          + (f"the store {store} has executions of {', '.join(stored)}" if stored
                             else f"the store {store} has no executions")) from None


def listing(environments: Any) -> list[dict[str, Any]]:
    """A row per SKLearn and XGBoost image, and per PyTorch or TensorFlow image that is built: its Python, and its
    environment here (libraries, size, folder) if built."""
    from pipelines.local import image_libraries

    rows = []
    for image in [*image_libraries.IMAGES.values(), *image_libraries.framework_images().values()]:
        built = environments.cached_image(image)
        if built is None and image.repository in (image_libraries.PYTORCH, image_libraries.TENSORFLOW):
            continue
        manifest = built.manifest if built else {}
        rows.append({"image": image.name, "python": image.python, "built": built is not None,
                     "libraries": dict(manifest.get("installed", {})), "world": dict(manifest.get("world", {})),
                     "packages": dict(manifest.get("packages", {})),
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
              ", ".join(f"{n} {v}" for n, v in row["libraries"].items())
              + (f" and {len(row['packages']) - len(row['libraries'])} more packages" if row["packages"] else "")]
             for row in rows]
    print_table(f"Image environments in {environments.cache}", ["Image", "Python", "Built", "Libraries"], cells,
                wide="Libraries")
    frameworks = image_libraries.framework_images()
    for repository in (image_libraries.PYTORCH, image_libraries.TENSORFLOW):
        tags = [tag for name, tag in frameworks if name == repository]
        if tags:
            print(f"{repository}: {len(tags)} images, {tags[0]} to {tags[-1]} (prepare one as REPOSITORY:VERSION-pyXY)")
    print("`python -m pipelines.run images show IMAGE` lists what one holds, and how it differs from the image")


def print_image(environments: Any, name: str) -> None:
    """One image: each library of its table, as the image has it and as its environment here has it (or "not
    built"), with why they differ; then every other package the environment holds."""
    from pipelines.local import image_libraries

    try:
        image = image_libraries.named(name)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    built = environments.cached_image(image)
    manifest = built.manifest if built else {}
    here = {**manifest.get("world", {}), **manifest.get("installed", {})}
    why = {difference[0]: difference[3] for difference in manifest.get("differences", [])}
    cells = [[library, version, here.get(library, "not built") if built else "not built", why.get(library, "")]
             for library, version in [*image.pins, *((w.name, w.version) for w in image.world)]]
    python = manifest.get("python", "not built")
    print_table(f"{image.name} (Python {image.python}; here {python}); read from {image.source}",
                ["Library", "In the image", "Here", "Why they differ"], cells, wide="Why they differ", key="Library")
    others = {n: v for n, v in manifest.get("packages", {}).items() if n not in here}
    if others:
        print(f"Also installed (dependencies): {', '.join(f'{n} {v}' for n, v in sorted(others.items()))}")
    print(f"in {built.root}" if built else f"not built here: `python -m pipelines.run images prepare {image.name}`")


def _megabytes(folder: Path) -> int:
    total = sum(path.stat().st_size for path in folder.rglob("*") if path.is_file() and not path.is_symlink())
    return round(total / 1e6)
