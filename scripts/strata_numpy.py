"""Strata models in NumPy, from the two files a trained model leaves behind.

A model's architecture (graph/architecture.hpp: write_architecture) and its tensors
(io/model_npz.hpp: save_npz) are all it takes to run it outside Strata, in evaluation mode
(dropout off, BatchNorm on its running statistics):

    import strata_numpy
    model = strata_numpy.load("combo.json", "combo.npz")
    predictions = model.predict(x)          # x: samples x input_width, as PyTorch lays out data

Rows are samples (Strata's own matrices are features x samples). Dense weights are out x in, as
torch.nn.Linear holds them. Only Debian's python3-numpy is needed.
"""
import json

import numpy as np


class StrataModel:
    """A Strata model rebuilt from its architecture description and its tensors."""

    def __init__(self, architecture, tensors):
        if architecture.get("format") != "strata-architecture" or architecture.get("version") != 1:
            raise ValueError("not a Strata architecture description (format strata-architecture, version 1)")
        self.architecture = architecture
        self.tensors = dict(tensors)
        self.input_width = architecture["input_width"]
        self.output_width = architecture["output_width"]

    def predict(self, x):
        """Evaluation-mode predictions for x (samples x input_width): samples x output_width."""
        x = np.asarray(x)
        if x.ndim != 2 or x.shape[1] != self.input_width:
            raise ValueError(f"the model reads {self.input_width} features per sample, got an array of shape {x.shape}")
        y = self._forward(self.architecture["model"], x)
        if y.shape[1] != self.output_width:
            raise ValueError(f"the rebuilt model gives {y.shape[1]} outputs, the description says {self.output_width}")
        return y

    def _tensor(self, node, name):
        key = node["path"] + "." + name
        if key not in self.tensors:
            raise KeyError(f"the tensors have no '{key}'")
        return self.tensors[key]

    def _forward(self, node, x):
        kind, children = node["kind"], node.get("children", [])
        if kind in ("Sequential", "Branch", "Repeat"):
            for child in children:
                x = self._forward(child, x)
            return x
        if kind == "Fork":
            return np.concatenate([self._forward(child, x) for child in children], axis=1)
        if kind == "Slice":
            return x[:, node["begin"]:node["end"]]
        if kind == "Shared":  # one network, one set of weights, applied to each slice
            return np.concatenate([self._forward(children[0], x[:, b:e]) for b, e in zip(node["begins"], node["ends"])],
                                  axis=1)
        if kind == "Residual":
            return x + self._forward(children[0], x)
        if kind in ("Dense", "SparseInputDense"):
            y = x @ self._tensor(node, "weight").T
            return y + self._tensor(node, "bias") if node["bias"] else y
        if kind == "ReLU":
            return np.maximum(x, 0)
        if kind == "LeakyReLU":
            return np.where(x > 0, x, node["negative_slope"] * x)
        if kind == "ELU":
            return np.where(x > 0, x, node["alpha"] * np.expm1(np.minimum(x, 0)))
        if kind == "Sigmoid":
            return 1 / (1 + np.exp(-x))
        if kind == "Tanh":
            return np.tanh(x)
        if kind == "Dropout":
            if node["always"]:
                raise ValueError(f"{node['path']}: dropout active in evaluation has no deterministic rebuild")
            return x
        if kind in ("Identity", "Input"):
            return x
        if kind == "BatchNorm":
            mean, var = self._tensor(node, "running_mean"), self._tensor(node, "running_var")
            return (x - mean) / np.sqrt(var + node["eps"]) * self._tensor(node, "weight") + self._tensor(node, "bias")
        if kind == "LayerNorm":  # over each sample's features, biased variance
            mean = x.mean(axis=1, keepdims=True)
            var = ((x - mean) ** 2).mean(axis=1, keepdims=True)
            return (x - mean) / np.sqrt(var + node["eps"]) * self._tensor(node, "weight") + self._tensor(node, "bias")
        raise ValueError(f"{node['path']}: layer kind '{kind}' is not known to strata_numpy")


def load(architecture_path, tensors_path):
    """The model described in architecture_path (JSON) with the tensors of tensors_path (.npz)."""
    with open(architecture_path, encoding="utf-8") as f:
        architecture = json.load(f)
    with np.load(tensors_path) as tensors:
        return StrataModel(architecture, {name: tensors[name] for name in tensors.files})
