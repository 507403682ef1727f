#!/usr/bin/env python3
"""The bench's methods hand-written in PyTorch, on the weights and inputs `attribution bench --pytorch DIR` wrote.

    attribution bench --quick --pytorch /tmp/pt --json ours.json
    python3 scripts/bench_pytorch.py /tmp/pt --ours ours.json

It times the floor (forward plus input gradient on noisy copies), saliency, SmoothGrad and Integrated Gradients
(Gauss-Legendre, baseline 0, plus the two forward passes of the completeness gap) with the toolkit's settings:
the softmax probability of the target, 0.15 noise, calls of 50 inputs cut into the same chunks, the same thread
count. Rounds alternate the methods; best times are kept. With --ours it prints the toolkit's time over PyTorch's for
each method both ran. It first checks that PyTorch's saliency maps equal the toolkit's (same function, same weights).
With --device cuda it runs on the GPU (the toolkit's bench ran there too: `attribution bench --device cuda`), waiting
for the device's queued work before each clock reading. Needs only torch (and torchvision for a TorchVision
architecture); CI never runs it.
"""
import argparse
import json
import os
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


class FashionCnn(nn.Module):
    """The toolkit's default CNN (src/Attribution.CSharp/Models/FashionCnn.cs), with its parameter names."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 16, 5)
        self.conv2 = nn.Conv2d(16, 32, 5)
        self.fc1 = nn.Linear(32 * 4 * 4, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = F.relu(self.fc1(x.flatten(1)))
        x = F.relu(self.fc2(x))
        return self.fc3(x)


def build(architecture):
    if architecture == "fashion_cnn":
        return FashionCnn()
    import torchvision
    return getattr(torchvision.models, architecture)(num_classes=10)


def probability_gradient(model, z, targets):
    """grad of the target's softmax probability at each point, as p * grad log p (the toolkit's form)."""
    z = z.detach().requires_grad_(True)
    log_p = F.log_softmax(model(z), 1).gather(1, targets[:, None]).squeeze(1)
    (g,) = torch.autograd.grad(log_p.sum(), z)
    return g * log_p.detach().exp().view(-1, *([1] * (z.dim() - 1)))


def chunks(total, size):
    for start in range(0, total, size):
        yield start, min(size, total - start)


def floor(model, x, t, samples, chunk):
    points = x.repeat_interleave(samples, 0) + 0.15 * torch.randn(x.shape[0] * samples, *x.shape[1:], device=x.device)
    targets = t.repeat_interleave(samples, 0)
    start_clock = time.perf_counter()
    for start, size in chunks(points.shape[0], chunk):
        z = points[start:start + size].detach().requires_grad_(True)
        picked = model(z).gather(1, targets[start:start + size, None])
        torch.autograd.grad(picked.sum(), z)
    return time.perf_counter() - start_clock


def weighted_sum(model, x, t, samples, chunk, points_of):
    """Per input, the weighted sum over its points of grad p; points_of(i) gives input i's points and their weights.
    Points are laid input after input and cut into chunks, as the toolkit's engine cuts them."""
    sums = torch.zeros(x.shape, dtype=torch.float64, device=x.device)
    total = x.shape[0] * samples
    owner = torch.arange(x.shape[0], device=x.device).repeat_interleave(samples)
    cache = {}
    for start, size in chunks(total, chunk):
        rows = owner[start:start + size]
        points, weights = [], []
        for i in rows.unique().tolist():
            if i not in cache:
                cache = {i: points_of(i)}
            first = max(start - i * samples, 0)
            last = min(start + size - i * samples, samples)
            points.append(cache[i][0][first:last])
            weights.append(cache[i][1][first:last])
        g = probability_gradient(model, torch.cat(points), t[rows]).double()
        w = torch.cat(weights).double().view(-1, *([1] * (x.dim() - 1)))
        sums.index_add_(0, rows, g * w)
    return sums.float()


def smooth_grad(model, x, t, samples, chunk):
    generator = torch.Generator(device=x.device).manual_seed(0)
    uniform = torch.full((samples,), 1.0 / samples, device=x.device)
    return weighted_sum(model, x, t, samples, chunk,
                        lambda i: (x[i:i + 1] + 0.15 * torch.randn(samples, *x.shape[1:], generator=generator, device=x.device), uniform))


def integrated_gradients(model, x, t, samples, chunk):
    nodes, weights = np.polynomial.legendre.leggauss(samples)
    alphas = torch.tensor((nodes + 1) / 2, dtype=torch.float32, device=x.device)
    w = torch.tensor(weights / 2, dtype=torch.float32, device=x.device)   # Gauss-Legendre on [0, 1]
    view = (-1,) + (1,) * (x.dim() - 1)
    mean = weighted_sum(model, x, t, samples, chunk, lambda i: (alphas.view(view) * x[i:i + 1], w))
    # the completeness gap's two forward passes, as the toolkit reports it
    with torch.no_grad():
        F.softmax(model(x), 1)
        F.softmax(model(torch.zeros_like(x)), 1)
    return mean * x


def synchronise(device):
    """Waits for the device's queued work (CUDA runs asynchronously), so that a clock reading covers it."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(work, device):
    synchronise(device)
    start = time.perf_counter()
    work()
    synchronise(device)
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--ours", help="the toolkit's bench --json file, for the ratio toolkit / PyTorch")
    parser.add_argument("--device", default="cpu", help="cpu (default) or cuda: where PyTorch runs (the toolkit's bench on the same device)")
    args = parser.parse_args()
    device = torch.device(args.device)
    meta = json.load(open(os.path.join(args.folder, "bench.json")))
    torch.set_num_threads(meta["threads"])
    model = build(meta["architecture"])
    state = torch.load(os.path.join(args.folder, "weights.pth"))
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.endswith("num_batches_tracked")]
    if missing or unexpected:
        raise SystemExit(f"weights do not match {meta['architecture']}: missing {missing}, unexpected {unexpected}")
    model.eval().to(device)
    shape = meta["shape"]
    x = torch.from_numpy(np.fromfile(os.path.join(args.folder, "inputs.f32"), dtype="<f4").reshape(shape)).to(device)
    t = torch.from_numpy(np.fromfile(os.path.join(args.folder, "targets.i64"), dtype="<i8")).to(device)
    ours = torch.from_numpy(np.fromfile(os.path.join(args.folder, "saliency.f32"), dtype="<f4").reshape(shape)).to(device)
    theirs = torch.cat([probability_gradient(model, x[s:s + n], t[s:s + n]) for s, n in chunks(x.shape[0], 64)])
    scale = ours.abs().max().item()
    difference = (ours - theirs).abs().max().item()
    print(f"saliency maps: max |toolkit - PyTorch| = {difference:.3g} ({difference / scale:.2g} of the largest value)")
    if difference > 1e-3 * scale:
        raise SystemExit("the saliency maps differ: the two sides do not compute the same function")

    samples, chunk, per_call = meta["samples"], meta["points_per_chunk"], meta["inputs_per_call"]
    def by_call(method, passes):
        def work():
            for s, n in chunks(x.shape[0], per_call):
                method(model, x[s:s + n], t[s:s + n], passes, chunk)
        return work
    contenders = {
        "floor": by_call(floor, samples),
        "saliency": by_call(lambda m, xs, ts, _, c: probability_gradient(m, xs, ts), 1),
        "smooth_grad": by_call(smooth_grad, samples),
        "integrated_gradients": by_call(integrated_gradients, samples),
    }
    best = {name: float("inf") for name in contenders}
    for _ in range(args.repeats):
        for name, work in contenders.items():
            best[name] = min(best[name], timed(work, device))
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else f"{torch.get_num_threads()} threads"
    print(f"PyTorch {torch.__version__}, {where}, {meta['architecture']} {shape}, "
          f"{samples} samples, chunks of {chunk}, best of {args.repeats}")
    figures = {}
    if args.ours:
        figures = {c["Id"]: c["BestSeconds"] for c in json.load(open(args.ours))["Contenders"]}
    for name, seconds in best.items():
        line = f"{name:24s} {seconds:9.3f} s  {x.shape[0] / seconds:9.1f} images/s"
        if name in figures:
            line += f"   toolkit {figures[name]:9.3f} s, toolkit / PyTorch {figures[name] / seconds:.3f}"
        print(line)


if __name__ == "__main__":
    main()
