/* The n-gram tokenizer's rules (kdedge_runtime/ngram.py) for ASCII text, compiled: an app's one-text call spends
 * more time on the ids than on the model's run when they are computed in Python. ASCII only: NFKC leaves ASCII as it
 * is, and ASCII's Unicode categories are fixed, so rules 1 and 2 reduce to lowercasing and a byte classification.
 * Other text stays with the Python implementation. tests/test_ngram.py holds the two to the same ids.
 *
 * AsciiIds(words, bucket_offset, buckets, word_ngrams, char_ngrams, scopes=()).ids(text, max_words) -> bytes: the ids
 * as native int64, for numpy.frombuffer; max_words None keeps every word. scopes: rule 5's scopes as tuples
 * (cues, ends, words, prefix), cues and ends tuples of str. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#define FNV_OFFSET 0x811C9DC5u
#define FNV_PRIME 0x01000193u

static inline uint32_t fnv_bytes(uint32_t h, const char *s, Py_ssize_t n) {
    for (Py_ssize_t i = 0; i < n; i++) h = (h ^ (uint8_t)s[i]) * FNV_PRIME;
    return h;
}

/* rule 2 for ASCII after lowercasing: 'w' letters and digits, 'p' punctuation and symbols, 0 separators (spaces,
 * controls, DEL) */
static char byte_kind[128];

static void init_byte_kind(void) {
    for (int c = 0; c < 128; c++) {
        byte_kind[c] = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ? 'w'
                       : (c >= '!' && c <= '~') ? 'p' : 0;
    }
}

/* a short list of words (a scope's cues or ends), ASCII ones only: no other can equal a word of ASCII text */
typedef struct {
    char *text;
    Py_ssize_t *start; /* word i is text[start[i] : start[i + 1]] */
    Py_ssize_t n;
    uint64_t seen[128]; /* bit min(length, 63) of seen[first byte]: set for each word; most words of a text miss it */
} WordList;

typedef struct {
    WordList cues, ends;
    long width;         /* words a cue's scope reads */
    uint32_t prefix;    /* FNV-1a state after the prefix's UTF-8 bytes: a feature's hash goes on with the word */
} Scope;

typedef struct {
    PyObject_HEAD
    /* the word list as an open-addressing table: slot -> word index + 1 (0 empty), keyed by FNV-1a of the bytes */
    uint32_t *slots;
    size_t mask;
    char *text;          /* every word's UTF-8 bytes, back to back */
    Py_ssize_t *start;   /* word i is text[start[i] : start[i + 1]] */
    int64_t bucket_offset;
    uint32_t buckets;
    int word_ngrams;
    int *char_ngrams;
    Py_ssize_t n_char_ngrams;
    Scope *scopes;
    Py_ssize_t n_scopes;
} AsciiIds;

static void free_scopes(AsciiIds *self) {
    for (Py_ssize_t i = 0; i < self->n_scopes; i++) {
        PyMem_Free(self->scopes[i].cues.text);
        PyMem_Free(self->scopes[i].cues.start);
        PyMem_Free(self->scopes[i].ends.text);
        PyMem_Free(self->scopes[i].ends.start);
    }
    PyMem_Free(self->scopes);
    self->scopes = NULL, self->n_scopes = 0;
}

/* `list` (a tuple of str) as a WordList of its ASCII words; -1 with an exception set on a wrong type or no memory */
static int read_word_list(PyObject *list, WordList *out) {
    if (!PyTuple_Check(list)) {
        PyErr_SetString(PyExc_TypeError, "a scope's cues and ends must be tuples of str");
        return -1;
    }
    Py_ssize_t n = PyTuple_GET_SIZE(list), total = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *word = PyTuple_GET_ITEM(list, i);
        if (!PyUnicode_Check(word)) {
            PyErr_SetString(PyExc_TypeError, "a scope's cues and ends must be tuples of str");
            return -1;
        }
        if (PyUnicode_IS_ASCII(word)) total += PyUnicode_GET_LENGTH(word);
    }
    out->text = PyMem_Malloc(total + 1);
    out->start = PyMem_Malloc((n + 1) * sizeof(Py_ssize_t));
    if (!out->text || !out->start) {
        PyErr_NoMemory();
        return -1;
    }
    out->n = 0;
    memset(out->seen, 0, sizeof out->seen);
    Py_ssize_t at = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *word = PyTuple_GET_ITEM(list, i);
        if (!PyUnicode_IS_ASCII(word)) continue;
        Py_ssize_t len = PyUnicode_GET_LENGTH(word);
        memcpy(out->text + at, PyUnicode_1BYTE_DATA(word), len);
        if (len) out->seen[(uint8_t)out->text[at]] |= 1ull << (len < 63 ? len : 63);
        out->start[out->n++] = at;
        at += len;
    }
    out->start[out->n] = at;
    return 0;
}

static int in_word_list(const WordList *list, const char *s, Py_ssize_t n) {
    if (!(list->seen[(uint8_t)s[0] & 127] >> (n < 63 ? n : 63) & 1)) return 0;
    for (Py_ssize_t i = 0; i < list->n; i++) {
        if (list->start[i + 1] - list->start[i] == n && memcmp(list->text + list->start[i], s, n) == 0) return 1;
    }
    return 0;
}

/* rule 5's scopes from a tuple of (cues, ends, words, prefix) */
static int read_scopes(AsciiIds *self, PyObject *scopes) {
    if (!PyTuple_Check(scopes)) {
        PyErr_SetString(PyExc_TypeError, "scopes must be a tuple of (cues, ends, words, prefix)");
        return -1;
    }
    Py_ssize_t n = PyTuple_GET_SIZE(scopes);
    self->scopes = PyMem_Calloc(n + 1, sizeof(Scope));
    if (!self->scopes) {
        PyErr_NoMemory();
        return -1;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *cues, *ends, *prefix;
        long width;
        Scope *scope = &self->scopes[i];
        self->n_scopes = i + 1; /* freed with the rest, even if half read */
        if (!PyArg_ParseTuple(PyTuple_GET_ITEM(scopes, i), "OOlU", &cues, &ends, &width, &prefix)) return -1;
        if (width < 1) {
            PyErr_SetString(PyExc_ValueError, "a scope's words must be positive");
            return -1;
        }
        if (read_word_list(cues, &scope->cues) || read_word_list(ends, &scope->ends)) return -1;
        Py_ssize_t size;
        const char *bytes = PyUnicode_AsUTF8AndSize(prefix, &size);
        if (!bytes) return -1;
        scope->prefix = fnv_bytes(FNV_OFFSET, bytes, size);
        scope->width = width;
    }
    return 0;
}

static void AsciiIds_dealloc(AsciiIds *self) {
    PyMem_Free(self->slots);
    PyMem_Free(self->text);
    PyMem_Free(self->start);
    PyMem_Free(self->char_ngrams);
    free_scopes(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* the word id (1 + index) of s[0:n], whose FNV-1a hash is h, or 0 */
static int64_t word_id(const AsciiIds *self, const char *s, Py_ssize_t n, uint32_t h) {
    size_t slot = h & self->mask;
    for (;;) {
        uint32_t entry = self->slots[slot];
        if (entry == 0) return 0;
        Py_ssize_t i = entry - 1, len = self->start[i + 1] - self->start[i];
        if (len == n && memcmp(self->text + self->start[i], s, n) == 0) return (int64_t)entry;
        slot = (slot + 1) & self->mask;
    }
}

static int AsciiIds_init(AsciiIds *self, PyObject *args, PyObject *kwargs) {
    static char *names[] = {"words", "bucket_offset", "buckets", "word_ngrams", "char_ngrams", "scopes", NULL};
    PyObject *words, *chars, *scopes = NULL;
    long long offset;
    unsigned long buckets;
    int word_ngrams;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O!LkiO!|O", names, &PyList_Type, &words, &offset,
                                     &buckets, &word_ngrams, &PyTuple_Type, &chars, &scopes))
        return -1;
    PyMem_Free(self->slots);  /* __init__ called again: start over */
    PyMem_Free(self->text);
    PyMem_Free(self->start);
    PyMem_Free(self->char_ngrams);
    free_scopes(self);
    self->slots = NULL, self->text = NULL, self->start = NULL, self->char_ngrams = NULL;
    if (buckets < 1 || buckets > 0x7FFFFFFFul || word_ngrams < 1) {
        PyErr_SetString(PyExc_ValueError, "buckets and word_ngrams must be positive");
        return -1;
    }
    Py_ssize_t n = PyList_GET_SIZE(words), total = 0;
    if (n >= 0x7FFFFFFF) {
        PyErr_SetString(PyExc_ValueError, "too many words");
        return -1;
    }
    /* only ASCII words can match ASCII text: the others are left out of the table (their ids are kept) */
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *word = PyList_GET_ITEM(words, i);
        if (!PyUnicode_Check(word)) {
            PyErr_SetString(PyExc_TypeError, "words must be strings");
            return -1;
        }
#if PY_VERSION_HEX < 0x030C0000
        if (PyUnicode_READY(word) < 0) return -1;
#endif
        if (PyUnicode_IS_ASCII(word)) total += PyUnicode_GET_LENGTH(word);
    }
    size_t size = 8;
    while (size < (size_t)n * 2) size <<= 1;  /* at most half full */
    self->slots = PyMem_Calloc(size, sizeof(uint32_t));
    self->text = PyMem_Malloc(total + 1);
    self->start = PyMem_Malloc((n + 1) * sizeof(Py_ssize_t));
    self->n_char_ngrams = PyTuple_GET_SIZE(chars);
    self->char_ngrams = PyMem_Malloc((self->n_char_ngrams + 1) * sizeof(int));
    if (!self->slots || !self->text || !self->start || !self->char_ngrams) {
        PyErr_NoMemory();
        return -1;
    }
    self->mask = size - 1;
    Py_ssize_t at = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *word = PyList_GET_ITEM(words, i);
        self->start[i] = self->start[i + 1] = at;
        if (!PyUnicode_IS_ASCII(word)) continue;
        Py_ssize_t len = PyUnicode_GET_LENGTH(word);
        const char *s = (const char *)PyUnicode_1BYTE_DATA(word);
        memcpy(self->text + at, s, len);
        self->start[i + 1] = at + len;
        /* an empty slot, or the one of an equal word: the last of equal words keeps its id, as in a dict built in
         * order (a bundle's word list is distinct) */
        size_t slot = fnv_bytes(FNV_OFFSET, s, len) & self->mask;
        for (uint32_t entry; (entry = self->slots[slot]) != 0; slot = (slot + 1) & self->mask) {
            Py_ssize_t j = entry - 1;
            if (self->start[j + 1] - self->start[j] == len && memcmp(self->text + self->start[j], s, len) == 0) break;
        }
        self->slots[slot] = (uint32_t)(i + 1);
        at += len;
    }
    self->start[n] = at;
    for (Py_ssize_t i = 0; i < self->n_char_ngrams; i++) {
        long value = PyLong_AsLong(PyTuple_GET_ITEM(chars, i));
        if (value == -1 && PyErr_Occurred()) return -1;
        if (value < 1 || value > 64) {
            PyErr_SetString(PyExc_ValueError, "char_ngrams must be from 1 to 64");
            return -1;
        }
        self->char_ngrams[i] = (int)value;
    }
    if (scopes && read_scopes(self, scopes)) return -1;
    self->bucket_offset = offset;
    self->buckets = (uint32_t)buckets;
    self->word_ngrams = word_ngrams;
    return 0;
}

/* the ids so far: first in `small` (a sentence's fit), on the heap past it */
typedef struct {
    int64_t *ids;
    Py_ssize_t n, cap;
    int64_t *small;
} IdList;

static int push(IdList *list, int64_t id) {
    if (list->n == list->cap) {
        Py_ssize_t cap = list->cap * 2;
        int64_t *grown = list->ids == list->small ? PyMem_Malloc(cap * sizeof(int64_t))
                                                  : PyMem_Realloc(list->ids, cap * sizeof(int64_t));
        if (!grown) return -1;
        if (list->ids == list->small) memcpy(grown, list->small, list->n * sizeof(int64_t));
        list->ids = grown;
        list->cap = cap;
    }
    list->ids[list->n++] = id;
    return 0;
}

static PyObject *AsciiIds_ids(AsciiIds *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "ids(text, max_words) takes two arguments");
        return NULL;
    }
    PyObject *arg = args[0];
    Py_ssize_t max_words = -1;
    if (args[1] != Py_None && (max_words = PyLong_AsSsize_t(args[1])) < 0) {
        if (!PyErr_Occurred()) PyErr_SetString(PyExc_ValueError, "max_words must be None or at least 0");
        return NULL;
    }
#if PY_VERSION_HEX < 0x030C0000
    if (PyUnicode_Check(arg) && PyUnicode_READY(arg) < 0) return NULL;
#endif
    if (!PyUnicode_Check(arg) || !PyUnicode_IS_ASCII(arg)) {
        PyErr_SetString(PyExc_ValueError, "AsciiIds reads ASCII text only");
        return NULL;
    }
    Py_ssize_t len = PyUnicode_GET_LENGTH(arg);
    const char *raw = (const char *)PyUnicode_1BYTE_DATA(arg);
    /* the text lowercased (rule 1) and each word's span in it (rule 2) */
    char small[512];
    Py_ssize_t small_spans[2 * 128];
    uint32_t small_hashes[128];
    int64_t small_ids[256];
    char *text = len <= (Py_ssize_t)sizeof small ? small : PyMem_Malloc(len);
    Py_ssize_t span_cap = len + 1, *spans = span_cap <= 128 ? small_spans : PyMem_Malloc(2 * span_cap * sizeof *spans);
    /* each word's FNV-1a hash: its lookup's key, and the state its word n-grams go on from */
    uint32_t *hashes = span_cap <= 128 ? small_hashes : PyMem_Malloc(span_cap * sizeof *hashes);
    IdList out = {small_ids, 0, 256, small_ids};
    PyObject *result = NULL;
    if (!text || !spans || !hashes) {
        PyErr_NoMemory();
        goto done;
    }
    Py_ssize_t words = 0, limit = max_words < 0 ? len + 1 : max_words;
    for (Py_ssize_t i = 0; i < len && words < limit;) {
        char kind = byte_kind[(uint8_t)raw[i]];
        if (kind == 0) {
            i++;
            continue;
        }
        Py_ssize_t begin = i;
        if (kind == 'w') {
            while (i < len && byte_kind[(uint8_t)raw[i]] == 'w') i++;
        } else {
            i++;
        }
        for (Py_ssize_t k = begin; k < i; k++) text[k] = (raw[k] >= 'A' && raw[k] <= 'Z') ? raw[k] + 32 : raw[k];
        spans[2 * words] = begin;
        spans[2 * words + 1] = i;
        words++;
    }
    /* rule 3 and 4: the word ids in text order */
    for (Py_ssize_t w = 0; w < words; w++) {
        const char *word = text + spans[2 * w];
        const Py_ssize_t n = spans[2 * w + 1] - spans[2 * w];
        hashes[w] = fnv_bytes(FNV_OFFSET, word, n);
        int64_t id = word_id(self, word, n, hashes[w]);
        if (id && push(&out, id)) goto nomem;
    }
    /* word n-grams: the n words joined by one space, hashed (FNV-1a goes on from the first word's hash) */
    for (int n = 2; n <= self->word_ngrams; n++) {
        for (Py_ssize_t w = 0; w + n <= words; w++) {
            uint32_t h = hashes[w];
            for (int k = 1; k < n; k++) {
                h = (h ^ (uint8_t)' ') * FNV_PRIME;
                h = fnv_bytes(h, text + spans[2 * (w + k)], spans[2 * (w + k) + 1] - spans[2 * (w + k)]);
            }
            if (push(&out, self->bucket_offset + h % self->buckets)) goto nomem;
        }
    }
    /* character n-grams of "<" + word + ">", by size as listed, then start; not the whole marked word */
    for (Py_ssize_t w = 0; w < words && self->n_char_ngrams; w++) {
        Py_ssize_t wlen = spans[2 * w + 1] - spans[2 * w], mlen = wlen + 2;
        const char *word = text + spans[2 * w];
        for (Py_ssize_t c = 0; c < self->n_char_ngrams; c++) {
            Py_ssize_t n = self->char_ngrams[c];
            if (n == mlen) continue;
            for (Py_ssize_t i = 0; i + n <= mlen; i++) {
                uint32_t h = FNV_OFFSET;
                for (Py_ssize_t k = i; k < i + n; k++) {
                    uint8_t byte = k == 0 ? '<' : k == mlen - 1 ? '>' : (uint8_t)word[k - 1];
                    h = (h ^ byte) * FNV_PRIME;
                }
                if (push(&out, self->bucket_offset + h % self->buckets)) goto nomem;
            }
        }
    }
    /* rule 5: each scope's prefix + word for the words read while a cue's scope is open */
    for (Py_ssize_t c = 0; c < self->n_scopes; c++) {
        const Scope *scope = &self->scopes[c];
        long left = 0;
        for (Py_ssize_t w = 0; w < words; w++) {
            const char *word = text + spans[2 * w];
            Py_ssize_t wlen = spans[2 * w + 1] - spans[2 * w];
            if (in_word_list(&scope->cues, word, wlen)) {
                left = scope->width;
            } else if (in_word_list(&scope->ends, word, wlen)) {
                left = 0;
            } else if (left) {
                if (push(&out, self->bucket_offset + fnv_bytes(scope->prefix, word, wlen) % self->buckets)) goto nomem;
                left--;
            }
        }
    }
    result = PyBytes_FromStringAndSize((const char *)out.ids, out.n * (Py_ssize_t)sizeof(int64_t));
    goto done;
nomem:
    PyErr_NoMemory();
done:
    if (text != small) PyMem_Free(text);
    if (spans != small_spans) PyMem_Free(spans);
    if (hashes != small_hashes) PyMem_Free(hashes);
    if (out.ids != small_ids) PyMem_Free(out.ids);
    return result;
}

static PyMethodDef AsciiIds_methods[] = {
    {"ids", (PyCFunction)(void (*)(void))AsciiIds_ids, METH_FASTCALL,
     "ids(text, max_words): the ids of one ASCII text (at most max_words words read, None: all), as native int64 "
     "bytes."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject AsciiIdsType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "kdedge_runtime._ngramc.AsciiIds",
    .tp_basicsize = sizeof(AsciiIds),
    .tp_dealloc = (destructor)AsciiIds_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "The n-gram rules for ASCII text: a word list and the manifest's rules, compiled.",
    .tp_methods = AsciiIds_methods,
    .tp_init = (initproc)AsciiIds_init,
    .tp_new = PyType_GenericNew,
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, .m_name = "_ngramc", .m_size = -1};

PyMODINIT_FUNC PyInit__ngramc(void) {
    init_byte_kind();
    if (PyType_Ready(&AsciiIdsType) < 0) return NULL;
    PyObject *m = PyModule_Create(&module);
    if (!m) return NULL;
    Py_INCREF(&AsciiIdsType);
    if (PyModule_AddObject(m, "AsciiIds", (PyObject *)&AsciiIdsType) < 0) {
        Py_DECREF(&AsciiIdsType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
