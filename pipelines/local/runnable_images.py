"""Which steps the local engine cannot run because of their image, found before anything runs (``validate``, ``run``,
``retry`` and the studio's Start), one line per step naming the step, the image and the way forward.

A job runs here when it gives a ``ContainerEntrypoint``, when it is a framework image's script mode (training
``HyperParameters`` with ``sagemaker_program``), when its image is the built-in XGBoost algorithm
(``sagemaker-xgboost``), or when a local program stands in for its image (our own image, the R image, or one mapped
with ``--local-image-program`` / config ``local_image_programs``); the R image's stand-in needs this machine's R,
and without it the refusal says what to install. A processing job always needs its
``ContainerEntrypoint``, and a Spark processing image does not run here yet (its ``smspark-submit`` and Spark are
not on this machine). A Transform serves its model's image: the built-in XGBoost or a local program. Everything
else is refused, naming what the image is:

- the SageMaker built-in algorithms other than XGBoost, read from the installed SDK's image configuration
  (sagemaker-core's ``sagemaker/core/image_uri_config/*.json``): the configurations whose training images have no
  framework variants (no processors, Python versions or tag prefixes), each version a repository and its
  registries, which is how the SDK keeps its first-party algorithms (``kmeans``, ``pca``, ...) and XGBoost's
  legacy version 1 (repository ``xgboost``); ``ALTERNATIVES`` says what runs here instead;
- the Spark processing images: the repositories of the SDK's ``spark.json``;
- any other image.

An image given by an expression (a parameter) has its value only at run time: the executors check it then, and
the step fails with the same reason, prefixed ``NotRunnableLocally`` (a limit of the engine, never an
``AlgorithmError``, which blames the user's program).
"""

from __future__ import annotations

import re
from functools import cache
from typing import Any, Iterable, Mapping

from inference.hosting import is_builtin_xgboost
from inference.image_programs import image_program
from pipelines.errors import MissingToolError, NotRunnableLocallyError
from pipelines.local import sdk_image_config
from pipelines.local.executors.script_mode import PROGRAM, is_script_mode
from pipelines.validation.problems import Problem

RUNNABLE_ALGORITHM = "sagemaker-xgboost"  # the built-in algorithm the engine emulates
RULE = "local"  # the Problem rule of what the local engine cannot run
CLARIFY_CHECKS = ("DATA_BIAS", "MODEL_BIAS", "MODEL_EXPLAINABILITY")  # the ClarifyCheck types the engine runs
_IMAGE = re.compile(r"^(?P<account>\d{12})\.dkr\.ecr\.[a-z0-9-]+\.[a-z0-9.-]+/(?P<repository>[a-z0-9._/-]+)"
                    r"(?::[\w.-]+|@sha256:[0-9a-f]{64})?$")
_XGBOOST = 'the built-in XGBoost (image_uris.retrieve("xgboost", region, version="1.7-1"))'
# what runs locally instead of each built-in algorithm: the same kind of model, in a job the engine runs
ALTERNATIVES = {
    "blazingtext": "an SKLearn script (TfidfVectorizer with a linear classifier) or a PyTorch script",
    "factorization-machines": f"{_XGBOOST} on the same features, or a factorization machine in a PyTorch script",
    "forecasting-deepar": f"{_XGBOOST} on lagged features, or a PyTorch forecasting script",
    "image-classification": "a PyTorch script (torchvision's classification models)",
    "ipinsights": "a PyTorch script learning the entity embeddings",
    "kmeans": "an SKLearn processing or training script (sklearn.cluster.KMeans)",
    "knn": "an SKLearn script (sklearn.neighbors.KNeighborsClassifier or KNeighborsRegressor)",
    "lda": "an SKLearn script (sklearn.decomposition.LatentDirichletAllocation)",
    "linear-learner": f"{_XGBOOST}, or an SKLearn script (LinearRegression, LogisticRegression)",
    "ntm": "an SKLearn script (sklearn.decomposition.LatentDirichletAllocation or NMF)",
    "object-detection": "a PyTorch script (torchvision's detection models)",
    "object2vec": "a PyTorch script learning the pair embeddings",
    "pca": "an SKLearn processing or training script (sklearn.decomposition.PCA)",
    "randomcutforest": "an SKLearn script (sklearn.ensemble.IsolationForest)",
    "semantic-segmentation": "a PyTorch script (torchvision's segmentation models)",
    "seq2seq": "a PyTorch script",
    "xgboost": f"{_XGBOOST}, which the local engine runs",
}
_ANY_ALGORITHM = "an SKLearn or PyTorch script"  # an algorithm the SDK gained after ALTERNATIVES was written


def _registries(versions: Mapping[str, Any], plain_only: bool) -> dict[str, frozenset[str]]:
    """repository -> the accounts hosting it, of a configuration's versions (``plain_only``: the versions that
    are a repository and its registries, nothing else)."""
    found: dict[str, set[str]] = {}
    for entry in versions.values():
        if not isinstance(entry, dict) or "repository" not in entry:
            continue
        if plain_only and set(entry) != {"repository", "registries"}:
            continue
        found.setdefault(entry["repository"], set()).update(entry.get("registries", {}).values())
    return {repository: frozenset(accounts) for repository, accounts in found.items()}


@cache
def builtin_algorithms() -> dict[str, frozenset[str]]:
    """The SageMaker built-in algorithms the engine does not run: repository -> its registry accounts."""
    found: dict[str, frozenset[str]] = {}
    for name in sdk_image_config.names():
        config = sdk_image_config.config(name)
        training = config.get("training") if "training" in config else (
            config if "training" in config.get("scope", ()) else None)
        if isinstance(training, dict):
            for repository, accounts in _registries(training.get("versions", {}), plain_only=True).items():
                found[repository] = found.get(repository, frozenset()) | accounts
    found.pop(RUNNABLE_ALGORITHM, None)
    return found


@cache
def spark_images() -> dict[str, frozenset[str]]:
    """The Spark processing images: repository -> its registry accounts."""
    return _registries(sdk_image_config.config("spark").get("processing", {}).get("versions", {}), plain_only=False)


def _known(image: str, table: Mapping[str, frozenset[str]]) -> str | None:
    """The repository of ``image`` if the table has it, hosted in one of its accounts."""
    match = _IMAGE.match(image)
    if match and match["account"] in table.get(match["repository"], ()):
        return match["repository"]
    return None


def _algorithm(image: str, action: str) -> str | None:
    """Why a built-in algorithm's image cannot ``action`` (train, serve) here, with the way forward; or None."""
    algorithm = _known(image, builtin_algorithms())
    if algorithm is None:
        return None
    return (f"{image} is the SageMaker built-in algorithm {algorithm}, which the local engine cannot {action} (of the "
            f"built-in algorithms it runs XGBoost only): run the step on SageMaker, or locally use "
            f"{ALTERNATIVES.get(algorithm, _ANY_ALGORITHM)} instead")


def _spark(image: str) -> str | None:
    if _known(image, spark_images()) is None:
        return None
    return (f"{image} is a Spark processing image, which the local engine does not run yet (Spark and its "
            "smspark-submit are not on this machine): run the step on SageMaker, or locally write the work as a "
            "Python script of an SKLearn processing step (pandas)")


def training_refusal(arguments: Mapping[str, Any], image_programs: Mapping[str, str],
                     hyperparameters: str = "HyperParameters") -> tuple[str, str] | None:
    """(field, reason) if the local engine cannot run this training job (CreateTrainingJob ``arguments``; a Tuning
    step's TrainingJobDefinition with ``hyperparameters`` StaticHyperParameters); None if it can, or if its image
    is known only at run time."""
    spec = arguments.get("AlgorithmSpecification")
    spec = spec if isinstance(spec, dict) else {}
    hypers = arguments.get(hyperparameters)
    if spec.get("ContainerEntrypoint") or (isinstance(hypers, dict) and is_script_mode(hypers)):
        return None
    image = spec.get("TrainingImage")
    if image is None and isinstance(spec.get("AlgorithmName"), str):
        return ("AlgorithmSpecification.AlgorithmName",
                (f"{spec['AlgorithmName']} is an algorithm resource (your account's or AWS Marketplace's), which has "
                 "no local stand-in: run the step on SageMaker"))
    try:
        if _has_stand_in(image, image_programs):
            return None
    except MissingToolError as exc:
        return "AlgorithmSpecification.TrainingImage", str(exc)
    return "AlgorithmSpecification.TrainingImage", _algorithm(image, "train") or (
        f"{image} has no local stand-in, and the job gives no ContainerEntrypoint and no script-mode entry point "
        f"(HyperParameters {PROGRAM}): map a local program to it with --local-image-program "
        f"'{image}=COMMAND' (config local_image_programs), COMMAND being what the image runs as `train`, or run "
        "the step on SageMaker")


def processing_refusal(arguments: Mapping[str, Any]) -> tuple[str, str] | None:
    """(field, reason) if the local engine cannot run this processing job (CreateProcessingJob ``arguments``);
    None if it can, or if its image is known only at run time."""
    app = arguments.get("AppSpecification")
    app = app if isinstance(app, dict) else {}
    image = app.get("ImageUri")
    if not isinstance(image, str):
        return None
    reason = _spark(image)
    if reason is None and not app.get("ContainerEntrypoint"):
        reason = _algorithm(image, "run") or (
            f"{image}: the job gives no ContainerEntrypoint, and the local engine runs a processing job's entrypoint, "
            "not what its image would start: give one (a ScriptProcessor's command and code, or a Processor's "
            "entrypoint), or run the step on SageMaker")
    return ("AppSpecification.ImageUri", reason) if reason else None


def serving_refusal(image: Any, image_programs: Mapping[str, str]) -> str | None:
    """Why nothing here serves a model of ``image`` (a Transform's model), or None."""
    try:
        if _has_stand_in(image, image_programs):
            return None
    except MissingToolError as exc:
        return str(exc)
    return _algorithm(image, "serve") or (
        f"{image} has no local stand-in: map a local program to it with --local-image-program '{image}=COMMAND' "
        "(config local_image_programs), COMMAND being what the image runs as `serve`, or run the step on SageMaker")


def _has_stand_in(image: Any, image_programs: Mapping[str, str]) -> bool:
    """True when something here runs ``image`` (the built-in XGBoost, a local program standing in for it) or it is
    known only at run time; MissingToolError when its stand-in needs what this machine lacks (R for the R image)."""
    return not isinstance(image, str) or is_builtin_xgboost(image) or image_program(image, image_programs) is not None


def failure_reason(refusal: tuple[str, str]) -> str:
    """A step's FailureReason for a refusal found only at run time."""
    field, reason = refusal
    return f"{NotRunnableLocallyError.failure_prefix}: {field}: {reason}"


def problems(steps: Iterable[dict[str, Any]], image_programs: Mapping[str, str]) -> list[Problem]:
    """A problem for every step (``steps``: all of them, condition branches included) whose image the local engine
    cannot run: Training and Processing jobs, a Tuning step's training jobs, and the model a Transform serves
    (when it is a Model step's)."""
    steps = [step for step in steps if isinstance(step, dict)]
    by_name = {step.get("Name"): step for step in steps}
    found = []
    for step in steps:
        arguments = step.get("Arguments")
        arguments = arguments if isinstance(arguments, dict) else {}
        kind, name = step.get("Type"), step.get("Name")
        refusal, prefix = None, "Arguments."
        if kind == "Training":
            refusal = training_refusal(arguments, image_programs)
        elif kind == "Processing":
            refusal = processing_refusal(arguments)
        elif kind == "Tuning" and isinstance(arguments.get("TrainingJobDefinition"), dict):
            refusal = training_refusal(arguments["TrainingJobDefinition"], image_programs, "StaticHyperParameters")
            prefix = "Arguments.TrainingJobDefinition."
        elif kind == "Transform":
            refusal = _transform_refusal(arguments, by_name, image_programs)
        elif kind == "ClarifyCheck":
            refusal, prefix = clarify_refusal(step.get("CheckType")), ""
        elif kind == "QualityCheck":
            refusal = quality_check_refusal(arguments.get("Environment"))
        if refusal is not None:
            found.append(Problem(name, prefix + refusal[0], refusal[1], RULE))
    return found


def quality_check_refusal(environment: Any) -> tuple[str, str] | None:
    """(field, reason) if the local analyzer cannot honour a QualityCheck's settings (its Environment, as the SDK
    writes it): custom record preprocessing or post-analytics scripts, a dataset format it does not read."""
    if not isinstance(environment, dict):
        return None
    for variable in ("record_preprocessor_script", "post_analytics_processor_script"):
        if environment.get(variable):
            return (f"Environment.{variable}", "the local Model Monitor analyzer runs no custom scripts; run this "
                    "check on SageMaker, or without the script")
    dataset_format = environment.get("dataset_format")
    if isinstance(dataset_format, str) and not any(f'"{kind}"' in dataset_format for kind in ("csv", "json")):
        return ("Environment.dataset_format", f"{dataset_format[:80]}: the local analyzer reads csv and json (lines) "
                "datasets, not captured endpoint data")
    return None


def clarify_refusal(check_type: Any) -> tuple[str, str] | None:
    """(field, reason) if the local engine cannot run a ClarifyCheck step of ``check_type`` (known before anything
    runs: the SDK writes it as a literal)."""
    if isinstance(check_type, str) and check_type not in CLARIFY_CHECKS:
        return ("CheckType", f"{check_type}: not a Clarify check type; the local engine runs "
                f"{', '.join(CLARIFY_CHECKS)}")
    return None


def _transform_refusal(arguments: Mapping[str, Any], by_name: Mapping[Any, dict[str, Any]],
                       image_programs: Mapping[str, str]) -> tuple[str, str] | None:
    """The refusal of a Transform whose ModelName is a Model step's whose image nothing here serves."""
    model_name = arguments.get("ModelName")
    reference = model_name.get("Get") if isinstance(model_name, dict) else None
    match = re.fullmatch(r"Steps\.([A-Za-z0-9_-]+)\.ModelName", reference) if isinstance(reference, str) else None
    model = by_name.get(match[1]) if match else None
    if model is None or model.get("Type") != "Model":
        return None
    container = (model.get("Arguments") or {}).get("PrimaryContainer")
    if not isinstance(container, dict) or "ModelPackageName" in container:  # a registered version: known at run time
        return None
    reason = serving_refusal(container.get("Image"), image_programs)
    return ("ModelName", f"the model of step {match[1]!r}: {reason}") if reason else None


def refusal_error(found: list[Problem]) -> NotRunnableLocallyError:
    """One error naming every step the engine cannot run, one line each."""
    if len(found) == 1:
        return NotRunnableLocallyError(f"{found[0]}; nothing was run")
    listing = "\n".join(f"  {problem}" for problem in found)
    return NotRunnableLocallyError(f"the local engine cannot run {len(found)} steps of this definition (nothing was "
                                   f"run):\n{listing}")
