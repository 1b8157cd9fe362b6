"""The sentiment model resource: label mapping by NAME, versions, VADER fallback, import cost.

The transformer tests build tiny sequence classifiers here (real BertConfig/RobertaConfig with
an id2label, random weights, a WordPiece tokenizer from a small vocabulary), save them with
save_pretrained and load them by local path through the production loader. The classifier
head is set so one NAMED class dominates whatever the text: the score's sign must follow the
name, in FinBERT's label order and in CryptoBERT's.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from crypto_assets.sentiment.labels import LabelMappingError, map_labels
from crypto_assets.sentiment.model import SentimentModel, SentimentModelUnavailable
from crypto_assets.sentiment.text import title_and_lead
from crypto_assets_tests.paths import REPO

FINBERT_LABELS = {0: "positive", 1: "negative", 2: "neutral"}
CRYPTOBERT_LABELS = {0: "Bearish", 1: "Neutral", 2: "Bullish"}
WORDS = "bitcoin ether price rally crash market fund etf sec hack surge falls record low high the a to of on".split()
TEXTS = [
    "Bitcoin rally brings great gains for happy investors",
    "Ether crash: terrible losses as an exchange hack hurts traders",
    "SEC delays ETF decision",
    "the",
]


def build_tiny_classifier(path: Path, id2label: dict, favoured: str, arch: str = "bert", seed: int = 0) -> Path:
    """Save a 1-layer classifier whose class named `favoured` always wins (logit +6 vs -6)."""
    import torch
    from transformers import (
        BertConfig,
        BertForSequenceClassification,
        BertTokenizerFast,
        RobertaConfig,
        RobertaForSequenceClassification,
    )

    torch.manual_seed(seed)
    vocab = {w: i for i, w in enumerate(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS])}
    tokenizer = BertTokenizerFast(vocab=vocab)  # transformers 5 ignores vocab_file=
    shape = dict(vocab_size=len(vocab), hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                 intermediate_size=32, num_labels=len(id2label), id2label=id2label,
                 label2id={v: k for k, v in id2label.items()}, pad_token_id=0)
    if arch == "bert":
        model = BertForSequenceClassification(BertConfig(max_position_embeddings=160, **shape))
        head = model.classifier
    else:  # RoBERTa positions start after the padding index: leave room for 128 tokens + 2
        model = RobertaForSequenceClassification(RobertaConfig(max_position_embeddings=160, type_vocab_size=2, **shape))
        head = model.classifier.out_proj
    winner = next(i for i, name in id2label.items() if name == favoured)
    with torch.no_grad():
        head.weight.zero_()
        head.bias.fill_(-6.0)
        head.bias[winner] = 6.0
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


# -- label mapping -----------------------------------------------------------------------------


def test_label_names_map_case_insensitively_in_both_orders():
    assert map_labels(FINBERT_LABELS) == {0: "positive", 1: "negative", 2: "neutral"}
    assert map_labels(CRYPTOBERT_LABELS) == {0: "negative", 1: "neutral", 2: "positive"}
    assert map_labels({0: "NEGATIVE", 1: "Positive"}) == {0: "negative", 1: "positive"}


@pytest.mark.parametrize(
    "id2label",
    [
        {0: "LABEL_0", 1: "LABEL_1", 2: "LABEL_2"},  # transformers' default names: order unknown
        {0: "positive", 1: "positive", 2: "negative"},
        {0: "positive", 1: "neutral"},
        {},
    ],
)
def test_unmappable_labels_are_refused(id2label):
    with pytest.raises(LabelMappingError):
        map_labels(id2label, "some/model")


@pytest.mark.parametrize(
    "arch, id2label, favoured, sign",
    [
        ("bert", FINBERT_LABELS, "positive", +1),
        ("bert", FINBERT_LABELS, "negative", -1),
        ("roberta", CRYPTOBERT_LABELS, "Bullish", +1),  # index 2: an index-based map would call it neutral
        ("roberta", CRYPTOBERT_LABELS, "Bearish", -1),  # index 0: an index-based map would call it positive
    ],
)
def test_score_sign_follows_label_names(tmp_path, arch, id2label, favoured, sign):
    path = build_tiny_classifier(tmp_path / "model", id2label, favoured, arch)
    model = SentimentModel(news_model=str(path), social_model=str(path), device="cpu", strict=True)
    for item_type in ("news", "social"):
        scores, choice, _ = model.score(TEXTS, item_type)
        assert not choice.is_fallback
        assert (scores.model == str(path)).all()
        assert (scores.score * sign > 0.99).all(), scores
        assert (scores.label == ("positive" if sign > 0 else "negative")).all()
        assert ((scores.p_positive + scores.p_negative + scores.p_neutral - 1).abs() < 1e-6).all()
        assert ((scores.score - (scores.p_positive - scores.p_negative)).abs() < 1e-9).all()
        assert (scores.confidence > 0.99).all()


def test_model_with_unreadable_labels_is_refused_not_replaced(tmp_path):
    path = build_tiny_classifier(tmp_path / "m", {0: "LABEL_0", 1: "LABEL_1", 2: "LABEL_2"}, "LABEL_0")
    model = SentimentModel(news_model=str(path), device="cpu")  # not strict: still no silent fallback
    with pytest.raises(LabelMappingError, match="refusing to guess"):
        model.choose("news")


def test_local_model_version_hashes_the_weights_and_marks_int8(tmp_path):
    a = build_tiny_classifier(tmp_path / "a", FINBERT_LABELS, "positive", seed=1)
    b = build_tiny_classifier(tmp_path / "b", FINBERT_LABELS, "positive", seed=2)
    version_a = SentimentModel(news_model=str(a), device="cpu").choose("news").model_version
    version_b = SentimentModel(news_model=str(b), device="cpu").choose("news").model_version
    assert "@sha256:" in version_a and version_a.split("@")[1] != version_b.split("@")[1]

    quantized = SentimentModel(news_model=str(a), device="cpu", quantize=True)
    scores, choice, _ = quantized.score(TEXTS, "news")
    assert "+int8-dynamic" in choice.model_version and choice.scorer.quantized
    assert (scores.score > 0.99).all()


def _version(path: Path, **options) -> str:
    from crypto_assets.sentiment import model as model_module

    model_module._LOADED.clear()  # a fresh load, as a new process would do after the change
    return SentimentModel(news_model=str(path), device="cpu", **options).choose("news").model_version


def test_model_version_covers_config_tokenizer_and_scoring_options(tmp_path):
    """Anything that changes a local model's scores changes its model_version (issue 11): the
    incremental scorer keeps a stored row only while model and model_version are unchanged."""
    import json
    import shutil

    path = build_tiny_classifier(tmp_path / "m", FINBERT_LABELS, "positive")
    base = _version(path)
    scores, _, _ = SentimentModel(news_model=str(path), device="cpu").score(TEXTS, "news")
    assert (scores.score > 0.99).all()

    # The same files elsewhere: the same version (content, not location). A model card: no change.
    shutil.copytree(path, tmp_path / "copy")
    (tmp_path / "copy" / "README.md").write_text("# a model card\n")
    assert _version(tmp_path / "copy").split("@", 1)[1] == base.split("@", 1)[1]  # the name is the path

    # id2label rewritten (positive and negative swapped), weights untouched: the scores flip sign.
    config = json.loads((path / "config.json").read_text())
    config["id2label"] = {"0": "negative", "1": "positive", "2": "neutral"}
    config["label2id"] = {"negative": 0, "positive": 1, "neutral": 2}
    (path / "config.json").write_text(json.dumps(config))
    relabelled = _version(path)
    flipped, _, _ = SentimentModel(news_model=str(path), device="cpu").score(TEXTS, "news")
    assert (flipped.score < -0.99).all()
    assert relabelled != base

    # A tokenizer file changed (lower-casing switched off): a new version.
    tokenizer_config = path / "tokenizer_config.json"
    settings = json.loads(tokenizer_config.read_text())
    settings["do_lower_case"] = not settings.get("do_lower_case", True)
    tokenizer_config.write_text(json.dumps(settings))
    retokenized = _version(path)
    assert retokenized not in (base, relabelled)

    # Our own scoring option: another truncation length is another version.
    assert _version(path, max_tokens=64) not in (base, relabelled, retokenized)


def test_long_texts_are_truncated_and_batches_keep_input_order(tmp_path):
    path = build_tiny_classifier(tmp_path / "m", FINBERT_LABELS, "neutral")
    model = SentimentModel(news_model=str(path), device="cpu", batch_size=2, max_tokens=16)
    texts = ["bitcoin " * 5000, "the", "ether price rally", "bitcoin " * 3, "the"]
    scores, _, _ = model.score(texts, "news")
    assert len(scores) == len(texts) and (scores.label == "neutral").all()
    assert (scores.score.abs() < 1e-3).all()


# -- fallback ------------------------------------------------------------------------------------


def test_unloadable_model_falls_back_to_vader_rows_marked_vader():
    model = SentimentModel(news_model="/nonexistent/finbert", social_model="crypto-assets-tests/no-such-model",
                           offline=True)
    vader = SentimentIntensityAnalyzer()
    for item_type, requested in (("news", "/nonexistent/finbert"), ("social", "crypto-assets-tests/no-such-model")):
        scores, choice, _ = model.score(TEXTS, item_type)
        assert choice.is_fallback and requested in choice.fallback_reason
        assert (scores.model == "vader").all()
        assert scores.model_version.unique().tolist() == ["vaderSentiment==3.3.2"]
        # Real VADER output, not placeholders: the score is VADER's compound for the text.
        assert scores.score.tolist() == [vader.polarity_scores(t)["compound"] for t in TEXTS]
    assert scores.score.iloc[0] > 0 and scores.score.iloc[1] < 0


def test_strict_mode_raises_instead_of_falling_back(monkeypatch):
    with pytest.raises(SentimentModelUnavailable, match="/nonexistent/finbert"):
        SentimentModel(news_model="/nonexistent/finbert", strict=True).choose("news")
    monkeypatch.setenv("CRYPTO_SENTIMENT_STRICT", "1")
    with pytest.raises(SentimentModelUnavailable):
        SentimentModel(social_model="/nonexistent/cryptobert").choose("social")


def test_models_come_from_the_environment_by_default(monkeypatch):
    monkeypatch.delenv("CRYPTO_SENTIMENT_NEWS_MODEL", raising=False)
    monkeypatch.delenv("CRYPTO_SENTIMENT_SOCIAL_MODEL", raising=False)
    assert SentimentModel().model_name("news") == "ProsusAI/finbert"
    assert SentimentModel().model_name("social") == "ElKulako/cryptobert"
    monkeypatch.setenv("CRYPTO_SENTIMENT_NEWS_MODEL", "/models/finbert")
    assert SentimentModel().model_name("news") == "/models/finbert"
    assert SentimentModel(news_model="vader").choose("news").is_fallback is False  # VADER on purpose


def test_title_and_lead_strip_markup():
    assert title_and_lead("Bitcoin rallies", "<p>ETF &amp; flows</p>\n up") == "Bitcoin rallies. ETF & flows up"
    assert title_and_lead("Why?", None) == "Why?"
    assert title_and_lead(None, float("nan")) == ""


@pytest.mark.slow
def test_importing_the_resource_and_asset_does_not_import_torch():
    code = (
        "import sys, crypto_assets.sentiment.model, crypto_assets.assets.enrich.sentiment; "
        "assert 'torch' not in sys.modules, 'torch imported'; "
        "assert 'transformers' not in sys.modules, 'transformers imported'"
    )
    root = REPO
    result = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": str(root)})
    assert result.returncode == 0, result.stderr
