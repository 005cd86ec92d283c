"""Makes the encoder test fixtures under models/fixtures/ (run with /usr/bin/python3; needs
Debian's python3-torch and python3-onnx). CI needs no Python: the outputs are committed.

PyTorch models (torch.onnx.export, opset 14), each with PyTorch's own outputs for fixed
histories, every history run alone (<name>.json: {"histories": [[ids]...], "outputs": [[...]...]}):
  lstm1_bf_ylast_tanh     Embedding -> LSTM(1 layer, batch_first) -> y[:, -1] -> Linear -> Tanh
  lstm2_seqfirst_hn_relu  Embedding -> LSTM(2 layers, seq-first) -> h_n[-1] -> Linear -> ReLU
  lstm2_bf_ylast_sigmoid  Embedding -> LSTM(2 layers, batch_first) -> y[:, -1] -> Linear -> Sigmoid
  gru2_bf_hn_tanh         Embedding -> GRU(2 layers, batch_first) -> h_n[-1] -> Linear -> Tanh (GRU4Rec)
  bilstm2_bf_ylast        Embedding -> bidirectional LSTM(2 layers) -> y[:, -1] -> Linear
  lstm2_packed_hn         Embedding -> pack_padded_sequence(lengths) -> LSTM(2) -> h_n[-1] -> Linear
  lstm_layernorm          ... -> LayerNorm -> Linear (not lowered: runs on onnxruntime)
  lstm2_external          lstm2 with its weights in an ONNX external-data file
  bench_lstm2x128         2 layers, hidden 128, embedding 64, 5000 items (benchmarks)

Hand-built ONNX graphs (onnx.helper) for LSTM/GRU attributes PyTorch never emits. Their
reference outputs come from the NumPy implementation of the ONNX operator spec below (and the
tests also compare with onnxruntime where it runs them; it has no layout=1 LSTM):
  onnx_lstm_peephole_clip_reverse   LSTM direction=reverse, peepholes P, clip, input_forget=0
  onnx_lstm_input_forget_layout1    LSTM layout=1, input_forget=1
  onnx_gru_lbr0                     GRU linear_before_reset=0
"""
import json
import os

import numpy as np
import onnx
import torch
import torch.nn as nn
from onnx import TensorProto, helper, numpy_helper

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures")
os.makedirs(HERE, exist_ok=True)
torch.manual_seed(1234)
rng = np.random.default_rng(1234)


class SessionModel(nn.Module):
    def __init__(self, vocab, emb, hidden, out, layers=1, cell="lstm", batch_first=True,
                 select="ylast", act=None, bidir=False, packed=False, layernorm=False):
        super().__init__()
        self.emb = nn.Embedding(vocab, emb)
        rnn = nn.LSTM if cell == "lstm" else nn.GRU
        self.rnn = rnn(emb, hidden, num_layers=layers, batch_first=batch_first, bidirectional=bidir)
        width = hidden * (2 if bidir and select == "ylast" else 1)
        self.norm = nn.LayerNorm(width) if layernorm else None
        self.lin = nn.Linear(width, out)
        self.bf, self.select, self.act, self.packed, self.cell = batch_first, select, act, packed, cell

    def forward(self, items, lengths=None):
        e = self.emb(items)  # [batch, seq, emb]
        if not self.bf:
            e = e.transpose(0, 1)
        if self.packed:
            e = nn.utils.rnn.pack_padded_sequence(e, lengths, batch_first=self.bf, enforce_sorted=False)
        y, state = self.rnn(e)
        h = state[0] if self.cell == "lstm" else state
        if self.select == "hn":
            v = h[-1]
        else:
            v = y[:, -1] if self.bf else y[-1]
        if self.norm is not None:
            v = self.norm(v)
        v = self.lin(v)
        if self.act == "tanh":
            v = torch.tanh(v)
        elif self.act == "relu":
            v = torch.relu(v)
        elif self.act == "sigmoid":
            v = torch.sigmoid(v)
        return v


def histories(vocab, n=12, max_len=11):
    out = []
    for i in range(n):
        length = 1 + (i * 7) % max_len
        out.append([int(x) for x in rng.integers(0, vocab, size=length)])
    return out


def export(name, model, vocab, packed=False, external=False):
    model.eval()
    x = torch.randint(0, vocab, (3, 5))
    path = os.path.join(HERE, name + ".onnx")
    args, inputs = (x,), ["items"]
    axes = {"items": {0: "batch", 1: "seq"}, "user": {0: "batch"}}
    if packed:
        # Example batch of one: torch bakes the example batch size into the packed export's
        # initial states (Expand of a [layers, 3, hidden] constant), which then fails for any
        # other batch size; a batch of one broadcasts to every size.
        x = torch.randint(0, vocab, (1, 5))
        args, inputs = (x, torch.tensor([5])), ["items", "lengths"]
        axes["lengths"] = {0: "batch"}
    torch.onnx.export(model, args, path, input_names=inputs, output_names=["user"],
                      dynamic_axes=axes, opset_version=14)
    if external:
        m = onnx.load(path)
        onnx.save_model(m, path, save_as_external_data=True, all_tensors_to_one_file=True,
                        location=name + ".weights", size_threshold=0)
    hs = histories(vocab)
    outs = []
    with torch.no_grad():
        for h in hs:
            t = torch.tensor([h])
            v = model(t, torch.tensor([len(h)])) if packed else model(t)
            outs.append([float(f) for f in v[0]])
    with open(os.path.join(HERE, name + ".json"), "w") as f:
        json.dump({"histories": hs, "outputs": outs}, f)


export("lstm1_bf_ylast_tanh", SessionModel(40, 8, 16, 6, act="tanh"), 40)
export("lstm2_seqfirst_hn_relu", SessionModel(40, 8, 16, 6, layers=2, batch_first=False, select="hn", act="relu"), 40)
export("lstm2_bf_ylast_sigmoid", SessionModel(40, 8, 16, 6, layers=2, act="sigmoid"), 40)
export("gru2_bf_hn_tanh", SessionModel(40, 8, 16, 6, layers=2, cell="gru", select="hn", act="tanh"), 40)
export("bilstm2_bf_ylast", SessionModel(40, 8, 12, 6, layers=2, bidir=True), 40)
export("lstm2_packed_hn", SessionModel(40, 8, 16, 6, layers=2, select="hn", packed=True), 40, packed=True)
export("lstm_layernorm", SessionModel(40, 8, 16, 6, layernorm=True), 40)
export("lstm2_external", SessionModel(40, 8, 16, 6, layers=2, act="tanh"), 40, external=True)
export("bench_lstm2x128", SessionModel(5000, 64, 128, 64, layers=2, act="tanh"), 5000)


def f32(a):
    return np.asarray(a, dtype=np.float32)


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def onnx_rnn_final_h(cell, x, W, R, B, P, H, attrs):
    """Y_h of an ONNX LSTM/GRU for one sequence x [T, In] (float64), per the operator spec."""
    direction = attrs.get("direction", "forward")
    clip = attrs.get("clip")
    cl = (lambda v: np.clip(v, -clip, clip)) if clip else (lambda v: v)
    finals = []
    dirs = ["forward", "reverse"] if direction == "bidirectional" else [direction]
    for d, kind in enumerate(dirs):
        steps = range(len(x)) if kind == "forward" else range(len(x) - 1, -1, -1)
        h = np.zeros(H)
        c = np.zeros(H)
        Wd, Rd, Bd = W[d], R[d], B[d]
        if cell == "LSTM":
            Wi, Wo, Wf, Wc = np.split(Wd, 4)
            Ri, Ro, Rf, Rc = np.split(Rd, 4)
            wb, rb = np.split(Bd, 2)
            bi, bo, bf, bc = np.split(wb + rb, 4)
            Pi, Po, Pf = np.split(P[d], 3) if P is not None else (0, 0, 0)
            for t in steps:
                i = sigmoid(cl(x[t] @ Wi.T + h @ Ri.T + Pi * c + bi))
                f = 1 - i if attrs.get("input_forget") else sigmoid(cl(x[t] @ Wf.T + h @ Rf.T + Pf * c + bf))
                g = np.tanh(cl(x[t] @ Wc.T + h @ Rc.T + bc))
                c = f * c + i * g
                o = sigmoid(cl(x[t] @ Wo.T + h @ Ro.T + Po * c + bo))
                h = o * np.tanh(c)
        else:
            Wz, Wr, Wh = np.split(Wd, 3)
            Rz, Rr, Rh = np.split(Rd, 3)
            Wbz, Wbr, Wbh, Rbz, Rbr, Rbh = np.split(Bd, 6)
            for t in steps:
                z = sigmoid(cl(x[t] @ Wz.T + h @ Rz.T + Wbz + Rbz))
                r = sigmoid(cl(x[t] @ Wr.T + h @ Rr.T + Wbr + Rbr))
                if attrs.get("linear_before_reset"):
                    n = np.tanh(cl(x[t] @ Wh.T + r * (h @ Rh.T + Rbh) + Wbh))
                else:
                    n = np.tanh(cl(x[t] @ Wh.T + (r * h) @ Rh.T + Rbh + Wbh))
                h = (1 - z) * n + z * h
        finals.append(h)
    return finals


def hand_model(name, cell, attrs, hidden=10, emb=6, vocab=30, out=5, peephole=False, layout=0):
    """items [batch, seq] -> Gather -> (Transpose unless layout 1) -> cell -> Y_h -> Squeeze -> Gemm."""
    gates = 4 if cell == "LSTM" else 3
    dirs = 2 if attrs.get("direction") == "bidirectional" else 1
    inits = [
        numpy_helper.from_array(f32(rng.standard_normal((vocab, emb))), "emb"),
        numpy_helper.from_array(f32(0.5 * rng.standard_normal((dirs, gates * hidden, emb))), "W"),
        numpy_helper.from_array(f32(0.5 * rng.standard_normal((dirs, gates * hidden, hidden))), "R"),
        numpy_helper.from_array(f32(0.3 * rng.standard_normal((dirs, 2 * gates * hidden))), "B"),
        numpy_helper.from_array(f32(0.4 * rng.standard_normal((out, hidden))), "lin_w"),
        numpy_helper.from_array(f32(0.1 * rng.standard_normal(out)), "lin_b"),
        numpy_helper.from_array(np.array([0], dtype=np.int64), "axis0"),
    ]
    nodes = [helper.make_node("Gather", ["emb", "items"], ["e"])]
    x = "e"
    if layout == 0:
        nodes.append(helper.make_node("Transpose", ["e"], ["x"], perm=[1, 0, 2]))
        x = "x"
    ins = [x, "W", "R", "B", "", "", ""]
    if peephole:
        inits.append(numpy_helper.from_array(f32(0.5 * rng.standard_normal((dirs, 3 * hidden))), "P"))
        ins.append("P")
    if cell == "GRU":
        ins = ins[:4]
    nodes.append(helper.make_node(cell, ins, ["y", "y_h"] + (["y_c"] if cell == "LSTM" else []),
                                  hidden_size=hidden, layout=layout, **attrs))
    if layout == 0:
        nodes.append(helper.make_node("Squeeze", ["y_h", "axis0"], ["h"]))
    else:
        inits.append(numpy_helper.from_array(np.array([1], dtype=np.int64), "axis1"))
        nodes.append(helper.make_node("Squeeze", ["y_h", "axis1"], ["h"]))
    nodes.append(helper.make_node("Gemm", ["h", "lin_w", "lin_b"], ["user"], transB=1))
    graph = helper.make_graph(
        nodes, name,
        [helper.make_tensor_value_info("items", TensorProto.INT64, ["batch", "seq"])],
        [helper.make_tensor_value_info("user", TensorProto.FLOAT, ["batch", out])],
        inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)])
    onnx.checker.check_model(model)
    onnx.save(model, os.path.join(HERE, name + ".onnx"))
    arr = {t.name: numpy_helper.to_array(t).astype(np.float64) for t in inits}
    hs = histories(vocab)
    outs = []
    for h in hs:
        x = arr["emb"][h]
        (hf,) = onnx_rnn_final_h(cell, x, arr["W"], arr["R"], arr["B"], arr.get("P"), hidden, attrs)
        outs.append([float(v) for v in hf @ arr["lin_w"].T + arr["lin_b"]])
    with open(os.path.join(HERE, name + ".json"), "w") as f:
        json.dump({"histories": hs, "outputs": outs, "reference": "numpy ONNX spec"}, f)


hand_model("onnx_lstm_peephole_clip_reverse", "LSTM", {"direction": "reverse", "clip": 1.5}, peephole=True)
hand_model("onnx_lstm_input_forget_layout1", "LSTM", {"input_forget": 1}, layout=1)
hand_model("onnx_gru_reverse_clip", "GRU", {"direction": "reverse", "clip": 0.8, "linear_before_reset": 1})
hand_model("onnx_gru_lbr0", "GRU", {"linear_before_reset": 0})
print("wrote", sorted(os.listdir(HERE)))


def bad_models():
    """Models that are not session encoders: float ids, and an output that is not [batch, dim]."""
    emb = numpy_helper.from_array(f32(rng.standard_normal((10, 4))), "emb")
    g = helper.make_graph(
        [helper.make_node("Cast", ["items"], ["ids"], to=TensorProto.INT64),
         helper.make_node("Gather", ["emb", "ids"], ["e"]),
         helper.make_node("ReduceMean", ["e"], ["user"], axes=[1], keepdims=0)],
        "float_input",
        [helper.make_tensor_value_info("items", TensorProto.FLOAT, ["batch", "seq"])],
        [helper.make_tensor_value_info("user", TensorProto.FLOAT, ["batch", 4])], [emb])
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 14)]), os.path.join(HERE, "bad_float_input.onnx"))
    g = helper.make_graph(
        [helper.make_node("Gather", ["emb", "items"], ["user"])],
        "output_rank3",
        [helper.make_tensor_value_info("items", TensorProto.INT64, ["batch", "seq"])],
        [helper.make_tensor_value_info("user", TensorProto.FLOAT, ["batch", "seq", 4])], [emb])
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 14)]), os.path.join(HERE, "bad_output_rank3.onnx"))


bad_models()
