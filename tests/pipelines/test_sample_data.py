"""Sample data: written fast but exactly as each value prints with %g, and generated once per key."""

from __future__ import annotations

import numpy as np

from pipelines import sample_data
from pipelines.config import build_config
from pipelines.lead_scoring import build
from pipelines.local.store import Store
from pipelines.local.target import LocalTarget


def test_files_hold_every_value_as_g_formatting_prints_it(tmp_path) -> None:
    values = np.array([[1.0, 3.0, 0.25, 1234567.0, np.nan], [0.0, 999999.0, 1e-7, 12.0, 5.5]])
    sample_data._write(tmp_path, sample_data._table(values), files=1)
    expected = "".join(",".join("" if np.isnan(v) else f"{v:g}" for v in row) + "\n" for row in values)
    assert (tmp_path / "part-0000.csv").read_text() == expected


def test_unlabeled_leads_have_their_ids_first(tmp_path) -> None:
    sample_data.write_unlabeled(tmp_path, 10, id_columns=2, files=1)
    first = (tmp_path / "part-0000.csv").read_text().splitlines()[0].split(",")
    assert first[:2] == ["lead-0000001", "acct1-001"] and len(first) == 2 + len(sample_data.FEATURES)


def test_sample_data_is_generated_once_per_key_and_reused(tmp_path) -> None:
    config = build_config(("test", {"bucket": "sagemaker-local", "role_arn": "arn:aws:iam::000000000000:role/R",
                                    "mlflow_tracking_uri": "off"}))
    built = build(config)
    calls: list[int] = []

    def counting(cfg, directory, rows):
        calls.append(rows)
        return built.write_sample(cfg, directory, rows)

    target = LocalTarget(config, store=tmp_path / "store", sample_rows=500)
    store = Store(tmp_path / "store")
    first = target._sample_files(store, type(built)(**{**built.__dict__, "write_sample": counting}), 500)
    again = target._sample_files(store, type(built)(**{**built.__dict__, "write_sample": counting}), 500)
    assert calls == [500] and first[1] is True and again[1] is False
    assert [p.read_bytes() for p in first[0]] == [p.read_bytes() for p in again[0]]
