"""Which coins a text mentions: word-boundary matching of tickers, names and aliases.

Rules (each has a test in crypto_assets_tests/news/test_news_mentions.py):
- Whole words only: "SOL" never matches inside "solution", "ETH" never inside "Ethan".
- A cashtag (`$sol`, `$LINK`) always counts, in any case.
- A ticker counts in any case ("btc", "Eth") unless it is ambiguous: an English word or a
  common name ("ONE", "NEAR", "LINK", "DOT", "ETC", "ADA"), or at most two letters ("OP").
  Ambiguous tickers count only written in upper case, and not in shouted text (mostly capitals,
  like "LINK IN BIO"), where upper case says nothing.
- Names and aliases count in any case ("Ethereum", "ethereum" -> ETH) unless the name is itself
  an English word ("Stellar", "Ripple", "Polygon", "Cosmos"): then only as written in the
  universe, capitalised.
- The longest name wins where names overlap: "Bitcoin Cash" tags BCH, not BTC; "Ethereum
  Classic" tags ETC, not ETH.
- Wrapped, staked and bridged tokens are not their underlying coin: they have their own price,
  supply and risks (stETH traded at 0.94 ETH in June 2022; WBTC's custody changed in 2024).
  Their tickers are their own words (WBTC, WETH, stETH, wstETH, cbETH, rETH, cbBTC), so "BTC"
  and "ETH" never match inside them; their names ("Wrapped Bitcoin", "Lido Staked Ether",
  "Coinbase Wrapped Staked ETH") tag nothing: a coin name or ticker right after one of
  DERIVATIVE_PREFIXES is not that coin. Such a token is tagged only when it is in the universe
  itself (its own row, e.g. WBTC "Wrapped Bitcoin"), then as its own symbol.
- Common names: "ether", the name most outlets use for ETH, counts in any case. Only the
  idiom "the ether" at the end of a phrase ("vanished into the ether.") is the English word.

The universe comes as a DataFrame of (symbol, name, aliases), aliases separated by '|', so the
tagger can be fed by `resources/coins.csv` or by the `coin_universe` asset's table alike.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from crypto_assets.paths import RESOURCES_DIR

# English words (and everyday names) that are also tickers or coin names. Extend it when the
# universe grows: a ticker here needs upper case or a $, a name here needs its capitalisation.
AMBIGUOUS_WORDS = frozenset(
    """
    ace ada alt any ape arc ark atom audio band bat beam bit blur bond cake cat chess comp compound
    cosmos cow dash data dent dodo dog dot dusk edu elf etc flow front fun gala gas graph
    harmony high hook hot ice iota jupiter just key lever link lit looks loom magic mana mantle mask
    maker max meme mint move near not ocean one optimism origin people pond port quant quick rad
    rare ray reef ren render ripple rose rune safe sand sandbox sol stacks status stellar sun super
    tether terra ton tru trump uni vet verge wan waves win wing woo zen polygon avalanche nano
    ontology oasis civic immutable lumens
    """.split()
)
# A coin name or ticker right after one of these words names a derivative token, not the coin.
DERIVATIVE_PREFIXES = frozenset({"wrapped", "staked", "restaked", "bridged", "tokenized", "tokenised"})
# Names that are also an English noun in the idiom "the <word>" closing a phrase.
_IDIOM_AFTER_THE = frozenset({"ether"})
_SHOUTED_MIN_LETTERS = 12
_SHOUTED_UPPER_SHARE = 0.7
_CASHTAG = re.compile(r"(?<![\w$])\$([A-Za-z0-9]{2,12})(?!\w)")


def is_ambiguous_ticker(ticker: str) -> bool:
    return len(ticker) <= 2 or ticker.lower() in AMBIGUOUS_WORDS


def is_ambiguous_name(name: str) -> bool:
    return name.lower() in AMBIGUOUS_WORDS


def is_shouted(text: str) -> bool:
    letters = [c for c in text if c.isalpha()]
    if len(letters) < _SHOUTED_MIN_LETTERS:
        return False
    return sum(c.isupper() for c in letters) / len(letters) >= _SHOUTED_UPPER_SHARE


@dataclass(frozen=True)
class _Term:
    text: str
    symbol: str
    case_sensitive: bool
    ambiguous_ticker: bool  # skipped in shouted text


def _split_aliases(value) -> list[str]:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return []
    return [a.strip() for a in str(value).split("|") if a.strip()]


def _normal(text: str) -> str:
    return " ".join(text.split()).lower()


_WORD = re.compile(r"\w+")


class MentionTagger:
    """Finds the symbols of a coin universe mentioned in a text.

    The text is split into words (runs of \\w characters, so boundaries are exact); at each word
    the longest run of up to N words that spells a term is looked up in two dicts (exact case,
    lower case). That is O(words x N) lookups whatever the universe size; one regex alternation
    of every term was ~30x slower with 500 coins (benchmarks/bench_news.py).
    """

    def __init__(self, coins: pd.DataFrame):
        missing = {"symbol", "name"} - set(coins.columns)
        if missing:
            raise ValueError(f"coin universe frame lacks columns {sorted(missing)}")
        self._exact: dict[str, _Term] = {}  # case-sensitive terms, whitespace collapsed
        self._folded: dict[str, _Term] = {}  # case-insensitive terms, lower-cased
        self.tickers: set[str] = set()
        self._max_words = 1
        self._multi_first: set[str] = set()
        for row in coins.itertuples(index=False):
            symbol = str(row.symbol).strip().upper()
            if not symbol:
                continue
            self.tickers.add(symbol)
            ambiguous = is_ambiguous_ticker(symbol)
            self._add(_Term(symbol, symbol, case_sensitive=ambiguous, ambiguous_ticker=ambiguous))
            names = [str(row.name).strip()] if isinstance(row.name, str) and row.name.strip() else []
            for name in names + _split_aliases(getattr(row, "aliases", None)):
                if name.upper() != symbol:  # a name equal to the ticker ("BNB", "XRP") follows the ticker rule
                    self._add(_Term(name, symbol, case_sensitive=is_ambiguous_name(name), ambiguous_ticker=False))

    def _add(self, term: _Term) -> None:
        if term.case_sensitive:
            self._exact.setdefault(" ".join(term.text.split()), term)
        else:
            self._folded.setdefault(_normal(term.text), term)
        words = _WORD.findall(term.text)
        if len(words) > 1:  # remember how multi-word terms start, to try longer spans only there
            self._max_words = max(self._max_words, len(words))
            self._multi_first.add(words[0].lower())

    def _lookup(self, span: str) -> _Term | None:
        return self._exact.get(" ".join(span.split())) or self._folded.get(_normal(span))

    def symbols(self, text: str | None) -> set[str]:
        """Symbols mentioned in one text."""
        if not text:
            return set()
        found = {m.group(1).upper() for m in _CASHTAG.finditer(text) if m.group(1).upper() in self.tickers}
        words = [(m.start(), m.end(), m.group(0)) for m in _WORD.finditer(text)]
        shouted = None
        i = 0
        while i < len(words):
            start, _, word = words[i]
            i += 1
            if start > 0 and text[start - 1] == "$":  # a cashtag, counted above
                continue
            lowered = word.lower()
            if lowered in self._multi_first:  # longest first: "Bitcoin Cash" before "Bitcoin"
                span = next(
                    ((n, t) for n in range(min(self._max_words, len(words) - i + 1), 1, -1)
                     if (t := self._lookup(text[start : words[i + n - 2][1]])) is not None),
                    None,
                )
                if span is not None:
                    if not self._after_derivative_prefix(text, words, i - 1):
                        found.add(span[1].symbol)
                    i += span[0] - 1
                    continue
            term = self._exact.get(word) or self._folded.get(lowered)
            if term is None:
                continue
            if self._after_derivative_prefix(text, words, i - 1):
                continue
            if lowered in _IDIOM_AFTER_THE and self._closing_idiom(text, words, i - 1):
                continue
            if term.ambiguous_ticker:
                shouted = is_shouted(text) if shouted is None else shouted
                if shouted:
                    continue
            found.add(term.symbol)
        return found

    @staticmethod
    def _after_derivative_prefix(text: str, words: list, k: int) -> bool:
        """Word k follows "wrapped"/"staked"/... separated by spaces only ("Wrapped Bitcoin")."""
        if k == 0:
            return False
        _, end, previous = words[k - 1]
        return previous.lower() in DERIVATIVE_PREFIXES and not text[end : words[k][0]].strip()

    @staticmethod
    def _closing_idiom(text: str, words: list, k: int) -> bool:
        """Word k is "the <word>" ending a phrase: end of text or punctuation after it."""
        if k == 0 or words[k - 1][2].lower() != "the" or text[words[k - 1][1] : words[k][0]].strip():
            return False
        after = text[words[k][1] :].lstrip(" ")
        return not after or after[0] in ".,;:!?)\"'\n"

    def tag(self, *texts: str | None) -> str:
        """Symbols mentioned in any of the texts, sorted and joined by '|' ('' when none).

        Each text (title, summary) is judged on its own, so a shouted headline does not make
        a normal summary "shouted"."""
        found: set[str] = set()
        for text in texts:
            found |= self.symbols(text)
        return "|".join(sorted(found))

    def tag_frame(self, frame: pd.DataFrame, columns: Iterable[str]) -> pd.Series:
        columns = list(columns)
        values = frame[columns].astype(object).where(frame[columns].notna(), None)
        return pd.Series([self.tag(*row) for row in values.itertuples(index=False)], index=frame.index, dtype=object)


def coin_universe_from_csv(path: str | Path | None = None) -> pd.DataFrame:
    """(symbol, name, aliases) from `resources/coins.csv` (columns symbol,coingecko_id,name,aliases)."""
    frame = pd.read_csv(path or RESOURCES_DIR / "coins.csv", dtype=str, keep_default_na=False)
    frame["symbol"] = frame["symbol"].str.strip().str.upper()
    return frame[["symbol", "name", "aliases"]].replace({"": None})
