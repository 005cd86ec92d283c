"""Trains the bundled example session model (run with /usr/bin/python3; needs Debian's
python3-torch and python3-onnx). Everything it writes is committed under models/example/, so
nothing here runs at install or test time.

Synthetic shop: 2,000 items in 20 categories with Zipf popularity. A session mostly stays in
one category (p = 0.8 per step) and sometimes wanders to another. The model is GRU4Rec-style:
Embedding(2000, 32) -> LSTM(64) -> last step -> Linear(64 -> 32); items are scored by
u · q_i + b_i with a learned item table q (2000 x 32) and bias b, trained with full softmax on
the next item.

Writes:
  example/session_lstm.onnx   the encoder (input "items" [batch, seq] int64 -> "user" [batch, 32])
  example/items.npy           the item table q, float32 (2000, 32); ids are the row numbers
  example/bias.npy            the item bias b, float32 (2000,)
  example/categories.txt      the category of each item (one per line), for attribute filters
  example/users.jsonl         500 users' recent histories: {"user": "u0001", "history": [...]}
  example/sessions.jsonl      1,000 held-out sessions for next-item evaluation: {"history": [...], "next": id}
"""
import json
import os

import numpy as np
import torch
import torch.nn as nn

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "example")
os.makedirs(HERE, exist_ok=True)
N_ITEMS, N_CATS, D, H = 2000, 20, 32, 64
rng = np.random.default_rng(7)
torch.manual_seed(7)

category = rng.integers(0, N_CATS, size=N_ITEMS)
by_cat = [np.flatnonzero(category == c) for c in range(N_CATS)]
pop = 1.0 / np.arange(1, N_ITEMS + 1) ** 0.8
pop = pop[rng.permutation(N_ITEMS)]


def session(length):
    c = rng.integers(N_CATS)
    out = []
    for _ in range(length):
        if rng.random() > 0.8:
            c = rng.integers(N_CATS)
        items = by_cat[c]
        p = pop[items] / pop[items].sum()
        out.append(int(rng.choice(items, p=p)))
    return out


train = [session(int(rng.integers(4, 16))) for _ in range(12000)]
held_out = [session(int(rng.integers(3, 12))) for _ in range(1000)]


class Encoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(N_ITEMS, D)
        self.rnn = nn.LSTM(D, H, batch_first=True)
        self.out = nn.Linear(H, D)

    def forward(self, items):
        y, _ = self.rnn(self.emb(items))
        return self.out(y[:, -1])


enc = Encoder()
item_q = nn.Embedding(N_ITEMS, D)
item_b = nn.Parameter(torch.zeros(N_ITEMS))
opt = torch.optim.Adam(list(enc.parameters()) + list(item_q.parameters()) + [item_b], lr=3e-3)

# Next-item pairs, grouped by prefix length so that batches need no padding.
pairs = {}
for s in train:
    for t in range(1, len(s)):
        pairs.setdefault(t, []).append((s[:t], s[t]))
for epoch in range(3):
    total, n = 0.0, 0
    for t, ps in pairs.items():
        idx = rng.permutation(len(ps))
        for b0 in range(0, len(ps), 256):
            batch = [ps[i] for i in idx[b0:b0 + 256]]
            x = torch.tensor([p[0] for p in batch])
            y = torch.tensor([p[1] for p in batch])
            logits = enc(x) @ item_q.weight.T + item_b
            loss = nn.functional.cross_entropy(logits, y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss) * len(batch)
            n += len(batch)
    print(f"epoch {epoch}: loss {total / n:.3f}")

enc.eval()
torch.onnx.export(enc, (torch.tensor([[1, 2, 3]]),), os.path.join(HERE, "session_lstm.onnx"),
                  input_names=["items"], output_names=["user"],
                  dynamic_axes={"items": {0: "batch", 1: "seq"}, "user": {0: "batch"}}, opset_version=14)
np.save(os.path.join(HERE, "items.npy"), item_q.weight.detach().numpy().astype(np.float32))
np.save(os.path.join(HERE, "bias.npy"), item_b.detach().numpy().astype(np.float32))
with open(os.path.join(HERE, "categories.txt"), "w") as f:
    f.write("\n".join(str(int(c)) for c in category) + "\n")
with open(os.path.join(HERE, "users.jsonl"), "w") as f:
    for i in range(500):
        f.write(json.dumps({"user": f"u{i:04d}", "history": session(int(rng.integers(1, 15)))}) + "\n")
with open(os.path.join(HERE, "sessions.jsonl"), "w") as f:
    for s in held_out:
        f.write(json.dumps({"history": s[:-1], "next": s[-1]}) + "\n")
print("wrote", sorted(os.listdir(HERE)))
