"""VADER: the lexicon scorer used when no transformer model can be loaded.

Rows it scores say `model='vader'`; VADER is a real (rule-based) sentiment model, not a
placeholder, but it is weaker on finance/crypto text, so the fallback is always visible.
"""

from __future__ import annotations

from importlib.metadata import version

import numpy as np
import pandas as pd

from crypto_assets.sentiment.labels import NEGATIVE, NEUTRAL, POSITIVE

VADER_MODEL = "vader"
# VADER's documented thresholds on the compound score for a positive/negative label.
_THRESHOLD = 0.05


class VaderScorer:
    """Scores with `vaderSentiment`'s `SentimentIntensityAnalyzer`.

    score = VADER's compound valence in [-1, 1]; p_positive/p_negative/p_neutral = VADER's
    pos/neg/neu shares of the text (they sum to 1 but are proportions, not probabilities).
    label = positive if compound >= 0.05, negative if <= -0.05, else neutral; confidence =
    |compound| for a polar label, 1 - |compound| for neutral.
    """

    model = VADER_MODEL

    def __init__(self) -> None:
        from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

        self._analyzer = SentimentIntensityAnalyzer()
        self.model_version = f"vaderSentiment=={version('vaderSentiment')}"
        self.device = "cpu"
        self.quantized = False

    def score(self, texts: list[str], **_options) -> pd.DataFrame:
        polarity = [self._analyzer.polarity_scores(t) for t in texts]
        compound = np.array([p["compound"] for p in polarity], dtype="float64")
        label = np.where(compound >= _THRESHOLD, POSITIVE, np.where(compound <= -_THRESHOLD, NEGATIVE, NEUTRAL))
        confidence = np.where(label == NEUTRAL, 1.0 - np.abs(compound), np.abs(compound))
        return pd.DataFrame(
            {
                "label": label.astype(object),
                "score": compound,
                "confidence": confidence,
                "p_positive": [p["pos"] for p in polarity],
                "p_negative": [p["neg"] for p in polarity],
                "p_neutral": [p["neu"] for p in polarity],
            },
            columns=["label", "score", "confidence", "p_positive", "p_negative", "p_neutral"],
        ).astype({"score": "float64", "confidence": "float64", "p_positive": "float64",
                  "p_negative": "float64", "p_neutral": "float64"})
