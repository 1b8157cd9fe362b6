"""Map a classifier's label NAMES (its `config.id2label`) to positive / negative / neutral.

Label order differs between models (FinBERT: 0 positive, 1 negative, 2 neutral; CryptoBERT:
0 Bearish, 1 Neutral, 2 Bullish), so a class index means nothing on its own. Mapping by
index is how a sentiment sign gets silently flipped; a model whose labels we cannot read is
refused instead.
"""

from __future__ import annotations

from collections.abc import Mapping

POSITIVE, NEGATIVE, NEUTRAL = "positive", "negative", "neutral"
SENTIMENTS = (POSITIVE, NEGATIVE, NEUTRAL)

# Lower-cased label name -> sentiment. Bullish/bearish are the crypto-market words for the same.
_SYNONYMS = {
    "positive": POSITIVE,
    "pos": POSITIVE,
    "bullish": POSITIVE,
    "negative": NEGATIVE,
    "neg": NEGATIVE,
    "bearish": NEGATIVE,
    "neutral": NEUTRAL,
    "neu": NEUTRAL,
}


class LabelMappingError(ValueError):
    """The model's labels cannot be mapped to positive/negative/neutral by name."""


def map_labels(id2label: Mapping, model_name: str = "model") -> dict[int, str]:
    """Class index -> sentiment, from the label names. Raises `LabelMappingError`.

    Every class must map, each sentiment at most once, and both positive and negative must be
    present (neutral is optional: a two-class model has p_neutral = 0).
    """
    if not id2label:
        raise LabelMappingError(f"{model_name}: config has no id2label; cannot tell which class is positive")
    mapping: dict[int, str] = {}
    unknown = []
    for index, name in id2label.items():
        sentiment = _SYNONYMS.get(str(name).strip().lower())
        if sentiment is None:
            unknown.append(f"{index}={name!r}")
        mapping[int(index)] = sentiment
    if unknown:
        raise LabelMappingError(
            f"{model_name}: label names {', '.join(unknown)} are not one of {sorted(_SYNONYMS)} "
            f"(case-insensitive); refusing to guess which class is positive from its index. "
            f"id2label={dict(id2label)}"
        )
    found = list(mapping.values())
    repeated = sorted({s for s in found if found.count(s) > 1})
    if repeated:
        raise LabelMappingError(f"{model_name}: several classes map to {repeated}; id2label={dict(id2label)}")
    missing = [s for s in (POSITIVE, NEGATIVE) if s not in found]
    if missing:
        raise LabelMappingError(f"{model_name}: no class maps to {missing}; id2label={dict(id2label)}")
    if sorted(mapping) != list(range(len(mapping))):
        raise LabelMappingError(f"{model_name}: class indices are not 0..{len(mapping) - 1}: {sorted(mapping)}")
    return mapping
