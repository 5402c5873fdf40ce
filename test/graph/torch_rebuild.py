"""Rebuilds the model test_architecture wrote (JSON + .npz) in PyTorch with
scripts/strata_torch.py, checks its predictions against Strata's, and writes its tensors back
for the reverse direction. Usage: torch_rebuild.py <folder> <scripts folder>.
Exits 77 (CTest: skipped) when PyTorch is not installed."""
import sys

try:
    import numpy as np
    import torch
except ImportError:
    print("SKIPPED: PyTorch is not installed (Debian: apt-get install python3-torch)")
    sys.exit(77)

folder, scripts = sys.argv[1], sys.argv[2]
sys.path.insert(0, scripts)
import strata_torch  # noqa: E402

model = strata_torch.load(f"{folder}/everything.json", f"{folder}/everything.npz")
with np.load(f"{folder}/everything.io.npz") as io:
    x, expected = io["inputs"], io["predictions"]
with torch.no_grad():
    got = model(torch.from_numpy(np.ascontiguousarray(x.T))).numpy().T  # Strata: features x samples
worst = float(np.max(np.abs(got - expected) / np.maximum(1.0, np.abs(expected))))
print(f"PyTorch rebuild of {len(list(model.named_strata_tensors()))} tensors: largest relative difference "
      f"{worst:.3g} over {expected.size} outputs")
if not worst < 1e-5:
    sys.exit("FAILED: the PyTorch rebuild does not reproduce Strata's predictions")

# The reverse direction: the same tensors written by PyTorch under Strata's names.
strata_torch.save_npz(model, f"{folder}/from_torch.npz")
with np.load(f"{folder}/everything.npz") as original, np.load(f"{folder}/from_torch.npz") as back:
    if sorted(original.files) != sorted(back.files):
        sys.exit(f"FAILED: names differ: {sorted(original.files)} vs {sorted(back.files)}")
    for name in original.files:
        if original[name].shape != back[name].shape or not np.array_equal(original[name], back[name]):
            sys.exit(f"FAILED: '{name}' did not survive the round trip through PyTorch")
print("PyTorch wrote every tensor back under its Strata name, bit for bit")
