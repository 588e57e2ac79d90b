"""Rule-based augmentation (Tang et al. 2019, "Distilling Task-Specific Knowledge from BERT into Simple Neural
Networks", section 3.3): for each word, with p_mask it becomes the mask token; otherwise with p_pos it becomes
a random word of the same part of speech (from the training data); then, with p_ng, only a random n-gram
(n in 1..5) of the example is kept. N variants per example; each variant of a pair rewrites one of its
sentences, the two in turn.

Part-of-speech tags come from spaCy when a model is installed. Without one, a heuristic tagger stands in:
closed-class word lists (determiners, pronouns, prepositions, conjunctions, auxiliaries, particles) and suffix
rules for the open classes (-ly adverbs, -ing/-ed verbs, adjective suffixes, nouns otherwise). It is coarse,
but it keeps swaps within function words or within a content class, which is what the rule is for.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np

from kdedge.augment.words import is_word, one_side_variants, split_words
from kdedge.errors import KdedgeError

_CLOSED = {
    "DET": "a an the this that these those some any each every no another either neither all both".split(),
    "PRON": ("i you he she it we they me him her us them my your his its our their mine yours ours theirs myself "
             "yourself himself herself itself ourselves themselves who whom whose which what").split(),
    "ADP": ("of in on at by for with about against between into through during before after above below to from up "
            "down over under again than like as without within along across behind beyond upon").split(),
    "CCONJ": "and but or nor yet so".split(),
    "SCONJ": "if because although though while whereas unless since until whether".split(),
    "AUX": ("is are was were be been being am have has had having do does did will would shall should can could may "
            "might must 's 're 've 'd 'll").split(),
    "PART": "not n't never to 's".split(),
}
_CLOSED_TAG = {w: tag for tag, words in _CLOSED.items() for w in words}
_ADJ_SUFFIXES = ("ous", "ful", "ive", "able", "ible", "al", "ic", "less", "est", "ish", "y")


def heuristic_tag(word: str) -> str:
    w = word.lower()
    if not is_word(w):
        return "PUNCT"
    if w in _CLOSED_TAG:
        return _CLOSED_TAG[w]
    if w.replace(".", "").replace(",", "").isdigit():
        return "NUM"
    if w.endswith("ly"):
        return "ADV"
    if w.endswith(("ing", "ed")):
        return "VERB"
    if w.endswith(_ADJ_SUFFIXES) and len(w) > 4:
        return "ADJ"
    return "NOUN"


class HeuristicTagger:
    name = "heuristic (closed-class lists + suffix rules; no spaCy model installed)"

    def tag(self, sentences: list[list[str]]) -> list[list[str]]:
        return [[heuristic_tag(w) for w in words] for words in sentences]


class SpacyTagger:
    def __init__(self, model: str):
        import spacy
        from spacy.tokens import Doc

        self.nlp = spacy.load(model, disable=["parser", "ner", "lemmatizer"])
        self.doc = Doc
        meta = self.nlp.meta  # the package name and version, also when the model was loaded from a folder
        self.name = f"spaCy {meta.get('lang', '')}_{meta.get('name', model)} {meta.get('version', '')}".strip()

    def tag(self, sentences: list[list[str]]) -> list[list[str]]:
        docs = (self.doc(self.nlp.vocab, words=words or [""]) for words in sentences)
        return [[t.pos_ for t in doc][: len(words)] for doc, words in zip(self.nlp.pipe(docs), sentences)]


def make_tagger(name: str):
    """auto: the first spaCy English model installed, else the heuristic tagger; a spaCy model's package name or
    folder; or none (the heuristic tagger)."""
    if name in ("none", "heuristic"):
        return HeuristicTagger()
    candidates = ["en_core_web_md", "en_core_web_sm", "en_core_web_lg"] if name == "auto" else [name]
    for model in candidates:
        try:
            return SpacyTagger(model)
        except (ImportError, OSError):
            continue
    if name != "auto":
        raise KdedgeError(f"--tagger {name}: spaCy or that model is not installed (pip install spacy and the model, "
                          "pass the model's folder, or use --tagger auto)")
    return HeuristicTagger()


class RuleAugmentation:
    name = "rules"

    def __init__(self, cfg, train_texts: list[str]):
        for flag in ("p_mask", "p_pos", "p_ng"):
            if not 0.0 <= getattr(cfg, flag) <= 1.0:
                raise KdedgeError(f"--{flag.replace('_', '-')} must be in [0, 1]")
        self.p_mask, self.p_pos, self.p_ng, self.n = cfg.p_mask, cfg.p_pos, cfg.p_ng, cfg.variants
        self.mask = cfg.mask_token
        self.tagger = make_tagger(cfg.tagger)
        # The swap vocabulary: every training word under each tag it was seen with (sorted: seeded runs repeat).
        sentences = [split_words(t) for t in train_texts]
        by_tag: dict[str, set[str]] = defaultdict(set)
        for words, tags in zip(sentences, self.tagger.tag(sentences)):
            for w, t in zip(words, tags):
                if is_word(w):
                    by_tag[t].add(w)
        self.by_tag = {t: sorted(ws) for t, ws in by_tag.items()}

    def describe(self) -> dict:
        return {"variants": self.n, "p_mask": self.p_mask, "p_pos": self.p_pos, "p_ng": self.p_ng,
                "mask_token": self.mask, "pos_tagger": self.tagger.name,
                "swap_vocabulary": {t: len(ws) for t, ws in sorted(self.by_tag.items())}}

    def _vary(self, words: list[str], tags: list[str], rng: np.random.Generator) -> list[str]:
        out = []
        for w, t in zip(words, tags):
            roll = rng.random()
            if not is_word(w):
                out.append(w)
            elif roll < self.p_mask:
                out.append(self.mask)
            elif roll < self.p_mask + self.p_pos and self.by_tag.get(t):
                options = self.by_tag[t]
                out.append(options[rng.integers(len(options))])
            else:
                out.append(w)
        if out and rng.random() < self.p_ng:
            n = int(rng.integers(1, 6))
            start = int(rng.integers(0, max(1, len(out) - n + 1)))
            out = out[start:start + n]
        return out

    def variants(self, chunk, rng: np.random.Generator):
        """(index of the original, text, pair) for N variants of each example (a pair's: one side at a time)."""
        sides = [[split_words(t) for t in texts] for texts in (chunk.text, chunk.text_pair) if texts is not None]
        tags = [self.tagger.tag(side) for side in sides]
        yield from one_side_variants(sides[0], sides[1] if len(sides) > 1 else None, self.n,
                                     lambda side, i, words: self._vary(words, tags[side][i], rng))
