"""Held-out accuracy of one-tree-per-worker bagging over many seeds: our aggregation master (through a
running gateway) against scikit-learn's DecisionTreeClassifier on the same bootstraps' shape.

A single run compares one draw of the bootstraps with another; this shows the spread of both.

Usage (with a gateway in front of an aggregation master whose N workers hold cdc_like_50k/N{N}/w{i}):
    .build/release/chimera local --mode aggregation --workers 2 --data bench-out/original-chimera/data/cdc_like_50k/N2 --port 8094 &
    bench-out/original-chimera/.venv/bin/python Benchmarks/bagging_seeds.py --workers 2 --port 8094
"""

import argparse
import json
import urllib.request

import numpy as np
import pandas as pd
from sklearn.tree import DecisionTreeClassifier


def post(port, path, body):
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}", data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    return json.loads(urllib.request.urlopen(request).read())


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--workers", type=int, required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--data", default="bench-out/original-chimera/data/cdc_like_50k")
    parser.add_argument("--seeds", type=int, default=20)
    args = parser.parse_args()

    x_test = pd.read_csv(f"{args.data}/test/X_test.csv")
    y_test = pd.read_csv(f"{args.data}/test/y_test.csv").values.ravel()
    shards = []
    for worker in range(1, args.workers + 1):
        folder = f"{args.data}/N{args.workers}/w{worker}/chimera_train_data"
        shards.append((pd.read_csv(f"{folder}/X_train.csv").values, pd.read_csv(f"{folder}/y_train.csv").values.ravel()))
    body = {"X_pred_columns": list(x_test.columns), "X_pred_rows": x_test.values.tolist()}

    ours, sklearn = [], []
    for seed in range(1, args.seeds + 1):
        post(args.port, "/v1/chimera/aggregation/fit", {"max_depth": 5, "max_leaf_nodes": 15, "seed": seed})
        p = np.array(post(args.port, "/v1/chimera/aggregation/predict", body)["y_pred_rows"])
        ours.append(((p > 0.5) == y_test).mean())

        random = np.random.RandomState(seed)
        members = []
        for x, y in shards:
            rows = random.randint(0, len(x), len(x))
            tree = DecisionTreeClassifier(max_depth=5, max_leaf_nodes=15, random_state=random.randint(1 << 30))
            members.append(tree.fit(x[rows], y[rows]).predict_proba(x_test.values)[:, 1])
        sklearn.append(((np.mean(members, axis=0) > 0.5) == y_test).mean())

    for name, values in (("ours", ours), ("scikit-learn", sklearn)):
        print(
            f"N={args.workers} {name}: mean {np.mean(values):.4f}, sd {np.std(values):.4f}, "
            f"min {min(values):.4f}, max {max(values):.4f} over {args.seeds} seeds"
        )


if __name__ == "__main__":
    main()
