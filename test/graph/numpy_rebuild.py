"""Rebuilds the model test_architecture wrote (JSON + .npz) with scripts/strata_numpy.py and
checks its predictions against Strata's. Usage: numpy_rebuild.py <folder> <scripts folder>.
Exits 77 (CTest: skipped) when NumPy is not installed."""
import sys

try:
    import numpy as np
except ImportError:
    print("SKIPPED: NumPy is not installed (Debian: apt-get install python3-numpy)")
    sys.exit(77)

folder, scripts = sys.argv[1], sys.argv[2]
sys.path.insert(0, scripts)
import strata_numpy  # noqa: E402

model = strata_numpy.load(f"{folder}/everything.json", f"{folder}/everything.npz")
with np.load(f"{folder}/everything.io.npz") as io:
    x, expected = io["inputs"], io["predictions"]
got = model.predict(x.T.astype(np.float64)).T  # Strata's matrices are features x samples
worst = float(np.max(np.abs(got - expected) / np.maximum(1.0, np.abs(expected))))
print(f"NumPy rebuild of {len(model.tensors)} tensors: largest relative difference {worst:.3g} over {expected.size} outputs")
if not worst < 1e-5:
    sys.exit("FAILED: the NumPy rebuild does not reproduce Strata's predictions")
