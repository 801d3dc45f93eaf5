"""Which Python an environment is made with: an installed interpreter of the wanted minor version, found as uv
finds installed interpreters or as ``pythonX.Y`` on the PATH and believed only once it says its version; and
environments made with an interpreter other than the engine's, which know their own Python (its
``site-packages``), whose layers and derived environments see them, and which the job sandbox can start."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pipelines.local import job_runtime
from pipelines.local.environments import Environments, images, interpreters
from pipelines.local.environments.cache import (Environment, create, derived, incomplete, pip_command,
                                                writable_layer)
from pipelines.local.image_libraries import ImageLibraries, libraries_of
from tests.pipelines.local.environments.test_images import serve_index, stand_in
from tests.sandboxing import IN_CI, needs_bubblewrap

ENGINE_MINOR = f"{sys.version_info.major}.{sys.version_info.minor}"
# this machine's own installation of the engine's minor version, which the engine itself may not run on
SYSTEM = Path(f"/usr/bin/python{ENGINE_MINOR}")
needs_system_python = pytest.mark.skipif(not IN_CI and not SYSTEM.is_file(),
                                         reason=f"no {SYSTEM} on this machine (CI runs this test)")
OTHER_MINOR = "3.10" if ENGINE_MINOR != "3.10" else "3.12"  # a minor version the tests make sure is not found


@pytest.fixture
def search_path(tmp_path, monkeypatch) -> Path:
    """A PATH of one empty folder, and no interpreter uv installed: discovery sees only what a test puts there."""
    folder = tmp_path / "path"
    folder.mkdir()
    monkeypatch.setenv("PATH", str(folder))
    monkeypatch.setenv("UV_PYTHON_INSTALL_DIR", str(tmp_path / "uv-pythons"))
    for name in ("VIRTUAL_ENV", "CONDA_PREFIX", "UV_PYTHON"):
        monkeypatch.delenv(name, raising=False)
    return folder


def test_the_engines_minor_is_this_interpreter_and_nothing_is_started(monkeypatch):
    monkeypatch.setattr(subprocess, "run", lambda *args, **kwargs: pytest.fail("an interpreter was started"))
    found = interpreters.find(ENGINE_MINOR)
    assert (found.path, found.version, found.minor, found.build, found.prefix) == (
        sys.executable, ".".join(map(str, sys.version_info[:3])), ENGINE_MINOR, sys.version, sys.base_prefix)


def test_an_image_environment_is_the_same_from_any_virtualenv_of_one_installation(tmp_path, monkeypatch):
    # every fresh clone makes its own .venv: the image environments built from another one are reused
    made = subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(tmp_path / "clone-venv")],
                          capture_output=True, text=True)
    assert made.returncode == 0, made.stderr
    other = interpreters.probe(str(tmp_path / "clone-venv" / "bin" / "python"))
    assert other is not None and other.prefix == interpreters.this().prefix == sys.base_prefix
    image = libraries_of("683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1")
    here = images.folder(tmp_path / "cache", image)
    monkeypatch.setattr(interpreters, "this", lambda: other)
    assert images.folder(tmp_path / "cache", image) == here


@needs_system_python
def test_an_installed_interpreter_is_found_and_says_its_version(search_path, monkeypatch):
    monkeypatch.setenv("PATH", str(SYSTEM.parent))
    found = interpreters.installed(ENGINE_MINOR)
    assert found is not None and os.path.realpath(found.path) == os.path.realpath(SYSTEM)
    assert found.minor == ENGINE_MINOR and found.version.startswith(f"{ENGINE_MINOR}.")
    asked = subprocess.run([str(SYSTEM), "-c", "import sys; print(sys.version)"], capture_output=True, text=True)
    assert found.build == asked.stdout.strip()


@needs_system_python
def test_a_python_on_the_path_that_is_another_version_is_refused(search_path):
    (search_path / f"python{OTHER_MINOR}").symlink_to(SYSTEM)  # named as the wanted minor, it is the engine's
    assert shutil.which(f"python{OTHER_MINOR}") == str(search_path / f"python{OTHER_MINOR}")
    assert interpreters.probe(str(search_path / f"python{OTHER_MINOR}")).minor == ENGINE_MINOR
    assert interpreters.installed(OTHER_MINOR) is None


def test_a_python_that_does_not_run_is_refused(search_path):
    shim = search_path / f"python{OTHER_MINOR}"  # a version manager's shim for a version it does not have selected
    shim.write_text(f"#!/bin/sh\necho 'python{OTHER_MINOR}: command not found' >&2\nexit 127\n")
    shim.chmod(0o755)
    assert interpreters.probe(str(shim)) is None and interpreters.installed(OTHER_MINOR) is None


def test_a_minor_version_not_installed_is_none_and_nothing_is_downloaded(search_path):
    assert interpreters.installed(OTHER_MINOR) is None
    assert not (search_path.parent / "uv-pythons").exists()


def test_an_environment_knows_its_python_from_its_own_folders(tmp_path):
    root = tmp_path / "made-by-another-python"
    (root / "lib" / "python3.9" / "site-packages").mkdir(parents=True)
    (root / "bin").mkdir()
    (root / "bin" / "python").symlink_to(sys.executable)
    (root / "pyvenv.cfg").write_text("home = /elsewhere\nversion = 3.9.18\n")
    assert Environment(root).site_packages == root / "lib" / "python3.9" / "site-packages"
    assert incomplete(root) is None
    (root / "lib" / "python3.9" / "site-packages").rmdir()
    assert incomplete(root) == "it has no lib/pythonX.Y/site-packages"


def test_an_environment_on_another_minor_version_installs_with_its_own_pip(tmp_path):
    # this interpreter's pip supports the Pythons of its own era only (pip 26 needs 3.10): an image environment's
    # world has a pip of the image's era, which a derived environment sees in its base
    other, own = tmp_path / "other", tmp_path / "own"
    (other / "lib" / "python3.8" / "site-packages").mkdir(parents=True)
    (own / "lib" / f"python{ENGINE_MINOR}" / "site-packages").mkdir(parents=True)
    assert pip_command(Environment(other)) == [str(other / "bin" / "python"), "-m", "pip"]
    assert pip_command(Environment(own)) == [sys.executable, "-m", "pip", "--python", str(own / "bin" / "python")]


def _with_library(environment: Environment) -> dict:
    """A build that puts the importable ``baselib`` 1.0 (with its distribution metadata) into ``environment``."""
    site = environment.site_packages
    (site / "baselib.py").write_text("VALUE = 'from the base'\n")
    (site / "baselib-1.0.dist-info").mkdir()
    (site / "baselib-1.0.dist-info" / "METADATA").write_text("Metadata-Version: 2.1\nName: baselib\nVersion: 1.0\n")
    return {"built": "baselib"}


def _asked(environment: Environment) -> list[str]:
    """What the environment's interpreter says: its installation's version and what it imports from the base."""
    done = subprocess.run([str(environment.root / "bin" / "python"), "-c",
                           "import sys, baselib; print(sys.version); print(baselib.VALUE)"],
                          capture_output=True, text=True, check=True)
    return done.stdout.strip().splitlines()


@needs_system_python
def test_an_environment_made_with_another_interpreter_and_its_layers_run_on_it(tmp_path):
    base = create(tmp_path / "base", _with_library, python=str(SYSTEM))
    system_version = subprocess.run([str(SYSTEM), "-c", "import sys; print(sys.version)"], capture_output=True,
                                    text=True, check=True).stdout.strip()
    assert base.interpreter == os.path.realpath(SYSTEM) and incomplete(base.root) is None
    assert base.site_packages == base.root / "lib" / f"python{ENGINE_MINOR}" / "site-packages"
    assert base.installed_version("baselib") == "1.0"
    layer = writable_layer(tmp_path / "layers", base)
    above = derived(tmp_path / "cache", "commands", b"nothing", base, "test", ("making", "made"),
                    lambda environment: {}, lambda line: None)
    for environment in (base, layer, above):  # each on the base's interpreter, the layers seeing the base
        assert environment.interpreter == os.path.realpath(SYSTEM)
        assert _asked(environment) == [system_version, "from the base"]
    assert layer.installed_version("baselib") == above.installed_version("baselib") == "1.0"


@pytest.fixture
def relocated_python(tmp_path) -> Path:
    """This machine's Python installed again outside /usr (in ``tmp_path``), as pyenv or uv install one: its
    program copied, its standard library a link to the system's."""
    if not SYSTEM.is_file():
        pytest.skip(f"no {SYSTEM} on this machine")
    prefix = tmp_path / "opt-python"
    (prefix / "bin").mkdir(parents=True)
    (prefix / "lib").mkdir()
    shutil.copy2(SYSTEM, prefix / "bin" / SYSTEM.name)
    (prefix / "lib" / f"python{ENGINE_MINOR}").symlink_to(f"/usr/lib/python{ENGINE_MINOR}")
    return prefix / "bin" / SYSTEM.name


@needs_bubblewrap
def test_a_job_in_the_sandbox_runs_on_an_environment_whose_python_lives_outside_usr(tmp_path, relocated_python):
    base = create(tmp_path / "cache" / "base", _with_library, python=str(relocated_python))
    assert base.interpreter == str(relocated_python)
    layer = writable_layer(tmp_path / "cache" / "layers", base)
    spec = job_runtime.JobSpec(["python", "-c", "import sys, baselib; print(sys.base_prefix, baselib.VALUE)"],
                               tmp_path / "job" / "opt-ml", tmp_path / "job", python_env=layer.root,
                               python_layers=layer.layers[1:], python_writable=True)
    said: list[str] = []
    ended = job_runtime.run(job_runtime.automatic(), spec, said.append)
    assert ended.exit_code == 0, said
    assert said[-1] == f"{relocated_python.parent.parent} from the base"


# --- an image's environment: on the image's minor version where it is installed here

@pytest.fixture
def fresh_discovery():
    """Discovery looks again in this test (it is cached per process), and again after it."""
    interpreters.find.cache_clear()
    yield
    interpreters.find.cache_clear()


def test_an_image_whose_python_is_not_installed_gets_this_machines_and_the_folder_says_so(
        tmp_path, search_path, fresh_discovery):
    image = ImageLibraries("sagemaker-scikit-learn", "0.0-3", f"{OTHER_MINOR}.4", (("tinylib", "1.0"),), "tests")
    python, why = images.python_of(image)
    assert python == interpreters.this()
    assert why == f"the image's Python {OTHER_MINOR} is not installed here"
    assert images.folder(tmp_path, image).name.startswith(f"image-sagemaker-scikit-learn-0.0-3-py{ENGINE_MINOR}-")


def test_an_image_whose_python_is_older_than_the_engines_programs_need_gets_this_machines(monkeypatch):
    monkeypatch.setattr(interpreters, "find", lambda minor: pytest.fail("the image's Python was looked for"))
    image = ImageLibraries("sagemaker-xgboost", "1.5-1", "3.8.13", (("xgboost", "1.5.2"),), "tests")
    assert images.python_of(image) == (interpreters.this(), "the image's Python 3.8 is older than the 3.10 the "
                                                            "engine's programs in a job need")


@needs_system_python
def test_an_image_environment_is_made_with_the_images_python_found_here(tmp_path, monkeypatch):
    system = interpreters.probe(str(SYSTEM))  # this machine's installation of the image's minor version
    monkeypatch.setattr(interpreters, "find", lambda minor: system if minor == ENGINE_MINOR else None)
    image = ImageLibraries("sagemaker-scikit-learn", "0.0-4", ENGINE_MINOR, (("tinylib", "1.0"),), "tests")
    root = tmp_path / "index"
    stand_in(root, "tinylib", "1.0")
    said: list[str] = []
    for _ in serve_index(root, monkeypatch):
        environment = Environments(tmp_path / "cache").prepare(image, said.append)
    why = f"the image's Python {ENGINE_MINOR}, installed here"
    assert environment.root.name.startswith(f"image-sagemaker-scikit-learn-0.0-4-py{ENGINE_MINOR}-")
    assert environment.interpreter == os.path.realpath(SYSTEM)
    assert (environment.manifest["python"], environment.manifest["python_chosen"]) == (system.version, why)
    assert (f"sagemaker-scikit-learn:0.0-4: building the image's environment on Python {system.version} "
            f"({system.path}: {why}) in {environment.root} (once; every later run and store reuses it)") in said
    monkeypatch.setattr(interpreters, "find", lambda minor: interpreters.this())  # the engine's is another folder
    assert images.folder(tmp_path / "cache", image) != environment.root
