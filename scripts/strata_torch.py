"""Strata models as PyTorch modules, and PyTorch weights back into Strata.

From the two files a trained model leaves behind (graph/architecture.hpp: write_architecture,
and io/model_npz.hpp: save_npz), three lines give the model in PyTorch:

    import strata_torch
    model = strata_torch.load("combo.json", "combo.npz")    # a torch.nn.Module, in eval mode
    y = model(torch.from_numpy(x))                          # x: samples x input_width

The module mirrors Strata's layer tree (Fork, Shared, Slice and Residual are small modules of
this file; the rest are torch.nn's own: Linear, ReLU, LeakyReLU, ELU, Sigmoid, Tanh, Dropout,
BatchNorm1d, LayerNorm, Identity). `save_npz(model, path)` writes its tensors under Strata's
names, so a model fine-tuned in PyTorch goes back with strata::load_npz. Needs Debian's
python3-torch (and python3-numpy).
"""
import json

import numpy as np
import torch
from torch import nn


class Slice(nn.Module):
    """The features [begin, end) of the input."""

    def __init__(self, begin, end):
        super().__init__()
        self.begin, self.end = begin, end

    def forward(self, x):
        return x[:, self.begin:self.end]


class Fork(nn.Module):
    """Every branch applied to the same input, outputs concatenated."""

    def __init__(self, branches):
        super().__init__()
        self.branches = nn.ModuleList(branches)

    def forward(self, x):
        return torch.cat([branch(x) for branch in self.branches], dim=1)


class Shared(nn.Module):
    """One network, one set of weights, applied to several slices of the input."""

    def __init__(self, net, begins, ends):
        super().__init__()
        self.net, self.bounds = net, list(zip(begins, ends))

    def forward(self, x):
        return torch.cat([self.net(x[:, b:e]) for b, e in self.bounds], dim=1)


class Residual(nn.Module):
    """x + net(x)."""

    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, x):
        return x + self.net(x)


class StrataModule(nn.Module):
    """A Strata model rebuilt in PyTorch; `layers` maps each Strata layer path to its module."""

    def __init__(self, architecture):
        super().__init__()
        if architecture.get("format") != "strata-architecture" or architecture.get("version") != 1:
            raise ValueError("not a Strata architecture description (format strata-architecture, version 1)")
        self.input_width, self.output_width = architecture["input_width"], architecture["output_width"]
        self.layers = {}
        self.net, width = self._build(architecture["model"], self.input_width)
        if width != self.output_width:
            raise ValueError(f"the rebuilt model gives {width} outputs, the description says {self.output_width}")
        if architecture.get("scalar") == "float64":
            self.double()

    def forward(self, x):
        return self.net(x)

    def _build(self, node, width):
        kind, children, path = node["kind"], node.get("children", []), node["path"]
        if kind in ("Sequential", "Branch", "Repeat"):
            modules = []
            for child in children:
                module, width = self._build(child, width)
                modules.append(module)
            module = nn.Sequential(*modules)
        elif kind == "Fork":
            branches, total = [], 0
            for child in children:
                branch, w = self._build(child, width)
                branches.append(branch)
                total += w
            module, width = Fork(branches), total
        elif kind == "Slice":
            module, width = Slice(node["begin"], node["end"]), node["end"] - node["begin"]
        elif kind == "Shared":
            net, w = self._build(children[0], node["ends"][0] - node["begins"][0])
            module, width = Shared(net, node["begins"], node["ends"]), w * len(node["begins"])
        elif kind == "Residual":
            module = Residual(self._build(children[0], width)[0])
        elif kind in ("Dense", "SparseInputDense"):
            module, width = nn.Linear(width, node["width"], bias=node["bias"]), node["width"]
        elif kind == "ReLU":
            module = nn.ReLU()
        elif kind == "LeakyReLU":
            module = nn.LeakyReLU(node["negative_slope"])
        elif kind == "ELU":
            module = nn.ELU(node["alpha"])
        elif kind == "Sigmoid":
            module = nn.Sigmoid()
        elif kind == "Tanh":
            module = nn.Tanh()
        elif kind == "Dropout":
            module = nn.Dropout(node["rate"])
        elif kind in ("Identity", "Input"):
            module = nn.Identity()
        elif kind == "BatchNorm":
            module = nn.BatchNorm1d(width, eps=node["eps"], momentum=node["momentum"])
        elif kind == "LayerNorm":
            module = nn.LayerNorm(width, eps=node["eps"])
        else:
            raise ValueError(f"{path}: layer kind '{kind}' is not known to strata_torch")
        self.layers[path] = module
        return module, width

    def named_strata_tensors(self):
        """(Strata name, tensor) for every parameter and running statistic."""
        for path, module in self.layers.items():
            for name in ("weight", "bias", "running_mean", "running_var"):
                tensor = getattr(module, name, None)
                if isinstance(tensor, torch.Tensor):
                    yield f"{path}.{name}", tensor


def load(architecture_path, tensors_path):
    """The model of architecture_path (JSON) with the tensors of tensors_path (.npz), in eval mode.
    Every tensor must be present with its shape, and nothing else in the archive."""
    with open(architecture_path, encoding="utf-8") as f:
        model = StrataModule(json.load(f))
    with np.load(tensors_path) as archive:
        expected = dict(model.named_strata_tensors())
        missing = sorted(set(expected) - set(archive.files))
        unexpected = sorted(set(archive.files) - set(expected))
        if missing or unexpected:
            raise ValueError(f"{tensors_path} does not fit {architecture_path}: missing {missing}, unexpected {unexpected}")
        with torch.no_grad():
            for name, tensor in expected.items():
                value = torch.from_numpy(np.ascontiguousarray(archive[name]))
                if tuple(value.shape) != tuple(tensor.shape):
                    raise ValueError(f"'{name}' is {tuple(value.shape)} in {tensors_path}, {tuple(tensor.shape)} in the model")
                tensor.copy_(value)
    return model.eval()


def save_npz(model, path):
    """Writes the model's tensors under Strata's names (strata::load_npz reads them)."""
    arrays = {name: tensor.detach().cpu().numpy() for name, tensor in model.named_strata_tensors()}
    np.savez(path, **arrays)
