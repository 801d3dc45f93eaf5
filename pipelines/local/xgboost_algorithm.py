"""An emulation of the built-in SageMaker XGBoost algorithm's training contract.

Used by the Training executor for the built-in image, as a program of its own:
``python -m pipelines.local.xgboost_algorithm --job-dir DIR`` trains one host's
share (and, with several hosts, starts XGBoost's collective tracker on loopback and
one worker process per host with data). Rules follow the open-source container
(sagemaker-xgboost-container): channel names and content types, strict hyperparameter
parsing with its error wording, label-first headerless CSV, early stopping on the
validation channel, ``[i]#011train-auc:..`` log lines, ``xgboost-model`` on the master.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import pickle
import re
import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import Any, Callable

from pipelines.local.xgboost_versions import VERSIONS, ImageVersion
from processing.evaluate import import_xgboost

CONTENT_TYPES = {
    "csv": "csv", "text/csv": "csv", "libsvm": "libsvm", "text/libsvm": "libsvm", "text/x-libsvm": "libsvm",
    "parquet": "parquet", "application/x-parquet": "parquet",
    "recordio-protobuf": "recordio-protobuf", "application/x-recordio-protobuf": "recordio-protobuf",
}
CHANNELS_ALLOWED = ("train", "validation", "code")
_INT = re.compile(r"^[+-]?\d+$")
_FLOAT = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")
EVAL_METRICS = ("rmse", "rmsle", "mae", "mape", "mphe", "logloss", "error", "merror", "mlogloss", "auc", "aucpr",
                "ndcg", "map", "poisson-nloglik", "gamma-nloglik", "cox-nloglik", "gamma-deviance",
                "tweedie-nloglik", "aft-nloglik", "interval-regression-accuracy")


class AlgorithmError(Exception):
    """The training job fails as the container would fail it (a client error)."""


def _choice(*values: str) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        if raw not in values:
            raise ValueError(f"must be one of {', '.join(values)}")
        return raw
    return parse


def _int(low: float | None = None) -> Callable[[str], int]:
    def parse(raw: str) -> int:
        if not _INT.fullmatch(raw.strip()):
            raise ValueError("is not an integer")
        value = int(raw)
        if low is not None and value < low:
            raise ValueError(f"must be >= {low}")
        return value
    return parse


def _float(low: float | None = None, high: float | None = None, low_open: bool = False) -> Callable[[str], float]:
    def parse(raw: str) -> float:
        if not _FLOAT.fullmatch(raw.strip()):
            raise ValueError("is not a number")
        value = float(raw)
        if low is not None and (value < low or (low_open and value == low)):
            raise ValueError(f"must be {'>' if low_open else '>='} {low}")
        if high is not None and value > high:
            raise ValueError(f"must be <= {high}")
        return value
    return parse


def _metrics(raw: str) -> list[str]:
    names = [m.strip() for m in raw.split(",") if m.strip()]
    for name in names:
        base = name.split("@")[0]
        if base not in EVAL_METRICS:
            raise ValueError(f"{name!r} is not a supported metric")
    return names


HYPERPARAMETERS: dict[str, Callable[[str], Any]] = {
    "num_round": _int(1), "csv_weights": _choice("0", "1"), "early_stopping_rounds": _int(1),
    "booster": _choice("gbtree", "gblinear", "dart"), "verbosity": _int(0), "nthread": _int(1),
    "eta": _float(0, 1), "gamma": _float(0), "max_depth": _int(0), "min_child_weight": _float(0),
    "max_delta_step": _float(0), "subsample": _float(0, 1, low_open=True),
    "colsample_bytree": _float(0, 1, low_open=True), "colsample_bylevel": _float(0, 1, low_open=True),
    "colsample_bynode": _float(0, 1, low_open=True), "lambda": _float(0), "alpha": _float(0),
    "tree_method": _choice("auto", "exact", "approx", "hist", "gpu_hist"), "sketch_eps": _float(0, 1),
    "scale_pos_weight": _float(0), "grow_policy": _choice("depthwise", "lossguide"), "max_leaves": _int(0),
    "max_bin": _int(2), "monotone_constraints": str, "interaction_constraints": str,
    "objective": str, "num_class": _int(2), "base_score": _float(), "eval_metric": _metrics,
    "seed": _int(), "num_parallel_tree": _int(1), "sampling_method": _choice("uniform", "gradient_based"),
    "sample_type": _choice("uniform", "weighted"), "normalize_type": _choice("tree", "forest"),
    "rate_drop": _float(0, 1), "one_drop": _choice("0", "1"), "skip_drop": _float(0, 1),
    "aft_loss_distribution": _choice("normal", "logistic", "extreme"), "aft_loss_distribution_scale": _float(0),
    "silent": _choice("0", "1"), "dsplit": _choice("row", "col"), "lambda_bias": _float(0),
    "predictor": _choice("auto", "cpu_predictor", "gpu_predictor"), "process_type": _choice("default", "update"),
    "refresh_leaf": _choice("0", "1"), "tweedie_variance_power": _float(1, 2, low_open=True), "updater": str,
    "_tuning_objective_metric": str, "save_model_on_termination": _choice("true", "false"),
    "deterministic_histogram": _choice("true", "false"), "single_precision_histogram": _choice("true", "false"),
    "prob_buffer_row": _float(1), "use_dask_gpu_training": _choice("true", "false"), "_kfold": _int(2),
    "_num_cv_round": _int(1),
}
# read by the container itself, never passed to XGBoost
CONTAINER_ONLY = {"num_round", "early_stopping_rounds", "csv_weights", "save_model_on_termination",
                  "_tuning_objective_metric", "_num_cv_round", "use_dask_gpu_training"}
# accepted by older images, unknown to the XGBoost installed here: dropped, with a line in the log
NOT_IN_INSTALLED_XGBOOST = {"silent", "dsplit", "lambda_bias", "predictor", "single_precision_histogram",
                            "deterministic_histogram", "prob_buffer_row"}


def parse_hyperparameters(raw: dict[str, Any], version: ImageVersion = VERSIONS["1.7-1"]) -> dict[str, Any]:
    """Validate SageMaker's string hyperparameters as the container of ``version`` does; AlgorithmError on
    the first problem."""
    parsed: dict[str, Any] = {}
    for name, value in raw.items():
        if name not in HYPERPARAMETERS or name not in version.hyperparameters:
            raise AlgorithmError(f"Extraneous hyperparameter found: {name}"
                                 + (f" (image version {version.tag} does not accept it)" if name in HYPERPARAMETERS else ""))
        if not isinstance(value, str):
            raise AlgorithmError(f"Hyperparameter {name}: value {value!r} must be a string")
        try:
            parsed[name] = HYPERPARAMETERS[name](value)
        except ValueError as exc:
            raise AlgorithmError(f"Hyperparameter {name}: value {value!r} {exc}") from None
    if "num_round" not in parsed:
        raise AlgorithmError("Missing required hyperparameter: num_round")
    objective = parsed.get("objective", "reg:squarederror")
    if objective not in version.objectives:
        raise AlgorithmError(f"Hyperparameter objective: value {objective!r} must be one of {', '.join(version.objectives)}"
                             f" (image version {version.tag})")
    if parsed.get("tree_method", "auto") not in version.tree_methods:
        raise AlgorithmError(f"Hyperparameter tree_method: value {parsed['tree_method']!r} must be one of "
                             f"{', '.join(version.tree_methods)} (image version {version.tag})")
    if "_kfold" in parsed:
        raise AlgorithmError("Hyperparameter _kfold (k-fold cross-validation training) is valid for the algorithm "
                             "but not emulated locally")
    if objective.startswith("multi:") and "num_class" not in parsed:
        raise AlgorithmError(f"Hyperparameter objective {objective} requires num_class")
    if any(m.startswith("auc") for m in parsed.get("eval_metric", [])) and not objective.startswith(("binary:", "rank:")):
        raise AlgorithmError(f"Metric 'auc' can only be applied to classification and ranking problems, not {objective}")
    return parsed


def content_kind(content_type: str | None) -> str:
    """The data format of a channel's ContentType (missing means libsvm, as in the container)."""
    kind = CONTENT_TYPES.get((content_type or "text/libsvm").split(";")[0].strip().lower())
    if kind is None:
        raise AlgorithmError(f"Content type {content_type} is not supported. Valid content types: "
                             + ", ".join(sorted(CONTENT_TYPES)))
    if kind in ("parquet", "recordio-protobuf"):
        raise AlgorithmError(f"Content type {content_type} is valid for the algorithm but not emulated locally; "
                             "use text/csv or text/libsvm for local runs")
    return kind


def check_channels(names: list[str]) -> None:
    """``train`` is required; only train, validation and code are allowed."""
    for name in names:
        if name not in CHANNELS_ALLOWED:
            raise AlgorithmError(f"Extraneous channel found: {name}")
    if "train" not in names:
        raise AlgorithmError("Channel 'train' is required")


def channel_files(directory: Path, channel: str) -> list[Path]:
    """The data files of a channel; hidden files are an error, as in the container."""
    if not directory.is_dir():
        return []
    files = sorted(p for p in directory.rglob("*") if p.is_file())
    hidden = [p for p in files if any(part.startswith(".") for part in p.relative_to(directory).parts)]
    if hidden:
        raise AlgorithmError(f"Hidden file found in the data path of channel {channel}: {hidden[0].name}")
    return [p for p in files if p.stat().st_size > 0]


def load_matrix(files: list[Path], kind: str, csv_weights: bool, channel: str) -> Any:
    """A DMatrix from label-first CSV (delimiter sniffed from the first line) or libsvm files."""
    import numpy as np
    import pandas as pd
    xgb = import_xgboost()

    if kind == "libsvm":
        if len(files) > 1:  # DMatrix reads one libsvm file: concatenate the channel's files
            combined = files[0].parent.parent / f".{channel}-combined.libsvm"
            with open(combined, "wb") as out:
                for f in files:
                    out.write(f.read_bytes().rstrip(b"\n") + b"\n")
            files = [combined]
        return xgb.DMatrix(f"{files[0]}?format=libsvm")
    with open(files[0], encoding="utf-8", errors="replace") as handle:
        first = handle.readline()
    try:
        delimiter = csv.Sniffer().sniff(first, delimiters=",\t;| ").delimiter
    except csv.Error:
        delimiter = ","
    frames = [pd.read_csv(f, header=None, sep=delimiter) for f in files]
    data = pd.concat(frames, ignore_index=True)
    if data.shape[1] < 2 + int(csv_weights):
        raise AlgorithmError(f"Channel {channel}: each CSV row needs the label and at least one feature")
    try:
        values = data.to_numpy(dtype=np.float32)
    except ValueError as exc:
        raise AlgorithmError(f"Channel {channel}: non-numeric value in CSV data ({exc}); the algorithm expects "
                             "headerless numeric CSV with the label in the first column") from None
    if np.isnan(values[:, 0]).any():
        raise AlgorithmError(f"Channel {channel}: a row has no label (first column empty)")
    start = 2 if csv_weights else 1
    weights = values[:, 1] if csv_weights else None
    return xgb.DMatrix(values[:, start:], label=values[:, 0], weight=weights, missing=np.nan)


class MetricLog:
    """An XGBoost callback printing the container's log lines and remembering the last metrics (a callback
    object from XGBoost 1.3 on, a function of the training state before)."""

    def __init__(self) -> None:
        xgb = import_xgboost()
        self.last: dict[str, float] = {}
        base = getattr(xgb.callback, "TrainingCallback", None)
        if base is None:
            self.callback: Any = lambda env: self._log(env.iteration, [(n, v) for n, v in env.evaluation_result_list])
            return

        class _Callback(base):
            def after_iteration(inner, model: Any, epoch: int, evals_log: dict) -> bool:  # noqa: N805
                self._log(epoch, [(f"{data}-{metric}", history[-1]) for data, metrics in evals_log.items()
                                  for metric, history in metrics.items()])
                return False

        self.callback = _Callback()

    def _log(self, epoch: int, values: list[tuple[str, float]]) -> None:
        self.last = {name.replace("-", ":", 1): float(v) for name, v in values}
        print(f"[{epoch}]" + "".join(f"#011{name}:{v:.5f}" for name, v in values), flush=True)


def train_host(job_dir: Path, tracker_args: dict[str, Any] | None) -> None:
    """Train on this host's channels; with ``tracker_args``, inside XGBoost's collective."""
    xgb = import_xgboost()

    spec = json.loads((job_dir / "job.json").read_text())
    version = VERSIONS[spec["image_version"]]
    hyper = parse_hyperparameters(spec["hyperparameters"], version)
    kind = spec["content_kind"]
    csv_weights = hyper.get("csv_weights") == "1"
    host_dir = Path(spec["host_dir"])
    train_files = channel_files(host_dir / "train", "train")
    validation_files = channel_files(host_dir / "validation", "validation")
    dtrain = load_matrix(train_files, kind, csv_weights, "train")
    evals = [(dtrain, "train")]
    if validation_files:
        evals.append((load_matrix(validation_files, kind, csv_weights, "validation"), "validation"))
    params = xgboost_params(hyper, version, distributed=tracker_args is not None)
    early = hyper.get("early_stopping_rounds") if validation_files and params.get("eval_metric") else None
    log = MetricLog()

    def fit() -> Any:
        return xgb.train(params, dtrain, num_boost_round=hyper["num_round"], evals=evals,
                         early_stopping_rounds=early, callbacks=[log.callback], verbose_eval=False)

    if tracker_args is None:
        booster = fit()
        rank = 0
    else:
        with xgb.collective.CommunicatorContext(**tracker_args):
            booster = fit()
            rank = xgb.collective.get_rank()
    # XGBoost before 1.4 can neither count nor slice a Booster's rounds: its model keeps them all, as the image's did
    if (early is not None and hasattr(booster, "num_boosted_rounds") and getattr(booster, "best_iteration", None)
            is not None and booster.best_iteration + 1 < booster.num_boosted_rounds()):
        print(f"Stopping. Best iteration: [{booster.best_iteration}]", flush=True)
        booster = booster[: booster.best_iteration + 1]
    if rank == 0:
        model_dir = Path(spec["model_dir"])
        model_dir.mkdir(parents=True, exist_ok=True)
        save_model(booster, model_dir / "xgboost-model", version)
        Path(spec["metrics_file"]).write_text(json.dumps(log.last))


def xgboost_params(hyper: dict[str, Any], version: ImageVersion, distributed: bool) -> dict[str, Any]:
    """The parameters given to XGBoost, with the defaults of the image's own XGBoost where 2.0 changed them."""
    unknown = NOT_IN_INSTALLED_XGBOOST if _installed_major() >= 2 else set()  # the image's own XGBoost knows them
    params = {k: v for k, v in hyper.items() if k not in CONTAINER_ONLY and k not in unknown}
    dropped = sorted(set(hyper) & unknown)
    if dropped:
        print(f"{', '.join(dropped)}: accepted by image version {version.tag} (XGBoost {version.xgboost}), unknown to "
              "the XGBoost installed here; not applied", flush=True)
    if params.get("tree_method") == "gpu_hist":
        raise AlgorithmError("Hyperparameter tree_method gpu_hist needs a GPU instance; local runs have no GPU")
    if version.before_xgboost_2:
        if params.get("tree_method", "auto") == "auto":  # XGBoost 1.x: exact on one machine, approx on several
            params["tree_method"] = "approx" if distributed else "exact"
        params.setdefault("base_score", 0.5)
    if "eval_metric" in params:
        params["eval_metric"] = list(params["eval_metric"])
    elif str(params.get("objective", "")).startswith("binary:"):
        params["eval_metric"] = [version.binary_default_metric]
    return params


def _installed_major() -> int:
    return int(import_xgboost().__version__.split(".")[0])


def save_model(booster: Any, path: Path, version: ImageVersion) -> None:
    """``xgboost-model`` as the image writes it: pickled Booster, or ``save_model`` (no file extension)."""
    if version.pickles_model:
        with open(path, "wb") as handle:
            pickle.dump(booster, handle, protocol=4)
        return
    with warnings.catch_warnings():  # the container's file name has no extension; the format is XGBoost's default
        warnings.simplefilter("ignore")
        booster.save_model(str(path))


WORKER_MODULE = "pipelines.local.xgboost_algorithm"  # not __name__: that is "__main__" when run with -m


def run_job(job_dir: Path) -> int:
    """Train with one process per host that has data; returns 0, or exits with a failed worker's code."""
    spec = json.loads((job_dir / "job.json").read_text())
    hosts = spec["hosts_with_data"]
    if len(hosts) == 1:
        train_host(job_dir_for(job_dir, spec, hosts[0]), None)
        return 0
    from xgboost.tracker import RabitTracker

    tracker = RabitTracker(host_ip="127.0.0.1", n_workers=len(hosts))
    tracker.start()
    worker_args = tracker.worker_args()
    print(f"Distributed training on {len(hosts)} hosts ({', '.join(hosts)}) through the collective tracker "
          f"at {worker_args.get('dmlc_tracker_uri')}:{worker_args.get('dmlc_tracker_port')}", flush=True)
    workers = [start_worker(job_dir_for(job_dir, spec, host), worker_args, own_log=(i > 0)) for i, host in enumerate(hosts)]
    failed = wait_for_workers(workers)
    if failed is not None:
        host_job, code = failed
        # a failed worker's peers wait forever in the collective: they were stopped above, and the
        # tracker, waiting for a shutdown nobody will send, ends with this process
        log = host_job / "worker.log"
        if log.exists():  # the first host's output, its error last, is already the job's log
            lines = log.read_text(encoding="utf-8", errors="replace").strip().splitlines()
            print(f"{host_job.name} failed with exit code {code}", file=sys.stderr)
            print(lines[-1] if lines else f"AlgorithmError: {host_job.name} exited with code {code}", file=sys.stderr)
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)  # the tracker's finaliser would print a backtrace last and bury the worker's error
    tracker.wait_for()
    return 0


def start_worker(host_job: Path, tracker_args: dict[str, Any], own_log: bool) -> tuple[Path, subprocess.Popen]:
    """Start one host's worker: the first writes to the job's log, every other to its own worker.log.

    On SageMaker each host has its own log stream; sharing one pipe would interleave their lines.
    """
    command = [sys.executable, "-m", WORKER_MODULE, "--job-dir", str(host_job), "--tracker", json.dumps(tracker_args)]
    if not own_log:
        return host_job, subprocess.Popen(command)
    with open(host_job / "worker.log", "w", encoding="utf-8") as log:
        return host_job, subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)


def wait_for_workers(workers: list[tuple[Path, subprocess.Popen]]) -> tuple[Path, int] | None:
    """Wait for every worker; at the first that fails, stop the rest and return (its job dir, exit code)."""
    running = list(workers)
    while running:
        for host_job, process in list(running):
            code = process.poll()
            if code is None:
                continue
            running.remove((host_job, process))
            if code != 0:
                for _, other in running:
                    other.kill()
                    other.wait()
                return host_job, code
        time.sleep(0.05)
    return None


def job_dir_for(job_dir: Path, spec: dict[str, Any], host: str) -> Path:
    """Write the per-host job.json (pointing at that host's channel directory) and return its directory."""
    host_job = job_dir / "hosts" / host
    host_job.mkdir(parents=True, exist_ok=True)
    (host_job / "job.json").write_text(json.dumps({**spec, "host_dir": str(Path(spec["channels_root"]) / host)}))
    return host_job


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Local emulation of the built-in XGBoost training algorithm")
    parser.add_argument("--job-dir", type=Path, required=True)
    parser.add_argument("--tracker", help="collective tracker arguments (JSON), for a worker of a distributed job")
    args = parser.parse_args(argv)
    try:
        if args.tracker:
            train_host(args.job_dir, json.loads(args.tracker))
            return 0
        return run_job(args.job_dir)
    except AlgorithmError as exc:
        print(f"ClientError: {exc}", file=sys.stderr, flush=True)
        return 2
    except Exception as exc:  # noqa: BLE001 - XGBoost's errors end in a native backtrace: report their first line
        if type(exc).__name__ != "XGBoostError":
            raise
        print(f"AlgorithmError: {xgboost_error_line(exc)}", file=sys.stderr, flush=True)
        return 1


_XGBOOST_PREFIX = re.compile(r"^\[\d{2}:\d{2}:\d{2}\] (\S+:\d+: )?")


def xgboost_error_line(exc: BaseException) -> str:
    """The algorithm's own message in an XGBoostError: its first line, without timestamp, source location
    or the native stack trace that follows."""
    lines = [line.strip() for line in str(exc).splitlines()]
    message = next((line for line in lines if line and not line.startswith(("[bt]", "Stack trace"))), type(exc).__name__)
    return _XGBOOST_PREFIX.sub("", message)


if __name__ == "__main__":
    sys.exit(main())
