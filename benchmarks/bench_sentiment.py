"""Sentiment throughput on this machine's CPU, through the production model resource.

A BERT-base-sized classifier (`BertForSequenceClassification(BertConfig(num_labels=3))`,
random weights: speed does not depend on the weights) with a WordPiece tokenizer trained
offline is saved to benchmarks/.work and loaded by local path through `SentimentModel`,
exactly as a local FinBERT copy would be. All texts are SYNTHETIC (generated from a
news-like vocabulary); the numbers measure speed only, not accuracy.

Measured (texts/hour): headlines (15-25 words, max 128 tokens) in fp32 and dynamic int8,
summaries (100-200 words, max 256 tokens) in fp32 and int8, and VADER on both. Results go
to benchmarks/results.json under "sentiment".

Run: PYTHONPATH=. .venv/bin/python benchmarks/bench_sentiment.py   (about 2-3 minutes)
"""

from __future__ import annotations

import random
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._results import measured  # noqa: E402
from crypto_assets.sentiment.model import SentimentModel  # noqa: E402
from crypto_assets.sentiment.vader import VaderScorer  # noqa: E402

WORK = Path(__file__).resolve().parent / ".work" / "sentiment"
TARGET_PER_HOUR = 100_000
SEED = 7

FUNCTION_WORDS = ("the a an of to in on for with as at by from and or but after before amid over "
                  "into is are was were be has have will would could may its their this that").split()
CRYPTO_WORDS = ("bitcoin btc ether eth solana sol xrp dogecoin cardano stablecoin usdt usdc defi nft etf sec "
                "exchange binance coinbase kraken wallet token blockchain miners halving staking layer "
                "protocol liquidity whale hack exploit regulator fed inflation rates market price rally "
                "crash surge slump record high low bulls bears traders investors fund inflows outflows").split()
NUMBERS = ["1", "2", "5", "10", "12", "20", "24", "50", "100", "2025", "$1", "$60,000", "5%", "10%", "3.5%"]


def sentiment_words() -> list[str]:
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    lexicon = SentimentIntensityAnalyzer().lexicon
    return sorted(w for w in lexicon if w.isalpha())[:4000]


def make_vocabulary(rng: random.Random) -> tuple[list[str], list[float]]:
    """Real words plus Zipf-distributed pseudo-words, so the tokenizer splits like on English."""
    letters = "etaoinshrdlucmfwypvbgkjqxz"
    pseudo = {"".join(rng.choices(letters, weights=range(26, 0, -1), k=rng.randint(3, 11))) for _ in range(20_000)}
    words = FUNCTION_WORDS + CRYPTO_WORDS + NUMBERS + sentiment_words() + sorted(pseudo)
    weights = [1.0 / (rank + 10) for rank in range(len(words))]
    return words, weights


def make_texts(rng: random.Random, words, weights, n: int, low: int, high: int) -> list[str]:
    texts = []
    for _ in range(n):
        tokens = rng.choices(words, weights=weights, k=rng.randint(low, high))
        tokens[0] = tokens[0].capitalize()
        texts.append(" ".join(tokens))
    return texts


def build_model(corpus: list[str]) -> Path:
    """Train a 30,522-entry WordPiece vocab offline and save a random BERT-base classifier."""
    from tokenizers import BertWordPieceTokenizer
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizerFast

    path = WORK / "bert-base-random"
    if (path / "model.safetensors").exists():
        return path
    path.mkdir(parents=True, exist_ok=True)
    wordpiece = BertWordPieceTokenizer(lowercase=True)
    wordpiece.train_from_iterator(corpus, vocab_size=30_522, min_frequency=1, show_progress=False)
    tokenizer = BertTokenizerFast(vocab=wordpiece.get_vocab())  # transformers 5: vocab_file= is ignored
    labels = {0: "positive", 1: "negative", 2: "neutral"}  # FinBERT's order
    config = BertConfig(num_labels=3, id2label=labels, label2id={v: k for k, v in labels.items()})
    BertForSequenceClassification(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def rate(model: SentimentModel, texts: list[str], repeats: int = 1) -> dict:
    """Texts/s over `repeats` timed passes (median), after one warm-up batch."""
    model.score(texts[: model.batch_size], "news")
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        model.score(texts, "news")
        times.append(time.perf_counter() - started)
    per_second = len(texts) / float(np.median(times))
    return {"texts": len(texts), "texts_per_second": round(per_second, 2), "texts_per_hour": round(per_second * 3600)}


def token_stats(model: SentimentModel, texts: list[str]) -> dict:
    tokenizer = model.choose("news").scorer.tokenizer
    lengths = [len(ids) for ids in tokenizer(texts, truncation=True, max_length=model.max_tokens)["input_ids"]]
    return {"mean_tokens": round(float(np.mean(lengths)), 1), "p95_tokens": int(np.percentile(lengths, 95))}


def measure() -> dict:
    import torch

    started = time.perf_counter()
    rng = random.Random(SEED)
    words, weights = make_vocabulary(rng)
    corpus = make_texts(rng, words, weights, 20_000, 10, 120)
    headlines = make_texts(rng, words, weights, 320, 15, 25)
    summaries = make_texts(rng, words, weights, 48, 100, 200)
    path = build_model(corpus)

    results: dict = {
        "synthetic_inputs": True,
        "note": "random-weight BERT-base (109.5M params) + offline WordPiece tokenizer; generated texts; "
        "speed only, loaded through SentimentModel by local path; batch 32, sorted by length, padding=longest",
        "torch": {"threads": torch.get_num_threads(), "version": torch.__version__},
        "target_texts_per_hour": TARGET_PER_HOUR,
    }
    fp32 = SentimentModel(news_model=str(path), device="cpu", quantize=False, strict=True, max_tokens=128)
    int8 = SentimentModel(news_model=str(path), device="cpu", quantize=True, strict=True, max_tokens=128)
    results["headlines"] = {"words": "15-25", "max_tokens": 128, **token_stats(fp32, headlines),
                            "fp32": rate(fp32, headlines), "int8_dynamic": rate(int8, headlines)}

    a, _, _ = fp32.score(headlines[:64], "news")
    b, _, _ = int8.score(headlines[:64], "news")
    results["int8_vs_fp32_on_64_headlines"] = {
        "max_abs_score_diff": round(float((a.score - b.score).abs().max()), 4),
        "label_agreement": round(float((a.label == b.label).mean()), 4),
    }

    fp32_256 = SentimentModel(news_model=str(path), device="cpu", quantize=False, strict=True, max_tokens=256)
    int8_256 = SentimentModel(news_model=str(path), device="cpu", quantize=True, strict=True, max_tokens=256)
    results["summaries"] = {"words": "100-200", "max_tokens": 256, **token_stats(fp32_256, summaries),
                            "fp32": rate(fp32_256, summaries), "int8_dynamic": rate(int8_256, summaries)}

    vader = VaderScorer()
    vader_rates = {}
    for name, texts in (("headlines", headlines * 10), ("summaries", summaries * 10)):
        t0 = time.perf_counter()
        vader.score(texts)
        per_second = len(texts) / (time.perf_counter() - t0)
        vader_rates[name] = {"texts": len(texts), "texts_per_second": round(per_second), "texts_per_hour": round(per_second * 3600)}
    results["vader"] = vader_rates

    best = max(results["headlines"]["fp32"]["texts_per_hour"], results["headlines"]["int8_dynamic"]["texts_per_hour"])
    results["headline_target_met"] = best >= TARGET_PER_HOUR
    results["benchmark_seconds"] = round(time.perf_counter() - started, 1)
    return results


def main() -> None:
    with measured("sentiment") as results:
        results.update(measure())
    h, s, vader_rates = results["headlines"], results["summaries"], results["vader"]
    print(f"headlines fp32 {h['fp32']['texts_per_hour']:,}/h  int8 {h['int8_dynamic']['texts_per_hour']:,}/h  "
          f"(target {TARGET_PER_HOUR:,}/h met: {results['headline_target_met']})")
    print(f"summaries fp32 {s['fp32']['texts_per_hour']:,}/h  int8 {s['int8_dynamic']['texts_per_hour']:,}/h")
    print(f"vader headlines {vader_rates['headlines']['texts_per_second']:,}/s  "
          f"summaries {vader_rates['summaries']['texts_per_second']:,}/s")
    print(f"measured in {results['benchmark_seconds']} s")


if __name__ == "__main__":
    main()
