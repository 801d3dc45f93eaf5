"""Model files the engine's XGBoost cannot read, read through the image that wrote them.

The built-in XGBoost images up to 1.7-1 write their models in XGBoost's old binary format (or pickle a
Booster holding it), which XGBoost 3.1 and later no longer load. Such a file is loaded once in its image's
environment, in the job runtime, and saved as JSON, which every later XGBoost loads.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Callable

from pipelines.errors import EnvironmentBuildError
from pipelines.local import job_runtime
from pipelines.local.environments import Environments

# processing.evaluate's loader reads a model file as the image's serving does (a pickle only if it is a Booster)
_CONVERT = ("from processing.evaluate import load_booster_file; "
            "load_booster_file(sys.argv[1]).save_model(sys.argv[2])")


class ModelFormatError(Exception):
    """A model file could not be read in its image's environment either."""


def converter(image: str, runtime: job_runtime.Runtime, environments: Environments,
              log: Callable[[str], None] = lambda line: None) -> Callable[[Path], Path] | None:
    """A function that rewrites a model file of ``image`` as JSON (next to it) in the image's environment;
    None when the image has no environment here (not in the image table, or image libraries off)."""
    try:
        environment = environments.for_image(image, log)
    except EnvironmentBuildError as exc:
        raise ModelFormatError(str(exc)) from None
    if environment is None:
        return None

    def convert(model_file: Path) -> Path:
        with tempfile.TemporaryDirectory(prefix="model-format-") as folder:
            opt_ml = Path(folder) / "opt-ml"
            (opt_ml / "model").mkdir(parents=True)
            shutil.copyfile(model_file, opt_ml / "model" / "xgboost-model")
            command = job_runtime.engine_code_command(_CONVERT, "/opt/ml/model/xgboost-model",
                                                      "/opt/ml/model/xgboost-model.json")
            spec = job_runtime.JobSpec(command, opt_ml, Path(folder), engine_code=True, python_env=environment.root)
            lines: list[str] = []
            ended = job_runtime.run(runtime, spec, lines.append, 300)
            if ended.exit_code != 0:
                raise ModelFormatError(f"{model_file.name}: its image's XGBoost could not read it either "
                                       f"({ended.last_line})")
            converted = model_file.with_name(model_file.name + ".json")
            shutil.copyfile(opt_ml / "model" / "xgboost-model.json", converted)
            return converted

    return convert

