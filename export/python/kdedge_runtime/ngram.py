"""The n-gram student's tokenizer: text -> ids by the rules in a bundle's manifest (`tokenizer.ngram`).

fastText's features, computed outside the ONNX graph: the ids of known words, plus hashed word n-grams (and
optionally character n-grams) in a fixed number of buckets. The rules, version 1 (export/schema/README.md says the
same; export/core/src/ngram.js implements them for Node and the browser, and export/schema/ngram-golden.json holds
both to the same ids):

1. The text is made well formed (each lone surrogate becomes U+FFFD), then normalised: Unicode NFKC, then lowercased
   (the Unicode default case mapping: Python's str.lower, JavaScript's toLowerCase).
2. Split: a word is a maximal run of letters, marks and digits (general categories L*, M*, N*); each punctuation or
   symbol character (P*, S*) is a word on its own; every other character (separators Z*, controls C*) separates
   words. Only the first `max_length` words are kept.
3. Ids: 0 is padding; word i of the vocabulary file (0-based) is 1 + i, and a word not in it has no word id. A hashed
   feature with string s is 1 + V + fnv1a32(utf8(s)) mod buckets, V the vocabulary's size. fnv1a32 is 32-bit
   FNV-1a (offset basis 2166136261, prime 16777619) over the UTF-8 bytes: fixed and the same in every process and
   language (never Python's salted hash()).
4. Order: the word ids, in text order; then for n = 2 .. word_ngrams the word n-grams, s = the n words joined by one
   space, in text order; then for each word in text order and each n in char_ngrams as listed, the character n-grams
   of "<" + word + ">" (code points), by start position, leaving out the whole "<word>" itself; then, for each scope
   in `scopes` as listed (an optional rule; absent or [] adds nothing), its scope features in text order (rule 5).
5. Scopes (negation marking, Das and Chen 2001; Pang et al. 2002): each scope is {"cues", "ends", "words", "prefix"}.
   Its words are read in text order: a cue opens the scope for the next `words` words (again from the start if it is
   open), an end closes it, and any other word read while it is open is a hashed feature s = prefix + word, and uses
   up one of the scope's words. Cues and ends are words by rules 1 and 2 (lowercase, one word each). So "not very
   good ." with the scope {"cues": ["not"], "ends": ["."], "words": 4, "prefix": "not_"} adds "not_very" and
   "not_good": a bag of n-grams then tells "good" from "good" said under a negation.

The model averages the embeddings of the ids (the mask marks them), so the order matters only to the golden file.

ASCII text, an app's usual call, takes a compiled path where the install built it (`_ngramc.c`, an optional C
extension): in Python the ids of one sentence cost about as much as the model's run. Other text, or an install
without a C compiler, takes the Python rules below; tests/test_ngram.py holds the two to the same ids.
"""

from __future__ import annotations

import json
import re
import unicodedata
from pathlib import Path

import numpy as np

try:
    from kdedge_runtime._ngramc import AsciiIds
except ImportError:  # installed without a C compiler: the Python rules alone
    AsciiIds = None

# The rules this runtime implements, by field: what each must be. A bundle with another value, or with a field not
# listed here (a rule this runtime would ignore, and so compute other ids), is refused.
NORMALIZATIONS = ("nfkc-lowercase",)
SPLITS = ("unicode-words",)
HASHES = ("fnv1a-32",)
MAX_WORD_NGRAMS = 5
MAX_CHAR_NGRAM = 16
MAX_BUCKETS = 2**31 - 1
# every field is required but "scopes" (rule 5), which older bundles do not have: absent is the same as []
RULE_FIELDS = ("normalization", "split", "hash", "word_ngrams", "char_ngrams", "buckets", "scopes")
SCOPE_FIELDS = ("cues", "ends", "words", "prefix")
MAX_SCOPES = 8
MAX_SCOPE_WORDS = 64
PAD_ID = 0

_FNV_OFFSET, _FNV_PRIME = 0x811C9DC5, 0x01000193
# ASCII text after normalisation: the split rule's classes spelled out (letters and digits; the P* and S* characters).
_ASCII_WORDS = re.compile(r"[a-z0-9]+|[!-/:-@\[-`{-~]")


_HASH_CACHE = 1 << 18  # n-gram ids kept per tokenizer: at most 262,144 strings (tens of MB at the worst)


class NgramRulesError(ValueError):
    """The manifest's n-gram rules are not ones this runtime implements."""


def _is_int(v) -> bool:
    return (isinstance(v, int) and not isinstance(v, bool)) or (isinstance(v, float) and v.is_integer())


def _shown(value) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)[:60]


def check_rules(rules, where: str) -> dict:
    """`rules` (the manifest's tokenizer.ngram) checked: one NgramRulesError line naming the first wrong field.
    export/core/src/ngram.js checks the same in the same order with the same words."""
    field = "tokenizer.ngram"
    _only_known(rules, RULE_FIELDS, f"{where}: field '{field}", "rule")
    for name, known in (("normalization", NORMALIZATIONS), ("split", SPLITS), ("hash", HASHES)):
        if name not in rules:
            raise NgramRulesError(f"{where}: field '{field}.{name}' is missing")
        if rules[name] not in known:
            raise NgramRulesError(f"{where}: field '{field}.{name}' must be {' or '.join(map(_shown, known))}, not "
                                  f"{_shown(rules[name])}")
    for name, high in (("word_ngrams", MAX_WORD_NGRAMS), ("buckets", MAX_BUCKETS)):
        if name not in rules:
            raise NgramRulesError(f"{where}: field '{field}.{name}' is missing")
        if not (_is_int(rules[name]) and 1 <= rules[name] <= high):
            raise NgramRulesError(f"{where}: field '{field}.{name}' must be an integer from 1 to {high}, not "
                                  f"{_shown(rules[name])}")
    if "char_ngrams" not in rules:
        raise NgramRulesError(f"{where}: field '{field}.char_ngrams' is missing")
    chars = rules["char_ngrams"]
    if not (isinstance(chars, list) and all(_is_int(n) and 1 <= n <= MAX_CHAR_NGRAM for n in chars)
            and len(set(chars)) == len(chars)):
        raise NgramRulesError(f"{where}: field '{field}.char_ngrams' must be a list of distinct integers from 1 to "
                              f"{MAX_CHAR_NGRAM}, not {_shown(chars)}")
    checked = {**rules, "word_ngrams": int(rules["word_ngrams"]), "buckets": int(rules["buckets"]),
               "char_ngrams": [int(n) for n in chars]}
    if "scopes" in rules:
        checked["scopes"] = _check_scopes(rules["scopes"], f"{where}: field '{field}.scopes")
    return checked


def _only_known(value, fields: tuple[str, ...], at: str, kind: str) -> None:
    """`value` must be an object of `fields` alone; `at` names it, up to its closing quote."""
    if not isinstance(value, dict):
        raise NgramRulesError(f"{at}' must be an object, not {_shown(value)}")
    unknown = [k for k in value if k not in fields]
    if unknown:
        raise NgramRulesError(f"{at}' has {kind} {_shown(unknown[0])}, which this runtime does not implement (it "
                              f"knows {', '.join(fields)})")


def _is_word_list(value) -> bool:
    """A list of distinct strings, each one word by rules 1 and 2 (so that a word of the text can equal it)."""
    return (isinstance(value, list) and all(isinstance(w, str) and words_of(w) == [w] for w in value)
            and len(set(value)) == len(value))


def _check_scopes(scopes, at: str) -> list[dict]:
    """Rule 5's scopes checked; `at` is "<where>: field '<field>.scopes" (the closing quote comes after the index)."""
    if not (isinstance(scopes, list) and len(scopes) <= MAX_SCOPES):
        raise NgramRulesError(f"{at}' must be a list of at most {MAX_SCOPES} scopes, not {_shown(scopes)}")
    checked = []
    for i, scope in enumerate(scopes):
        here = f"{at}[{i}]"
        _only_known(scope, SCOPE_FIELDS, here, "field")
        missing = [k for k in SCOPE_FIELDS if k not in scope]
        if missing:
            raise NgramRulesError(f"{here}.{missing[0]}' is missing")
        for name in ("cues", "ends"):
            if not _is_word_list(scope[name]) or (name == "cues" and not scope[name]):
                raise NgramRulesError(f"{here}.{name}' must be a list of distinct words, each one lowercase word by "
                                      f"the split rule{'' if name == 'ends' else ' (at least one)'}, not "
                                      f"{_shown(scope[name])}")
        both = [cue for cue in scope["cues"] if cue in scope["ends"]]
        if both:
            raise NgramRulesError(f"{here}' has {_shown(both[0])} both as a cue and as an end")
        if not (_is_int(scope["words"]) and 1 <= scope["words"] <= MAX_SCOPE_WORDS):
            raise NgramRulesError(f"{here}.words' must be an integer from 1 to {MAX_SCOPE_WORDS}, not "
                                  f"{_shown(scope['words'])}")
        prefix = scope["prefix"]
        if not (isinstance(prefix, str) and prefix and well_formed(prefix) == prefix):
            raise NgramRulesError(f"{here}.prefix' must be a non-empty string with no lone surrogate, not "
                                  f"{_shown(prefix)}")
        if any(prefix == other["prefix"] for other in checked):
            raise NgramRulesError(f"{here}.prefix' {_shown(prefix)} is another scope's prefix too")
        checked.append({**scope, "words": int(scope["words"])})
    return checked


def check_tokenizer(tokenizer: dict, where: str) -> None:
    """A manifest's tokenizer block with n-gram rules: the rules, and the fields the rules fix (ids are the text's
    own, padded with 0; a pair's texts are read one at a time)."""
    check_rules(tokenizer["ngram"], where)
    if tokenizer["add_special_tokens"] is not False:
        raise NgramRulesError(f"{where}: field 'tokenizer.add_special_tokens' must be false for n-gram rules")
    if tokenizer["pair_encoding"] == "joint":
        raise NgramRulesError(f"{where}: field 'tokenizer.pair_encoding' must be null or \"separate\" for n-gram "
                              "rules, not \"joint\"")
    if tokenizer["pad_token_id"] != PAD_ID:
        raise NgramRulesError(f"{where}: field 'tokenizer.pad_token_id' must be {PAD_ID} for n-gram rules, not "
                              f"{_shown(tokenizer['pad_token_id'])}")


def fnv1a32(text: str) -> int:
    """32-bit FNV-1a of the UTF-8 bytes of `text`."""
    h = _FNV_OFFSET
    for byte in text.encode("utf-8"):
        h = ((h ^ byte) * _FNV_PRIME) & 0xFFFFFFFF
    return h


def well_formed(text: str) -> str:
    """`text` with each lone surrogate replaced by U+FFFD (what JavaScript's TextEncoder does)."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")


def normalize(text: str) -> str:
    if text.isascii():  # NFKC leaves ASCII as it is
        return text.lower()
    return unicodedata.normalize("NFKC", well_formed(text)).lower()


def _kind(char: str) -> str:
    category = unicodedata.category(char)[0]
    return "w" if category in "LMN" else "p" if category in "PS" else " "


def split_words(text: str) -> list[str]:
    """Rule 2 on normalised text."""
    if text.isascii():
        return _ASCII_WORDS.findall(text)
    words, start = [], None
    for i, char in enumerate(text):
        kind = _kind(char)
        if kind != "w" and start is not None:
            words.append(text[start:i])
            start = None
        if kind == "w" and start is None:
            start = i
        elif kind == "p":
            words.append(char)
    if start is not None:
        words.append(text[start:])
    return words


def words_of(text: str, max_words: int | None = None) -> list[str]:
    """Rules 1 and 2: the text's words, at most `max_words` of them."""
    words = split_words(normalize(text))
    return words if max_words is None or len(words) <= max_words else words[:max_words]


def char_ngrams(word: str, sizes: list[int]) -> list[str]:
    marked = f"<{word}>"
    return [marked[i:i + n] for n in sizes for i in range(len(marked) - n + 1) if n != len(marked)]


def scope_features(words: list[str], scope: dict) -> list[str]:
    """Rule 5 for one scope: prefix + each word read while a cue's scope is open, in text order. Its cues and ends may
    be lists or, faster, sets."""
    cues, ends, prefix, width = scope["cues"], scope["ends"], scope["prefix"], scope["words"]
    features, left = [], 0
    for word in words:
        if word in cues:
            left = width
        elif word in ends:
            left = 0
        elif left:
            features.append(prefix + word)
            left -= 1
    return features


class NgramTokenizer:
    """Texts -> ids by a bundle's (or a student's) n-gram rules and word list."""

    def __init__(self, words: list[str], rules: dict, max_words: int | None = None):
        self.words = list(words)
        self.rules = rules
        self.max_words = max_words
        self.word_ids = {w: PAD_ID + 1 + i for i, w in enumerate(self.words)}
        self.bucket_offset = PAD_ID + 1 + len(self.words)
        # feature (a string, or a word n-gram's tuple of words) -> id: the same n-grams come back call after call
        self._hashed: dict[str | tuple[str, ...], int] = {}
        # rule 5's scopes with their cues and ends as sets, made once: other text reads them word by word
        self._scopes = [{**c, "cues": frozenset(c["cues"]), "ends": frozenset(c["ends"])}
                        for c in rules.get("scopes", ())]
        # the compiled ASCII path for these words and rules, where the install has it
        self._ascii = None if AsciiIds is None else AsciiIds(
            self.words, self.bucket_offset, rules["buckets"], rules["word_ngrams"], tuple(rules["char_ngrams"]),
            tuple((tuple(c["cues"]), tuple(c["ends"]), c["words"], c["prefix"]) for c in rules.get("scopes", ())))

    @property
    def vocab_size(self) -> int:
        """Every id this tokenizer can emit is below this."""
        return self.bucket_offset + self.rules["buckets"]

    def hashed(self, feature: str) -> int:
        found = self._hashed.get(feature)
        if found is None:
            found = self.bucket_offset + fnv1a32(feature) % self.rules["buckets"]
            if len(self._hashed) < _HASH_CACHE:
                self._hashed[feature] = found
        return found

    def ids(self, text: str) -> list[int]:
        """Rules 1 to 4."""
        if self._ascii is not None and text.isascii():
            return memoryview(self._ascii.ids(text, self.max_words)).cast("q").tolist()
        return self._python_ids(text)

    @property
    def ascii_ids(self):
        """The compiled path itself, `ids(text, max_words)` of one ASCII text as native int64 bytes, or None without
        the extension: for callers that check the text themselves and count every Python call."""
        return None if self._ascii is None else self._ascii.ids

    def packed(self, text: str) -> bytes | None:
        """The ids of one ASCII text as native int64 bytes from the compiled path (what the compiled model reads),
        or None where that path does not apply (other text, no extension)."""
        return self._ascii.ids(text, self.max_words) if self._ascii is not None and text.isascii() else None

    def row(self, text: str) -> np.ndarray:
        """The ids of one text as a batch of one (int64, shape 1 x n): a model's feed without a list between."""
        if self._ascii is not None and text.isascii():
            return np.frombuffer(self._ascii.ids(text, self.max_words), dtype=np.int64)[None]
        return np.array(self._python_ids(text), dtype=np.int64).reshape(1, -1)

    def _python_ids(self, text: str) -> list[int]:
        words = words_of(text, self.max_words)
        cached = self._hashed.get
        ids = [i for i in map(self.word_ids.get, words) if i]  # ids are positive: a missing word is None
        for n in range(2, self.rules["word_ngrams"] + 1):
            grams = zip(words, words[1:]) if n == 2 else zip(*(words[k:] for k in range(n)))
            # a word n-gram is cached under its tuple of words (no joining on a hit); `or` hashes on a miss only
            ids += [cached(g) or self._hashed_words(g) for g in grams]
        if self.rules["char_ngrams"]:
            ids += [cached(g) or self.hashed(g) for w in words for g in char_ngrams(w, self.rules["char_ngrams"])]
        for scope in self._scopes:
            ids += [cached(g) or self.hashed(g) for g in scope_features(words, scope)]
        return ids

    def _hashed_words(self, words: tuple[str, ...]) -> int:
        found = self.hashed(" ".join(words))
        if len(self._hashed) < _HASH_CACHE:
            self._hashed[words] = found
        return found

    # --- what kdedge_runtime.Classifier asks of a tokenizer (the tokenizers library's names)
    def encode(self, text: str, add_special_tokens: bool = False) -> Encoding:
        return Encoding(self.ids(text))

    def encode_batch(self, texts, add_special_tokens: bool = False) -> list[Encoding]:
        return [Encoding(self.ids(t)) for t in texts]

    def get_vocab_size(self, with_added_tokens: bool = True) -> int:
        return self.vocab_size

    def no_padding(self) -> None:
        """The runtime pads per batch; there is nothing to turn off."""

    def enable_truncation(self, max_length: int, **_) -> None:
        self.max_words = max_length


class Encoding:
    __slots__ = ("attention_mask", "ids", "type_ids")

    def __init__(self, ids: list[int]):
        self.ids, self.attention_mask, self.type_ids = ids, [1] * len(ids), [0] * len(ids)


def read_vocabulary(path: Path) -> list[str]:
    """The word list of an n-gram vocabulary file ({"words": [...]}: distinct, non-empty strings)."""
    try:
        spec = json.loads(Path(path).read_text(encoding="utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        raise NgramRulesError(f"not valid JSON ({e})") from None
    words = spec.get("words") if isinstance(spec, dict) else None
    if not (isinstance(words, list) and all(isinstance(w, str) and w for w in words) and len(set(words)) == len(words)):
        raise NgramRulesError('"words" must be a list of distinct, non-empty strings')
    return words


def load(path: Path, rules: dict, max_words: int | None = None) -> NgramTokenizer:
    """A bundle's n-gram tokenizer: its vocabulary file and the manifest's rules (integers written 3.0 made ints)."""
    return NgramTokenizer(read_vocabulary(path), check_rules(rules, str(path)), max_words)
