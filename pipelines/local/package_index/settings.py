"""Which package indexes jobs' ``pip`` reaches, read once at the door from the user's own pip configuration
(its files and ``PIP_*`` variables, as pip reads them) and the proxy variables, then handed to the engine.

Only what reaching an index needs is kept: the index URLs, the certificate bundle, a proxy, trusted hosts and
the timeout. Credentials in an index URL stay with the engine (the proxy in ``proxy.py`` uses them); a job
never sees them, nor any credentials file (``.netrc``, keyring, client certificates).
"""

from __future__ import annotations

import configparser
import os
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

from pipelines.errors import ConfigError

PYPI = "https://pypi.org/simple"
SCHEMES = ("https", "http", "file")


class IndexSettingsError(ConfigError):
    """A package index setting that cannot be used (a URL of another scheme, a timeout that is not a number)."""


@dataclass(frozen=True)
class IndexSettings:
    """The indexes jobs install from, and how they are reached."""

    index_urls: tuple[str, ...] = (PYPI,)  # the index first, then the extra indexes, as pip orders them
    cert: str | None = None  # a CA bundle (PEM); None: the system's
    proxy: str | None = None  # an HTTP(S) proxy for every index; None: none
    trusted_hosts: tuple[str, ...] = ()  # hosts whose certificate is not checked (pip's trusted-host)
    timeout: float = 15.0

    def __post_init__(self) -> None:
        for url in self.index_urls:
            if urllib.parse.urlsplit(url).scheme not in SCHEMES:
                raise IndexSettingsError(f"package index {shown(url)!r} must be an https, http or file URL")

    def trusted(self, url: str) -> bool:
        """True if ``url``'s host is one whose certificate pip would not check."""
        parts = urllib.parse.urlsplit(url)
        return parts.hostname in self.trusted_hosts or parts.netloc.rsplit("@", 1)[-1] in self.trusted_hosts


def shown(url: str) -> str:
    """``url`` without its user and password, as it may be printed."""
    parts = urllib.parse.urlsplit(url)
    return urllib.parse.urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[-1])) if "@" in parts.netloc else url


def config_files(environ: Mapping[str, str], home: Path, etc: Path = Path("/etc")) -> list[Path]:
    """pip's configuration files, lowest precedence first (global, user, then ``PIP_CONFIG_FILE``)."""
    dirs = (environ.get("XDG_CONFIG_DIRS") or str(etc / "xdg")).split(":")
    files = [Path(d) / "pip" / "pip.conf" for d in dirs if d] + [etc / "pip.conf"]
    config_home = Path(environ.get("XDG_CONFIG_HOME") or home / ".config")
    files += [home / ".pip" / "pip.conf", config_home / "pip" / "pip.conf"]
    if environ.get("PIP_CONFIG_FILE") and environ["PIP_CONFIG_FILE"] != os.devnull:
        files.append(Path(environ["PIP_CONFIG_FILE"]))
    return files


def _from_files(files: list[Path]) -> dict[str, str]:
    values: dict[str, str] = {}
    for path in files:
        parser = configparser.RawConfigParser()
        try:
            parser.read(path, encoding="utf-8")
        except (OSError, configparser.Error, UnicodeDecodeError):
            continue  # pip itself stops on such a file; a run is not the place to report it
        for section in ("global", "install"):
            if parser.has_section(section):
                values.update({key.replace("_", "-"): value for key, value in parser.items(section)})
    return values


def from_user(environ: Mapping[str, str], home: Path | None = None, etc: Path = Path("/etc")) -> IndexSettings:
    """The settings the user's own ``pip install`` would use: its configuration files, then ``PIP_*``
    variables, then ``HTTPS_PROXY``/``HTTP_PROXY`` where pip configures no proxy. IndexSettingsError for a
    value that cannot be used."""
    values = _from_files(config_files(environ, home or Path.home(), etc))
    for key, value in environ.items():
        if key.startswith("PIP_") and value:
            values[key[4:].lower().replace("_", "-")] = value
    if values.get("no-index", "").lower() in ("1", "true", "yes", "on"):
        indexes: tuple[str, ...] = ()
    else:
        indexes = (values.get("index-url") or PYPI, *values.get("extra-index-url", "").split())
    proxy = values.get("proxy") or environ.get("HTTPS_PROXY") or environ.get("https_proxy") or environ.get(
        "HTTP_PROXY") or environ.get("http_proxy")
    timeout = values.get("timeout") or values.get("default-timeout") or "15"
    try:
        seconds = float(timeout)
    except ValueError:
        raise IndexSettingsError(f"pip's timeout {timeout!r} is not a number of seconds") from None
    return IndexSettings(tuple(dict.fromkeys(i.rstrip("/") for i in indexes)), values.get("cert") or None,
                         proxy or None, tuple(values.get("trusted-host", "").split()), seconds)
