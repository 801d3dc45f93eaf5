"""The definition cache: hits for an unchanged pipeline, misses for any change it depends on."""

from __future__ import annotations

import shutil
from pathlib import Path

from pipelines import definition_cache
from pipelines.definition_cache import cache_key, cached
from pipelines.lead_scoring import BuiltPipeline
from steps.context import CodeUpload
from tests.conftest import full_config


def fake_build(calls: list):
    def build(config):
        calls.append(config)
        return BuiltPipeline(object(), '{"Steps": []}', (CodeUpload(Path("/x/preprocess.py"), "s3://b/code/p.py"),),
                             "text", config.pipeline_name, "s3://b/in", None)
    return build


def writer(config, directory, rows):
    return []


def test_an_unchanged_pipeline_is_built_once(tmp_path):
    calls: list = []
    lines: list = []
    build = cached(fake_build(calls), "lead-scoring", writer, tmp_path, log=lines.append)
    first = build(full_config())
    second = build(full_config())
    assert len(calls) == 1 and second.definition == first.definition and second.pipeline is None
    assert second.uploads == first.uploads and second.name == "LeadScoringPipeline" and second.write_sample is writer
    assert [line.split(":")[0] for line in lines] == ["Building the definition with the SageMaker SDK (kept for the "
                                                      "next run of an unchanged pipeline)", "Definition unchanged"]
    build(full_config(pipeline_name="Other"))
    cached(fake_build(calls), "lead-scoring", writer, tmp_path, rebuild=True)(full_config())
    assert len(calls) == 3


def test_an_unreadable_entry_is_rebuilt(tmp_path):
    calls: list = []
    build = cached(fake_build(calls), "lead-scoring", writer, tmp_path)
    build(full_config())
    [entry] = tmp_path.iterdir()
    entry.write_text("{truncated")
    assert build(full_config()).definition == '{"Steps": []}' and len(calls) == 2


def test_the_key_follows_config_pipeline_and_sources(tmp_path, monkeypatch):
    root = tmp_path / "repo"
    for source in definition_cache.SOURCES:
        origin = definition_cache.PACKAGE_ROOT / source
        if origin.is_dir():
            shutil.copytree(origin, root / source)
        else:
            (root / source).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(origin, root / source)
    monkeypatch.setattr(definition_cache, "PACKAGE_ROOT", root)
    key = cache_key("lead-scoring", full_config())
    assert cache_key("lead-scoring", full_config()) == key
    assert cache_key("batch-scoring", full_config()) != key
    assert cache_key("lead-scoring", full_config(source_revision="other")) != key
    with open(root / "processing" / "preprocess.py", "a") as script:
        script.write("\n# changed\n")
    assert cache_key("lead-scoring", full_config()) != key
