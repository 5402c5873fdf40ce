"""Strata models in NumPy, from the two files a trained model leaves behind.

A model's architecture (graph/architecture.hpp: write_architecture) and its tensors
(io/model_npz.hpp: save_npz) are all it takes to run it outside Strata, in evaluation mode
(dropout off, BatchNorm on its running statistics):

    import strata_numpy
    model = strata_numpy.load("combo.json", "combo.npz")
    predictions = model.predict(x)          # x: samples x input_width, as PyTorch lays out data

Rows are samples (Strata's own matrices are features x samples). Dense weights are out x in, as
torch.nn.Linear holds them. Only Debian's python3-numpy is needed.

A drug-response model exported by `drug_response export` also says how its inputs are made from
the raw cell and drug tables; `combo_inputs` makes them the same way:

    x = strata_numpy.combo_inputs("combo.json", "cell_expression.tsv", "drug_descriptors.tsv",
                                  [("NCI60.A549", "NSC.740", "NSC.3053")])
"""
import csv
import json
import math

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


def _read_table(path, id_column):
    """Ids and {column name: float64 values} of a delimited table (non-numbers such as NA become NaN)."""
    with open(path, newline="", encoding="utf-8") as f:
        header = f.readline()
        delimiter = "\t" if "\t" in header else ","
        f.seek(0)
        rows = list(csv.reader(f, delimiter=delimiter))
    names = [name.strip() for name in rows[0]]
    if id_column not in names:
        raise ValueError(f"{path}: no id column '{id_column}'")
    id_at = names.index(id_column)

    def number(text):
        try:
            return float(text)
        except ValueError:
            return math.nan

    ids = [row[id_at].strip() for row in rows[1:] if row]
    columns = {name: np.array([number(row[c]) for row in rows[1:] if row], dtype=np.float32).astype(np.float64)
               for c, name in enumerate(names) if c != id_at}
    return ids, columns


def _scaled_table(how, path):
    """{id: scaled feature vector} of the table at path, columns matched by name as Strata matches them."""
    ids, columns = _read_table(path, how["id_column"])
    missing = [name for name in how["columns"] if name not in columns]
    known = set(how["columns"]) | set(how["dropped"])
    unknown = [name for name in columns if name not in known]
    if missing or unknown:
        raise ValueError(f"{path} does not have the columns the model was trained on: missing {missing[:5]}, "
                         f"unknown {unknown[:5]}")
    features = np.empty((len(ids), len(how["columns"])), dtype=np.float32)
    for k, name in enumerate(how["columns"]):
        mean, scale = how["mean"][k], how["scale"][k]
        v = columns[name]
        ok = np.isfinite(v) & (scale is not None)
        features[:, k] = np.where(ok, (v - mean) / (scale if scale is not None else 1.0), 0.0).astype(np.float32)
    return {entity: features[e] for e, entity in enumerate(ids)}


def combo_inputs(architecture_path, cell_table, drug_table, tuples):
    """Inputs (tuples x input_width, float32) of an exported drug-response model for (cell, drug 1,
    drug 2) ids as the tables name them, scaled from the raw tables as Strata scales them."""
    with open(architecture_path, encoding="utf-8") as f:
        how = json.load(f).get("preprocessing")
    if how is None or how.get("inputs") != ["cell", "drug1", "drug2"]:
        raise ValueError(f"{architecture_path} does not describe a drug-response model's inputs (drug_response export)")
    cells, drugs = _scaled_table(how["cell"], cell_table), _scaled_table(how["drug"], drug_table)
    return np.stack([np.concatenate([cells[c], drugs[d1], drugs[d2]]) for c, d1, d2 in tuples])
