/* The n-gram student's model, compiled (kdedge_runtime/ngram_model.py says when the runtime uses it): the mean of the
 * embedding rows of a text's ids, then a small ReLU network. Its arithmetic is about 15,000 multiply-adds a text,
 * under a microsecond; ONNX Runtime's fixed cost per run is ten times that on the same CPU.
 *
 * Model(table, row_scale, layers): table a C-contiguous 2-D buffer [rows, dim] of int8 ('b') with row_scale a float32
 * buffer of `rows` values (each row is int8 * its scale), or of float32 ('f') with row_scale None; layers a sequence of
 * (weight, bias), weight float32 [out, in] (a Gemm with transB), bias float32 [out], ReLU between layers, none after
 * the last.
 *   .one(ids) -> list of floats: one text's logits, from its ids as native int64 bytes (what AsciiIds.ids gives);
 *   Predictor (below): one ASCII text's Prediction, tokenizer and model in one call (Classifier.predict's path);
 *   .run(ids) -> bytearray: the float32 logits [batch, out] of int64 ids [batch, length] (writable, as ONNX
 *   Runtime's outputs are).
 *
 * The same arithmetic as the exported graph, term by term: each row dequantized as int8 * scale in float32, every
 * position summed (padding included; its row is zero), divided by the count of ids above 0 (at least 1). */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h> /* T_OBJECT_EX, READONLY: a slot's member description */
#include <math.h>
#include <stdint.h>
#include <string.h>

#define MAX_LAYERS 8
#define BLOCK 16 /* outputs a layer computes at once */

typedef struct {
    PyObject_HEAD
    Py_buffer table, scale; /* held, not copied: the table is most of the model */
    float *weight[MAX_LAYERS], *bias[MAX_LAYERS]; /* copies; weight[i] transposed to [in, out] */
    int quantized, layers;
    Py_ssize_t rows, width[MAX_LAYERS + 1]; /* width[0]: the embedding's; width[i + 1]: layer i's output */
    Py_ssize_t widest;
} Model;

/* a C-contiguous buffer of `ndim` dimensions and element format `format` ("b" int8, "f" float32) */
static int get_array(PyObject *obj, Py_buffer *view, int ndim, const char *format, const char *what) {
    if (PyObject_GetBuffer(obj, view, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0) return -1;
    if (view->ndim != ndim || !view->format || strcmp(view->format, format) != 0) {
        PyErr_Format(PyExc_ValueError, "%s must be a %d-D C-contiguous array of format '%s'", what, ndim, format);
        PyBuffer_Release(view);
        return -1;
    }
    return 0;
}

static void Model_dealloc(Model *self) {
    PyBuffer_Release(&self->table); /* each a no-op where nothing was acquired (view.obj NULL) */
    PyBuffer_Release(&self->scale);
    for (int i = 0; i < MAX_LAYERS; i++) {
        PyMem_Free(self->weight[i]);
        PyMem_Free(self->bias[i]);
    }
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int Model_init(Model *self, PyObject *args, PyObject *kwargs) {
    static char *kwlist[] = {"table", "row_scale", "layers", NULL};
    PyObject *table, *scale, *layers;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OOO", kwlist, &table, &scale, &layers)) return -1;
    if (self->table.obj) {
        PyErr_SetString(PyExc_TypeError, "Model is initialised once");
        return -1;
    }
    self->quantized = scale != Py_None;
    if (get_array(table, &self->table, 2, self->quantized ? "b" : "f", "table") < 0) return -1;
    self->rows = self->table.shape[0];
    self->width[0] = self->widest = self->table.shape[1];
    if (self->quantized) {
        if (get_array(scale, &self->scale, 1, "f", "row_scale") < 0) return -1;
        if (self->scale.shape[0] != self->rows) {
            PyErr_SetString(PyExc_ValueError, "row_scale must hold one value per row of the table");
            return -1;
        }
    }
    PyObject *seq = PySequence_Fast(layers, "layers must be a sequence of (weight, bias)");
    if (!seq) return -1;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    if (n < 1 || n > MAX_LAYERS) {
        PyErr_Format(PyExc_ValueError, "layers must hold 1 to %d (weight, bias)", MAX_LAYERS);
        Py_DECREF(seq);
        return -1;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *weight, *bias, *layer = PySequence_Fast_GET_ITEM(seq, i);
        Py_buffer w = {0}, b = {0};
        int ok = PyArg_ParseTuple(layer, "OO;each layer must be a (weight, bias)", &weight, &bias) &&
                 get_array(weight, &w, 2, "f", "a layer's weight") == 0 &&
                 get_array(bias, &b, 1, "f", "a layer's bias") == 0;
        Py_ssize_t in = self->width[i], out = ok ? w.shape[0] : 0;
        if (ok && (w.shape[1] != in || b.shape[0] != out)) {
            PyErr_Format(PyExc_ValueError, "layer %zd's weight must be [out, %zd] and its bias [out]", i, in);
            ok = 0;
        }
        if (ok && (!(self->weight[i] = PyMem_Malloc(in * out * sizeof(float) + 1)) ||
                   !(self->bias[i] = PyMem_Malloc(out * sizeof(float) + 1)))) {
            PyErr_NoMemory();
            ok = 0;
        }
        if (ok) {
            const float *from = w.buf;
            for (Py_ssize_t o = 0; o < out; o++)
                for (Py_ssize_t k = 0; k < in; k++) self->weight[i][k * out + o] = from[o * in + k];
            memcpy(self->bias[i], b.buf, out * sizeof(float));
            self->width[i + 1] = out;
            if (out > self->widest) self->widest = out;
            self->layers = (int)i + 1;
        }
        PyBuffer_Release(&w);
        PyBuffer_Release(&b);
        if (!ok) {
            Py_DECREF(seq);
            return -1;
        }
    }
    Py_DECREF(seq);
    return 0;
}

/* one text's logits into `out` from its `length` ids (native int64, read bytewise: bytes objects promise no
 * alignment); x and y scratch of `widest` floats each. -1 (Python error set) for an id outside the table. */
static int forward(const Model *self, const char *ids, Py_ssize_t length, float *x, float *y, float *out) {
    const Py_ssize_t dim = self->width[0];
    memset(x, 0, dim * sizeof(float));
    Py_ssize_t count = 0;
    for (Py_ssize_t t = 0; t < length; t++) {
        int64_t id;
        memcpy(&id, ids + t * (Py_ssize_t)sizeof id, sizeof id);
        if (id < 0 || id >= self->rows) {
            PyErr_Format(PyExc_IndexError, "id %lld is outside the embedding table (%zd rows)", (long long)id,
                         self->rows);
            return -1;
        }
        count += id > 0;
        if (self->quantized) {
            const int8_t *row = (const int8_t *)self->table.buf + id * dim;
            const float s = ((const float *)self->scale.buf)[id];
            for (Py_ssize_t d = 0; d < dim; d++) x[d] += (float)row[d] * s;
        } else {
            const float *row = (const float *)self->table.buf + id * dim;
            for (Py_ssize_t d = 0; d < dim; d++) x[d] += row[d];
        }
    }
    const float n = count < 1 ? 1.0f : (float)count;
    for (Py_ssize_t d = 0; d < dim; d++) x[d] /= n;
    /* each layer as y = b + sum over k of x[k] * row k of the transposed weight, BLOCK outputs at a time in
     * registers: every output's sum in the order of a dot product, the inner loop over independent outputs, which
     * the compiler vectorises */
    for (int l = 0; l < self->layers; l++) {
        const Py_ssize_t in = self->width[l], outs = self->width[l + 1];
        const float *w = self->weight[l], *b = self->bias[l];
        const int last = l + 1 == self->layers;
        float *to = last ? out : y;
        for (Py_ssize_t o0 = 0; o0 < outs; o0 += BLOCK) {
            float acc[BLOCK] = {0};
            if (outs - o0 >= BLOCK) {
                for (Py_ssize_t k = 0; k < in; k++) {
                    const float xk = x[k], *wk = w + k * outs + o0;
                    for (int j = 0; j < BLOCK; j++) acc[j] += xk * wk[j];
                }
            } else {
                for (Py_ssize_t k = 0; k < in; k++) {
                    const float xk = x[k], *wk = w + k * outs + o0;
                    for (Py_ssize_t j = 0; j < outs - o0; j++) acc[j] += xk * wk[j];
                }
            }
            for (Py_ssize_t j = 0; j < BLOCK && o0 + j < outs; j++) {
                const float v = acc[j] + b[j + o0];
                to[o0 + j] = last || v > 0.0f ? v : 0.0f;
            }
        }
        float *swap = x; /* the next layer reads this one's output */
        x = y;
        y = swap;
    }
    return 0;
}

static PyObject *Model_run(Model *self, PyObject *ids_obj) {
    if (!self->table.obj) {
        PyErr_SetString(PyExc_TypeError, "Model was not initialised");
        return NULL;
    }
    Py_buffer ids;
    if (PyObject_GetBuffer(ids_obj, &ids, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0) return NULL;
    PyObject *result = NULL;
    float small[2 * 512], *scratch = small;
    if (ids.ndim != 2 || ids.itemsize != 8 || !ids.format || (strcmp(ids.format, "l") && strcmp(ids.format, "q"))) {
        PyErr_SetString(PyExc_ValueError, "ids must be a 2-D C-contiguous int64 array");
        goto done;
    }
    const Py_ssize_t batch = ids.shape[0], length = ids.shape[1], outs = self->width[self->layers];
    if (self->widest > 512 && !(scratch = PyMem_Malloc(2 * self->widest * sizeof(float)))) {
        PyErr_NoMemory();
        goto done;
    }
    result = PyByteArray_FromStringAndSize(NULL, batch * outs * (Py_ssize_t)sizeof(float));
    if (!result) goto done;
    float *logits = (float *)PyByteArray_AS_STRING(result);
    for (Py_ssize_t r = 0; r < batch; r++) {
        const char *row = (const char *)ids.buf + r * length * (Py_ssize_t)sizeof(int64_t);
        if (forward(self, row, length, scratch, scratch + self->widest, logits + r * outs) < 0) {
            Py_CLEAR(result);
            break;
        }
    }
done:
    if (scratch != small) PyMem_Free(scratch);
    PyBuffer_Release(&ids);
    return result;
}

/* one text's logits as a list of floats (a `finish` of run_one; it needs no context) */
static PyObject *as_list(const float *logits, Py_ssize_t outs, void *context) {
    (void)context;
    PyObject *result = PyList_New(outs);
    if (!result) return NULL;
    for (Py_ssize_t o = 0; o < outs; o++) {
        PyObject *value = PyFloat_FromDouble(logits[o]);
        if (!value) {
            Py_DECREF(result);
            return NULL;
        }
        PyList_SET_ITEM(result, o, value);
    }
    return result;
}

/* the first of the largest logits, and its softmax probability in *probability: what Python's
 * `values.index(max(values))` and `1 / sum(exp(v - top) for v in values)` give, NaN included */
static Py_ssize_t top_of(const float *logits, Py_ssize_t outs, double *probability) {
    Py_ssize_t best = 0;
    for (Py_ssize_t o = 1; o < outs; o++)
        if (logits[o] > logits[best]) best = o;
    double sum = 0.0;
    for (Py_ssize_t o = 0; o < outs; o++) sum += exp((double)logits[o] - (double)logits[best]);
    *probability = 1.0 / sum;
    return best;
}

typedef PyObject *(*Finish)(const float *logits, Py_ssize_t outs, void *context);

/* one text's logits from its ids as native int64 bytes (AsciiIds.ids gives them), handed to `finish` with `context`:
 * an app's call, without an array on either side */
static PyObject *run_one(Model *self, PyObject *ids_obj, Finish finish, void *context) {
    if (!self->table.obj) {
        PyErr_SetString(PyExc_TypeError, "Model was not initialised");
        return NULL;
    }
    Py_buffer ids;
    if (PyObject_GetBuffer(ids_obj, &ids, PyBUF_SIMPLE) < 0) return NULL;
    PyObject *result = NULL;
    float small[2 * 512 + 64], *scratch = small;
    const Py_ssize_t outs = self->width[self->layers];
    if (ids.len % (Py_ssize_t)sizeof(int64_t)) {
        PyErr_SetString(PyExc_ValueError, "ids must be native int64 bytes");
        goto done;
    }
    if ((self->widest > 512 || outs > 64) && !(scratch = PyMem_Malloc((2 * self->widest + outs) * sizeof(float)))) {
        PyErr_NoMemory();
        goto done;
    }
    float *logits = scratch + 2 * self->widest;
    if (forward(self, ids.buf, ids.len / (Py_ssize_t)sizeof(int64_t), scratch, scratch + self->widest,
                logits) == 0)
        result = finish(logits, outs, context);
done:
    if (scratch != small) PyMem_Free(scratch);
    PyBuffer_Release(&ids);
    return result;
}

static PyObject *Model_one(Model *self, PyObject *ids) { return run_one(self, ids, as_list, NULL); }

static PyMethodDef Model_methods[] = {
    {"run", (PyCFunction)Model_run, METH_O,
     "run(ids): the float32 logits [batch, outputs] of int64 ids [batch, length], as a bytearray."},
    {"one", (PyCFunction)Model_one, METH_O,
     "one(ids): one text's logits, a list of floats, from its ids as native int64 bytes."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject ModelType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "kdedge_runtime._ngram_modelc.Model",
    .tp_basicsize = sizeof(Model),
    .tp_dealloc = (destructor)Model_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "The n-gram student's model: the mean of embedding rows, then a ReLU network.",
    .tp_methods = Model_methods,
    .tp_init = (initproc)Model_init,
    .tp_new = PyType_GenericNew,
};

/* Predictor(model, ids, max_words, labels, prediction): Classifier.predict's path for one ASCII text in one C call.
 * predictor(text) is `prediction(label, probability, logits)` of model.one(ids(text, max_words)), decoded as
 * Classifier._decode decodes (top_of), or None where that path does not apply (text not an ASCII str, or no ids: the classifier's own path takes it). `prediction`
 * must be a class with __slots__ label, score and logits whose __init__ only sets them (kdedge_runtime.Prediction):
 * its instance is allocated and its slots filled here, without a Python call to __init__. */
typedef struct {
    PyObject_HEAD
    Model *model;
    PyObject *ids, *max_words, *labels; /* labels: a tuple of str, one per logit */
    PyTypeObject *prediction;
    Py_ssize_t offset[3]; /* where the instance keeps label, score, logits */
    vectorcallfunc vectorcall;
} Predictor;

static const char *const PREDICTION_FIELDS[3] = {"label", "score", "logits"};

static int Predictor_init(Predictor *self, PyObject *args, PyObject *kwargs) {
    static char *kwlist[] = {"model", "ids", "max_words", "labels", "prediction", NULL};
    PyObject *model, *ids, *max_words, *labels, *prediction;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O!OOO!O!", kwlist, &ModelType, &model, &ids, &max_words,
                                     &PyTuple_Type, &labels, &PyType_Type, &prediction))
        return -1;
    if (self->model) {
        PyErr_SetString(PyExc_TypeError, "Predictor is initialised once");
        return -1;
    }
    if (!((Model *)model)->table.obj) {
        PyErr_SetString(PyExc_TypeError, "Model was not initialised");
        return -1;
    }
    if (PyTuple_GET_SIZE(labels) != ((Model *)model)->width[((Model *)model)->layers]) {
        PyErr_SetString(PyExc_ValueError, "labels must name each of the model's outputs");
        return -1;
    }
    PyTypeObject *type = (PyTypeObject *)prediction;
    for (int f = 0; f < 3; f++) {
        PyObject *descr = PyObject_GetAttrString(prediction, PREDICTION_FIELDS[f]);
        if (!descr && !PyErr_ExceptionMatches(PyExc_AttributeError)) return -1;
        PyErr_Clear();
        int slot = descr && PyObject_TypeCheck(descr, &PyMemberDescr_Type) &&
                   ((PyMemberDescrObject *)descr)->d_common.d_type == type &&
                   ((PyMemberDescrObject *)descr)->d_member->type == T_OBJECT_EX &&
                   !(((PyMemberDescrObject *)descr)->d_member->flags & READONLY);
        if (slot) self->offset[f] = ((PyMemberDescrObject *)descr)->d_member->offset;
        Py_XDECREF(descr);
        if (!slot || self->offset[f] < (Py_ssize_t)sizeof(PyObject) ||
            self->offset[f] + (Py_ssize_t)sizeof(PyObject *) > type->tp_basicsize) {
            PyErr_Format(PyExc_TypeError, "prediction must keep %s in a slot of its own", PREDICTION_FIELDS[f]);
            return -1;
        }
    }
    Py_INCREF(model), Py_INCREF(ids), Py_INCREF(max_words), Py_INCREF(labels), Py_INCREF(prediction);
    self->model = (Model *)model, self->ids = ids, self->max_words = max_words, self->labels = labels;
    self->prediction = type;
    return 0;
}

/* the Prediction of one text's logits (a `finish` of run_one, its context the Predictor) */
static PyObject *make_prediction(const float *logits, Py_ssize_t outs, void *context) {
    const Predictor *self = context;
    double probability;
    PyObject *values[3] = {Py_NewRef(PyTuple_GET_ITEM(self->labels, top_of(logits, outs, &probability))),
                           PyFloat_FromDouble(probability), as_list(logits, outs, NULL)};
    PyObject *result = values[1] && values[2] ? self->prediction->tp_alloc(self->prediction, 0) : NULL;
    for (int f = 0; f < 3; f++) {
        if (result) {
            *(PyObject **)((char *)result + self->offset[f]) = values[f];
        } else {
            Py_XDECREF(values[f]);
        }
    }
    return result;
}

static PyObject *Predictor_call(Predictor *self, PyObject *const *args, size_t nargsf, PyObject *kwnames) {
    if (PyVectorcall_NARGS(nargsf) != 1 || kwnames) {
        PyErr_SetString(PyExc_TypeError, "a Predictor takes one text");
        return NULL;
    }
    if (!self->model) {
        PyErr_SetString(PyExc_TypeError, "Predictor was not initialised");
        return NULL;
    }
    PyObject *text = args[0];
#if PY_VERSION_HEX < 0x030C0000
    if (PyUnicode_Check(text) && PyUnicode_READY(text) < 0) return NULL;
#endif
    if (!PyUnicode_Check(text) || !PyUnicode_IS_ASCII(text)) Py_RETURN_NONE;
    PyObject *call[2] = {text, self->max_words};
    PyObject *ids = PyObject_Vectorcall(self->ids, call, 2, NULL);
    if (!ids) return NULL;
    if (!PyBytes_Check(ids)) {
        Py_DECREF(ids);
        PyErr_SetString(PyExc_TypeError, "ids(text, max_words) must give bytes");
        return NULL;
    }
    PyObject *result = PyBytes_GET_SIZE(ids) ? run_one(self->model, ids, make_prediction, self) : Py_NewRef(Py_None);
    Py_DECREF(ids);
    return result;
}

static int Predictor_traverse(Predictor *self, visitproc visit, void *arg) {
    Py_VISIT(self->model);
    Py_VISIT(self->ids);
    Py_VISIT(self->max_words);
    Py_VISIT(self->labels);
    Py_VISIT(self->prediction);
    return 0;
}

static int Predictor_clear(Predictor *self) {
    Py_CLEAR(self->model);
    Py_CLEAR(self->ids);
    Py_CLEAR(self->max_words);
    Py_CLEAR(self->labels);
    Py_CLEAR(self->prediction);
    return 0;
}

static void Predictor_dealloc(Predictor *self) {
    PyObject_GC_UnTrack(self);
    Predictor_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *Predictor_new(PyTypeObject *type, PyObject *args, PyObject *kwargs) {
    Predictor *self = (Predictor *)PyType_GenericNew(type, args, kwargs);
    if (self) self->vectorcall = (vectorcallfunc)Predictor_call;
    return (PyObject *)self;
}

static PyTypeObject PredictorType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "kdedge_runtime._ngram_modelc.Predictor",
    .tp_basicsize = sizeof(Predictor),
    .tp_dealloc = (destructor)Predictor_dealloc,
    .tp_vectorcall_offset = offsetof(Predictor, vectorcall),
    .tp_call = PyVectorcall_Call,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_HAVE_VECTORCALL,
    .tp_doc = "One ASCII text's prediction from a compiled tokenizer's ids and the model, in one call.",
    .tp_traverse = (traverseproc)Predictor_traverse,
    .tp_clear = (inquiry)Predictor_clear,
    .tp_init = (initproc)Predictor_init,
    .tp_new = Predictor_new,
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, .m_name = "_ngram_modelc", .m_size = -1};

PyMODINIT_FUNC PyInit__ngram_modelc(void) {
    PyObject *m = PyModule_Create(&module);
    if (!m) return NULL;
    if (PyModule_AddType(m, &ModelType) < 0 || PyModule_AddType(m, &PredictorType) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
