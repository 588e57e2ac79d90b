// kdedge-runtime-core: what the Node and browser runtimes share (manifest checks, tokenization, the classifier).
export { BUNDLE_FORMAT, BundleError, MANIFEST_FIELDS, firstLine, isObject, parseManifest, vocabularySize } from "./manifest.js";
export { BundleTokenizer, truncateLongestFirst } from "./tokenizer.js";
export { Classifier } from "./classifier.js";
export { CPU_DISABLED_OPTIMIZERS, sessionOptionsFor } from "./session.js";
export { NgramRulesError, NgramTokenizer, checkNgramRules, fnv1a32, wordsOf } from "./ngram.js";
