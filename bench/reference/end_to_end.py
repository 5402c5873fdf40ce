#!/usr/bin/python3
"""PyTorch reference for bench/end_to_end.cpp: the same models, the same tasks, the same JSON fields.

Tasks (as bench_end_to_end):
  combo-train        Combo (921 cell + 2 x 3,829 drug features, width 1,000, dropout 0.05, the
                     drug encoder shared by both drugs), MSE, Adam (lr 1e-3), batch 256, shuffled
                     minibatches gathered from synthetic data held in memory
  combo-infer        Combo predictions, eval mode, no autograd, batch 4,096
  descriptor-infer   docking descriptor MLP 1,613-250-125-60-30-1 (ReLU, dropout 0.1), batch 8,192
  fingerprint-infer  docking fingerprint MLP 2,048-1,024-256-64-16-1 on binary fingerprints with
                     ~2.9% of bits set (the synthetic library's density)
  docking-train      the descriptor MLP trained with MSE and Adam, batch 256
  fingerprint-train  the fingerprint MLP trained the same way (dense first layer: PyTorch's sparse
                     path does not train a Linear layer faster at this size)

Tuning (what a careful user would do; bench/compare also sets the environment: OMP_NUM_THREADS,
OPENBLAS_NUM_THREADS, tcmalloc preloaded, and the fastest of OMP_WAIT_POLICY PASSIVE, unset and
ACTIVE, tried per task): torch.set_num_threads(N);
inference in torch.inference_mode(); training with set_to_none gradients and Adam's
multi-tensor ("foreach") step; for inference the faster of plain modules and oneDNN (MKL-DNN)
converted ones, and for the fingerprint model also a sparse CSR first layer, each tried and the
fastest reported (the JSON says which).

--precision (inference tasks) asks for PyTorch's own low-precision paths: bf16 is
torch.autocast("cpu", dtype=torch.bfloat16) around the plain and the oneDNN-converted modules, and
a module cast to bf16 whole (the input's cast counted), the fastest reported; int8 is
torch.ao.quantization.quantize_dynamic on every Linear layer (int8 weights per tensor, activations
quantized per batch on the fly). fp32 is the default described above.

Run with Debian's interpreter (/usr/bin/python3, package python3-torch).
"""
import argparse
import copy
import json
import os
import statistics
import sys
import time
import warnings

import torch
from torch import nn


def dense_macs(widths):
    return sum(a * b for a, b in zip(widths, widths[1:]))


class Combo(nn.Module):
    """Cell encoder and one drug encoder applied to both drugs, concatenated, then the stack."""

    def __init__(self, cell=921, drug=3829, width=1000, dropout=0.05):
        super().__init__()
        self.cell, self.drug = cell, drug

        def stack(first):
            layers = []
            for i in range(3):
                layers += [nn.Linear(first if i == 0 else width, width), nn.ReLU(), nn.Dropout(dropout)]
            return nn.Sequential(*layers)

        self.cell_encoder = stack(cell)
        self.drug_encoder = stack(drug)
        self.head = nn.Sequential(stack(3 * width), nn.Linear(width, 1))

    def forward(self, x):
        c, d = self.cell, self.drug
        return self.head(torch.cat([self.cell_encoder(x[:, :c]), self.drug_encoder(x[:, c:c + d]),
                                    self.drug_encoder(x[:, c + d:c + 2 * d])], dim=1))


def mlp(widths, dropout):
    layers = []
    for a, b in zip(widths[:-2], widths[1:-1]):
        layers += [nn.Linear(a, b), nn.ReLU(), nn.Dropout(dropout)]
    layers.append(nn.Linear(widths[-2], widths[-1]))
    return nn.Sequential(*layers)


DESCRIPTOR = [1613, 250, 125, 60, 30, 1]
FINGERPRINT = [2048, 1024, 256, 64, 16, 1]
COMBO_CELL, COMBO_DRUG, COMBO_WIDTH = 921, 3829, 1000


def combo_flops(training):
    w = COMBO_WIDTH
    forward = 2 * (dense_macs([COMBO_CELL, w, w, w]) + 2 * dense_macs([COMBO_DRUG, w, w, w]) +
                   dense_macs([3 * w, w, w, w, 1]))
    first = 2 * w * (COMBO_CELL + 2 * COMBO_DRUG)
    return 3 * forward - first if training else forward


def descriptor_flops(training):
    forward = 2 * dense_macs(DESCRIPTOR)
    return 3 * forward - 2 * DESCRIPTOR[0] * DESCRIPTOR[1] if training else forward


def fingerprints(n, bits=2048, density=0.029, seed=3):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(n, bits, generator=g) < density).float()


def window_rates(step, batch, warmup, windows, steps):
    for _ in range(warmup):
        step()
    rates = []
    for _ in range(windows):
        start = time.perf_counter()
        for _ in range(steps):
            step()
        rates.append(steps * batch / (time.perf_counter() - start))
    return rates


def time_training(model, x, y, args):
    model.train()
    loss_fn = nn.MSELoss()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, foreach=True)
    n = x.shape[0]
    g = torch.Generator().manual_seed(1)
    order = [torch.randperm(n, generator=g)]
    position = [0]

    def step():
        if position[0] + args.batch > n:
            order[0] = torch.randperm(n, generator=g)
            position[0] = 0
        idx = order[0][position[0]:position[0] + args.batch]
        position[0] += args.batch
        xb, yb = x.index_select(0, idx), y.index_select(0, idx)
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(model(xb), yb)
        loss.backward()
        optimizer.step()

    return window_rates(step, args.batch, args.warmup, args.windows, args.steps), "adam-foreach"


def inference_variants(model, x, sparse_first=False):
    """(name, step) pairs: the ways to run `model` on `x` a tuned user would consider."""
    model.eval()
    variants = []

    def plain():
        with torch.inference_mode():
            model(x)

    variants.append(("plain", plain))
    if torch.backends.mkldnn.is_available():
        from torch.utils import mkldnn as mkldnn_utils
        converted = mkldnn_utils.to_mkldnn(copy.deepcopy(model))  # converts in place

        def onednn():  # the batch arrives dense: its conversion is part of the work
            with torch.inference_mode():
                converted(x.to_mkldnn())

        variants.append(("onednn", onednn))
    if sparse_first:
        first, rest = model[0], model[1:]
        wt = first.weight.detach().t().contiguous()
        bias = first.bias.detach()
        warnings.filterwarnings("ignore", message=".*Sparse CSR tensor support is in beta.*")

        def sparse():  # the batch arrives dense (as Strata's sparse layer reads it): convert it here
            with torch.inference_mode():
                rest(torch.addmm(bias, x.to_sparse_csr(), wt))

        variants.append(("sparse-csr", sparse))
    return variants


def bf16_variants(model, x):
    """PyTorch's bf16 inference: autocast around plain and oneDNN modules, or a bf16 copy of the module."""
    model.eval()
    variants = []
    for name, step in inference_variants(model, x):
        if name == "sparse-csr":
            continue

        def autocast(step=step):
            with torch.autocast("cpu", dtype=torch.bfloat16):
                step()

        variants.append(("autocast-bf16-" + name, autocast))
    cast = copy.deepcopy(model).to(torch.bfloat16)

    def whole():  # the batch arrives in fp32: its cast is part of the work
        with torch.inference_mode():
            cast(x.to(torch.bfloat16))

    variants.append(("bf16-module", whole))
    return variants


def int8_variants(model, x):
    """PyTorch's int8 inference for Linear stacks: dynamic quantization."""
    model.eval()
    quantized = torch.ao.quantization.quantize_dynamic(copy.deepcopy(model), {nn.Linear}, dtype=torch.qint8)

    def dynamic():
        with torch.inference_mode():
            quantized(x)

    return [("quantize-dynamic-int8", dynamic)]


def time_inference(model, x, args, sparse_first=False):
    best = None
    variants = bf16_variants(model, x) if args.precision == "bf16" else int8_variants(model, x) \
        if args.precision == "int8" else inference_variants(model, x, sparse_first)
    for name, step in variants:
        try:
            rates = window_rates(step, args.batch, args.warmup, args.windows, args.steps)
        except RuntimeError as e:  # a variant this build does not support
            print(f"end_to_end.py: {name} skipped: {str(e).splitlines()[0]}", file=sys.stderr)
            continue
        if best is None or statistics.median(rates) > statistics.median(best[0]):
            best = (rates, name)
    return best


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--task", default="combo-train",
                   choices=["combo-train", "combo-infer", "descriptor-infer", "fingerprint-infer", "docking-train",
                            "fingerprint-train"])
    p.add_argument("--batch", type=int, default=0, help="0: 256 training, 4,096 Combo inference, 8,192 docking")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--warmup", type=int, default=0, help="0: the task's default")
    p.add_argument("--windows", type=int, default=7)
    p.add_argument("--steps", type=int, default=0, help="steps per window; 0: the task's default")
    p.add_argument("--precision", default="fp32", choices=["fp32", "bf16", "int8"], help="inference tasks: arithmetic")
    args = p.parse_args()
    training = args.task.endswith("-train")
    if training and args.precision != "fp32":
        p.error("--precision is for the inference tasks")
    args.batch = args.batch or (256 if training else 4096 if args.task == "combo-infer" else 8192)
    args.steps = args.steps or {"combo-train": 5, "docking-train": 60, "fingerprint-train": 60, "combo-infer": 2}.get(args.task, 10)
    args.warmup = args.warmup or (3 if training else 2)

    torch.set_num_threads(args.threads)
    torch.manual_seed(1)
    g = torch.Generator().manual_seed(2)
    if args.task == "combo-train":
        n = 8 * args.batch
        x = torch.randn(n, COMBO_CELL + 2 * COMBO_DRUG, generator=g)
        rates, variant = time_training(Combo(), x, torch.randn(n, 1, generator=g), args)
        flops = combo_flops(True)
    elif args.task == "combo-infer":
        rates, variant = time_inference(Combo(), torch.randn(args.batch, COMBO_CELL + 2 * COMBO_DRUG, generator=g), args)
        flops = combo_flops(False)
    elif args.task == "descriptor-infer":
        x = torch.tanh(torch.randn(args.batch, DESCRIPTOR[0], generator=g))
        rates, variant = time_inference(mlp(DESCRIPTOR, 0.1), x, args)
        flops = descriptor_flops(False)
    elif args.task == "fingerprint-infer":
        rates, variant = time_inference(mlp(FINGERPRINT, 0.1), fingerprints(args.batch), args, sparse_first=True)
        flops = 2 * dense_macs(FINGERPRINT)
    elif args.task == "fingerprint-train":
        n = 32 * args.batch
        rates, variant = time_training(mlp(FINGERPRINT, 0.1), fingerprints(n), torch.randn(n, 1, generator=g), args)
        flops = 3 * 2 * dense_macs(FINGERPRINT) - 2 * FINGERPRINT[0] * FINGERPRINT[1]
    else:
        n = 32 * args.batch
        x = torch.tanh(torch.randn(n, DESCRIPTOR[0], generator=g))
        rates, variant = time_training(mlp(DESCRIPTOR, 0.1), x, torch.randn(n, 1, generator=g), args)
        flops = descriptor_flops(True)

    rate = statistics.median(rates)
    print(json.dumps({
        "framework": "pytorch", "task": args.task, "threads": args.threads, "batch": args.batch,
        "samples_per_s": round(rate, 1), "min": round(min(rates), 1), "max": round(max(rates), 1),
        "windows": len(rates), "gflop_per_s": round(rate * flops * 1e-9, 2),
        "mflop_per_sample": round(flops * 1e-6, 4), "variant": variant, "precision": args.precision,
        "torch": torch.__version__, "openblas_coretype": os.environ.get("OPENBLAS_CORETYPE", "(unset)")}))


if __name__ == "__main__":
    main()
