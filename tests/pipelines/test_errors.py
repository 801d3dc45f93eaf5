"""The CLI's error boundary: one line and an exit code, never a traceback; a closed pipe says nothing."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
LOUD = ("import sys; from pipelines.errors import exit_code_of\n"
        "def listing():\n    for i in range(200000):\n        print('row', i)\n    return 0\n"
        "sys.exit(exit_code_of(listing))\n")


def test_output_piped_into_head_ends_quietly_with_sigpipes_status():
    result = subprocess.run(f"{sys.executable} -c \"{LOUD}\" | head -n 2; exit ${{PIPESTATUS[0]}}", shell=True,
                            executable="/bin/bash", cwd=REPO, capture_output=True, text=True, timeout=60)
    assert result.stdout == "row 0\nrow 1\n"
    assert result.stderr == ""  # no "Broken pipe", no "Exception ignored"
    assert result.returncode == 141  # 128 + SIGPIPE, as a program the signal ended
