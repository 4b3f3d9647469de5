"""The texts a benchmark sends: the user's own file, or a built-in set shaped like real traffic.

Latency depends on length (attention is quadratic in tokens, and a batch pads to its longest
text), so one repeated sentence would flatter any model. The built-in set mixes search queries,
single sentences, reviews and paragraphs, most of them short as real requests are, with a few
non-English words, and every text fits in 256 tokens, the default model's limit, so none is
refused with truncation off.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path

SENTENCES = (
    "cheap flights to lisbon in may",
    "how do I reset my password",
    "best noise cancelling headphones under 200 dollars",
    "The battery lasts two full days, which is more than I expected from a phone this thin.",
    "Shipping took three weeks and the box arrived crushed, but the lamp itself works fine.",
    "Central banks kept interest rates unchanged on Thursday, citing a slower fall in inflation.",
    "Can I change the delivery address after the order has been dispatched?",
    "The café on the corner of the Zürich station serves the best croissants I have had.",
    "Our team migrated the search service to serverless functions and cut the bill by half.",
    "I waited forty minutes on hold before anyone answered, and then the call dropped.",
    "The museum reopens next month after a two-year renovation of its east wing.",
    "Does this model support sentences in more than one language, for example German and French?",
    "Great value for the price; the fabric feels sturdy and the stitching is neat.",
    "The update broke the login page on older browsers, so we rolled it back within an hour.",
    "Researchers found that short daily walks improved sleep quality in older adults.",
    "Please cancel my subscription and refund the last payment, which was taken twice.",
    "The recipe needs ripe tomatoes, a handful of basil, olive oil and a pinch of salt.",
    "Traffic on the northern ring road is slow because of roadworks near the airport exit.",
    "I love how quiet the dishwasher is, although the top rack feels a little flimsy.",
    "Quarterly revenue rose eight percent, driven by strong demand for cloud storage.",
    "We stayed in a small ryokan near Kyoto and the breakfast was unforgettable.",
    "The instructions were unclear and two screws were missing from the package.",
    "Local volunteers planted three hundred trees along the river over the weekend.",
    "What is the difference between the standard plan and the premium plan?",
    "The film is beautifully shot, but the second half drags and the ending feels rushed.",
    "A naïve implementation would sort the whole list, which is wasteful for the top ten.",
    "The council approved a new bike lane network that will connect the university and the port.",
    "My order number is 48213 and the tracking page has not updated since Monday.",
    "Scientists observed a comet passing unusually close to the sun this spring.",
    "Honestly the best pizza in town: thin crust, fresh mozzarella and friendly staff.",
)
# Sentences per text, cycled: mostly one or two, sometimes a paragraph, as requests arrive.
SHAPE = (1, 1, 2, 1, 3, 1, 2, 5, 1, 8, 1, 2, 1, 4, 1, 11)
BUILTIN_SIZE = 128


def builtin_texts(count: int = BUILTIN_SIZE) -> list[str]:
    """`count` texts of varied length, the same on every run so results compare."""
    pool = itertools.cycle(SENTENCES)
    return [" ".join(next(pool) for _ in range(SHAPE[i % len(SHAPE)])) for i in range(count)]


def load_texts(path: Path) -> list[str]:
    """The texts of a file: one per line; a `.jsonl` line may be a JSON string or {"text": ...}.

    Texts are sent as they are: a text the model refuses (too long with truncation off) is
    counted as an error by status, which is what a benchmark of real inputs should show.
    """
    lines = [line for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]
    if Path(path).suffix == ".jsonl":
        records = [json.loads(line) for line in lines]
        lines = [r if isinstance(r, str) else r["text"] for r in records]
    if not lines:
        raise ValueError(f"{path} holds no texts: write one text per line.")
    return lines
