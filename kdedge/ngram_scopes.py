"""The named scopes of `--ngram-scopes`: rule 5 of the n-gram tokenizer (kdedge_runtime.ngram), as data. The config
checks names against it and the n-gram student's rules take the scopes from it; it imports nothing of kdedge."""

_CLAUSE_ENDS = [".", ",", ";", ":", "!", "?"]
# The words after a cue, up to the clause's end, become features of their own ("not_good"), so that an average of
# embeddings can tell praise from praise denied.
SCOPES = {
    # negation marking to the next punctuation (Das and Chen 2001; Pang et al. 2002), at most 4 words; the cues are
    # the common English negators (Councill et al. 2010's lexicon, in part). The split rule reads "n't" as "n", "'",
    # "t": the cue is "t".
    "negation": {"cues": ["not", "no", "never", "t", "nothing", "nobody", "none", "neither", "nor", "nowhere",
                          "cannot", "without", "hardly", "barely", "scarcely", "lacks", "lacking"],
                 "ends": [*_CLAUSE_ENDS, "but"], "words": 4, "prefix": "not_"},
    # the clause after a contrast: in "a fine cast , but the script is a mess" the second clause carries the review
    "contrast": {"cues": ["but", "however", "nevertheless", "nonetheless"], "ends": [".", ";", "!", "?"],
                 "words": 8, "prefix": "but_"},
}
