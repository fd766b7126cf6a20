"""Exports scikit-learn's bundled breast-cancer set (569 x 30, binary) in the Python Chimera's layout.

Run once (needs scikit-learn); the output is committed under deploy/data/breast-cancer:
  worker-1..4/X_train.csv, y_train.csv   the 455 training rows, cut into 4 contiguous parts
  test/X_test.csv, y_test.csv            the 114 held-out rows
The split is train_test_split(test_size=0.2, random_state=42, stratify=y), as the baseline uses.
"""
import os
import sys

import numpy as np
from sklearn.datasets import load_breast_cancer
from sklearn.model_selection import train_test_split

out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "breast-cancer")
workers = int(sys.argv[1]) if len(sys.argv) > 1 else 4
data = load_breast_cancer()
X, y = data.data, data.target
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.2, random_state=42, stratify=y)
columns = [name.replace(" ", "_") for name in data.feature_names]


def write(folder, stem, X, y):
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, f"X_{stem}.csv"), "w") as f:
        f.write(",".join(columns) + "\n")
        for row in X:
            f.write(",".join(f"{v:.6g}" for v in row) + "\n")
    with open(os.path.join(folder, f"y_{stem}.csv"), "w") as f:
        f.write("target\n")
        for v in y:
            f.write(f"{int(v)}\n")


sizes = [len(X_train) // workers + (1 if i < len(X_train) % workers else 0) for i in range(workers)]
start = 0
for i, size in enumerate(sizes):
    write(os.path.join(out, f"worker-{i + 1}"), "train", X_train[start:start + size], y_train[start:start + size])
    start += size
write(os.path.join(out, "test"), "test", X_test, y_test)
print(f"wrote {out}: {len(X_train)} train rows in {workers} parts, {len(X_test)} test rows")
