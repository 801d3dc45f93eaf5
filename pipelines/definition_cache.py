"""Built definitions kept between runs, so an unchanged pipeline is not rebuilt (nor the SDK imported) every time.

The key is a hash of everything the definition depends on: the pipeline's name, the resolved
configuration, the installed SDK distributions' versions, and the content of the pipeline modules,
``steps/`` and ``processing/`` (whose scripts the definition uploads). A cached entry that cannot be
read is rebuilt; ``--rebuild`` always rebuilds. They are kept in the user's cache, beside the job
environments (``default_folder``), so that every store (and every test of the suite) reuses them.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from importlib import metadata
from pathlib import Path
from typing import Callable

from pipelines.atomic import write_text
from pipelines.config import PipelineConfig
from pipelines.lead_scoring import BuiltPipeline
from steps.context import CodeUpload

PACKAGE_ROOT = Path(__file__).resolve().parent.parent
SOURCES = ("pipelines/lead_scoring.py", "pipelines/batch_scoring.py", "pipelines/parameters.py", "pipelines/sdk.py",
           "pipelines/config.py", "pipelines/sample_data.py", "steps", "processing")
SDK_DISTRIBUTIONS = ("sagemaker", "sagemaker-core", "sagemaker-mlops", "sagemaker-serve", "sagemaker-train")
FORMAT = 1

Builder = Callable[[PipelineConfig], BuiltPipeline]


def cache_key(pipeline: str, config: PipelineConfig) -> str:
    """A hash of what the definition of ``pipeline`` under ``config`` depends on."""
    digest = hashlib.sha256(f"{FORMAT}\0{pipeline}\0{PACKAGE_ROOT}\0".encode())
    digest.update(json.dumps(dataclasses.asdict(config), sort_keys=True, default=str).encode())
    for name in SDK_DISTRIBUTIONS:
        try:
            digest.update(f"\0{name}={metadata.version(name)}".encode())
        except metadata.PackageNotFoundError:
            digest.update(f"\0{name}=absent".encode())
    for source in SOURCES:
        root = PACKAGE_ROOT / source
        for path in sorted(root.rglob("*.py")) if root.is_dir() else [root]:
            digest.update(f"\0{path.relative_to(PACKAGE_ROOT)}\0".encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:32]


def default_folder() -> Path:
    """Where built definitions are kept: ``definitions`` beside the job environments' cache."""
    from pipelines.local.environments.cache import default_cache

    return default_cache().parent / "definitions"


def cached(build: Builder, pipeline: str, sample_writer: Callable[..., list[Path]], folder: Path,
           rebuild: bool = False, log: Callable[[str], None] = lambda line: None) -> Builder:
    """``build`` with its results kept in ``folder``; ``sample_writer`` is the pipeline's, restored on a hit."""
    def cached_build(config: PipelineConfig) -> BuiltPipeline:
        path = folder / f"{cache_key(pipeline, config)}.json"
        if not rebuild and path.is_file():
            try:
                entry = json.loads(path.read_text(encoding="utf-8"))
                built = BuiltPipeline(None, entry["definition"], tuple(CodeUpload(Path(p), u) for p, u in entry["uploads"]),
                                      entry["description"], entry["name"], entry["sample_input_url"], sample_writer)
                log(f"Definition unchanged: reusing the one built before ({path.name}; --rebuild builds it again)")
                return built
            except (OSError, ValueError, KeyError, TypeError):
                pass  # an unreadable entry is rebuilt and replaced
        log("Building the definition with the SageMaker SDK (kept for the next run of an unchanged pipeline)")
        built = build(config)
        folder.mkdir(parents=True, exist_ok=True)
        write_text(path, json.dumps({"definition": built.definition, "description": built.description,
                                     "name": built.name, "sample_input_url": built.sample_input_url,
                                     "uploads": [[str(u.local_path), u.s3_uri] for u in built.uploads]}))
        return built

    return cached_build
