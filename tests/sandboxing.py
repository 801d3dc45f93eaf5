"""Skip markers for tests of the job sandbox and of the R image: a test may skip only where its component is missing
and CI is not set; under ``CI=true`` it always runs (a skipped sandbox test in CI would be a hidden failure)."""

from __future__ import annotations

import os
import shutil

import pytest

from inference.image_programs import R_INSTALL
from pipelines.local import job_runtime
from pipelines.local.job_runtime.unsandboxed import mount_namespace_available

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
SANDBOXED = job_runtime.automatic().sandboxed

needs_bubblewrap = pytest.mark.skipif(
    not IN_CI and not SANDBOXED, reason=f"{job_runtime.automatic().notice} (CI runs this test)")
needs_container_paths = pytest.mark.skipif(
    not IN_CI and not SANDBOXED and not mount_namespace_available(),
    reason="neither bubblewrap nor a private mount namespace here: hardcoded /opt/ml paths cannot be mapped")
needs_r = pytest.mark.skipif(
    not IN_CI and shutil.which("Rscript") is None,
    reason=f"R is not installed here ({R_INSTALL}; CI runs this test)")
