"""Hugging Face sequence classifiers (FinBERT, CryptoBERT, ...) loaded by hub name or local path.

torch and transformers are imported inside the functions only: importing this module (or the
resource that uses it) costs nothing, and the packages are an optional extra (`.[ml]`).

Speed (see docs/sentiment.md): texts are sorted by length so each batch pads to similar
lengths, padded only to the longest text of the batch, truncated to `max_tokens` (title +
lead; a 512-token article costs ~20x a headline), run under `torch.inference_mode`,
optionally int8 dynamically quantized on CPU, on CUDA when available.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from crypto_assets.sentiment.labels import NEGATIVE, NEUTRAL, POSITIVE, map_labels

# A local model folder must hold weights in one of these forms to be a model at all.
_WEIGHT_PATTERNS = ("*.safetensors", "*.bin", "*.pt", "*.pth", "*.safetensors.index.json", "*.bin.index.json")
# Files of a local model folder that cannot change its outputs, left out of its digest: model
# cards (*.md) and anything hidden (.git, .cache/huggingface download metadata, .gitattributes).
_NOT_MODEL_FILES = ("*.md",)
# Version of OUR code between the model and a stored row: the label-name table in labels.py,
# the score formula (P(pos) - P(neg), confidence = max P) and the text cut in `score`. Bump it
# when any of them changes, so rows scored under the old rules are re-scored.
SCORING_CODE_VERSION = 1
# A text longer than this many characters per allowed token cannot fit anyway: cut it before
# tokenizing so a 40 kB Reddit post costs no more than a headline-plus-lead.
_CHARS_PER_TOKEN_CAP = 12


class ModelLoadError(RuntimeError):
    """A transformer model could not be loaded (missing path, no network, no torch, ...)."""


def looks_like_path(name: str) -> bool:
    return name.startswith(("/", "./", "../", "~", "\\")) or Path(name).expanduser().exists()


def model_files(directory: Path) -> list[Path]:
    """Every file of a local model folder that can change its outputs, sorted by relative path.

    Weights, config.json (id2label, architecture), tokenizer files (vocab, merges, special
    tokens, tokenizer_config), generation and preprocessing configs, custom code: all of it.
    Only model cards and hidden entries are left out (`_NOT_MODEL_FILES`).
    """
    if not any(p.is_file() for pattern in _WEIGHT_PATTERNS for p in directory.glob(pattern)):
        raise ModelLoadError(f"{directory}: no weight files ({', '.join(_WEIGHT_PATTERNS)})")
    files = []
    for path in directory.rglob("*"):
        relative = path.relative_to(directory)
        if not path.is_file() or any(part.startswith(".") for part in relative.parts):
            continue
        if any(relative.match(pattern) for pattern in _NOT_MODEL_FILES):
            continue
        files.append(path)
    return sorted(files, key=lambda p: p.relative_to(directory).as_posix())


def model_digest(directory: Path) -> str:
    """sha256 over a local model folder's `model_files` (relative path + bytes of each)."""
    digest = hashlib.sha256()
    for path in model_files(directory):
        name = path.relative_to(directory).as_posix().encode()
        digest.update(len(name).to_bytes(4, "big") + name + path.stat().st_size.to_bytes(8, "big"))
        with path.open("rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()


def scoring_digest(index_to_sentiment: dict[int, str]) -> str:
    """8 hex identifying how our code turns this model's probabilities into rows: the class ->
    sentiment mapping it resolved (from id2label and labels.py) and SCORING_CODE_VERSION."""
    spec = json.dumps({"code": SCORING_CODE_VERSION, "labels": sorted(index_to_sentiment.items())})
    return hashlib.sha256(spec.encode()).hexdigest()[:8]


def resolve_device(device: str) -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        # A configuration error, not a missing model: fail rather than fall back to VADER.
        raise RuntimeError(f"sentiment device {device!r} requested but torch sees no CUDA device")
    return device


class TransformerScorer:
    """One loaded sequence classifier; `score(texts)` returns probabilities and the score."""

    def __init__(self, name: str, *, device: str = "auto", quantize: bool = False, offline: bool = False,
                 revision: str | None = None) -> None:
        try:
            import torch
            import transformers
        except ImportError as exc:  # the optional extra is not installed
            raise ModelLoadError(f"{exc}; install the ML extra: pip install '.[ml]'") from exc

        transformers.utils.logging.disable_progress_bar()  # no per-shard progress bars in run logs
        self.model = name
        local = Path(name).expanduser()
        if looks_like_path(name) and not local.is_dir():
            raise ModelLoadError(f"model path {name!r} is not a directory")
        try:
            if local.is_dir():
                source, load_kwargs, pin = str(local), {"local_files_only": True}, None
            else:
                pin = _resolve_commit(name, revision, offline)
                source, load_kwargs = name, {"revision": pin, "local_files_only": offline}
            config = transformers.AutoConfig.from_pretrained(source, **load_kwargs)
        except ModelLoadError:
            raise
        except Exception as exc:  # hub/network/format errors all mean "not available here"
            raise ModelLoadError(f"{name}: {type(exc).__name__}: {exc}") from exc

        # Outside the try: unreadable labels are a configuration error, never a fallback.
        self.index_to_sentiment = map_labels(config.id2label, name)

        try:
            self.tokenizer = transformers.AutoTokenizer.from_pretrained(source, **load_kwargs)
            model = transformers.AutoModelForSequenceClassification.from_pretrained(source, **load_kwargs)
        except Exception as exc:
            raise ModelLoadError(f"{name}: {type(exc).__name__}: {exc}") from exc
        model.eval()
        self.device = resolve_device(device)
        self.quantized = bool(quantize and self.device == "cpu")  # dynamic int8 is a CPU kernel
        if self.quantized:
            with warnings.catch_warnings():  # torch 2.13 deprecates torch.ao in favour of torchao
                warnings.simplefilter("ignore")
                model = torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)
        self._model = model.to(self.device)
        self._torch = torch

        origin = _stored_name_or_path(local) if local.is_dir() else None
        name_or_path = origin or config._name_or_path or name
        # The files: a hub commit pins every file of the repository; a local folder is hashed
        # whole (config, tokenizer and weights). Then our own scoring rules, then int8.
        identity = f"commit:{pin}" if pin else f"sha256:{model_digest(local)[:16]}"
        self.model_version = (f"{name_or_path}@{identity}+scoring:{scoring_digest(self.index_to_sentiment)}"
                              + ("+int8-dynamic" if self.quantized else ""))

    def score(self, texts: list[str], *, batch_size: int = 32, max_tokens: int = 128) -> pd.DataFrame:
        torch = self._torch
        char_cap = max_tokens * _CHARS_PER_TOKEN_CAP
        texts = [t[:char_cap] for t in texts]
        probs = np.zeros((len(texts), len(self.index_to_sentiment)), dtype="float64")
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))  # similar lengths share a batch
        with torch.inference_mode():
            for start in range(0, len(order), batch_size):
                rows = order[start : start + batch_size]
                batch = self.tokenizer(
                    [texts[i] for i in rows], padding="longest", truncation=True, max_length=max_tokens,
                    return_tensors="pt",
                ).to(self.device)
                logits = self._model(**batch).logits
                probs[rows] = torch.softmax(logits.float(), dim=-1).cpu().numpy()
        return self._frame(probs)

    def _frame(self, probs: np.ndarray) -> pd.DataFrame:
        def column(sentiment: str) -> np.ndarray:
            for index, mapped in self.index_to_sentiment.items():
                if mapped == sentiment:
                    return probs[:, index]
            return np.zeros(len(probs))  # a two-class model has no neutral class

        p_pos, p_neg, p_neu = column(POSITIVE), column(NEGATIVE), column(NEUTRAL)
        top = probs.argmax(axis=1) if len(probs) else np.array([], dtype=int)
        return pd.DataFrame(
            {
                "label": np.array([self.index_to_sentiment[int(i)] for i in top], dtype=object),
                "score": np.clip(p_pos - p_neg, -1.0, 1.0),
                "confidence": probs.max(axis=1) if len(probs) else np.array([], dtype="float64"),
                "p_positive": p_pos,
                "p_negative": p_neg,
                "p_neutral": p_neu,
            }
        )


def _resolve_commit(name: str, revision: str | None, offline: bool) -> str:
    """Pin a hub model to the commit its revision points to (all files then come from it)."""
    from huggingface_hub import HfApi

    resolved = HfApi().resolve_revision(name, revision=revision, local_files_only=offline)
    return resolved.resolved


def _stored_name_or_path(directory: Path) -> str | None:
    """The `_name_or_path` a local copy's config.json carries (its origin), when it has one."""
    try:
        return json.loads((directory / "config.json").read_text()).get("_name_or_path") or None
    except (OSError, ValueError):
        return None
