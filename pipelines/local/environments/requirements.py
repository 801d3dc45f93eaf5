"""A job's ``requirements.txt`` installed with pip, as the SageMaker training toolkit installs it, into an
environment derived from the job's base: its image's environment, or this interpreter's libraries.

The derived virtualenv, on the base's Python, first holds what the requirements install and then sees the
base's libraries (a ``.pth`` line), so a requirement the base already satisfies installs nothing. The pip that
installs is this interpreter's, or, for a base on another minor version of Python, the base's own.

The file is read where the job is. On SageMaker pip runs in the container, in the code directory, which holds
the job's source and nothing of any machine; here the source folder is the file's folder, and:

- every line of the file and of the files it includes (``-r``, ``-c``) is checked first, as pip reads it: a
  file, project, wheel, ``--find-links`` folder or ``file:`` URL outside the folder (a path, ``..``, a link
  that leaves it, a variable of pip's environment) is refused, naming the file and line;
- pip then runs in the job runtime's sandbox, where it sees the source folder (read-only), the environment it
  builds, its interpreter, the system folders, its own cache (``pip-cache`` in the environments cache) and
  what your pip settings say about where packages come from; never your home folder (no ``~/.netrc``,
  keyring or client certificate).
"""

from __future__ import annotations

import ast
import codecs
import optparse
import os
import re
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterator, NoReturn
from urllib.parse import urlsplit
from urllib.request import url2pathname

from pipelines.errors import EnvironmentBuildError
from pipelines.local import job_runtime
from pipelines.local.environments.cache import Environment, derived, pip_command, stream

PIP_CACHE = "pip-cache"
# your pip settings that say where packages come from and how to reach them (from its config files and PIP_*
# variables): pip in the sandbox gets these and no config file; the others (a client certificate, a keyring,
# where to install) stay yours
SETTINGS = ("index-url", "extra-index-url", "no-index", "find-links", "trusted-host", "cert", "constraint",
            "proxy", "timeout", "default-timeout", "retries", "only-binary", "no-binary", "prefer-binary", "pre")
LOCAL_SETTINGS = ("index-url", "extra-index-url", "find-links", "cert", "constraint")  # may name files here
VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "no_proxy",
             "all_proxy", "REQUESTS_CA_BUNDLE", "SSL_CERT_FILE", "SSL_CERT_DIR", "CURL_CA_BUNDLE")
CERTIFICATES = ("REQUESTS_CA_BUNDLE", "SSL_CERT_FILE", "SSL_CERT_DIR", "CURL_CA_BUNDLE")
# what pip's environment holds besides PIP_* and VARIABLES: a ${NAME} of these would expand to this machine's
SEEN_BY_PIP = ("HOME", "PATH", "LANG", "HOSTNAME", *VARIABLES)

_COMMENT = re.compile(r"(^|\s+)#.*$")
_VARIABLE = re.compile(r"\$\{([A-Z0-9_]+)\}")
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*):")
_CODING = re.compile(rb"coding[:=]\s*([-\w.]+)")
_ARCHIVES = (".whl", ".zip", ".tar.gz", ".tgz", ".tar", ".tar.bz2", ".tbz", ".tar.xz", ".txz", ".tlz", ".tar.lz",
             ".tar.lzma")
_BOMS = ((codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF32, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32-be"),
         (codecs.BOM_UTF32_LE, "utf-32-le"), (codecs.BOM_UTF16, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16-be"),
         (codecs.BOM_UTF16_LE, "utf-16-le"))
# the options pip takes in a requirements file, spelt as pip spells them (so abbreviations resolve as in pip)
_PATH_OPTIONS = {"files": ("-r", "--requirement", "-c", "--constraint"), "editables": ("-e", "--editable"),
                 "links": ("-f", "--find-links"), "indexes": ("-i", "--index-url", "--pypi-url", "--extra-index-url")}
_VALUE_OPTIONS = (("--trusted-host",), ("--no-binary",), ("--only-binary",), ("--use-feature",), ("--hash",),
                  ("-C", "--config-settings"), ("--all-releases",), ("--only-final",))
_FLAGS = ("--no-index", "--prefer-binary", "--require-hashes", "--no-require-hashes", "--pre")


def with_requirements(cache: Path, requirements: Path, base: Environment | None, log: Callable[[str], None],
                      runtime: job_runtime.Runtime | None = None) -> Environment:
    """``base`` (None: this interpreter's libraries) plus ``requirements``, pip run in the file's folder so
    that relative paths in it resolve, in ``runtime``'s sandbox (None: this machine's runtime); EnvironmentBuildError
    naming the file and line that reads outside its folder, or the file and pip's reason."""
    files = check(requirements)
    content = b"".join([requirements.read_bytes()] + [b"\0" + _shown(path, requirements.parent).encode() + b"\0"
                                                      + path.read_bytes() for path in files[1:]])
    return derived(cache, "requirements", content, base, requirements.name, ("installing into", "installed in"),
                   lambda environment: _install(cache, environment, requirements,
                                                runtime or job_runtime.automatic(), log), log)


def check(requirements: Path) -> list[Path]:
    """The files pip reads for ``requirements``: it, then the files it includes, each once; EnvironmentBuildError
    naming the file and line of the first line that would read or install something outside the file's folder."""
    folder = requirements.parent
    if not _inside(str(requirements), str(folder)):
        raise EnvironmentBuildError(f"{requirements.name}: it is a link to a file outside the job's source folder; "
                                    "ship the file itself")
    read: list[Path] = []
    _check_file(Path(os.path.abspath(requirements)), Path(os.path.abspath(folder)), read)
    return read


def _check_file(path: Path, folder: Path, read: list[Path]) -> None:
    read.append(path)
    name = _shown(path, folder)
    for number, line in _lines(_text(path, name)):
        for nested in _check_line(f"{name}:{number}", line, path.parent, folder):
            if nested not in read and nested.is_file():
                _check_file(nested, folder, read)


def _text(path: Path, shown: str) -> str:
    """The file's text, decoded as pip decodes it (a byte-order mark, a coding comment, else UTF-8)."""
    data = path.read_bytes()
    try:
        for bom, encoding in _BOMS:
            if data.startswith(bom):
                return data[len(bom):].decode(encoding)
        for line in data.split(b"\n")[:2]:
            coding = _CODING.search(line) if line[:1] == b"#" else None
            if coding is not None:
                return data.decode(coding.group(1).decode("ascii"))
        return data.decode("utf-8")
    except (UnicodeError, LookupError) as exc:
        raise EnvironmentBuildError(f"{shown}: pip cannot read it as text ({exc}); save it as UTF-8") from None


def _lines(text: str) -> Iterator[tuple[int, str]]:
    """The lines pip reads: a line ending in a backslash continued by the next (numbered by its first),
    comments dropped; blank ones left out."""
    first, parts = 0, []
    for number, line in enumerate(text.splitlines(), start=1):
        if line.endswith("\\") and not _COMMENT.match(line):
            first = first or number
            parts.append(line.strip("\\"))
            continue
        if _COMMENT.match(line):
            line = " " + line
        joined = _COMMENT.sub("", "".join(parts) + line).strip()
        if joined:
            yield (first or number), joined
        first, parts = 0, []
    joined = _COMMENT.sub("", "".join(parts)).strip()
    if joined:
        yield first, joined


class _LineParser(optparse.OptionParser):
    def error(self, msg: str) -> NoReturn:
        raise ValueError(msg)


def _options() -> optparse.OptionParser:
    parser = _LineParser(add_help_option=False)
    for dest, names in _PATH_OPTIONS.items():
        parser.add_option(*names, dest=dest, action="append", default=[])
    for names in _VALUE_OPTIONS:
        parser.add_option(*names, action="append")
    for flag in _FLAGS:
        parser.add_option(flag, action="store_true")
    return parser


def _check_line(where: str, line: str, here: Path, folder: Path) -> list[Path]:
    """The files a line includes (to check in turn); EnvironmentBuildError if it reads outside ``folder``."""
    for name in _VARIABLE.findall(line):
        if name in SEEN_BY_PIP or name.startswith("PIP_"):
            raise EnvironmentBuildError(f"{where}: ${{{name}}} would be expanded to a value of this machine, "
                                        "outside the job's source folder; write the path relative to the file")
    tokens = line.split(" ")  # as pip splits a line: the requirement, then its options from the first '-'
    start = next((i for i, token in enumerate(tokens) if token.startswith("-")), len(tokens))
    requirement = " ".join(tokens[:start])
    try:
        options, _ = _options().parse_args(shlex.split(" ".join(tokens[start:])))
    except ValueError as exc:
        raise EnvironmentBuildError(f"{where}: pip cannot read this line ({exc})") from None
    for value in options.files:
        if _scheme(value) is not None:
            raise EnvironmentBuildError(f"{where}: {value} is not a file of the job's source folder; pip reads "
                                        "included files from that folder only: ship it there")
        _local(where, value, here, folder)
    for value in options.editables + options.indexes:
        _local(where, _without_extras(value), folder, folder)
    for value in options.links:
        relative = here / value
        _local(where, value, here if relative.exists() else folder, folder)
    for value in _requirement_locations(requirement):
        _local(where, value, folder, folder)
    return [Path(os.path.abspath(here / value)) for value in options.files]


def _requirement_locations(requirement: str) -> list[str]:
    """What a requirement line installs from, where that may be on this machine: a path or a URL."""
    if not requirement:
        return []
    first = requirement.split(" ")[0]
    if _scheme(first) is not None and "://" in first:
        return [first]
    name = requirement.split(";", 1)[0].strip()
    found = []
    before, at, after = name.partition("@")
    if at and not _looks_like_path(before) and after.strip():  # a direct reference: name @ url
        found.append(after.split()[0])
    if _looks_like_path(name) or name.lower().endswith(_ARCHIVES):
        found.append(_without_extras(name))
    return found


def _looks_like_path(text: str) -> bool:
    return "/" in text or text.startswith(".")


def _without_extras(text: str) -> str:
    return re.sub(r"\[[^\]]*\]$", "", text)


def _local(where: str, value: str, base: Path, folder: Path) -> None:
    """EnvironmentBuildError if ``value`` (a path relative to ``base``, or a URL) is a file of this machine
    outside ``folder``; a network URL is pip's to fetch, as on SageMaker."""
    path = _path_of(value, str(base))
    if path is not None and not _inside(path, str(folder)):
        raise EnvironmentBuildError(f"{where}: {value} is outside the job's source folder; pip reads nothing else, "
                                    "as on SageMaker, where the code directory holds only the job's source: ship "
                                    "it in the folder and name it relative to the file")


def _path_of(value: str, base: str) -> str | None:
    """The path of this machine that ``value`` names (relative to ``base``, or a ``file:`` URL), None for a
    network URL."""
    scheme = _scheme(value)
    if scheme is None:
        return os.path.join(base, value)
    if scheme == "file" or scheme.endswith("+file"):
        return os.path.join(base, url2pathname(urlsplit(value.split("+", 1)[-1]).path))
    return None


def _scheme(value: str) -> str | None:
    """The URL scheme ``value`` starts with (lower case), None for a path (a drive letter is no scheme)."""
    match = _SCHEME.match(value)
    return match.group(1).lower() if match is not None and len(match.group(1)) > 1 else None


def _shown(path: Path, folder: Path) -> str:
    """``path`` as the job names it: relative to its source folder."""
    return os.path.relpath(os.path.realpath(path), os.path.realpath(folder))


def _inside(path: str, folder: str) -> bool:
    """True if ``path`` stays in ``folder`` however it is resolved (links followed before or after '..')."""
    root = os.path.realpath(folder)
    return all(real == root or real.startswith(root + os.sep)
               for real in (os.path.realpath(path), os.path.realpath(os.path.normpath(path))))


def _install(cache: Path, environment: Environment, requirements: Path, runtime: job_runtime.Runtime,
             log: Callable[[str], None]) -> dict[str, Any]:
    folder = Path(os.path.realpath(requirements.parent))
    pip_cache = cache / PIP_CACHE
    pip_cache.mkdir(parents=True, exist_ok=True)
    settings, visible = pip_settings()
    environment_variables = {**settings, "PIP_CONFIG_FILE": os.devnull, "PIP_CACHE_DIR": str(pip_cache)}
    command = [*pip_command(environment), "install", "--no-input", "--disable-pip-version-check", "--progress-bar",
               "off", "-r", str(folder / requirements.name)]
    said: list[str] = []

    def say(line: str) -> None:
        said.append(line.strip())
        log(f"pip: {line}")

    with tempfile.TemporaryDirectory(prefix="requirements-") as scratch:
        if runtime.sandboxed:
            spec = job_runtime.JobSpec(command, Path(scratch) / "opt-ml", Path(scratch), environment_variables,
                                       workdir=str(folder), image_files=[(p, str(p)) for p in (folder, *visible)],
                                       engine_dirs=(environment.root, pip_cache), python_layers=environment.layers[1:])
            code = job_runtime.run(runtime, spec, say).exit_code
        else:  # the check above is all that stands between the file and this machine
            code, _ = stream(command, say, "", cwd=folder, environment={
                **environment_variables, "HOME": scratch, "LANG": "C.UTF-8", "PATH": os.environ.get("PATH", os.defpath)})
    if code != 0:
        tail = [line for line in said if line][-12:]
        reason = next((t for t in reversed(tail) if t.startswith("ERROR")), tail[-1] if tail else "no output")
        raise EnvironmentBuildError(f"{requirements.name}: pip could not install it ({reason}); "
                                    "fix the requirement and run again")
    return {"requirements": requirements.read_text(errors="replace")}


def pip_settings() -> tuple[dict[str, str], list[Path]]:
    """Your pip settings that pip in the sandbox gets (``SETTINGS`` as PIP_* variables, and ``VARIABLES``), with
    the files and folders of this machine they name, resolved, for the sandbox to show read-only."""
    listed = subprocess.run([sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True,
                            stdin=subprocess.DEVNULL)
    if listed.returncode != 0:
        last = (listed.stderr.strip().splitlines() or ["no output"])[-1]
        raise EnvironmentBuildError(f"pip cannot read its settings here ({last}); fix your pip configuration")
    ranked: dict[str, tuple[int, str]] = {}
    for line in listed.stdout.splitlines():
        key, _, quoted = line.partition("=")
        section, _, name = key.rpartition(".")
        rank = {"global": 0, "install": 1, ":env:": 2}.get(section)
        if rank is not None and name in SETTINGS and rank >= ranked.get(name, (-1, ""))[0]:
            ranked[name] = (rank, ast.literal_eval(quoted))
    settings, visible = {}, []
    for name, (_, value) in ranked.items():
        if name in LOCAL_SETTINGS:
            value, paths = _resolved(value)
            # a local index's pages link to files beside it (ROOT/simple links to ROOT/files): show its folder's parent
            visible += [path.parent if "index" in name and path.parent != Path("/") else path for path in paths]
        settings["PIP_" + name.upper().replace("-", "_")] = value
    for name in VARIABLES:
        if name in os.environ:
            value, paths = _resolved(os.environ[name]) if name in CERTIFICATES else (os.environ[name], [])
            settings[name] = value
            visible += paths
    return settings, visible


def _resolved(value: str) -> tuple[str, list[Path]]:
    """A setting whose items may name files of this machine, each such item resolved (a link followed), and
    those files: the sandbox shows them at their real path."""
    items, paths = [], []
    for item in value.split():
        path = _path_of(item, os.getcwd())
        if path is not None and os.path.exists(path) and os.path.realpath(path) != "/":
            real = os.path.realpath(path)
            paths.append(Path(real))
            item = Path(real).as_uri() if _scheme(item) is not None else real
        items.append(item)
    return " ".join(items), paths
