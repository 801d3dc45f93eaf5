"""The built-in XGBoost image versions the local emulation knows, each as its container behaves.

Read from the container's source (aws/sagemaker-xgboost-container, the 0.90-2 branch and the tags
v1.0-1 ... v3.0-5): ``algorithm_mode/hyperparameter_validation.py`` for the names, objectives and tree
methods each version accepts, ``algorithm_mode/train.py`` for how it writes ``xgboost-model``.

| image  | XGBoost | xgboost-model written with         | accepts, unlike the next version        |
|--------|---------|------------------------------------|-----------------------------------------|
| 0.90-2 | 0.90    | pickle.dump(Booster)               | silent; no monotone/interaction constr. |
| 1.0-1  | 1.0     | pickle.dump(Booster)               | silent                                  |
| 1.2-2  | 1.2     | pickle.dump(Booster, protocol=4)   | survival:aft, gpu_hist from here on     |
| 1.3-1  | 1.3     | Booster.save_model (binary)        | sampling_method from here on            |
| 1.5-1  | 1.5     | Booster.save_model (binary)        | single_precision_histogram (last)       |
| 1.7-1  | 1.7.4   | Booster.save_model (binary)        | use_dask_gpu_training from here on      |
| 3.0-5  | 3.0.5   | Booster.save_model (UBJSON)        | reg:absoluteerror                       |

Locally every version trains with the installed XGBoost; what differs by version is emulated: the
accepted hyperparameters and values, the defaults XGBoost 2.0 changed (``tree_method`` auto meant exact on
one machine and approx on several, ``base_score`` was 0.5; binary objectives logged ``error`` by default
before 1.3), and the model file: pickled for the versions that pickle, ``save_model`` (UBJSON, which the
installed XGBoost writes; the 1.3-1 to 1.7-1 images write XGBoost's older binary format) for the rest.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_OLD_OBJECTIVES = ("binary:logistic", "binary:logitraw", "binary:hinge", "count:poisson", "multi:softmax",
                   "multi:softprob", "rank:pairwise", "rank:ndcg", "rank:map", "reg:linear", "reg:squarederror",
                   "reg:logistic", "reg:gamma", "reg:tweedie", "survival:cox")
_COMMON = frozenset({
    "_tuning_objective_metric", "alpha", "base_score", "booster", "colsample_bylevel", "colsample_bynode",
    "colsample_bytree", "csv_weights", "dsplit", "early_stopping_rounds", "eta", "eval_metric", "gamma",
    "grow_policy", "lambda", "lambda_bias", "max_bin", "max_delta_step", "max_depth", "max_leaves",
    "min_child_weight", "normalize_type", "nthread", "num_class", "num_parallel_tree", "num_round", "objective",
    "one_drop", "predictor", "process_type", "rate_drop", "refresh_leaf", "sample_type", "scale_pos_weight", "seed",
    "sketch_eps", "skip_drop", "subsample", "tree_method", "tweedie_variance_power", "updater", "verbosity"})
_V1_0 = _COMMON | {"silent", "interaction_constraints", "monotone_constraints", "save_model_on_termination"}
_V1_2 = (_V1_0 - {"silent"}) | {"_kfold", "_num_cv_round", "aft_loss_distribution", "aft_loss_distribution_scale",
                                "deterministic_histogram", "single_precision_histogram"}
_V1_3 = _V1_2 | {"prob_buffer_row", "sampling_method"}
_V1_7 = (_V1_3 - {"single_precision_histogram"}) | {"use_dask_gpu_training"}
_NEW_OBJECTIVES = _OLD_OBJECTIVES + ("reg:squaredlogerror", "reg:pseudohubererror", "survival:aft")


@dataclass(frozen=True)
class ImageVersion:
    """How one image version of the built-in algorithm behaves."""

    tag: str
    xgboost: str
    pickles_model: bool
    hyperparameters: frozenset[str]
    objectives: tuple[str, ...]
    tree_methods: tuple[str, ...]

    @property
    def before_xgboost_2(self) -> bool:
        """Versions whose XGBoost had the pre-2.0 defaults (tree_method auto, base_score 0.5)."""
        return not self.xgboost.startswith("3.")

    @property
    def binary_default_metric(self) -> str:
        """The metric a binary objective logs when no eval_metric is given (XGBoost 1.3 changed it)."""
        return "error" if self.tag in ("0.90-2", "1.0-1", "1.2-2") else "logloss"

    @property
    def model_format(self) -> str:
        return "pickle" if self.pickles_model else "Booster.save_model"


VERSIONS: dict[str, ImageVersion] = {v.tag: v for v in (
    ImageVersion("0.90-2", "0.90", True, _COMMON | {"silent"}, _OLD_OBJECTIVES, ("auto", "exact", "approx", "hist")),
    ImageVersion("1.0-1", "1.0", True, _V1_0, _OLD_OBJECTIVES + ("reg:squaredlogerror",),
                 ("auto", "exact", "approx", "hist")),
    ImageVersion("1.2-2", "1.2", True, _V1_2, _NEW_OBJECTIVES, ("auto", "exact", "approx", "hist", "gpu_hist")),
    ImageVersion("1.3-1", "1.3", False, _V1_3, _NEW_OBJECTIVES, ("auto", "exact", "approx", "hist", "gpu_hist")),
    ImageVersion("1.5-1", "1.5", False, _V1_3, _NEW_OBJECTIVES, ("auto", "exact", "approx", "hist", "gpu_hist")),
    ImageVersion("1.7-1", "1.7.4", False, _V1_7, _NEW_OBJECTIVES, ("auto", "exact", "approx", "hist", "gpu_hist")),
    ImageVersion("3.0-5", "3.0.5", False, _V1_7, _NEW_OBJECTIVES + ("reg:absoluteerror",),
                 ("auto", "exact", "approx", "hist", "gpu_hist")),
)}
_TAG = re.compile(r":(\d+\.\d+-\d+)(?:-[\w.-]+)?$")


class UnknownImageVersionError(ValueError):
    """The image names a version of the built-in algorithm that the emulation does not know."""


def version_of(image: str) -> ImageVersion:
    """The version an image URI names (``...sagemaker-xgboost:1.7-1`` or ``:1.0-1-cpu-py3``)."""
    match = _TAG.search(image)
    version = VERSIONS.get(match.group(1)) if match else None
    if version is None:
        shown = match.group(1) if match else image.rsplit(":", 1)[-1]
        raise UnknownImageVersionError(f"image version {shown!r} of the built-in XGBoost algorithm is not emulated "
                                       f"locally; known versions: {', '.join(VERSIONS)}")
    return version
