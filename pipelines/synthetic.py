"""A built-in review corpus in which word order matters (the demo's data).

Every pattern is generated with both assignments of a positive and a negative
adjective, so the two labels share the same bag of words: "the plot was good ,
not bad at all" (pos) vs "the plot was bad , not good at all" (neg). Only a
model that reads the order -- negation scope, contrast after "but" -- can beat
chance on the contrastive patterns.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

POSITIVE = ["good", "great", "excellent", "wonderful", "brilliant", "enjoyable", "superb", "delightful"]
NEGATIVE = ["bad", "awful", "boring", "terrible", "dull", "weak", "dreadful", "tedious"]
ASPECTS = ["movie", "plot", "acting", "music", "ending", "cast", "script", "pacing", "dialogue", "camera work"]

# (template, which slot decides the label: "x" or "y", flipped?)
PATTERNS = [
    ("the {a} was {x} , not {y} at all", "x", False),
    ("the {a} was not {x} , it was {y}", "y", False),
    ("i expected the {a} to be {x} but it was {y}", "y", False),
    ("the {a} was {x} but the rest was {y}", "y", False),
    ("not {x} at all , the {a} was {y}", "y", False),
    ("the {a} was not {x}", "x", True),
    ("the {a} was {x} and {x2}", "x", False),
    ("{y} ? no , the {a} was {x}", "x", False),
]


def make_review(rng: np.random.Generator) -> tuple[str, str]:
    template, decisive, flipped = PATTERNS[rng.integers(len(PATTERNS))]
    positive_first = bool(rng.integers(2))
    x = rng.choice(POSITIVE if positive_first else NEGATIVE)
    y = rng.choice(NEGATIVE if positive_first else POSITIVE)
    x2 = rng.choice(POSITIVE if positive_first else NEGATIVE)
    text = template.format(a=rng.choice(ASPECTS), x=x, y=y, x2=x2)
    positive = positive_first if decisive == "x" else not positive_first
    if flipped:
        positive = not positive
    return text, "pos" if positive else "neg"


def write_corpus(directory: str | Path, sizes: dict[str, int] | None = None, seed: int = 0) -> Path:
    """Writes train / dev / test JSON Lines files ({"text", "label"}) into `directory`."""
    sizes = sizes or {"train": 6000, "dev": 600, "test": 1000}
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for split, n in sizes.items():
        with open(directory / f"{split}.jsonl", "w", encoding="utf-8") as f:
            for _ in range(n):
                text, label = make_review(rng)
                f.write(json.dumps({"text": text, "label": label}) + "\n")
    return directory


DEMO_SENTENCES = [
    "the movie was good , not bad at all",
    "the movie was bad , not good at all",
    "i expected the plot to be brilliant but it was dull",
    "i expected the plot to be dull but it was brilliant",
    "the acting was not terrible",
    "the ending was superb and delightful",
]
