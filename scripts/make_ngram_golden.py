"""Write export/schema/ngram-golden.json: texts -> words and ids by the n-gram tokenizer rules (version 1).

The golden file is the contract between kdedge_runtime (Python) and export/core (Node, the browser): both runtimes'
tests read it and must give exactly these ids. Rerun this only when the rules change on purpose (a new rules value,
never a silent change of an old one), and check the diff by hand.

    python scripts/make_ngram_golden.py
"""

from __future__ import annotations

import json
from pathlib import Path

from kdedge_runtime.ngram import NgramTokenizer, fnv1a32, words_of

OUT = Path(__file__).resolve().parents[1] / "export" / "schema" / "ngram-golden.json"

# Published FNV-1a 32-bit test vectors (the FNV reference's test suite), and a few non-ASCII strings.
HASH_TEXTS = ["", "a", "foobar", "a fine", "café", "真的", "🎬"]
TEXTS = [
    "",
    "   ",
    "A fine, FUNNY film!",
    "it 's a charming and often affecting journey . ",
    "don't stop_me ^now^ #1 (really) 3.14 ½",
    "Ce film était très émouvant — 真的很好看! 🎬👍",
    "ÅNGSTRÖM naïve cafe\u0301 café",
    "ﬁne Ｆｕｌｌｗｉｄｔｈ ①②",
    "İstanbul ΣΟΦΟΣ ὈΔΥΣΣΕΎΣ",
    "bad \ud800 text \udc00 here",
    "tabs\tand\nnewlines\u00a0nbsp\u200bzero\u2028width",
    "👩\u200d💻 coder \u0301mark",
    "नमस्ते दुनिया مرحبا بالعالم",
    "สวัสดีครับ 日本語のテキスト 한국어 텍스트",
    "the film the film the film",
    "word " * 300,
    "It's NOT a very good film, but the cast doesn't fail. Not bad",
    "no no no no good . good ; never , never",
    "ничего хорошего , но НИКОГДА плохо — not_good but",
]
VOCABULARY = ["the", "film", "a", "fine", ",", "!", "it", "'s", "charming", ".", "café", "真的很好看", "🎬", "stop",
              "'", "t", "naïve", "ångström", "fine", "fullwidth", "istanbul", "σοφος", "text", "word", "_", "1"]
TOKENIZERS = [
    {"name": "bigrams", "rules": {"normalization": "nfkc-lowercase", "split": "unicode-words", "hash": "fnv1a-32",
                                  "word_ngrams": 2, "char_ngrams": [], "buckets": 1000}, "max_length": 64},
    {"name": "trigrams-and-characters", "rules": {"normalization": "nfkc-lowercase", "split": "unicode-words",
                                                  "hash": "fnv1a-32", "word_ngrams": 3, "char_ngrams": [3, 4],
                                                  "buckets": 97}, "max_length": 8},
    {"name": "words-only", "rules": {"normalization": "nfkc-lowercase", "split": "unicode-words", "hash": "fnv1a-32",
                                     "word_ngrams": 1, "char_ngrams": [], "buckets": 1}, "max_length": 128},
    {"name": "scopes", "rules": {"normalization": "nfkc-lowercase", "split": "unicode-words", "hash": "fnv1a-32",
                                 "word_ngrams": 2, "char_ngrams": [], "buckets": 1000,
                                 "scopes": [{"cues": ["not", "t", "no", "never", "ничего", "никогда"],
                                             "ends": [".", ",", "but", "—"], "words": 3, "prefix": "not_"},
                                            {"cues": ["but", "но"], "ends": [".", ";"], "words": 8,
                                             "prefix": "¬"}]}, "max_length": 64},
]


def main() -> None:
    words = list(dict.fromkeys(VOCABULARY))  # the file format: distinct words
    golden = {
        "description": "The n-gram tokenizer's rules (version 1, export/schema/README.md) on fixed texts: each "
                       "runtime's tests (tests/test_ngram.py, export/node/test/ngram.test.js) must give exactly "
                       "these words and ids. Written by scripts/make_ngram_golden.py.",
        "fnv1a32": [[t, fnv1a32(t)] for t in HASH_TEXTS],
        "tokenizers": [],
    }
    for spec in TOKENIZERS:
        tokenizer = NgramTokenizer(words, spec["rules"], spec["max_length"])
        cases = [{"text": t, "words": words_of(t, spec["max_length"]), "ids": tokenizer.ids(t)} for t in TEXTS]
        golden["tokenizers"].append({**spec, "words": words, "vocab_size": tokenizer.vocab_size, "cases": cases})
    # ensure_ascii: the file holds lone surrogates (as \ud800 escapes), which UTF-8 cannot
    OUT.write_text(json.dumps(golden, ensure_ascii=True, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
