"""The sentiment model resource: FinBERT for news, CryptoBERT for social posts, VADER when neither loads.

Every score row names the model that produced it (`model`, `model_version`). When a
transformer model cannot be loaded (no network, no torch, a wrong path), the text is scored
by VADER and the rows say `model='vader'`; nothing is ever mocked. `strict=True` turns the
fallback into an error instead.

torch/transformers are imported only when a transformer model is loaded (inside
`hf.TransformerScorer`), never when this module is imported.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Protocol

import dagster as dg
import pandas as pd
from pydantic import Field, PrivateAttr

from crypto_assets.sentiment.hf import ModelLoadError, TransformerScorer
from crypto_assets.sentiment.vader import VADER_MODEL, VaderScorer

ITEM_TYPES = ("news", "social")
# Which model scores an item (issue 14): "news" is stock-market/macro news (the finance model,
# FinBERT), "crypto_news" is news from crypto outlets (the crypto model, CryptoBERT), "social" is
# social posts (CryptoBERT). See crypto_assets/sentiment/market.py for how an article is routed.
SCORER_KINDS = ("news", "crypto_news", "social")
DEFAULT_MODELS = {"news": "ProsusAI/finbert", "crypto_news": "ElKulako/cryptobert", "social": "ElKulako/cryptobert"}
MODEL_ENV = {"news": "CRYPTO_SENTIMENT_NEWS_MODEL", "crypto_news": "CRYPTO_SENTIMENT_CRYPTO_NEWS_MODEL",
             "social": "CRYPTO_SENTIMENT_SOCIAL_MODEL"}
DEVICE_ENV = "CRYPTO_SENTIMENT_DEVICE"
QUANTIZE_ENV = "CRYPTO_SENTIMENT_QUANTIZE"
STRICT_ENV = "CRYPTO_SENTIMENT_STRICT"
_OFFLINE_ENVS = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
_TRUE = {"1", "true", "yes", "on"}

SCORE_COLUMNS = ["label", "score", "confidence", "p_positive", "p_negative", "p_neutral"]

# Loaded transformer models, per process: a cold load costs ~7 s, so a long-lived process
# (a notebook, a run scoring many batches) loads each model once. Failures are not cached.
_LOADED: dict[tuple, TransformerScorer] = {}


class Scorer(Protocol):
    model: str
    model_version: str
    device: str
    quantized: bool

    def score(self, texts: list[str], **options) -> pd.DataFrame: ...


class SentimentModelUnavailable(RuntimeError):
    """Strict mode: the configured transformer model could not be loaded."""


@dataclass(frozen=True)
class ScorerChoice:
    """The scorer an item type gets, and why it is not the configured model when it falls back."""

    item_type: str
    requested: str
    scorer: Scorer
    fallback_reason: str | None = None
    # Scoring options that change a transformer's outputs (the truncation length), recorded
    # in model_version next to the model's own identity.
    options: str = ""

    @property
    def is_fallback(self) -> bool:
        return self.fallback_reason is not None

    @property
    def model(self) -> str:
        """What rows say in `model`: the configured name/path, or 'vader'."""
        return VADER_MODEL if isinstance(self.scorer, VaderScorer) else self.scorer.model

    @property
    def model_version(self) -> str:
        return self.scorer.model_version + self.options


def _env_flag(name: str) -> bool | None:
    value = os.environ.get(name)
    return None if value is None or value == "" else value.strip().lower() in _TRUE


class SentimentModel(dg.ConfigurableResource):
    """Loads Hugging Face sequence classifiers by hub name or local path and scores text.

    score = P(positive) - P(negative) in [-1, 1]; classes are mapped by their `id2label`
    names (positive/bullish, negative/bearish, neutral), never by index.
    """

    news_model: str | None = Field(
        default=None, description=f"Hub name or local path; default ${MODEL_ENV['news']} or {DEFAULT_MODELS['news']}."
    )
    social_model: str | None = Field(
        default=None,
        description=f"Hub name or local path; default ${MODEL_ENV['social']} or {DEFAULT_MODELS['social']}.",
    )
    crypto_news_model: str | None = Field(
        default=None,
        description=(f"Model for news from crypto outlets (stock/macro news uses news_model); default "
                     f"${MODEL_ENV['crypto_news']} or {DEFAULT_MODELS['crypto_news']}."),
    )
    revision: str | None = Field(default=None, description="Hub revision (branch/tag/commit) for hub names.")
    device: str | None = Field(default=None, description=f"auto (CUDA when available), cpu, cuda[:n]; default ${DEVICE_ENV} or auto.")
    quantize: bool | None = Field(
        default=None, description=f"Dynamic int8 quantization on CPU (~1.7x faster); default ${QUANTIZE_ENV} or off."
    )
    max_tokens: int = Field(default=128, description="Truncation length in tokens (title + lead).")
    batch_size: int = Field(default=32, description="Texts per forward pass (sorted by length, padded to the longest).")
    strict: bool | None = Field(
        default=None, description=f"Raise instead of falling back to VADER; default ${STRICT_ENV} or off."
    )
    offline: bool | None = Field(
        default=None, description="Load hub models from the local cache only; default $HF_HUB_OFFLINE."
    )

    _choices: dict[str, ScorerChoice] = PrivateAttr(default_factory=dict)

    # -- configuration resolved against the environment at run time -------------------------

    def model_name(self, item_type: str) -> str:
        if item_type not in SCORER_KINDS:
            raise ValueError(f"item_type must be one of {SCORER_KINDS}, got {item_type!r}")
        configured = {"news": self.news_model, "crypto_news": self.crypto_news_model,
                      "social": self.social_model}[item_type]
        return configured or os.environ.get(MODEL_ENV[item_type]) or DEFAULT_MODELS[item_type]

    def resolved_device(self) -> str:
        return self.device or os.environ.get(DEVICE_ENV) or "auto"

    def resolved_quantize(self) -> bool:
        return self.quantize if self.quantize is not None else bool(_env_flag(QUANTIZE_ENV))

    def resolved_strict(self) -> bool:
        return self.strict if self.strict is not None else bool(_env_flag(STRICT_ENV))

    def resolved_offline(self) -> bool:
        if self.offline is not None:
            return self.offline
        return any(_env_flag(name) for name in _OFFLINE_ENVS)

    # -- loading ------------------------------------------------------------------------------

    def choose(self, item_type: str) -> ScorerChoice:
        """The scorer for an item type: its transformer model, else VADER (recorded), else raise."""
        if item_type in self._choices:
            return self._choices[item_type]
        name = self.model_name(item_type)
        if name == VADER_MODEL:  # VADER on purpose: not a fallback
            choice = ScorerChoice(item_type, name, VaderScorer())
        else:
            try:
                choice = ScorerChoice(item_type, name, self._load(name), options=f"+max_tokens:{self.max_tokens}")
            except ModelLoadError as exc:
                if self.resolved_strict():
                    raise SentimentModelUnavailable(
                        f"{item_type} sentiment model {name!r} could not be loaded ({exc}); strict mode "
                        "forbids the VADER fallback"
                    ) from exc
                choice = ScorerChoice(item_type, name, VaderScorer(), fallback_reason=str(exc))
        self._choices[item_type] = choice
        return choice

    def _load(self, name: str) -> TransformerScorer:
        key = (name, self.revision, self.resolved_device(), self.resolved_quantize(), self.resolved_offline())
        if key not in _LOADED:
            _LOADED[key] = TransformerScorer(
                name, device=key[2], quantize=key[3], offline=key[4], revision=self.revision
            )
        return _LOADED[key]

    # -- scoring ------------------------------------------------------------------------------

    def score(self, texts: list[str], item_type: str) -> tuple[pd.DataFrame, ScorerChoice, float]:
        """Score `texts` (one row each, same order) with the item type's scorer.

        Returns the scores (columns model, model_version + SCORE_COLUMNS), the choice made,
        and the seconds spent scoring. Identical texts are scored once.
        """
        choice = self.choose(item_type)
        scorer = choice.scorer
        unique = list(dict.fromkeys(texts))
        started = time.perf_counter()
        scored = scorer.score(unique, batch_size=self.batch_size, max_tokens=self.max_tokens) if unique else None
        seconds = time.perf_counter() - started
        if scored is None:
            frame = pd.DataFrame({c: pd.Series(dtype="float64") for c in SCORE_COLUMNS})
            frame["label"] = frame["label"].astype(object)
        else:
            position = {text: i for i, text in enumerate(unique)}
            frame = scored.iloc[[position[t] for t in texts]].reset_index(drop=True)
        frame.insert(0, "model_version", choice.model_version)
        frame.insert(0, "model", choice.model)
        return frame, choice, seconds
