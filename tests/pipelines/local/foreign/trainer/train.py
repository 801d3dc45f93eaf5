"""A ModelTrainer SourceCode entry script: argparse hyperparameters, SM_* locations, a pickled model."""
import argparse
import glob
import os
import pickle

import numpy as np

parser = argparse.ArgumentParser()
parser.add_argument("--alpha", type=float, default=1.0)
args = parser.parse_args()
rows = np.vstack([np.loadtxt(path, delimiter=",", ndmin=2) for path in glob.glob(os.path.join(os.environ["SM_CHANNEL_TRAIN"], "*.csv"))])
y, X = rows[:, 0], np.hstack([rows[:, 1:], np.ones((len(rows), 1))])
weights = np.linalg.solve(X.T @ X + args.alpha * np.eye(X.shape[1]), X.T @ y)
with open(os.path.join(os.environ["SM_MODEL_DIR"], "ridge.pkl"), "wb") as handle:
    pickle.dump({"weights": weights.tolist(), "alpha": args.alpha}, handle)
print(f"train_mse={float(np.mean((X @ weights - y) ** 2)):.6f}")
