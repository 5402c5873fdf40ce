"""Whether a model a Strata program exported predicts, outside Strata, what the program predicted:
in NumPy (scripts/strata_numpy.py), in PyTorch (scripts/strata_torch.py; skipped without
python3-torch) and as ONNX (ONNX's full check, then test/graph/onnx_eval.py; skipped without
python3-onnx or without an ONNX file). The callers put scripts/ and test/graph/ on sys.path."""
import os

import numpy as np
import strata_numpy


def agrees(json_path, npz_path, onnx_path, x, want):
    """x: samples x features (float32); want: the program's predictions of the first output.
    Prints the largest difference of each; true when all are within 1e-5 (x max(1, |want|))."""
    got = {"numpy": strata_numpy.load(json_path, npz_path).predict(x)[:, 0]}
    try:
        import torch
        import strata_torch
        got["torch"] = strata_torch.load(json_path, npz_path)(torch.from_numpy(x)).detach().numpy()[:, 0]
    except ImportError:
        print("PyTorch check skipped: python3-torch is not installed")
    if onnx_path and os.path.exists(onnx_path):
        try:
            import onnx
            import onnx_eval
            model = onnx.load(onnx_path)
            onnx.checker.check_model(model, full_check=True)
            got["onnx"] = onnx_eval.run(model, x)[:, 0]
        except ImportError:
            print("ONNX check skipped: python3-onnx is not installed")
    tolerance = 1e-5 * max(1.0, float(np.abs(want).max()))
    ok = True
    for name, y in got.items():
        worst = float(np.abs(y - want).max())
        print(f"{name}: largest difference from Strata's predictions {worst:.3g} (allowed {tolerance:.3g})")
        ok = ok and worst <= tolerance
    return ok
