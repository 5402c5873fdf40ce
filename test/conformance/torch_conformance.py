"""The PyTorch half of the conformance suite: trains every case conformance_cases wrote with
PyTorch's own modules, losses, optimizers, schedulers and clipping, from the same initial
tensors on the same batches in the same order, and compares with what Strata did: the loss of
every step, the learning rate of every epoch, the validation loss, the final tensors (weights
and running statistics) and the evaluation-mode predictions.

    usage: torch_conformance.py CASES_DIRECTORY SCRIPTS_DIRECTORY

Differences are relative to the compared array's largest magnitude (one weight matrix, the
losses of all steps, ...; at least 1e-3): at most 1e-10 in float64, 1e-5 in float32. Exit status 77 (skipped) without
python3-torch, 1 when any case disagrees.
"""
import json
import os
import sys
from fnmatch import fnmatchcase

import numpy as np

try:
    import torch
    from torch import nn
except ImportError:
    print("skipped: python3-torch is not installed (apt-get install python3-torch)")
    sys.exit(77)

sys.path.insert(0, sys.argv[2])
import strata_torch  # noqa: E402

torch.use_deterministic_algorithms(True)
torch.set_num_threads(1)


def strip(name):
    return name[len("model/"):] if name.startswith("model/") else name


def selects(pattern, name):
    """Strata's group patterns (core/parameter.hpp): * and ?, the pattern or anything below it."""
    p, n = strip(pattern), strip(name)
    return any(fnmatchcase(n, q) for q in (p, p + ".*", p + "/*"))


def make_loss(spec):
    kind = spec["kind"]
    if kind == "MSE":
        return nn.MSELoss()
    if kind == "L1":
        return nn.L1Loss()
    if kind == "Huber":
        return nn.HuberLoss(delta=spec["delta"])
    raise ValueError(f"unknown loss {kind}")


def make_optimizer(spec, groups):
    o = dict(spec)
    kind = o.pop("kind")
    if kind == "SGD":
        return torch.optim.SGD(groups, foreach=False, **o)
    if kind == "Adam":
        return torch.optim.Adam(groups, betas=tuple(o.pop("betas")), foreach=False, **o)
    if kind == "AdamW":
        return torch.optim.AdamW(groups, betas=tuple(o.pop("betas")), foreach=False, **o)
    if kind == "RMSprop":
        return torch.optim.RMSprop(groups, foreach=False, **o)
    if kind == "Adagrad":
        return torch.optim.Adagrad(groups, foreach=False, **o)
    raise ValueError(f"unknown optimizer {kind}")


def make_scheduler(spec, optimizer):
    """PyTorch's own scheduler for an epoch schedule (stepped once per epoch), or None."""
    if spec is None:
        return None
    kind = spec["kind"]
    if kind == "StepLR":
        return torch.optim.lr_scheduler.StepLR(optimizer, step_size=spec["step_size"], gamma=spec["gamma"])
    if kind == "CosineAnnealingLR":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=spec["T_max"], eta_min=spec["eta_min"])
    if kind == "LinearWarmup":
        return torch.optim.lr_scheduler.LinearLR(optimizer, start_factor=spec["start_factor"], end_factor=1.0,
                                                 total_iters=spec["warmup"])
    if kind == "ReduceLROnPlateau":
        # Strata bounds the rate before a group's multiplier: each group's floor is min_lr x its scale.
        # eps=0: Strata has no "ignore reductions smaller than eps" rule (PyTorch's default 1e-8).
        return torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, mode="min", factor=spec["factor"], patience=spec["patience"], threshold=spec["threshold"],
            threshold_mode="rel", cooldown=spec["cooldown"],
            min_lr=[spec["min_lr"] * g["scale"] for g in optimizer.param_groups], eps=0.0)
    raise ValueError(f"unknown schedule {kind}")


class Comparison:
    def __init__(self, tolerance):
        self.tolerance, self.worst, self.where = tolerance, 0.0, ""

    def add(self, what, ours, theirs):
        ours, theirs = np.asarray(ours, dtype=np.float64), np.asarray(theirs, dtype=np.float64)
        if ours.shape != theirs.shape:
            raise ValueError(f"{what}: shape {ours.shape} in PyTorch, {theirs.shape} in Strata")
        if ours.size == 0:
            return
        scale = max(np.abs(ours).max(), np.abs(theirs).max(), 1e-3)
        d = float(np.abs(ours - theirs).max() / scale)
        if not np.isfinite(d):
            d = np.inf
        if d > self.worst:
            self.worst, self.where = d, what


def run(directory):
    with open(os.path.join(directory, "case.json"), encoding="utf-8") as f:
        case = json.load(f)
    how = case["training"]
    model = strata_torch.load(os.path.join(directory, "case.json"), os.path.join(directory, "init.npz"))
    model.train()
    dtype = torch.float64 if case["scalar"] == "float64" else torch.float32
    data = np.load(os.path.join(directory, "data.npz"))
    trace = np.load(os.path.join(directory, "trace.npz"))
    final = np.load(os.path.join(directory, "final.npz"))
    x, y = torch.from_numpy(data["x"].T.copy()), torch.from_numpy(data["y"].T.copy())
    x_val, y_val = torch.from_numpy(data["x_val"].T.copy()), torch.from_numpy(data["y_val"].T.copy())

    # Parameter groups as Strata resolves them: each pattern replaces the group of what it selects.
    params = {name: t for name, t in model.named_strata_tensors() if isinstance(t, nn.Parameter)}
    group_of = {name: (1.0, True) for name in params}
    for pattern, scale, decay in how["groups"]:
        for name in params:
            if selects(pattern, name):
                group_of[name] = (scale, decay)
    lr = how["optimizer"]["lr"]
    decay = how["optimizer"].get("weight_decay", 0.0)
    groups = [{"params": [params[n]], "lr": lr * s, "weight_decay": decay if d else 0.0, "scale": s}
              for n, (s, d) in group_of.items() if s != 0.0]
    for name, (s, _) in group_of.items():
        if s == 0.0:
            params[name].requires_grad_(False)  # frozen: not updated (gradients still flow through)
    trainable = [g["params"][0] for g in groups]
    optimizer = make_optimizer(how["optimizer"], groups)
    scheduler = make_scheduler(how["schedule"], optimizer)
    plateau = isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau)
    loss_fn = make_loss(how["loss"])

    tolerance = 1e-10 if dtype == torch.float64 else 1e-5
    check = Comparison(tolerance)
    step, losses = 0, []
    batch, warmup = how["batch"], how["warmup_steps"]
    for epoch in range(how["epochs"]):
        epoch_lr = optimizer.param_groups[0]["lr"] / optimizer.param_groups[0]["scale"] if groups else lr
        check.add(f"epoch {epoch} learning rate", epoch_lr, trace["epoch_lr"][epoch])
        epoch_rates = [g["lr"] for g in optimizer.param_groups]
        order = data[f"order_{epoch}"].astype(np.int64)
        model.train()
        for first in range(0, len(order), batch):
            rows = torch.from_numpy(order[first:first + batch])
            if warmup > 0:  # Strata's per-step warm-up: (step + 1) / warmup_steps of the epoch's rate
                factor = min(1.0, (step + 1) / warmup)
                for g, rate in zip(optimizer.param_groups, epoch_rates):
                    g["lr"] = rate * factor
            optimizer.zero_grad()
            loss = loss_fn(model(x[rows]), y[rows])
            loss.backward()
            if how["clip_norm"] > 0:
                torch.nn.utils.clip_grad_norm_(trainable, how["clip_norm"])
            optimizer.step()
            losses.append(loss.item())
            step += 1
        for g, rate in zip(optimizer.param_groups, epoch_rates):
            g["lr"] = rate
        if how["validate"]:
            model.eval()
            with torch.no_grad():
                val = loss_fn(model(x_val), y_val).item()
            check.add(f"epoch {epoch} validation loss", val, trace["val_loss"][epoch])
        if scheduler is not None:
            scheduler.step(val) if plateau else scheduler.step()
    check.add("step losses", losses, trace["step_loss"])
    for name, tensor in model.named_strata_tensors():
        check.add(f"final {name}", tensor.detach().numpy(), final[name])
    model.eval()
    with torch.no_grad():
        check.add("evaluation-mode predictions", model(x_val).numpy().T, trace["val_prediction"])
    return check, step


def main():
    root = sys.argv[1]
    cases = sorted(d for d in os.listdir(root) if os.path.isfile(os.path.join(root, d, "case.json")))
    if not cases:
        print(f"no cases in {root} (run conformance_cases first)")
        return 1
    failed = 0
    print(f"PyTorch {torch.__version__}; {len(cases)} cases")
    for name in cases:
        check, steps = run(os.path.join(root, name))
        ok = check.worst <= check.tolerance
        failed += not ok
        print(f"{'ok  ' if ok else 'FAIL'} {name:32s} {steps:3d} steps  largest relative difference {check.worst:.2e}"
              f" (allowed {check.tolerance:.0e}){'' if ok else ' at ' + check.where}")
    print(f"{len(cases) - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
