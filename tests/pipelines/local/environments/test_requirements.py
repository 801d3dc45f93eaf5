"""A job's requirements.txt is read where the job is: pip sees the job's source folder and the environment it
builds, nothing else of this machine; a line that names a file outside the folder is refused, naming the line."""

from __future__ import annotations

import functools
import os
import subprocess
import threading
from http.server import ThreadingHTTPServer
from pathlib import Path

import pytest

from pipelines.errors import EnvironmentBuildError
from pipelines.local.environments import Environments, requirements
from pipelines.local.job_runtime import Unsandboxed
from tests.pipelines.local.environments.test_images import QuietHandler
from tests.pipelines.local.executors.test_job_contracts import TINYLIB, wheel
from tests.sandboxing import needs_bubblewrap

SECRET = "hunter2-never-in-a-log"  # what a file outside the source folder holds


class Link(str):
    """A symbolic link to lay out in the source folder (its target)."""


class Utf16(str):
    """A file to write as UTF-16, with its byte-order mark (pip reads it so)."""


@pytest.fixture
def hermetic_pip(monkeypatch) -> None:
    """pip reads no configuration file of this machine and no index: only what a test gives it."""
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    for name in ("PIP_FIND_LINKS", "PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "PIP_CONSTRAINT"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def outside(tmp_path) -> Path:
    """Files beside the source folder, not in it: a secret, a wheel, an installable project."""
    folder = tmp_path / "outside"
    (folder / "project").mkdir(parents=True)
    (folder / "secret.txt").write_text(f"password={SECRET}\n")
    (folder / TINYLIB).write_bytes(wheel("tinylib", "1.0", "VALUE = 'from outside'\n"))
    (folder / "project" / "setup.py").write_text(f"print({SECRET!r})\n")
    return folder


@pytest.fixture
def code(tmp_path) -> Path:
    folder = tmp_path / "code"
    folder.mkdir()
    return folder


def lay_out(code: Path, files: dict[str, str | bytes], outside: Path) -> None:
    """Write ``files`` into ``code``, ``{outside}`` in them replaced by the folder beside it."""
    for name, content in files.items():
        path = code / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, Link):
            path.symlink_to(content.format(outside=outside))
        elif isinstance(content, Utf16):
            path.write_bytes(content.format(outside=outside).encode("utf-16"))
        elif isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content.format(outside=outside))


HOSTILE = {
    "requirement file": ({"requirements.txt": "# ours\n-r {outside}/secret.txt\n"}, "requirements.txt:2"),
    "constraint file": ({"requirements.txt": "tinylib\n-c {outside}/secret.txt\n"}, "requirements.txt:2"),
    "long option": ({"requirements.txt": "--requirement={outside}/secret.txt\n"}, "requirements.txt:1"),
    "abbreviated option": ({"requirements.txt": "--requirem {outside}/secret.txt\n"}, "requirements.txt:1"),
    "attached short option": ({"requirements.txt": "-r{outside}/secret.txt\n"}, "requirements.txt:1"),
    "dot-dot escape": ({"requirements.txt": "-r sub/../../outside/secret.txt\n"}, "requirements.txt:1"),
    "editable outside": ({"requirements.txt": "-e {outside}/project\n"}, "requirements.txt:1"),
    "bare local path": ({"requirements.txt": f"../outside/{TINYLIB}\n"}, "requirements.txt:1"),
    "absolute path": ({"requirements.txt": f"{{outside}}/{TINYLIB}\n"}, "requirements.txt:1"),
    "project folder": ({"requirements.txt": "../outside/project\n"}, "requirements.txt:1"),
    "link leaving the folder": ({"requirements.txt": f"./{TINYLIB}\n",
                                 TINYLIB: Link(f"{{outside}}/{TINYLIB}")}, "requirements.txt:1"),
    "linked requirements file": ({"requirements.txt": "-r inner.txt\n", "inner.txt": Link("{outside}/secret.txt")},
                                 "requirements.txt:1"),
    "find links outside": ({"requirements.txt": "--find-links {outside}\ntinylib\n"}, "requirements.txt:1"),
    "find links file url": ({"requirements.txt": "tinylib\n-f file://{outside}\n"}, "requirements.txt:2"),
    "index file url": ({"requirements.txt": "--index-url file://{outside}/simple\ntinylib\n"}, "requirements.txt:1"),
    "direct reference": ({"requirements.txt": f"tinylib @ file://{{outside}}/{TINYLIB}\n"}, "requirements.txt:1"),
    "vcs from a local path": ({"requirements.txt": "-e git+file://{outside}/project#egg=project\n"},
                              "requirements.txt:1"),
    "nested file": ({"requirements.txt": "-r inner.txt\n", "inner.txt": "tinylib\n\n-r {outside}/secret.txt\n"},
                    "inner.txt:3"),
    "nested in a subfolder": ({"requirements.txt": "-c deps/pins.txt\n", "deps/pins.txt": "-r ../../outside/secret.txt\n"},
                              "deps/pins.txt:1"),
    "continued line": ({"requirements.txt": "tinylib\n-r \\\n{outside}/secret.txt\n"}, "requirements.txt:2"),
    "environment variable": ({"requirements.txt": "-r ${{HOME}}/.netrc\n"}, "requirements.txt:1"),
    "utf-16 file": ({"requirements.txt": Utf16("# ours\n-r {outside}/secret.txt\n")},
                    "requirements.txt:2"),
    "remote nested file": ({"requirements.txt": "-r https://127.0.0.1:9/more.txt\n"}, "requirements.txt:1"),
}


def refused(cache: Path, requirements_file: Path, **runtime) -> tuple[str, list[str]]:
    lines: list[str] = []
    with pytest.raises(EnvironmentBuildError) as raised:
        Environments(cache).with_requirements(requirements_file, lines.append, **runtime)
    return str(raised.value), lines


@pytest.mark.parametrize("files, where", HOSTILE.values(), ids=HOSTILE.keys())
def test_a_line_that_reads_outside_the_source_folder_is_refused_naming_it(tmp_path, code, outside, hermetic_pip,
                                                                         files, where) -> None:
    lay_out(code, files, outside)
    message, lines = refused(tmp_path / "cache", code / "requirements.txt")
    assert message.startswith(f"{where}: "), message
    assert "source folder" in message and "\n" not in message
    assert SECRET not in message and not any(SECRET in line for line in lines)
    assert not any(line.startswith("pip: ") for line in lines)  # refused before pip reads anything
    assert not [p for p in (tmp_path / "cache").glob("requirements-*") if p.is_dir()]


def test_without_bubblewrap_the_check_alone_refuses(tmp_path, code, outside, hermetic_pip) -> None:
    lay_out(code, {"requirements.txt": "-r inner.txt\n", "inner.txt": f"../outside/{TINYLIB}\n"}, outside)
    message, lines = refused(tmp_path / "cache", code / "requirements.txt", runtime=Unsandboxed("not here"))
    assert message.startswith("inner.txt:1: ") and not any(line.startswith("pip: ") for line in lines)


def imports(environment_root: Path, code: str) -> str:
    """What ``code`` prints in the environment's interpreter."""
    return subprocess.run([str(environment_root / "bin" / "python"), "-c", code], capture_output=True, text=True,
                          check=True).stdout.strip()


@pytest.mark.parametrize("runtime", [None, Unsandboxed("bubblewrap set aside for this test")],
                         ids=["this machine's runtime", "without bubblewrap"])
def test_files_and_wheels_inside_the_source_folder_install(tmp_path, code, hermetic_pip, runtime) -> None:
    lay_out(code, {"requirements.txt": "-r reqs/other.txt\n./wheels/otherlib-1.0-py3-none-any.whl\n",
                   "reqs/other.txt": "--find-links ../wheels  # relative to this file, as pip reads it\ntinylib\n",
                   f"wheels/{TINYLIB}": wheel("tinylib", "1.0", "VALUE = 'inside'\n"),
                   "wheels/otherlib-1.0-py3-none-any.whl": wheel("otherlib", "1.0", "VALUE = 'other'\n")}, tmp_path)
    lines: list[str] = []
    built = Environments(tmp_path / "cache").with_requirements(code / "requirements.txt", lines.append,
                                                               runtime=runtime)
    assert imports(built.root, "import tinylib, otherlib; print(tinylib.VALUE, otherlib.VALUE)") == "inside other"
    assert any("Successfully installed" in line and "tinylib-1.0" in line for line in lines)


def test_a_changed_nested_file_builds_a_new_environment(tmp_path, code, hermetic_pip) -> None:
    lay_out(code, {"requirements.txt": "-r inner.txt\n", "inner.txt": "# nothing yet\n"}, tmp_path)
    environments = Environments(tmp_path / "cache")
    first = environments.with_requirements(code / "requirements.txt", lambda line: None)
    lay_out(code, {"inner.txt": f"./wheels/{TINYLIB}\n", f"wheels/{TINYLIB}": wheel("tinylib", "1.0", "VALUE = 2\n")},
            tmp_path)
    second = environments.with_requirements(code / "requirements.txt", lambda line: None)
    assert second.root != first.root and imports(second.root, "import tinylib; print(tinylib.VALUE)") == "2"


@pytest.fixture
def index(tmp_path) -> str:
    """A package index on loopback: /user/ (the user's pip settings name it) and /file/ (a requirements file does)."""
    root = tmp_path / "index"
    for folder, name in (("user", "userlib"), ("file", "filelib")):
        (root / folder / name).mkdir(parents=True)
        (root / folder / name / f"{name}-1.0-py3-none-any.whl").write_bytes(wheel(name, "1.0", "VALUE = 1\n"))
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(QuietHandler, directory=str(root)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_the_users_pip_settings_and_the_files_index_options_are_honoured(tmp_path, code, index, monkeypatch) -> None:
    house = tmp_path / "wheelhouse"  # a folder of this machine that the user's pip settings name
    house.mkdir()
    (house / "houselib-1.0-py3-none-any.whl").write_bytes(wheel("houselib", "1.0", "VALUE = 1\n"))
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    monkeypatch.delenv("PIP_NO_INDEX", raising=False)
    monkeypatch.delenv("PIP_EXTRA_INDEX_URL", raising=False)
    monkeypatch.setenv("PIP_INDEX_URL", f"{index}/user/")
    monkeypatch.setenv("PIP_FIND_LINKS", str(house))
    lay_out(code, {"requirements.txt": f"--extra-index-url {index}/file/\nuserlib\nfilelib\nhouselib\n"}, tmp_path)
    built = Environments(tmp_path / "cache").with_requirements(code / "requirements.txt", lambda line: None)
    assert imports(built.root, "import userlib, filelib, houselib; print('all three')") == "all three"


@needs_bubblewrap
def test_a_line_the_check_missed_still_reads_nothing_of_this_machine(tmp_path, code, outside, hermetic_pip,
                                                                     monkeypatch) -> None:
    monkeypatch.setattr(requirements, "check", lambda requirements_file: [requirements_file])
    lay_out(code, {"requirements.txt": "-r {outside}/secret.txt\n"}, outside)
    message, lines = refused(tmp_path / "cache", code / "requirements.txt")
    assert message.startswith("requirements.txt: pip could not install it (")
    assert any("No such file or directory" in line for line in lines)  # pip, in the sandbox, does not see it
    assert SECRET not in message and not any(SECRET in line for line in lines)
