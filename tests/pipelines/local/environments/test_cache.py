"""A cached environment is used only while its interpreter is there: one whose ``bin/python`` dangles or is gone,
or whose folder is partial, is rebuilt by the next job that needs it, never started (``bwrap: execvp``)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from pipelines.local.engine import LocalEngine, RunOptions
from pipelines.local.environments import Environments, images
from pipelines.local.environments.cache import create
from pipelines.local.image_libraries import ImageLibraries
from pipelines.local.registry import Registry
from pipelines.local.store import Store
from tests.pipelines.local.executors.test_job_contracts import (SKLEARN_IMAGE, TINYLIB, source_archive, training_step,
                                                                wheel)
from tests.sandboxing import needs_container_paths


@pytest.fixture(autouse=True)
def hermetic_pip(monkeypatch) -> None:
    """pip reads no configuration file of this machine and no index: the requirements name local wheels."""
    monkeypatch.setenv("PIP_CONFIG_FILE", "/dev/null")
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.delenv("PIP_FIND_LINKS", raising=False)


def break_environment(root: Path, breakage: str, tmp_path: Path) -> None:
    """What a removed Python or an interrupted copy leaves of a cached environment."""
    python = root / "bin" / "python"
    if breakage == "interpreter removed":  # the Python the virtualenv was made with is gone
        python.unlink()
        python.symlink_to(tmp_path / "uninstalled-python" / "bin" / "python3")
    elif breakage == "no interpreter":
        python.unlink()
    else:  # a partial folder: its libraries are gone
        shutil.rmtree(root / "lib")


@pytest.mark.parametrize("breakage", ["interpreter removed", "partial folder"])
def test_a_requirements_environment_that_lost_its_interpreter_is_rebuilt(tmp_path, breakage) -> None:
    code = tmp_path / "code"
    (code / "wheels").mkdir(parents=True)
    (code / "wheels" / TINYLIB).write_bytes(wheel("tinylib", "1.0", "VALUE = 'rebuilt'\n"))
    (code / "requirements.txt").write_text(f"./wheels/{TINYLIB}\n")
    environments = Environments(tmp_path / "cache")
    first = environments.with_requirements(code / "requirements.txt", lambda line: None)
    break_environment(first.root, breakage, tmp_path)
    lines: list[str] = []
    again = environments.with_requirements(code / "requirements.txt", lines.append)
    assert again.root == first.root
    assert any(line.startswith(f"requirements.txt: the cached environment {first.root} is incomplete (")
               and line.endswith("; rebuilding it") for line in lines), lines
    done = subprocess.run([str(again.root / "bin" / "python"), "-c", "import tinylib; print(tinylib.VALUE)"],
                          capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "rebuilt"


@pytest.mark.parametrize("breakage", ["interpreter removed", "no interpreter", "partial folder"])
def test_an_image_environment_that_lost_its_interpreter_is_not_built_any_more(tmp_path, breakage) -> None:
    image = ImageLibraries("sagemaker-scikit-learn", "0.0-1", "3.11", (("tinylib", "1.0"),), "tests")
    cache = tmp_path / "cache"
    create(images.folder(cache, image), lambda environment: {"image": image.name, "installed": {"tinylib": "1.0"}})
    assert Environments(cache).cached_image(image) is not None
    break_environment(images.folder(cache, image), breakage, tmp_path)
    assert Environments(cache).cached_image(image) is None  # what `images list` shows as not built; built on use


@needs_container_paths
def test_the_next_job_rebuilds_an_environment_whose_interpreter_is_gone(tmp_path) -> None:
    store = Store(tmp_path / "store")
    store.put_bytes(b"1,2\n", "s3://their-bucket/train/part-0.csv")
    store.put_bytes(source_archive({"train.py": "import tinylib; print('tinylib says', tinylib.VALUE)",
                                    "requirements.txt": f"./wheels/{TINYLIB}\n",
                                    f"wheels/{TINYLIB}": wheel("tinylib", "1.0", "VALUE = 'hello'\n")}),
                    "s3://their-bucket/code/sourcedir.tar.gz")
    step = training_step({"TrainingImage": SKLEARN_IMAGE}, {
        "sagemaker_program": '"train.py"', "sagemaker_submit_directory": '"s3://their-bucket/code/sourcedir.tar.gz"'})
    lines: list[str] = []
    engine = LocalEngine(store, Registry(store.root / "registry.sqlite"), lambda step, line: lines.append(line),
                         lambda record: None, RunOptions(environments=Environments(tmp_path / "cache", "engine")))
    first = engine.run({"Version": "2020-12-01", "Parameters": [], "Steps": [step]}, "theirs", {})
    assert first.status == "Succeeded", first.failure_reason
    [built] = [p for p in (tmp_path / "cache").glob("requirements-*") if p.is_dir()]
    break_environment(built, "interpreter removed", tmp_path)
    lines.clear()
    again = engine.run({"Version": "2020-12-01", "Parameters": [], "Steps": [step]}, "theirs", {})
    assert again.status == "Succeeded", again.step("Fit").failure_reason
    assert any("is incomplete (" in line and "rebuilding it" in line for line in lines)
    assert "tinylib says hello" in lines and not any("execvp" in line for line in lines)
