"""`stage`: the objects a definition names, copied into the store from the folder they came from."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from pipelines.errors import ConfigError
from pipelines.local.staging import object_uris, stage
from pipelines.local.store import Store

REPO = Path(__file__).resolve().parents[3]
DEFINITION = {"Parameters": [{"Name": "InputDataUrl", "DefaultValue": "s3://bkt/data/leads.csv"}],
              "Steps": [{"Name": "P", "Arguments": {"ProcessingInputs": [
                  {"InputName": "code", "S3Input": {"S3Uri": "s3://bkt/code/prep.py"}},
                  {"InputName": "prefix", "S3Input": {"S3Uri": "s3://bkt/raw/"}},
                  {"InputName": "secret", "S3Input": {"S3Uri": "s3://bkt/code/passwd.txt"}},
                  {"InputName": "missing", "S3Input": {"S3Uri": "s3://bkt/code/gone.py"}}]}}]}


def test_only_object_uris_are_matched():
    assert list(object_uris(DEFINITION)) == ["s3://bkt/data/leads.csv", "s3://bkt/code/prep.py",
                                             "s3://bkt/code/passwd.txt", "s3://bkt/code/gone.py"]


def test_files_of_the_folder_are_copied_and_a_link_or_a_missing_file_is_listed(tmp_path, sentinel):
    folder = tmp_path / "from"
    folder.mkdir()
    (folder / "leads.csv").write_text("1,2\n")
    (folder / "prep.py").write_text("print('prep')\n")
    os.symlink(sentinel / "victim" / "keep.txt", folder / "passwd.txt")  # never followed
    store = Store(tmp_path / "store")
    staged = stage(DEFINITION, folder, store)
    assert [uri for uri, _ in staged.copied] == ["s3://bkt/data/leads.csv", "s3://bkt/code/prep.py"]
    assert staged.unmatched == ["s3://bkt/code/passwd.txt", "s3://bkt/code/gone.py"]
    assert store.path("s3://bkt/code/prep.py").read_text() == "print('prep')\n"
    assert not store.objects("s3://bkt/code/passwd.txt")
    with pytest.raises(ConfigError):
        stage(DEFINITION, folder / "prep.py", store)


def test_the_command_says_what_it_copied_what_it_did_not_find_and_what_to_run_next(tmp_path):
    import json

    (tmp_path / "def.json").write_text(json.dumps(DEFINITION))
    (tmp_path / "prep.py").write_text("print('prep')\n")
    done = subprocess.run([sys.executable, "-m", "pipelines.run", "stage", "--definition", str(tmp_path / "def.json"),
                           "--from", str(tmp_path), "--store", str(tmp_path / "store")], cwd=REPO,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == f"s3://bkt/code/prep.py <- {tmp_path / 'prep.py'}"
    assert lines[1].startswith(f"not in {tmp_path} ") and lines[1].endswith(
        "s3://bkt/data/leads.csv, s3://bkt/code/passwd.txt, s3://bkt/code/gone.py")
    assert lines[2] == f"Next: python -m pipelines.run --definition {tmp_path / 'def.json'} --store {tmp_path / 'store'}"
