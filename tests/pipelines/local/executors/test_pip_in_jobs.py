"""``pip install`` inside a job, as in its image: into the job's own layer, from the user's index through the
run's proxy; the cached environment and the next job stay clean; network isolation stops it."""

from __future__ import annotations

import importlib.util
import sysconfig
from pathlib import Path


from pipelines.local.environments import Environments
from pipelines.local.package_index import IndexSettings
from tests.pipelines.local.helpers import definition, engine, script_step
from tests.sandboxing import needs_bubblewrap

RESULT = "pathlib.Path('/opt/ml/processing/out/result.txt').write_text"

INSTALLS = ("import pathlib, subprocess, sys\n"
            "def install(command, shell=False):\n"
            "    done = subprocess.run(command, capture_output=True, text=True, shell=shell)\n"
            "    assert done.returncode == 0, done.stdout + done.stderr\n"
            "install([sys.executable, '-m', 'pip', 'install', '--retries', '0', 'tinypkg'])\n"
            "install(['pip', 'install', '--retries', '0', 'otherpkg'])\n"
            "install('python -m pip install --retries 0 thirdpkg', shell=True)\n"
            "import tinypkg, otherpkg, thirdpkg\n"
            f"{RESULT}(f'{{tinypkg.VALUE}} {{otherpkg.VALUE}} {{thirdpkg.VALUE}}')\n")

NEXT_JOB = ("import importlib.util, pathlib\n"
            f"{RESULT}(repr([importlib.util.find_spec(n) is None for n in ('tinypkg', 'otherpkg', 'thirdpkg')]))\n")

ISOLATED = ("import pathlib, subprocess, sys\n"
            "done = subprocess.run([sys.executable, '-m', 'pip', 'install', '--retries', '0', '--timeout', '5', "
            "'tinypkg'], capture_output=True, text=True)\n"
            f"{RESULT}(str(done.returncode))\n")


def output(store_dir, record, step):
    return (store_dir / "s3" / "bkt" / "runs" / record.execution_id / step / "result.txt").read_text()


@needs_bubblewrap
def test_a_job_installs_with_pip_into_its_own_layer_and_the_next_job_starts_clean(package_index, tmp_path):
    isolated = script_step("Isolated", ISOLATED)
    isolated["Arguments"]["NetworkConfig"] = {"EnableNetworkIsolation": True}
    document = definition(script_step("Installs", INSTALLS), script_step("Next", NEXT_JOB, depends_on=("Installs",)),
                          isolated)
    run, lines = engine(tmp_path / "store", environments=Environments(image_libraries="engine"),
                        package_index=IndexSettings((package_index.url,)))
    record = run.run(document, "pip-in-jobs", {})
    assert record.status == "Succeeded", [s.failure_reason for s in record.steps] + lines[-20:]
    assert output(tmp_path / "store", record, "Installs") == "1 2 3"
    assert output(tmp_path / "store", record, "Next") == "[True, True, True]"
    assert output(tmp_path / "store", record, "Isolated") != "0"  # no network: no install, as on SageMaker
    assert package_index.requests["/simple/tinypkg/"] == 1  # the isolated job's pip never reached the index
    # the interpreter's libraries, which the jobs saw below their layers, are unchanged; no layer is left
    assert importlib.util.find_spec("tinypkg") is None
    assert not list((tmp_path / "store").rglob("tinypkg*"))
    assert not list(Path(sysconfig.get_paths()["purelib"]).glob("tinypkg*"))
