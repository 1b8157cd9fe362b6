"""The text a model scores for an item: its title plus its lead (summary / post body).

Title + lead is where the sentiment of a headline item is, and it keeps inputs short (the
model truncates to `max_tokens`, 128 by default): a full article costs ~20x a headline.
"""

from __future__ import annotations

import html
import re

# Quarantine reason of an item whose title and lead are empty (the coverage check reads it).
NO_TEXT_TO_SCORE = "no text to score"

_TAG = re.compile(r"<[^>]+>")
_SPACE = re.compile(r"\s+")


def clean(value) -> str:
    """Plain text: HTML tags dropped, entities decoded, whitespace collapsed.

    Feed summaries often carry markup (`<p>`, `<a href=...>`); a regex is enough here because
    the goal is only to keep tags out of the model input, not to render the HTML.
    """
    if value is None or (isinstance(value, float) and value != value):  # None or NaN
        return ""
    text = html.unescape(_TAG.sub(" ", str(value)))
    return _SPACE.sub(" ", text).strip()


def title_and_lead(title, lead) -> str:
    """'Title. Lead' (no doubled punctuation); either part may be empty."""
    head, body = clean(title), clean(lead)
    if head and body:
        joiner = " " if head[-1] in ".!?:;" else ". "
        return head + joiner + body
    return head or body
