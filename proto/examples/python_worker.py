#!/usr/bin/env python3
"""A Chimera worker in Python, written from proto/README.md and chimera.proto alone.

It takes part in parameter-server jobs (every model and worker mode) and aggregation jobs (CART trees
on bootstraps, fan-out predictions) next to the Swift workers. The Swift test suite runs it against a
real master, so the page it was written from stays complete.

    protoc --python_out=GEN -I proto proto/chimera/v1/chimera.proto
    PYTHONPATH=GEN python3 proto/examples/python_worker.py --master tcp://127.0.0.1:5555 --data DIR

DIR holds X_train.csv and y_train.csv with a header row (the Python Chimera's layout). Needs pyzmq,
protobuf and NumPy (Debian: python3-zmq python3-protobuf python3-numpy).
"""
import argparse
import heapq
import math
import os
import socket
import struct
import sys
import threading
import time
import zlib

import numpy as np
import zmq

from chimera.v1 import chimera_pb2 as pb

HEADER = b"CHIMERA\x01"
DTYPES = {pb.DTYPE_FLOAT32: "<f4", pb.DTYPE_FLOAT64: "<f8", pb.DTYPE_INT32: "<i4", pb.DTYPE_INT64: "<i8",
          pb.DTYPE_UINT8: "u1"}
NUMPY_DTYPES = {np.dtype("<f4"): pb.DTYPE_FLOAT32, np.dtype("<f8"): pb.DTYPE_FLOAT64, np.dtype("u1"): pb.DTYPE_UINT8}


NAME = "python-worker"


def log(text):
    print(f"{NAME}: {text}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------- messages (README §2)

def encode(body_field, message, tensors=(), request_id=0):
    control = pb.Control(request_id=request_id)
    getattr(control, body_field).CopyFrom(message)
    frames = []
    for name, array in tensors:
        array = np.ascontiguousarray(array)
        control.tensors.add(name=name, dtype=NUMPY_DTYPES[array.dtype], shape=array.shape)
        frames.append(array.tobytes())
    return [HEADER, control.SerializeToString(), *frames]


def decode(frames):
    if len(frames) < 2 or len(frames[0]) != 8 or frames[0][:7] != b"CHIMERA":
        raise ValueError("not a Chimera message")
    if frames[0][7] != 1:
        raise ValueError("unsupported protocol version")
    control = pb.Control.FromString(frames[1])
    if control.WhichOneof("body") is None:
        raise ValueError("control frame has no body")
    if len(frames) - 2 != len(control.tensors):
        raise ValueError("frame count mismatch")
    tensors = {}
    for spec, frame in zip(control.tensors, frames[2:]):
        if spec.dtype not in DTYPES:
            raise ValueError(f"unknown dtype {spec.dtype}")
        array = np.frombuffer(frame, dtype=DTYPES[spec.dtype])
        if array.size != math.prod(spec.shape):
            raise ValueError(f"tensor size mismatch for {spec.name}")
        tensors[spec.name] = array.reshape(tuple(spec.shape))
    return control, tensors


class Requester:
    """A REQ socket with a timeout; after a timeout the socket is replaced (a REQ would stay stuck)."""

    def __init__(self, context, endpoint, timeout_ms=10_000):
        self.context, self.endpoint, self.timeout_ms = context, endpoint, timeout_ms
        self.socket = None
        self._open()

    def _open(self):
        if self.socket is not None:
            self.socket.close(linger=0)
        self.socket = self.context.socket(zmq.REQ)
        self.socket.setsockopt(zmq.LINGER, 0)
        self.socket.connect(self.endpoint)

    def call(self, body_field, message, tensors=(), timeout_ms=None, abandon=None):
        """The reply as (control, tensors), or None after a timeout — or as soon as `abandon()` says
        the wait is pointless (looked at every 100 ms: the master is gone, or we are stopping)."""
        self.socket.send_multipart(encode(body_field, message, tensors), copy=False)
        deadline = time.monotonic() + (timeout_ms or self.timeout_ms) / 1000
        while not self.socket.poll(100):
            if time.monotonic() >= deadline or (abandon is not None and abandon()):
                self._open()
                return None
        return decode(self.socket.recv_multipart())

    def close(self):
        self.socket.close(linger=0)


# ---------------------------------------------------------------- data

def load_shard(folder):
    def read(path):
        if not os.path.exists(path):
            raise SystemExit(f"{path}: no such file")
        with open(path) as f:
            header = [name.strip().lower() for name in f.readline().split(",")]
        values = np.loadtxt(path, delimiter=",", skiprows=1, ndmin=2, dtype=np.float64)
        return header, values

    columns, x = read(os.path.join(folder, "X_train.csv"))
    y = read_labels(os.path.join(folder, "y_train.csv"))
    if len(x) == 0 or len(x) != len(y):
        raise SystemExit(f"{folder}: {len(x)} feature rows, {len(y)} labels")
    return columns, x.astype(np.float32), y


def read_labels(path):
    """Numbers (float64 array), or class names (list of str) when any cell is not a number (README §2)."""
    if not os.path.exists(path):
        raise SystemExit(f"{path}: no such file")
    with open(path, encoding="utf-8-sig") as f:
        cells = [line.strip().strip('"') for line in f.read().splitlines()[1:] if line.strip()]
    try:
        return np.array([float(cell) for cell in cells], dtype=np.float64)
    except ValueError:
        return cells


# ---------------------------------------------------------------- parameter server (README §3.3)

def sigmoid(s):
    return np.where(s >= 0, 1 / (1 + np.exp(-np.abs(s))), np.exp(-np.abs(s)) / (1 + np.exp(-np.abs(s))))


def loss_and_gradient(model, weights, x, y, classes):
    """Mean loss and mean gradient (shape of `weights`, bias last) over the rows; no penalty."""
    n = len(x)
    w, b = weights[:, :-1].astype(np.float64), weights[:, -1].astype(np.float64)
    scores = x @ w.T + b
    if model == pb.MODEL_SOFTMAX:
        target = np.searchsorted(classes, y)
        top = scores.max(axis=1, keepdims=True)
        exps = np.exp(scores - top)
        total = exps.sum(axis=1, keepdims=True)
        loss = np.mean(np.log(total[:, 0]) + top[:, 0] - scores[np.arange(n), target])
        derivative = exps / total
        derivative[np.arange(n), target] -= 1
    else:
        s = scores[:, 0]
        if model == pb.MODEL_LINEAR_REGRESSION:
            residual = s - y
            loss, d = np.mean(0.5 * residual**2), residual
        elif model == pb.MODEL_LINEAR_SVM:
            sign = np.where(y == classes[1], 1.0, -1.0)
            margin = sign * s
            loss, d = np.mean(np.maximum(0, 1 - margin)), np.where(margin < 1, -sign, 0.0)
        else:  # logistic regression
            target = (y == classes[1]).astype(np.float64)
            loss, d = np.mean(np.logaddexp(0, s) - target * s), sigmoid(s) - target
        derivative = d[:, None]
    gradient = np.concatenate([derivative.T @ x, derivative.sum(axis=0)[:, None]], axis=1) / n
    return loss, gradient


def mlp_layers(config, features, classes):
    """(offset, inputs n, outputs m) of each layer in the flat vector: W (m x n, row-major), then b (m)."""
    sizes = [features, *config.hidden, len(classes) if len(classes) > 2 else 1]
    layers, position = [], 0
    for n, m in zip(sizes, sizes[1:]):
        layers.append((position, n, m))
        position += m * n + m
    return layers


def mlp_loss_and_gradient(config, weights, x, y, classes):
    """README §3.3, MLP: the mean loss and its gradient, shape [1, P] like the weights."""
    flat = weights.reshape(-1).astype(np.float64)
    layers = mlp_layers(config, x.shape[1], classes)
    tanh = config.activation == "tanh"
    inputs, pre = [x], []
    for index, (p, n, m) in enumerate(layers):
        z = inputs[-1] @ flat[p:p + m * n].reshape(m, n).T + flat[p + m * n:p + m * n + m]
        pre.append(z)
        if index < len(layers) - 1:
            inputs.append(np.tanh(z) if tanh else np.maximum(z, 0))
    count, s = len(x), pre[-1]
    if len(classes) > 2:
        target = np.searchsorted(classes, y)
        top = s.max(axis=1, keepdims=True)
        exps = np.exp(s - top)
        total = exps.sum(axis=1, keepdims=True)
        loss = np.mean(np.log(total[:, 0]) + top[:, 0] - s[np.arange(count), target])
        delta = exps / total
        delta[np.arange(count), target] -= 1
    elif len(classes) == 2:
        target = (y == classes[1]).astype(np.float64)
        loss, delta = np.mean(np.logaddexp(0, s[:, 0]) - target * s[:, 0]), (sigmoid(s[:, 0]) - target)[:, None]
    else:
        residual = s[:, 0] - y
        loss, delta = np.mean(0.5 * residual**2), residual[:, None]
    delta = delta / count
    gradient = np.zeros_like(flat)
    for index in reversed(range(len(layers))):
        p, n, m = layers[index]
        gradient[p:p + m * n] = (delta.T @ inputs[index]).reshape(-1)
        gradient[p + m * n:p + m * n + m] = delta.sum(axis=0)
        if index > 0:
            back = delta @ flat[p:p + m * n].reshape(m, n)
            delta = back * (1 - inputs[index]**2) if tanh else back * (pre[index - 1] > 0)
    return loss, gradient.reshape(1, -1)


def penalised(config, weights, features, classes):
    """1 where the penalty applies (every weight), 0 on the biases."""
    mask = np.ones(weights.shape)
    if config.model == pb.MODEL_MLP:
        mask = mask.reshape(-1)
        for p, n, m in mlp_layers(config, features, classes):
            mask[p + m * n:p + m * n + m] = 0
        return mask.reshape(weights.shape)
    mask[:, -1] = 0
    return mask


def penalty(config, weights, mask):
    """The penalty's value and gradient (biases excluded by `mask`)."""
    l1, l2 = {pb.PENALTY_NONE: (0, 0), pb.PENALTY_L1: (1, 0), pb.PENALTY_ELASTIC_NET: (config.l1_ratio, 1 - config.l1_ratio)
              }.get(config.penalty, (0, 1))
    w = weights.astype(np.float64) * mask
    value = config.alpha * np.sum(l1 * np.abs(w) + 0.5 * l2 * w * w)
    return value, config.alpha * (l1 * np.sign(w) + l2 * w)


def learning_rate(config, t):
    t = max(t, 1)
    if config.schedule == pb.LEARNING_RATE_INVERSE_SCALING:
        return config.eta0 / t**config.power_t
    if config.schedule == pb.LEARNING_RATE_OPTIMAL:
        alpha = max(config.alpha, 1e-12)
        typw = math.sqrt(1 / math.sqrt(alpha))
        bound = {pb.MODEL_LINEAR_REGRESSION: typw, pb.MODEL_LINEAR_SVM: 1.0, pb.MODEL_MLP: 1.0}.get(config.model, 1 / (1 + math.exp(-typw)))
        t0 = 1 / (typw / max(1, bound) * alpha)
        return 1 / (alpha * (t0 + t - 1))
    return config.eta0


def batch(rng, x, y, size):
    if size <= 0 or size >= len(x):
        return x, y
    rows = np.sort(rng.choice(len(x), size=size, replace=False))
    return x[rows], y[rows]


# ---------------------------------------------------------------- trees (README §3.4)

class Tree:
    def __init__(self):
        self.feature, self.threshold, self.left, self.right, self.value = [], [], [], [], []

    def add(self, value):
        for column, item in ((self.feature, -1), (self.threshold, 0.0), (self.left, 0), (self.right, 0), (self.value, value)):
            column.append(item)
        return len(self.feature) - 1

    def encode(self, task, features, outputs):
        nodes = len(self.feature)
        out = [struct.pack("<4sBBHIII", b"CHTR", 1, task, 0, features, outputs, nodes)]
        for i in range(nodes):
            out.append(struct.pack("<ifII", self.feature[i], self.threshold[i], self.left[i], self.right[i]))
        out.append(np.asarray(self.value, dtype="<f4").tobytes())
        return np.frombuffer(b"".join(out), dtype=np.uint8)

    def predict(self, x):
        out = np.empty((len(x), len(self.value[0])), dtype=np.float64)
        for r, row in enumerate(x):
            node = 0
            while self.feature[node] >= 0:
                node = self.left[node] if row[self.feature[node]] <= self.threshold[node] else self.right[node]
            out[r] = self.value[node]
        return out


def impurity(counts, totals, criterion):
    """Per candidate: impurity × rows, from class counts (classification) or (sum, sum of squares)."""
    if criterion == "squared_error":
        sums, squares = counts
        return squares - sums**2 / totals
    p = counts / totals[:, None]
    if criterion == "entropy":
        with np.errstate(divide="ignore", invalid="ignore"):
            return -np.sum(np.where(p > 0, p * np.log2(p), 0), axis=1) * totals
    return (1 - np.sum(p * p, axis=1)) * totals


def best_split(x, target, rows, settings, rng):
    criterion, min_leaf, max_features, outputs = settings
    n = len(rows)
    features = x.shape[1]
    chosen = rng.choice(features, size=max_features, replace=False) if max_features < features else range(features)
    best = None
    for f in chosen:
        order = rows[np.argsort(x[rows, f], kind="stable")]
        values = x[order, f]
        if criterion == "squared_error":
            t = target[order]
            left = (np.cumsum(t)[:-1], np.cumsum(t * t)[:-1])
            right = (t.sum() - left[0], (t * t).sum() - left[1])
        else:
            onehot = np.eye(outputs)[target[order].astype(int)]
            left = np.cumsum(onehot, axis=0)[:-1]
            right = onehot.sum(axis=0) - left
        sizes = np.arange(1, n, dtype=np.float64)
        cost = impurity(left, sizes, criterion) + impurity(right, n - sizes, criterion)
        valid = (values[:-1] < values[1:]) & (sizes >= min_leaf) & (n - sizes >= min_leaf)
        if not valid.any():
            continue
        cost = np.where(valid, cost, np.inf)
        i = int(np.argmin(cost))
        if best is None or cost[i] < best[0]:
            threshold = np.float32((np.float64(values[i]) + np.float64(values[i + 1])) / 2)
            if threshold >= values[i + 1]:
                threshold = values[i]
            best = (cost[i], int(f), float(threshold))
    return best


def fit_tree(x, target, config, outputs, classification, rng):
    criterion = config.criterion or ("gini" if classification else "squared_error")
    features = x.shape[1]
    spec = config.max_features.strip().lower() or "all"
    max_features = {"all": features, "none": features, "auto": features, "sqrt": int(math.sqrt(features)),
                    "log2": int(math.log2(features))}.get(spec)
    if max_features is None:  # "5" is a count, "0.5" a fraction
        max_features = int(spec) if spec.isdigit() else int(float(spec) * features)
    settings = (criterion, max(config.min_samples_leaf, 1), max(1, min(features, max_features)), outputs)
    min_split = max(config.min_samples_split, 2)

    def value(rows):
        if classification:
            return list(np.bincount(target[rows].astype(int), minlength=outputs) / len(rows))
        return [float(np.mean(target[rows]))]

    def node_cost(rows):
        if classification:
            counts = np.bincount(target[rows].astype(int), minlength=outputs)[None, :].astype(np.float64)
            return impurity(counts, np.array([float(len(rows))]), criterion)[0]
        t = target[rows]
        return impurity((t.sum(), (t * t).sum()), float(len(rows)), criterion)

    tree = Tree()
    frontier = []  # best first: (−gain, tie, node, rows, depth, split)

    def consider(node, rows, depth):
        if len(rows) < min_split or (config.max_depth and depth >= config.max_depth) or node_cost(rows) <= 1e-12:
            return
        split = best_split(x, target, rows, settings, rng)
        if split is not None:
            heapq.heappush(frontier, (split[0] - node_cost(rows), node, rows, depth, split))

    consider(tree.add(value(np.arange(len(x)))), np.arange(len(x)), 0)
    leaves = 1
    while frontier and (not config.max_leaf_nodes or leaves < config.max_leaf_nodes):
        _, node, rows, depth, (_, feature, threshold) = heapq.heappop(frontier)
        goes_left = x[rows, feature] <= threshold
        left_rows, right_rows = rows[goes_left], rows[~goes_left]
        left, right = tree.add(value(left_rows)), tree.add(value(right_rows))
        tree.feature[node], tree.threshold[node], tree.left[node], tree.right[node] = feature, threshold, left, right
        leaves += 1
        consider(left, left_rows, depth + 1)
        consider(right, right_rows, depth + 1)
    return tree


# ---------------------------------------------------------------- the worker

class Worker:
    def __init__(self, args):
        global NAME
        self.name = NAME = args.name or os.path.basename(os.path.normpath(args.data))
        self.master = args.master
        self.columns, self.x, self.labels = load_shard(args.data)
        self.names = sorted(set(self.labels)) if isinstance(self.labels, list) else []
        self.context = zmq.Context()
        # Job requests may be parked at the barrier for long; the wait ends early when the master is gone.
        self.requests = Requester(self.context, self.master, timeout_ms=600_000)
        self.sub = None
        self.sub_endpoint = None
        self.forgotten = threading.Event()  # a heartbeat met UNKNOWN_WORKER: register again
        self.last_answer = time.monotonic()  # of any heartbeat reply
        self.silence_s = 3.0  # heartbeat interval × liveness, from the Welcome
        self.worker_id = None
        self.session = 0
        self.members = None  # (job id, trees, outputs) of the last aggregation job
        self.status = {"job_id": 0, "clock": 0, "state": pb.WORKER_STATE_IDLE}
        self.stopping = threading.Event()
        self.heartbeat = None

    def master_gone(self):
        return (self.stopping.is_set() or self.forgotten.is_set()
                or time.monotonic() - self.last_answer > self.silence_s)

    def call(self, field, message, tensors=()):
        reply = self.requests.call(field, message, tensors, abandon=self.master_gone)
        if reply is not None and reply[0].WhichOneof("body") == "error":
            log(f"{field} refused: {reply[0].error.message}")
        return reply

    def register(self):
        """Hello (with column sums for global standardisation) until welcomed; then the SUB handshake."""
        hello = pb.WorkerHello(name=self.name, rows=len(self.x), feature_names=self.columns,
                               label_values=[] if self.names else sorted(set(self.labels.tolist())),
                               label_names=self.names, software="chimera-python-example 1",
                               pid=os.getpid(), host=socket.gethostname())
        x = self.x.astype(np.float64)
        sums = [("column_sum", x.sum(axis=0)), ("column_sum_of_squares", (x * x).sum(axis=0))]
        self.forgotten.clear()
        while True:
            if self.stopping.is_set():
                raise SystemExit(0)
            # Short: a restarted master gets the next hello within 2 s.
            reply = self.requests.call("hello", hello, sums, timeout_ms=2_000)
            if reply is None:
                log(f"waiting for the master at {self.master}")
                continue
            control, tensors = reply
            if control.WhichOneof("body") == "error" and control.error.code == pb.ERROR_CODE_NAME_IN_USE:
                time.sleep(0.5)  # another live process holds the name (README §3.1): wait for it to go
                continue
            if control.WhichOneof("body") != "welcome":
                raise SystemExit(f"not welcomed: {control}")
            break
        welcome = control.welcome
        self.worker_id = welcome.worker_id
        self.session = welcome.session  # every later message carries it
        self.last_answer = time.monotonic()
        self.silence_s = (welcome.heartbeat_interval_ms or 1000) * (welcome.heartbeat_liveness or 3) / 1000
        log(f"registered as worker {self.worker_id} ({len(self.x)} rows, {len(self.columns)} features)")
        endpoint = broadcast_endpoint(welcome.broadcast_endpoint, self.master)
        if self.sub is None or endpoint != self.sub_endpoint:  # a restarted master may publish elsewhere
            if self.sub is not None:
                self.sub.close(linger=0)
            self.sub = self.context.socket(zmq.SUB)
            self.sub.setsockopt(zmq.SUBSCRIBE, b"")
            self.sub.setsockopt(zmq.LINGER, 0)
            self.sub.connect(endpoint)
            self.sub_endpoint = endpoint
        self.start_heartbeats(welcome.heartbeat_interval_ms or 1000)
        pending = (welcome.current_job, tensors) if welcome.HasField("current_job") else None
        while True:  # slow-joiner handshake: the first Sync we see proves our subscription is live
            try:
                control, _ = decode(self.sub.recv_multipart())
            except Exception as error:
                log(f"rejected a broadcast: {error}")
                continue
            if control.WhichOneof("body") == "sync":
                break
        reply = self.call("subscription_ready", pb.SubscriptionReady(worker_id=self.worker_id, session=self.session,
                                                                     sync_sequence=control.sync.sequence))
        if reply is not None and reply[0].WhichOneof("body") == "job_start":
            pending = (reply[0].job_start, reply[1])
        return pending

    def start_heartbeats(self, interval_ms):
        if self.heartbeat is not None:
            return
        def beat():
            requester = Requester(self.context, self.master, timeout_ms=max(interval_ms * 3, 1000))
            while not self.stopping.wait(interval_ms / 1000):
                reply = requester.call("heartbeat", pb.Heartbeat(worker_id=self.worker_id, session=self.session, **self.status))
                if reply is not None:
                    self.last_answer = time.monotonic()
                    if reply[0].WhichOneof("body") == "error" and reply[0].error.code == pb.ERROR_CODE_UNKNOWN_WORKER:
                        self.forgotten.set()  # a restarted master, or one that declared us dead
            requester.close()
        self.heartbeat = threading.Thread(target=beat, daemon=True)
        self.heartbeat.start()

    def run(self):
        pending = self.register()
        while not self.stopping.is_set():
            if pending is not None:
                start, tensors = pending
                pending = None
                if start.kind == pb.JOB_KIND_AGGREGATION:
                    self.fit_members(start)
                else:
                    if self.train(start, tensors) == "re-register":
                        pending = self.register()
                continue
            if self.forgotten.is_set():
                log("the master does not know this worker (restarted?); registering again")
                pending = self.register()
                continue
            if not self.sub.poll(500):
                continue
            try:
                control, tensors = decode(self.sub.recv_multipart())
            except Exception as error:  # a malformed broadcast is skipped, never fatal
                log(f"rejected a broadcast: {error}")
                continue
            kind = control.WhichOneof("body")
            if kind == "job_start":
                pending = (control.job_start, tensors)
            elif kind == "member_predict":
                self.answer_member_predict(control.member_predict, tensors)
            elif kind == "shutdown":
                log(f"shutdown: {control.shutdown.reason}")
                self.stopping.set()
        self.call("goodbye", pb.WorkerGoodbye(worker_id=self.worker_id, session=self.session))

    def targets(self, start):
        """The labels as the job numbers them: a name becomes its index in start.class_names."""
        if not start.class_names:
            if self.names:
                raise ValueError("this shard's labels are class names, the job's numbers")
            return self.labels
        if not self.names:
            raise ValueError("this shard's labels are numbers, the job's class names")
        index = {name: i for i, name in enumerate(start.class_names)}
        return np.array([index[name] for name in self.labels], dtype=np.float64)

    def train(self, start, tensors):
        config = start.config
        if list(start.feature_names) != self.columns:
            log(f"job {start.job_id} uses other columns; skipping it")
            return "skipped"
        try:
            self.y = self.targets(start)
        except (ValueError, KeyError) as error:
            log(f"job {start.job_id}: {error!r}; skipping it")
            return "skipped"
        x = self.x
        if "mean" in tensors:
            x = (x - tensors["mean"]) / tensors["scale"]
        x = x.astype(np.float64)
        classes = np.array(start.classes)
        compute = mlp_loss_and_gradient if config.model == pb.MODEL_MLP else (
            lambda config, weights, xb, yb, classes: loss_and_gradient(config.model, weights, xb, yb, classes))
        mask = None
        own = None
        rng = np.random.default_rng([config.seed, zlib.crc32(self.name.encode())])
        clock = start.start_clock
        self.status.update(job_id=start.job_id, clock=clock, state=pb.WORKER_STATE_TRAINING)
        reply = self.call("weight_pull", pb.WeightPull(worker_id=self.worker_id, session=self.session, job_id=start.job_id, clock=clock))
        while True:
            if reply is None:
                if self.master_gone() and not self.stopping.is_set():
                    log("the master is gone or restarted; registering again")
                    return "re-register"
                log("the master did not answer; leaving the job")
                break
            control, got = reply
            if control.WhichOneof("body") == "error":
                if control.error.code == pb.ERROR_CODE_UNKNOWN_WORKER:
                    return "re-register"
                break
            if control.weights.done:
                break
            weights = got["weights"]
            if mask is None:
                mask = penalised(config, weights, x.shape[1], classes)
            if config.worker_mode in (pb.WORKER_MODE_LOCAL_SGD, pb.WORKER_MODE_ELASTIC):
                elastic = config.worker_mode == pb.WORKER_MODE_ELASTIC
                # EASGD: this worker's own model goes on from round to round.
                start = own if elastic and own is not None else weights.astype(np.float64)
                local, losses, steps = start.copy(), [], max(config.local_steps, 1)
                for step in range(steps):
                    loss, gradient = compute(config, local, *batch(rng, x, self.y, config.batch_size), classes)
                    value, extra = penalty(config, local, mask)
                    local -= learning_rate(config, clock * steps + step + 1) * (gradient + extra)
                    losses.append(loss + value)
                if elastic:
                    move = config.eta0 * config.rho * (local - weights)
                    own = local - move
                    name, update, loss, rows = "delta", move, float(np.mean(losses)), len(x)
                else:
                    name, update, loss, rows = "delta", local - weights, float(np.mean(losses)), len(x)
            else:
                xb, yb = batch(rng, x, self.y, config.batch_size)
                loss, update = compute(config, weights, xb, yb, classes)
                name, rows = "gradient", len(xb)
            if not (np.isfinite(loss) and np.all(np.isfinite(update))):
                # Overflow: say so with a non-finite loss and a zero update (tensors must be finite).
                loss, update = float("inf"), np.zeros_like(update)
            push = pb.GradientPush(worker_id=self.worker_id, session=self.session, job_id=start.job_id, clock=clock, rows=rows, loss=loss,
                                   is_delta=name == "delta", then_pull=True)
            reply = self.call("gradient_push", push, [(name, update.astype("<f4"))])
            clock += 1
            self.status["clock"] = clock
        self.status.update(state=pb.WORKER_STATE_IDLE)
        log(f"job {start.job_id}: stopped at iteration {clock}")
        return "done"

    def fit_members(self, start):
        began = time.monotonic()
        config = start.config
        self.status.update(job_id=start.job_id, clock=0, state=pb.WORKER_STATE_TRAINING)
        result = pb.WorkerResult(worker_id=self.worker_id, session=self.session, job_id=start.job_id)
        tensors = []
        try:
            if list(start.feature_names) != self.columns:
                raise ValueError("the job's columns differ from this shard's")
            self.y = self.targets(start)
            classification = len(start.classes) > 0
            classes = np.array(start.classes)
            target = np.searchsorted(classes, self.y) if classification else self.y
            outputs = len(classes) if classification else 1
            trees = []
            for k in range(max(config.trees_per_worker, 1)):
                rng = np.random.default_rng([config.seed, zlib.crc32(self.name.encode()), k])
                rows = np.arange(len(self.x)) if config.no_bootstrap else rng.integers(0, len(self.x), len(self.x))
                trees.append(fit_tree(self.x[rows], target[rows], config, outputs, classification, rng))
            tensors = [(f"tree.{k}", tree.encode(0 if classification else 1, len(self.columns), outputs))
                       for k, tree in enumerate(trees)]
            self.members = (start.job_id, trees, outputs)
            log(f"job {start.job_id}: fitted {len(trees)} trees")
        except Exception as error:  # a failed fit is reported to the master, not raised
            result.failed, result.error = True, str(error)
        result.seconds = time.monotonic() - began
        self.call("worker_result", result, tensors)
        self.status.update(state=pb.WORKER_STATE_IDLE)

    def answer_member_predict(self, task, tensors):
        answer = pb.MemberPrediction(worker_id=self.worker_id, session=self.session, task_id=task.task_id)
        out = []
        if self.members is None or self.members[0] != task.job_id:
            answer.failed, answer.error = True, "no members of that job here"
        else:
            _, trees, outputs = self.members
            x = tensors["x"]
            means = sum(tree.predict(x) for tree in trees) / len(trees)
            answer.members = len(trees)
            out = [("means", means.astype("<f4").reshape(len(x), outputs))]
        self.call("member_prediction", answer, out)


def broadcast_endpoint(advertised, master):
    """The PUB endpoint from Welcome; a wildcard host means "the master's host"."""
    host, _, port = advertised.rpartition(":")
    if master.startswith("tcp://") and host in ("tcp://0.0.0.0", "tcp://*", "tcp://[::]"):
        return master.rpartition(":")[0] + ":" + port
    return advertised


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--master", default="tcp://127.0.0.1:5555", help="the master's workers endpoint")
    parser.add_argument("--data", required=True, help="folder with X_train.csv and y_train.csv")
    parser.add_argument("--name", help="unique worker name (default: the data folder's name)")
    worker = Worker(parser.parse_args())
    try:
        worker.run()
    except KeyboardInterrupt:
        pass
    finally:
        worker.stopping.set()


if __name__ == "__main__":
    main()
