"""Rebuilds the model test_architecture wrote (JSON + .npz, and .onnx) outside Strata and checks
its predictions against Strata's: `numpy` with scripts/strata_numpy.py, `torch` with
scripts/strata_torch.py (which also writes the tensors back, from_torch.npz, for the reverse
direction), `onnx`: ONNX's checker (full check, shape inference included) on everything.onnx,
then the NumPy interpreter onnx_eval.py beside this script.
Usage: rebuild_check.py numpy|torch|onnx <folder> <scripts folder>.
Exits 77 (CTest: skipped) when the library is not installed."""
import sys

engine, folder, scripts = sys.argv[1], sys.argv[2], sys.argv[3]
try:
    import numpy as np
    if engine == "torch":
        import torch
    if engine == "onnx":
        import onnx
except ImportError as missing:
    package = {"torch": "python3-torch", "onnx": "python3-onnx"}.get(missing.name, "python3-numpy")
    print(f"SKIPPED: {missing.name} is not installed (Debian: apt-get install {package})")
    sys.exit(77)
sys.path.insert(0, scripts)

with np.load(f"{folder}/everything.io.npz") as io:
    x, expected = io["inputs"], io["predictions"]  # Strata's matrices: features x samples
if engine == "numpy":
    import strata_numpy
    model = strata_numpy.load(f"{folder}/everything.json", f"{folder}/everything.npz")
    tensors = len(model.tensors)
    got = model.predict(x.T.astype(np.float64)).T
elif engine == "onnx":
    import os
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import onnx_eval
    model = onnx.load(f"{folder}/everything.onnx")
    onnx.checker.check_model(model, full_check=True)
    print(f"onnx.checker (full check): IR {model.ir_version}, opset {model.opset_import[0].version}: valid")
    tensors = len(model.graph.initializer)
    got = onnx_eval.run(model, np.ascontiguousarray(x.T)).T
else:
    import strata_torch
    model = strata_torch.load(f"{folder}/everything.json", f"{folder}/everything.npz")
    tensors = len(list(model.named_strata_tensors()))
    with torch.no_grad():
        got = model(torch.from_numpy(np.ascontiguousarray(x.T))).numpy().T
worst = float(np.max(np.abs(got - expected) / np.maximum(1.0, np.abs(expected))))
print(f"{engine} rebuild of {tensors} tensors: largest relative difference {worst:.3g} over {expected.size} outputs")
if not worst < 1e-5:
    sys.exit(f"FAILED: the {engine} rebuild does not reproduce Strata's predictions")

if engine == "torch":  # the reverse direction: the same tensors written by PyTorch under Strata's names
    strata_torch.save_npz(model, f"{folder}/from_torch.npz")
    with np.load(f"{folder}/everything.npz") as original, np.load(f"{folder}/from_torch.npz") as back:
        if sorted(original.files) != sorted(back.files):
            sys.exit(f"FAILED: names differ: {sorted(original.files)} vs {sorted(back.files)}")
        for name in original.files:
            if original[name].shape != back[name].shape or not np.array_equal(original[name], back[name]):
                sys.exit(f"FAILED: '{name}' did not survive the round trip through PyTorch")
    print("PyTorch wrote every tensor back under its Strata name, bit for bit")
