"""The built-in XGBoost emulation: the container's rules, on real files and real worker processes."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from pipelines import sample_data
from pipelines.local import xgboost_algorithm as algo
from pipelines.local.xgboost_versions import VERSIONS, UnknownImageVersionError, version_of


@pytest.mark.parametrize("raw, message", [
    ({"num_round": "10", "learning_rate": "0.1"}, "Extraneous hyperparameter found: learning_rate"),
    ({"num_round": "ten"}, "Hyperparameter num_round: value 'ten' is not an integer"),
    ({"num_round": "0"}, "Hyperparameter num_round: value '0' must be >= 1"),
    ({"num_round": "5", "eta": "1.5"}, "Hyperparameter eta: value '1.5' must be <= 1"),
    ({"num_round": "5", "subsample": "0"}, "Hyperparameter subsample: value '0' must be > 0"),
    ({"num_round": "5", "objective": "binary:nope"}, "Hyperparameter objective: value 'binary:nope' must be one of"),
    ({"num_round": "5", "eval_metric": "auc,bogus"}, "Hyperparameter eval_metric: value 'auc,bogus' 'bogus' is not"),
    ({"num_round": 5}, "Hyperparameter num_round: value 5 must be a string"),
    ({"eta": "0.1"}, "Missing required hyperparameter: num_round"),
    ({"num_round": "5", "objective": "multi:softmax"}, "objective multi:softmax requires num_class"),
    ({"num_round": "5", "objective": "reg:squarederror", "eval_metric": "auc"},
     "Metric 'auc' can only be applied to classification and ranking problems"),
])
def test_hyperparameters_are_refused_as_the_container_refuses_them(raw, message):
    with pytest.raises(algo.AlgorithmError, match=None) as caught:
        algo.parse_hyperparameters(raw)
    assert message in str(caught.value)


def test_hyperparameters_are_parsed_to_typed_values():
    parsed = algo.parse_hyperparameters({"num_round": "50", "eta": "0.2", "max_depth": "5",
                                         "eval_metric": "auc,logloss", "objective": "binary:logistic"})
    assert parsed == {"num_round": 50, "eta": 0.2, "max_depth": 5, "eval_metric": ["auc", "logloss"],
                      "objective": "binary:logistic"}


def test_content_types_and_channels():
    assert algo.content_kind("text/csv") == "csv"
    assert algo.content_kind("text/csv; charset=utf-8") == "csv"
    assert algo.content_kind(None) == "libsvm"  # the container's default
    with pytest.raises(algo.AlgorithmError, match="Content type application/json is not supported"):
        algo.content_kind("application/json")
    with pytest.raises(algo.AlgorithmError, match="not emulated locally"):
        algo.content_kind("application/x-parquet")
    algo.check_channels(["train", "validation"])
    with pytest.raises(algo.AlgorithmError, match="Extraneous channel found: test"):
        algo.check_channels(["train", "test"])
    with pytest.raises(algo.AlgorithmError, match="Channel 'train' is required"):
        algo.check_channels(["validation"])


def test_hidden_files_in_a_channel_are_an_error(tmp_path):
    (tmp_path / "train").mkdir()
    (tmp_path / "train" / ".part.csv").write_text("1,2\n")
    with pytest.raises(algo.AlgorithmError, match="Hidden file found in the data path of channel train: .part.csv"):
        algo.channel_files(tmp_path / "train", "train")


def _job(tmp_path: Path, hosts: dict[str, str], hyper: dict[str, str], version: str = "1.7-1") -> Path:
    """A job directory with each host's train shard and a shared validation channel."""
    data = sample_data.generate(4000)
    text = "\n".join(",".join("" if np.isnan(v) else f"{v:g}" for v in row) for row in data) + "\n"
    lines = text.splitlines(keepends=True)
    channels = tmp_path / "channels"
    for index, (host, override) in enumerate(hosts.items()):
        (channels / host / "train").mkdir(parents=True)
        (channels / host / "validation").mkdir(parents=True)
        shard = "".join(lines[index:3000:len(hosts)])
        (channels / host / "train" / "part.csv").write_text(override or shard)
        (channels / host / "validation" / "v.csv").write_text("".join(lines[3000:]))
    spec = {"hyperparameters": hyper, "content_kind": "csv", "channels_root": str(channels), "image_version": version,
            "hosts_with_data": list(hosts), "model_dir": str(tmp_path / "model"),
            "metrics_file": str(tmp_path / "metrics.json")}
    (tmp_path / "job.json").write_text(json.dumps(spec))
    return tmp_path


def _train(job_dir: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", algo.WORKER_MODULE, "--job-dir", str(job_dir)],
                          capture_output=True, text=True, timeout=120)


HYPER = {"num_round": "200", "max_depth": "3", "eta": "0.3", "objective": "binary:logistic",
         "eval_metric": "auc", "early_stopping_rounds": "5"}


def test_one_host_trains_logs_metrics_stops_early_and_saves_the_model(tmp_path):
    job = _job(tmp_path, {"algo-1": ""}, HYPER)
    result = _train(job)
    assert result.returncode == 0, result.stderr
    assert "[0]#011train-auc:" in result.stdout and "#011validation-auc:" in result.stdout
    assert "Stopping. Best iteration: [" in result.stdout
    assert "[199]" not in result.stdout
    assert (job / "model" / "xgboost-model").stat().st_size > 0
    metrics = json.loads((job / "metrics.json").read_text())
    assert set(metrics) == {"train:auc", "validation:auc"} and metrics["validation:auc"] > 0.7


def test_bad_hyperparameter_is_a_client_error_exit(tmp_path):
    result = _train(_job(tmp_path, {"algo-1": ""}, {**HYPER, "depth": "3"}))
    assert result.returncode == 2
    assert "ClientError: Extraneous hyperparameter found: depth" in result.stderr


@pytest.mark.parametrize("bad_host", ["algo-1", "algo-2"])
def test_a_failing_worker_ends_the_distributed_job_promptly_with_its_error_last(tmp_path, bad_host):
    hosts = {"algo-1": "", "algo-2": ""}
    hosts[bad_host] = "1,abc\n0,2\n"
    started = time.monotonic()
    result = _train(_job(tmp_path, hosts, HYPER))
    assert result.returncode == 2
    if bad_host == "algo-2":  # its output is in its own worker.log; the job's log names it
        assert "algo-2 failed with exit code 2" in result.stderr
    # the last line is what the step reports as its failure reason
    assert result.stderr.strip().splitlines()[-1].startswith("ClientError: Channel train: non-numeric value in CSV data")
    assert time.monotonic() - started < 60  # the healthy worker was stopped, not left waiting for its peer


def test_wait_for_workers_stops_the_others_at_the_first_failure(tmp_path):
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    failing = subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])
    assert algo.wait_for_workers([(tmp_path / "a", sleeper), (tmp_path / "b", failing)]) == (tmp_path / "b", 3)
    assert sleeper.poll() is not None


def test_an_xgboost_error_is_reported_by_its_own_line_never_a_backtrace_frame(tmp_path):
    rows = "".join(f"{i % 2},{i},{1e39 if i == 7 else i * 0.5}\n" for i in range(40))
    result = _train(_job(tmp_path, {"algo-1": rows}, HYPER))
    reason = result.stderr.strip().splitlines()[-1]
    assert result.returncode != 0
    assert reason.startswith(("AlgorithmError:", "ClientError:")), reason
    assert "[bt]" not in reason and "libffi" not in reason and ".so" not in reason


def test_xgboost_error_line_drops_timestamp_location_and_stack():
    message = ("[10:14:03] /workspace/src/data/data.cc:1104: Check failed: valid: Input data contains `inf`\n"
               "Stack trace:\n  [bt] (0) /usr/lib/libxgboost.so(+0x1a2b) [0x7f]\n  [bt] (8) libffi.so.8(+0x7e2e)")
    assert algo.xgboost_error_line(Exception(message)) == "Check failed: valid: Input data contains `inf`"
    assert algo.xgboost_error_line(Exception("")) == "Exception"


@pytest.mark.parametrize("version, accepted, refused", [
    ("0.90-2", {"silent": "1"}, {"monotone_constraints": "(1,0)"}),
    ("1.0-1", {"silent": "1", "monotone_constraints": "(1,0)"}, {"objective": "survival:aft"}),
    ("1.2-2", {"objective": "survival:aft"}, {"silent": "1"}),
    ("1.3-1", {"sampling_method": "uniform"}, {"use_dask_gpu_training": "false"}),
    ("1.7-1", {"use_dask_gpu_training": "false"}, {"single_precision_histogram": "true"}),
    ("3.0-5", {"objective": "reg:absoluteerror"}, {"silent": "1"}),
])
def test_each_image_version_accepts_its_own_hyperparameters(version, accepted, refused):
    table = VERSIONS[version]
    algo.parse_hyperparameters({"num_round": "2", **accepted}, table)
    with pytest.raises(algo.AlgorithmError) as error:
        algo.parse_hyperparameters({"num_round": "2", **refused}, table)
    assert version in str(error.value)


def test_an_unknown_image_version_lists_the_known_ones():
    assert version_of("683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.0-1-cpu-py3").tag == "1.0-1"
    with pytest.raises(UnknownImageVersionError) as error:
        version_of("683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:2.1-1")
    assert "'2.1-1'" in str(error.value) and "known versions: 0.90-2, 1.0-1, 1.2-2, 1.3-1, 1.5-1, 1.7-1, 3.0-5" in str(error.value)


def test_pre_2_0_images_keep_their_xgboost_defaults():
    old = algo.xgboost_params({"objective": "binary:logistic", "num_round": 5}, VERSIONS["1.2-2"], distributed=False)
    assert old == {"objective": "binary:logistic", "tree_method": "exact", "base_score": 0.5, "eval_metric": ["error"]}
    assert algo.xgboost_params({"num_round": 5}, VERSIONS["1.7-1"], distributed=True)["tree_method"] == "approx"
    new = algo.xgboost_params({"objective": "binary:logistic", "num_round": 5}, VERSIONS["3.0-5"], distributed=False)
    assert new == {"objective": "binary:logistic", "eval_metric": ["logloss"]}


def test_images_up_to_1_2_2_pickle_the_booster_and_later_ones_save_it(tmp_path):
    import pickle

    from processing.evaluate import load_booster_file

    hyper = {"objective": "binary:logistic", "num_round": "3", "silent": "1"}
    pickled = _train(_job(tmp_path / "old", {"algo-1": ""}, hyper, version="1.0-1"))
    assert pickled.returncode == 0, pickled.stderr
    assert "silent: accepted by image version 1.0-1" in pickled.stdout
    model_file = tmp_path / "old" / "model" / "xgboost-model"
    with open(model_file, "rb") as handle:
        booster = pickle.load(handle)  # what the template's evaluation script does
    assert booster.num_boosted_rounds() == 3
    assert load_booster_file(str(model_file)).num_boosted_rounds() == 3
    del hyper["silent"]
    saved = _train(_job(tmp_path / "new", {"algo-1": ""}, hyper, version="3.0-5"))
    assert saved.returncode == 0, saved.stderr
    assert (tmp_path / "new" / "model" / "xgboost-model").read_bytes()[:1] != b"\x80"
    assert load_booster_file(str(tmp_path / "new" / "model" / "xgboost-model")).num_boosted_rounds() == 3


def test_a_pickled_model_file_that_is_not_a_booster_is_refused_unrun(tmp_path):
    import pickle

    from processing.evaluate import load_booster_file

    marker = tmp_path / "ran"
    evil = tmp_path / "xgboost-model"

    class Exploit:
        def __reduce__(self):
            return (__import__("os").system, (f"touch {marker}",))

    evil.write_bytes(pickle.dumps(Exploit(), protocol=4))
    with pytest.raises(pickle.UnpicklingError, match="only an XGBoost Booster is accepted"):
        load_booster_file(str(evil))
    assert not marker.exists()


def test_a_pickle_that_calls_booster_with_a_file_path_loads_nothing(tmp_path):
    """``Booster(model_file=PATH)`` in a pickle would load any model file on the machine; only state is taken."""
    import pickle

    import numpy as np
    import xgboost as xgb

    from processing.evaluate import load_booster_file

    elsewhere = tmp_path / "elsewhere.json"
    xgb.train({}, xgb.DMatrix(np.random.rand(30, 3), label=np.arange(30) % 2), 2).save_model(str(elsewhere))

    class Calls:
        def __init__(self, *arguments):
            self.arguments = arguments

        def __reduce__(self):
            return (xgb.Booster, self.arguments)

    for arguments in [(None, None, str(elsewhere)), ()]:
        crafted = tmp_path / "xgboost-model"
        crafted.write_bytes(pickle.dumps(Calls(*arguments), protocol=4))
        with pytest.raises(pickle.UnpicklingError, match="not an XGBoost Booster"):
            load_booster_file(str(crafted))
    state = {"handle": bytearray(b"x"), "loader": print}
    crafted.write_bytes(b"\x80\x04cxgboost.core\nBooster\n)\x81" + pickle.dumps(state, protocol=4)[2:-1] + b"b.")
    with pytest.raises(pickle.UnpicklingError):
        load_booster_file(str(crafted))
