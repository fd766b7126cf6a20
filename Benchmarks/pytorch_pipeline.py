"""PyTorch's own pipeline parallelism (torch.distributed.pipelining, gloo on CPU) training an MLP: the
reference `chimera bench pipeline` runs beside Chimera's pipeline stages in the same invocation.

One process per stage. Every step trains on the whole batch given (full-batch gradient descent, rows in
file order), split into --micro-batches equal micro-batches, with ScheduleGPipe or Schedule1F1B
(gradients averaged over the micro-batches), then plain SGD on each stage. The network and its starting
weights come from files the benchmark writes, in Chimera's flat layout (per layer: W m×n row-major, then
b), so both systems start from the same weights and must report the same losses.

usage: python pytorch_pipeline.py --x X.f32 --y Y.f32 --weights W.f32 --sizes 64,1024,...,10
           --stage-layers 3,3 --micro-batches 8 --schedule gpipe|1f1b --steps 20 --lr 0.01 --port P
Prints one JSON line (from the last stage): losses per step, samples/s over steps 2…S.
"""
import argparse, json, os, time
import numpy as np
import torch, torch.distributed as dist, torch.multiprocessing as mp
from torch.distributed.pipelining import PipelineStage, ScheduleGPipe, Schedule1F1B


def stage_module(sizes, flat, first, end):
    """Layers [first, end) with ReLU after every hidden layer, weights taken from the flat vector."""
    layers, offset = [], 0
    for layer in range(len(sizes) - 1):
        n, m = sizes[layer], sizes[layer + 1]
        w = flat[offset:offset + m * n].reshape(m, n); offset += m * n
        b = flat[offset:offset + m]; offset += m
        if first <= layer < end:
            linear = torch.nn.Linear(n, m)
            with torch.no_grad():
                linear.weight.copy_(torch.from_numpy(w.copy()))
                linear.bias.copy_(torch.from_numpy(b.copy()))
            layers.append(linear)
            if layer < len(sizes) - 2:
                layers.append(torch.nn.ReLU())
    return torch.nn.Sequential(*layers)


def run(rank, a):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(a.port))
    torch.set_num_threads(1)
    sizes = [int(s) for s in a.sizes.split(",")]
    counts = [int(c) for c in a.stage_layers.split(",")]
    world = len(counts)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    first = sum(counts[:rank]); end = first + counts[rank]
    flat = np.fromfile(a.weights, dtype=np.float32)
    x = torch.from_numpy(np.fromfile(a.x, dtype=np.float32).reshape(-1, sizes[0]))
    y = torch.from_numpy(np.fromfile(a.y, dtype=np.float32).astype(np.int64))
    module = stage_module(sizes, flat, first, end)
    rows = x.shape[0] // a.micro_batches
    example = torch.zeros(rows, sizes[first])
    stage = PipelineStage(module, rank, world, torch.device("cpu"), input_args=(example,))
    loss_fn = torch.nn.CrossEntropyLoss()
    kind = ScheduleGPipe if a.schedule == "gpipe" else Schedule1F1B
    schedule = kind(stage, a.micro_batches, loss_fn=loss_fn)
    opt = torch.optim.SGD(module.parameters(), lr=a.lr)
    last = rank == world - 1
    losses = []

    def step():
        opt.zero_grad(set_to_none=True)
        micro = []
        if rank == 0 and last:
            schedule.step(x, target=y, losses=micro)
        elif rank == 0:
            schedule.step(x)
        elif last:
            schedule.step(target=y, losses=micro)
        else:
            schedule.step()
        opt.step()
        if last:
            losses.append(float(sum(l.item() for l in micro) / len(micro)))

    step(); dist.barrier()
    t0 = time.perf_counter()
    for _ in range(a.steps - 1):
        step()
    dist.barrier()
    wall = time.perf_counter() - t0
    if last:
        print(json.dumps({
            "system": "pytorch-pipelining-gloo", "torch": torch.__version__, "stages": world,
            "micro_batches": a.micro_batches, "schedule": a.schedule, "steps": a.steps, "rows": x.shape[0],
            "wall_s": round(wall, 4), "samples_per_s": round(x.shape[0] * (a.steps - 1) / wall, 2),
            "losses": losses}), flush=True)
    dist.destroy_process_group()


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    for name in ["x", "y", "weights", "sizes", "stage-layers", "schedule"]:
        p.add_argument("--" + name, required=True)
    p.add_argument("--micro-batches", type=int, default=4)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--lr", type=float, default=0.01)
    p.add_argument("--port", type=int, default=29531)
    a = p.parse_args()
    mp.spawn(run, args=(a,), nprocs=len(a.stage_layers.split(",")), join=True)
