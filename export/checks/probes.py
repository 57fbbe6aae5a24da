"""Texts every export is checked on: the awkward inputs a deployment meets."""

from __future__ import annotations


def adversarial_texts(max_len: int) -> list:
    """Empty, whitespace only, unknown words, 10x the maximum length, emoji,
    combining marks, right-to-left text, control characters, and (as bytes)
    invalid UTF-8, which both runtimes replace with U+FFFD (tokenizer rule 1)."""
    return [
        "",
        " \t\n ",
        "zzxqv qqwzz vvxzq",
        " ".join(["word"] * (10 * max_len)),
        "great 👍🏽 movie 🎬!!",
        "cafe\u0301 nai\u0308ve e\u0300\u0301\u0302",
        "\u05e9\u05dc\u05d5\u05dd \u05e2\u05d5\u05dc\u05dd \u0645\u0631\u062d\u0628\u0627",
        "tab\there\x00nul\x07bell\x1b[31mred\u200bzero\u2028line",
        b"bad \xff\xfe bytes \xc3( and \xed\xa0\x80 surrogate",
    ]
