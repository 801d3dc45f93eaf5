"""The user's pip settings, read as pip reads them, become what jobs' pip reaches."""

from __future__ import annotations

import pytest

from pipelines.local.package_index import IndexSettingsError, from_user
from pipelines.local.package_index.settings import PYPI


def write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_with_no_configuration_jobs_install_from_pypi(tmp_path):
    settings = from_user({"XDG_CONFIG_DIRS": str(tmp_path / "none")}, tmp_path, tmp_path / "etc")
    assert settings.index_urls == (PYPI,) and settings.cert is None and settings.proxy is None


def test_files_then_variables_as_pip_orders_them(tmp_path):
    write(tmp_path / "etc" / "pip" / "pip.conf", "[global]\nindex-url = https://global.example/simple\ntimeout = 7\n")
    write(tmp_path / ".config" / "pip" / "pip.conf",
          "[global]\nextra-index-url = https://extra.example/simple\n  https://more.example/simple/\n"
          "cert = /etc/corp.pem\n[install]\ntrusted-host = extra.example\n")
    environ = {"XDG_CONFIG_DIRS": str(tmp_path / "etc"), "PIP_PROXY": "http://proxy.corp:3128",
               "HTTPS_PROXY": "http://ignored:1"}
    settings = from_user(environ, tmp_path, tmp_path / "etc")
    assert settings.index_urls == ("https://global.example/simple", "https://extra.example/simple",
                                   "https://more.example/simple")
    assert (settings.cert, settings.proxy, settings.timeout) == ("/etc/corp.pem", "http://proxy.corp:3128", 7.0)
    assert settings.trusted("https://extra.example/simple/x/") and not settings.trusted("https://global.example/")
    overridden = from_user({**environ, "PIP_INDEX_URL": "https://env.example/simple", "PIP_CONFIG_FILE": str(
        write(tmp_path / "own.conf", "[global]\ntimeout = 9\n"))}, tmp_path, tmp_path / "etc")
    assert overridden.index_urls[0] == "https://env.example/simple" and overridden.timeout == 9.0


def test_the_proxy_variables_apply_where_pip_sets_none(tmp_path):
    settings = from_user({"XDG_CONFIG_DIRS": str(tmp_path), "https_proxy": "http://proxy.corp:8080"}, tmp_path, tmp_path / "etc")
    assert settings.proxy == "http://proxy.corp:8080"


def test_no_index_means_jobs_reach_none(tmp_path):
    assert from_user({"XDG_CONFIG_DIRS": str(tmp_path), "PIP_NO_INDEX": "1"}, tmp_path, tmp_path / "etc").index_urls == ()


@pytest.mark.parametrize("environ, says", [
    ({"PIP_INDEX_URL": "ftp://files.example/simple"}, "must be an https, http or file URL"),
    ({"PIP_INDEX_URL": "ftp://bob:hunter2@files.example/simple"}, "ftp://files.example/simple"),
    ({"PIP_TIMEOUT": "soon"}, "is not a number of seconds"),
])
def test_a_setting_that_cannot_be_used_is_one_config_error_without_its_credentials(tmp_path, environ, says):
    with pytest.raises(IndexSettingsError) as caught:
        from_user({"XDG_CONFIG_DIRS": str(tmp_path), **environ}, tmp_path, tmp_path / "etc")
    assert says in str(caught.value) and "hunter2" not in str(caught.value)
