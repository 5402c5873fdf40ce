"""A NumPy interpreter of the ONNX operators Strata's export writes (io/onnx.hpp), for checking
exported models where no ONNX runtime is installed (ONNX 1.12 has no reference evaluator):
Gemm, Relu, LeakyRelu, Elu, Sigmoid, Tanh, Slice, Concat, Add, BatchNormalization,
LayerNormalization and Identity, on 2-D tensors (samples x features)."""
import numpy as np
from onnx import helper, numpy_helper


def run(model, x):
    """The graph's single output for input x (samples x features)."""
    graph = model.graph
    values = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    values[graph.input[0].name] = x
    for node in graph.node:
        a = {at.name: helper.get_attribute_value(at) for at in node.attribute}
        i = [values[name] for name in node.input]
        op = node.op_type
        if op == "Gemm":
            y = (i[0].T if a.get("transA", 0) else i[0]) @ (i[1].T if a.get("transB", 0) else i[1])
            y = a.get("alpha", 1.0) * y + (a.get("beta", 1.0) * i[2] if len(i) > 2 else 0)
        elif op == "Relu":
            y = np.maximum(i[0], 0)
        elif op == "LeakyRelu":
            y = np.where(i[0] > 0, i[0], a.get("alpha", 0.01) * i[0])
        elif op == "Elu":
            y = np.where(i[0] > 0, i[0], a.get("alpha", 1.0) * np.expm1(np.minimum(i[0], 0)))
        elif op == "Sigmoid":
            y = 1 / (1 + np.exp(-i[0]))
        elif op == "Tanh":
            y = np.tanh(i[0])
        elif op == "Slice":
            starts, ends = int(i[1][0]), int(i[2][0])
            axes = int(i[3][0]) if len(i) > 3 else 0
            y = i[0][:, starts:ends] if axes == 1 else i[0][starts:ends]
        elif op == "Concat":
            y = np.concatenate(i, axis=a["axis"])
        elif op == "Add":
            y = i[0] + i[1]
        elif op == "BatchNormalization":
            x_, scale, bias, mean, var = i
            y = (x_ - mean) / np.sqrt(var + a.get("epsilon", 1e-5)) * scale + bias
        elif op == "LayerNormalization":
            x_, scale, bias = i[0], i[1], i[2] if len(i) > 2 else 0
            mean = x_.mean(axis=-1, keepdims=True)
            var = ((x_ - mean) ** 2).mean(axis=-1, keepdims=True)
            y = (x_ - mean) / np.sqrt(var + a.get("epsilon", 1e-5)) * scale + bias
        elif op == "Identity":
            y = i[0]
        else:
            raise ValueError(f"{node.name}: operator {op} is not interpreted here")
        values[node.output[0]] = y
    return values[graph.output[0].name]
