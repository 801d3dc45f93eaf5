"""The package index proxy as jobs' pip uses it: real pip, a real index on loopback, the cache on disk."""

from __future__ import annotations

import base64
import hashlib
import os
import subprocess
import sys
from pathlib import Path


from pipelines.local.package_index import IndexSettings, PackageIndexProxy
from pipelines.local.package_index.proxy import DOWNLOADS

WHEEL_PATH = "/packages/tinypkg-1.0-py3-none-any.whl"


def pip_install(proxy: PackageIndexProxy, target: Path, *names: str) -> subprocess.CompletedProcess:
    """The engine's pip, configured only by what a job gets from the proxy (not by this machine's pip settings)."""
    environment = {"PATH": os.environ["PATH"], "HOME": str(target.parent), "PIP_CONFIG_FILE": os.devnull,
                   "PIP_RETRIES": "0", **proxy.job_environment()}
    return subprocess.run([sys.executable, "-m", "pip", "install", "--no-cache-dir", "--target", str(target), *names],
                          env=environment, capture_output=True, text=True, timeout=120)


def test_pip_installs_through_the_proxy_and_the_next_run_downloads_nothing(package_index, tmp_path):
    cache = tmp_path / "cache"
    with PackageIndexProxy(IndexSettings((package_index.url,)), cache) as proxy:
        first = pip_install(proxy, tmp_path / "one", "tinypkg")
    assert first.returncode == 0, first.stderr
    assert (tmp_path / "one" / "tinypkg" / "__init__.py").read_text() == "VALUE = 1\n"
    with PackageIndexProxy(IndexSettings((package_index.url,)), cache) as proxy:  # the next run: a new proxy
        second = pip_install(proxy, tmp_path / "two", "tinypkg")
    assert second.returncode == 0, second.stderr
    assert package_index.requests[WHEEL_PATH] == 1  # downloaded once, kept by its hash
    assert package_index.requests["/simple/tinypkg/"] == 2  # the page is read again: a new release would be seen
    kept = list((cache / DOWNLOADS / "files").rglob("*"))
    digest = hashlib.sha256((package_index.folder / "tinypkg-1.0-py3-none-any.whl").read_bytes()).hexdigest()
    assert [p.name for p in kept if p.is_file()] == [digest]


def test_an_unreachable_index_still_gives_what_an_earlier_run_installed(package_index, tmp_path):
    cache = tmp_path / "cache"
    with PackageIndexProxy(IndexSettings((package_index.url,)), cache) as proxy:
        assert pip_install(proxy, tmp_path / "one", "tinypkg").returncode == 0
    package_index.down = True
    with PackageIndexProxy(IndexSettings((package_index.url,)), cache) as proxy:
        again = pip_install(proxy, tmp_path / "two", "tinypkg")
        never = pip_install(proxy, tmp_path / "three", "otherpkg")
    assert again.returncode == 0, again.stderr
    assert never.returncode != 0 and "otherpkg" in never.stderr


def test_a_file_that_does_not_match_its_published_hash_is_refused_and_never_kept(package_index, tmp_path):
    good = package_index.page
    package_index.page = lambda project: (good(project) or "").split("#sha256=")[0] + "#sha256=" + "0" * 64 + '">x</a>'
    cache = tmp_path / "cache"
    with PackageIndexProxy(IndexSettings((package_index.url,)), cache) as proxy:
        done = pip_install(proxy, tmp_path / "one", "tinypkg")
    assert done.returncode != 0 and "hash" in done.stderr.lower()
    assert not [p for p in (cache / DOWNLOADS / "files").rglob("*") if p.is_file()]


def test_credentials_in_an_index_url_reach_the_index_but_never_the_job_or_the_cache(package_index, tmp_path):
    host = package_index.url.split("//", 1)[1]
    settings = IndexSettings((f"http://alice:s3cret-token@{host}",))
    cache = tmp_path / "cache"
    with PackageIndexProxy(settings, cache) as proxy:
        environment = proxy.job_environment()
        done = pip_install(proxy, tmp_path / "one", "tinypkg")
    assert done.returncode == 0, done.stderr
    assert "s3cret" not in repr(environment)
    expected = "Basic " + base64.b64encode(b"alice:s3cret-token").decode()
    assert package_index.authorizations and set(package_index.authorizations) == {expected}  # the page and the file's host
    assert not any(b"s3cret" in p.read_bytes() for p in cache.rglob("*") if p.is_file())


def test_every_index_is_offered_to_the_job_in_order_and_no_index_means_none(package_index, tmp_path):
    settings = IndexSettings((package_index.url, "https://mirror.example/simple"))
    with PackageIndexProxy(settings, tmp_path / "cache") as proxy:
        environment = proxy.job_environment()
    assert environment["PIP_INDEX_URL"].endswith("/0/") and environment["PIP_EXTRA_INDEX_URL"].endswith("/1/")
    with PackageIndexProxy(IndexSettings(()), tmp_path / "cache") as proxy:
        assert proxy.job_environment()["PIP_NO_INDEX"] == "1"
