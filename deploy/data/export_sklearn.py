"""Exports scikit-learn's bundled data sets in the Python Chimera's layout.

Run once (needs scikit-learn); the output is committed under deploy/data/<name>:
  worker-1..4/X_train.csv, y_train.csv   the training rows, cut into 4 contiguous parts
  test/X_test.csv, y_test.csv            the held-out rows
Each split is train_test_split(test_size=0.2, stratify=y) with the seed below.

  python export_sklearn.py breast-cancer [workers]   569 x 30, binary, random_state 42
  python export_sklearn.py digits [workers]          1,797 x 64 (8x8 pixels 0-16), 10 classes, random_state 0
"""
import os
import sys

from sklearn.datasets import load_breast_cancer, load_digits
from sklearn.model_selection import train_test_split

name = sys.argv[1] if len(sys.argv) > 1 else "breast-cancer"
workers = int(sys.argv[2]) if len(sys.argv) > 2 else 4
if name == "breast-cancer":
    data, seed = load_breast_cancer(), 42
    columns = [column.replace(" ", "_") for column in data.feature_names]
elif name == "digits":
    data, seed = load_digits(), 0
    columns = [f"pixel_{i // 8}_{i % 8}" for i in range(64)]
else:
    sys.exit(f"unknown data set {name}: breast-cancer or digits")
out = os.path.join(os.path.dirname(os.path.abspath(__file__)), name)
X, y = data.data, data.target
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.2, random_state=seed, stratify=y)


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
