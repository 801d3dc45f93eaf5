"""Deterministic synthetic lead-scoring data: label first, headerless, several CSV files.

Twenty numeric features of mixed scale (counts, durations, money, ratios, flags),
with noise and some missing values; the label depends on them non-linearly and about
15% of leads convert. Used by local runs when no InputDataUrl is given.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from pipelines.atomic import replacing

# part of the key under which generated files are kept for reuse: change it whenever the output changes
GENERATOR_VERSION = 1

FEATURES = (
    "page_views", "sessions", "minutes_on_site", "email_opens", "email_clicks", "webinar_attended",
    "demo_requested", "company_employees", "annual_revenue_musd", "days_since_first_visit",
    "days_since_last_visit", "pricing_page_views", "docs_page_views", "form_fills", "referral_source",
    "industry_code", "region_code", "job_seniority", "trial_active", "support_tickets",
)


def generate(rows: int, seed: int = 7) -> np.ndarray:
    """A (rows, 21) array: label, then the features (NaN for missing)."""
    rng = np.random.RandomState(seed)
    n = rows
    x = np.empty((n, len(FEATURES)))
    x[:, 0] = rng.poisson(12, n)
    x[:, 1] = rng.poisson(3, n) + 1
    x[:, 2] = rng.lognormal(2.0, 1.0, n).round(2)
    x[:, 3] = rng.poisson(4, n)
    x[:, 4] = rng.binomial(x[:, 3].astype(int), 0.25)
    x[:, 5] = rng.binomial(1, 0.12, n)
    x[:, 6] = rng.binomial(1, 0.06, n)
    x[:, 7] = rng.lognormal(4.5, 1.6, n).round()
    x[:, 8] = (x[:, 7] * rng.lognormal(-1.5, 0.8, n) / 10).round(3)
    x[:, 9] = rng.exponential(90, n).round()
    x[:, 10] = np.minimum(rng.exponential(20, n), x[:, 9]).round()
    x[:, 11] = rng.poisson(1.5, n)
    x[:, 12] = rng.poisson(2.5, n)
    x[:, 13] = rng.poisson(0.6, n)
    x[:, 14] = rng.randint(0, 6, n)
    x[:, 15] = rng.randint(0, 30, n)
    x[:, 16] = rng.randint(0, 8, n)
    x[:, 17] = rng.randint(1, 6, n)
    x[:, 18] = rng.binomial(1, 0.2, n)
    x[:, 19] = rng.poisson(0.3, n)
    logit = (
        -5.6
        + 1.8 * x[:, 6] + 1.4 * x[:, 5] + 0.8 * np.log1p(x[:, 11]) + 0.45 * x[:, 4]
        + 0.7 * np.log1p(x[:, 2]) - 0.06 * x[:, 10] + 0.6 * (x[:, 17] >= 4) + 1.6 * x[:, 18] * (x[:, 12] > 2)
        + 0.35 * np.log1p(x[:, 8]) + 0.6 * np.isin(x[:, 14], (1, 3)) + 0.5 * x[:, 13]
        + rng.normal(0, 0.3, n)
    )
    label = (rng.uniform(size=n) < 1 / (1 + np.exp(-logit))).astype(float)
    for column, rate in ((2, 0.04), (7, 0.08), (8, 0.10), (10, 0.03), (17, 0.05)):
        x[rng.uniform(size=n) < rate, column] = np.nan
    return np.column_stack([label, x])


def _table(values: np.ndarray) -> pd.DataFrame:
    """The values as ``f"{v:g}"`` prints them (NaN as an empty field), written by pandas: a column of whole
    numbers below 1e6 (where %g is exact) as integers, any other with %g."""
    frame = pd.DataFrame(values)
    for column in frame.columns:
        data = values[:, column]
        finite = data[~np.isnan(data)]
        if finite.size and np.all(finite == np.round(finite)) and np.abs(finite).max() < 1e6:
            frame[column] = frame[column].astype("Int64")
    return frame


def write(directory: Path, rows: int, files: int = 4, seed: int = 7) -> list[Path]:
    """Write ``rows`` labelled rows as ``files`` headerless CSV files (part-0000.csv, ...); returns their paths."""
    return _write(directory, _table(generate(rows, seed)), files)


def write_unlabeled(directory: Path, rows: int, id_columns: int = 1, files: int = 4, seed: int = 11) -> list[Path]:
    """New leads to score: ``id_columns`` lead ids (lead-0000001, then account ids), then the features, no label."""
    features = _table(generate(rows, seed)[:, 1:])
    index = np.arange(1, rows + 1)
    ids = {"lead": [f"lead-{i:07d}" for i in index]}
    for column in range(1, id_columns):
        ids[f"acct{column}"] = [f"acct{column}-{i % 997:03d}" for i in index]
    frame = pd.concat([pd.DataFrame(ids), features.set_axis(range(id_columns, id_columns + features.shape[1]), axis=1)],
                      axis=1)
    return _write(directory, frame, files)


def _write(directory: Path, frame: pd.DataFrame, files: int) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for index, chunk in enumerate(np.array_split(np.arange(len(frame)), files)):
        path = directory / f"part-{index:04d}.csv"
        text = frame.iloc[chunk].to_csv(header=False, index=False, float_format="%g", na_rep="", lineterminator="\n")
        with replacing(path) as handle:
            handle.write(text.encode())
        paths.append(path)
    return paths


def write_leads(path: Path, rows: int, id_columns: int = 0, seed: int = 11) -> Path:
    """One headerless CSV file of new leads as an endpoint takes them: ``id_columns`` lead ids, then the twenty
    features in order (see FEATURES), no label."""
    features = _table(generate(rows, seed)[:, 1:])
    if id_columns:
        ids = pd.DataFrame({f"id{c}": [f"lead-{i:07d}" if c == 0 else f"acct{c}-{i % 997:03d}"
                                       for i in range(1, rows + 1)] for c in range(id_columns)})
        features = pd.concat([ids, features.set_axis(range(id_columns, id_columns + features.shape[1]), axis=1)],
                             axis=1)
    text = features.to_csv(header=False, index=False, float_format="%g", na_rep="", lineterminator="\n")
    with replacing(path) as handle:
        handle.write(text.encode())
    return path
