"""How jobs' ``pip install`` reaches a package index: the user's settings (``settings``) and a caching proxy on
loopback for each run (``proxy``)."""

from pipelines.local.package_index.proxy import PackageIndexProxy
from pipelines.local.package_index.settings import IndexSettings, IndexSettingsError, from_user

__all__ = ["IndexSettings", "IndexSettingsError", "PackageIndexProxy", "from_user"]
