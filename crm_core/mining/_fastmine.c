/* _fastmine: the optional C accelerator of crm_core.mining (plain CPython C API, no numpy headers).
 *
 * Its functions work on flat integer arrays passed through the buffer protocol:
 *
 *   collect(rows) -> (labels, codes, indptr) or None
 *       Baskets given as a list of lists/tuples of hashable items, numbered by first appearance
 *       (a dict lookup per item, as pyfim does), without sorting or removing repeats; None when a
 *       basket is not a list or tuple, so the caller's general path can explain the problem.
 *   finish(codes, indptr, rank) -> number of codes kept
 *       Recode every item to rank[item], sort each basket and drop repeats, in place.
 *   mine(codes, indptr, n_items, min_count, max_len, frequency_order, budget) -> [(items, counts), ...]
 *       All frequent itemsets, one pair of arrays per length k (items: k int32 per row, rows in
 *       lexicographic order; counts: int64), by a depth-first search over projected baskets: a node
 *       holds the baskets that contain it, cut down to the items that may extend it (FP-growth's
 *       conditional database, as a flat array rather than a tree); one sequential pass counts the
 *       extensions, and each frequent one gets its own projection, built for a batch of children
 *       at a time (at most `budget` items per depth). At the root a triangular matrix of pair
 *       counts first drops, from each child's baskets, the items it is not frequent with. Only the
 *       branch being searched is held in memory.
 *   rules(levels, n_baskets, min_confidence, min_lift) -> [(antecedents, consequents, counts,
 *         antecedent_counts, consequent_counts), ...]
 *       Single-consequent rules of every itemset of length >= 2, one block per antecedent length,
 *       each ordered by antecedent then consequent; the thresholds arrive already multiplied by
 *       (1 - REL_TOL) and are compared exactly as crm_core.mining.thresholds.ratio_at_least does.
 *   itemset_records(levels, labels, n_baskets, Itemset), rule_records(blocks, labels, n_baskets, Rule)
 *       The result rows as the named tuples, with the floats computed as the numpy code computes them.
 *   rules_json(rules) -> str or None
 *       format_rules' JSON text for Rule records of str labels, float and int values, byte for byte
 *       what json.dumps(ensure_ascii=False) writes for them; None for anything else.
 *
 * Results come back as Buffer objects that own malloc'd memory (no copy into Python objects);
 * numpy wraps them with np.frombuffer. The searches run without the GIL. Every index read from
 * the caller is bounds-checked; nothing is allocated per itemset but its row in the output.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#ifdef __GLIBC__
#include <malloc.h> /* malloc_trim */
#endif

/* ---------------------------------------------------------------------------------------------
 * Buffer: a one-dimensional array of int32 or int64 that owns its malloc'd memory.
 * ------------------------------------------------------------------------------------------- */

typedef struct {
    PyObject_HEAD
    void *data;
    Py_ssize_t length;   /* elements */
    Py_ssize_t itemsize; /* bytes per element */
    Py_ssize_t nbytes;
    char format[2];
} BufferObject;

static PyTypeObject BufferType;

static void Buffer_dealloc(BufferObject *self) {
    free(self->data);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int Buffer_getbuffer(BufferObject *self, Py_buffer *view, int flags) {
    view->obj = Py_NewRef(self);
    view->buf = self->data;
    view->len = self->nbytes;
    view->readonly = 0;
    view->internal = NULL;
    view->suboffsets = NULL;
    view->ndim = 1;
    if (flags & PyBUF_FORMAT) {
        view->format = self->format;
        view->itemsize = self->itemsize;
        view->shape = (flags & PyBUF_ND) ? &self->length : NULL;
        view->strides = ((flags & PyBUF_STRIDES) == PyBUF_STRIDES) ? &self->itemsize : NULL;
    } else {
        /* Without a format the consumer reads unsigned bytes. */
        view->format = NULL;
        view->itemsize = 1;
        view->shape = (flags & PyBUF_ND) ? &self->nbytes : NULL;
        view->strides = NULL;
    }
    return 0;
}

static PyObject *Buffer_len_get(BufferObject *self, void *closure) {
    (void)closure;
    return PyLong_FromSsize_t(self->length);
}

static Py_ssize_t Buffer_length(BufferObject *self) { return self->length; }

static PyBufferProcs Buffer_as_buffer = {(getbufferproc)Buffer_getbuffer, NULL};
static PySequenceMethods Buffer_as_sequence = {.sq_length = (lenfunc)Buffer_length};
static PyGetSetDef Buffer_getset[] = {{"length", (getter)Buffer_len_get, NULL, "number of elements", NULL},
                                      {NULL, NULL, NULL, NULL, NULL}};

static PyTypeObject BufferType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "crm_core.mining._fastmine.Buffer",
    .tp_basicsize = sizeof(BufferObject),
    .tp_dealloc = (destructor)Buffer_dealloc,
    .tp_as_buffer = &Buffer_as_buffer,
    .tp_as_sequence = &Buffer_as_sequence,
    .tp_getset = Buffer_getset,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "A flat int32 ('i') or int64 ('q') array owned by the accelerator (buffer protocol).",
};

/* Wraps `data` (malloc'd, `length` elements); frees it on failure. */
static PyObject *buffer_adopt(void *data, Py_ssize_t length, Py_ssize_t itemsize) {
    if (data == NULL) {
        data = malloc(itemsize);
        if (data == NULL) return PyErr_NoMemory();
    }
    BufferObject *self = PyObject_New(BufferObject, &BufferType);
    if (self == NULL) {
        free(data);
        return NULL;
    }
    self->data = data;
    self->length = length;
    self->itemsize = itemsize;
    self->nbytes = length * itemsize;
    self->format[0] = itemsize == 4 ? 'i' : 'q';
    self->format[1] = '\0';
    return (PyObject *)self;
}

/* ---------------------------------------------------------------------------------------------
 * Growable arrays (geometric growth) and the error codes of the GIL-free sections.
 * ------------------------------------------------------------------------------------------- */

enum { OK = 0, ERR_NOMEM = 1, ERR_VALUE = 2, ERR_OVERFLOW = 3 };

typedef struct {
    char *data;
    size_t len; /* elements */
    size_t cap;
    size_t itemsize;
} Vec;

static int vec_reserve(Vec *v, size_t extra) {
    if (v->len + extra <= v->cap) return OK;
    size_t cap = v->cap ? v->cap : 256;
    while (cap < v->len + extra) cap *= 2;
    void *grown = realloc(v->data, cap * v->itemsize);
    if (grown == NULL) return ERR_NOMEM;
    v->data = grown;
    v->cap = cap;
    return OK;
}

/* Hands the array over as a Buffer (trimmed to its length); the Vec is left empty. */
static PyObject *vec_to_buffer(Vec *v) {
    void *data = v->data;
    if (data != NULL && v->len < v->cap) {
        void *trimmed = realloc(data, (v->len ? v->len : 1) * v->itemsize);
        if (trimmed != NULL) data = trimmed;
    }
    PyObject *out = buffer_adopt(data, (Py_ssize_t)v->len, (Py_ssize_t)v->itemsize);
    v->data = NULL;
    v->len = v->cap = 0;
    return out;
}

static int cmp_int32(const void *a, const void *b) {
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

static void insertion_sort_int32(int32_t *a, Py_ssize_t n) {
    for (Py_ssize_t i = 1; i < n; i++) {
        int32_t v = a[i];
        Py_ssize_t j = i;
        while (j > 0 && a[j - 1] > v) {
            a[j] = a[j - 1];
            j--;
        }
        a[j] = v;
    }
}

static void sort_int32(int32_t *a, Py_ssize_t n) {
    if (n < 24)
        insertion_sort_int32(a, n);
    else
        qsort(a, (size_t)n, sizeof(int32_t), cmp_int32);
}

/* Sorting row indices by the rows they point at (k int32 per row, then an optional tie key). */
typedef struct {
    const int32_t *rows;
    int k;
    const int32_t *tie; /* NULL: rows only */
} RowOrder;

static int row_less(const RowOrder *o, int32_t a, int32_t b) {
    const int32_t *x = o->rows + (size_t)a * o->k, *y = o->rows + (size_t)b * o->k;
    for (int i = 0; i < o->k; i++)
        if (x[i] != y[i]) return x[i] < y[i];
    if (o->tie != NULL && o->tie[a] != o->tie[b]) return o->tie[a] < o->tie[b];
    return a < b;
}

/* A bottom-up merge sort of `index` (n entries) with a scratch array of the same size. */
static void sort_rows(const RowOrder *o, int32_t *index, int32_t *scratch, size_t n) {
    int32_t *src = index, *dst = scratch;
    for (size_t width = 1; width < n; width *= 2) {
        for (size_t lo = 0; lo < n; lo += 2 * width) {
            size_t mid = lo + width < n ? lo + width : n;
            size_t hi = lo + 2 * width < n ? lo + 2 * width : n;
            size_t i = lo, j = mid, out = lo;
            while (i < mid && j < hi) dst[out++] = row_less(o, src[j], src[i]) ? src[j++] : src[i++];
            while (i < mid) dst[out++] = src[i++];
            while (j < hi) dst[out++] = src[j++];
        }
        int32_t *swap = src;
        src = dst;
        dst = swap;
    }
    if (src != index) memcpy(index, src, n * sizeof(int32_t));
}

/* Reads a C-contiguous buffer (of any shape) of `itemsize`-byte signed integers. */
static int get_int_buffer(PyObject *obj, Py_buffer *view, Py_ssize_t itemsize, const char *name, int writable) {
    int flags = PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | (writable ? PyBUF_WRITABLE : 0);
    if (PyObject_GetBuffer(obj, view, flags) < 0) return -1;
    const char *f = view->format ? view->format : "B";
    if (*f == '<' || *f == '=' || *f == '@') f++;
    int signed_int = f[1] == '\0' && (f[0] == 'i' || f[0] == 'l' || f[0] == 'q');
    if (view->itemsize != itemsize || !signed_int) {
        PyErr_Format(PyExc_TypeError, "%s must be a contiguous array of %zd-byte signed integers", name, itemsize);
        PyBuffer_Release(view);
        return -1;
    }
    return 0;
}

/* ---------------------------------------------------------------------------------------------
 * collect / finish: encoding Python baskets.
 * ------------------------------------------------------------------------------------------- */

static PyObject *fm_collect(PyObject *module, PyObject *rows) {
    (void)module;
    if (!PyList_Check(rows)) Py_RETURN_NONE;
    Py_ssize_t n_baskets = PyList_GET_SIZE(rows);
    Py_ssize_t n_entries = 0;
    for (Py_ssize_t b = 0; b < n_baskets; b++) {
        PyObject *basket = PyList_GET_ITEM(rows, b);
        if (PyList_CheckExact(basket))
            n_entries += PyList_GET_SIZE(basket);
        else if (PyTuple_CheckExact(basket))
            n_entries += PyTuple_GET_SIZE(basket);
        else
            Py_RETURN_NONE;
    }
    if (n_entries >= INT32_MAX) Py_RETURN_NONE;
    int32_t *codes = malloc((size_t)(n_entries ? n_entries : 1) * sizeof(int32_t));
    int64_t *indptr = malloc((size_t)(n_baskets + 1) * sizeof(int64_t));
    PyObject *seen = PyDict_New();
    PyObject *labels = PyList_New(0);
    if (codes == NULL || indptr == NULL || seen == NULL || labels == NULL) {
        if (codes == NULL || indptr == NULL) PyErr_NoMemory();
        goto fail;
    }
    Py_ssize_t at = 0;
    indptr[0] = 0;
    for (Py_ssize_t b = 0; b < n_baskets; b++) {
        PyObject *basket = PyList_GET_ITEM(rows, b);
        PyObject **items;
        Py_ssize_t size;
        if (PyList_CheckExact(basket)) {
            items = ((PyListObject *)basket)->ob_item;
            size = PyList_GET_SIZE(basket);
        } else if (PyTuple_CheckExact(basket)) {
            items = ((PyTupleObject *)basket)->ob_item;
            size = PyTuple_GET_SIZE(basket);
        } else {
            goto give_up;
        }
        if (at + size > n_entries) goto give_up;
        for (Py_ssize_t i = 0; i < size; i++) {
            PyObject *item = items[i];
            /* Only items whose hashing and comparison run no Python code (which could change the
             * baskets under us); anything else takes the general path. */
            if (!PyUnicode_CheckExact(item) && !PyLong_CheckExact(item)) goto give_up;
            PyObject *code = PyDict_GetItemWithError(seen, item);
            long value;
            if (code != NULL) {
                value = PyLong_AsLong(code);
            } else {
                if (PyErr_Occurred()) {
                    goto fail;
                }
                value = (long)PyList_GET_SIZE(labels);
                PyObject *number = PyLong_FromLong(value);
                if (number == NULL) goto fail;
                int err = PyDict_SetItem(seen, item, number);
                Py_DECREF(number);
                if (err < 0 || PyList_Append(labels, item) < 0) goto fail;
            }
            codes[at++] = (int32_t)value;
        }
        indptr[b + 1] = at;
    }
    Py_DECREF(seen);
    PyObject *codes_buf = buffer_adopt(codes, at, 4);
    PyObject *indptr_buf = codes_buf ? buffer_adopt(indptr, n_baskets + 1, 8) : (free(indptr), NULL);
    if (indptr_buf == NULL) {
        Py_XDECREF(codes_buf);
        Py_DECREF(labels);
        return NULL;
    }
    return Py_BuildValue("(NNN)", labels, codes_buf, indptr_buf);
give_up:
    free(codes);
    free(indptr);
    Py_XDECREF(seen);
    Py_XDECREF(labels);
    Py_RETURN_NONE;
fail:
    free(codes);
    free(indptr);
    Py_XDECREF(seen);
    Py_XDECREF(labels);
    return NULL;
}

/* read_simple: a basket file's bytes straight into codes, for the files read_encoded_baskets reads
 * with numpy (ASCII, no NUL; whitespace-separated, or one separator character and no quotes). */

typedef struct {
    int64_t start; /* offset of the token in the data */
    int32_t length;
    int32_t code; /* -1: empty slot */
    uint64_t hash;
} Token;

typedef struct {
    Token *slots;
    size_t mask, used;
} TokenTable;

static uint64_t hash_bytes(const unsigned char *p, int32_t n) {
    uint64_t h = 0xCBF29CE484222325u;
    for (int32_t i = 0; i < n; i++) h = (h ^ p[i]) * 0x100000001B3u;
    return h ^ (h >> 31);
}

static int token_table_grow(TokenTable *T) {
    size_t size = T->slots ? (T->mask + 1) * 2 : 1024;
    Token *slots = malloc(size * sizeof(Token));
    if (slots == NULL) return ERR_NOMEM;
    for (size_t i = 0; i < size; i++) slots[i].code = -1;
    for (size_t i = 0; T->slots && i <= T->mask; i++) {
        if (T->slots[i].code < 0) continue;
        size_t at = T->slots[i].hash & (size - 1);
        while (slots[at].code >= 0) at = (at + 1) & (size - 1);
        slots[at] = T->slots[i];
    }
    free(T->slots);
    T->slots = slots;
    T->mask = size - 1;
    return OK;
}

/* The code of data[start : start + length], a new one (n_codes, then counted) when first seen. */
static int32_t token_code(TokenTable *T, const unsigned char *data, int64_t start, int32_t length, int32_t *n_codes) {
    if (2 * (T->used + 1) > T->mask + 1 && token_table_grow(T)) return -1;
    uint64_t h = hash_bytes(data + start, length);
    size_t at = h & T->mask;
    for (;; at = (at + 1) & T->mask) {
        Token *t = &T->slots[at];
        if (t->code < 0) break;
        if (t->hash == h && t->length == length && memcmp(data + t->start, data + start, (size_t)length) == 0)
            return t->code;
    }
    T->slots[at] = (Token){start, length, *n_codes, h};
    T->used++;
    return (*n_codes)++;
}

static int is_space_byte(unsigned char c) { return c == ' ' || c == '\t' || c == 0x0b || c == 0x0c || (c >= 0x1c && c <= 0x1f); }

static PyObject *fm_read_simple(PyObject *module, PyObject *args) {
    (void)module;
    Py_buffer view;
    const char *sep_arg = NULL;
    Py_ssize_t sep_len = 0;
    if (!PyArg_ParseTuple(args, "y*z#:read_simple", &view, &sep_arg, &sep_len)) return NULL;
    const unsigned char *data = view.buf;
    int64_t size = view.len;
    if (size >= 3 && data[0] == 0xEF && data[1] == 0xBB && data[2] == 0xBF) {
        data += 3;
        size -= 3;
    }
    /* One pass that the compiler vectorizes (no early exit): a byte-at-a-time loop that stopped at the
     * first non-ASCII byte cost a third of reading Groceries. */
    unsigned char any_bits = 0, any_nul = 0, any_comma = 0, any_quote = 0;
    for (int64_t i = 0; i < size; i++) {
        unsigned char c = data[i];
        any_bits |= c;
        any_nul |= c == 0;
        any_comma |= c == ',';
        any_quote |= c == '"';
    }
    int has_comma = any_comma, has_quote = any_quote, simple = size > 0 && !(any_bits & 0x80) && !any_nul;
    /* sep: 0 for runs of whitespace, else the one separator character. */
    int sep = 0;
    if (sep_arg == NULL)
        sep = has_comma ? ',' : 0;
    else if (sep_len == 1 && !is_space_byte((unsigned char)sep_arg[0]) && sep_arg[0] != '\n' && sep_arg[0] != '\r' &&
             (unsigned char)sep_arg[0] < 0x80)
        sep = sep_arg[0];
    else if (sep_len != 0)
        simple = 0;
    if (sep != 0 && has_quote) simple = 0;
    if (!simple) {
        PyBuffer_Release(&view);
        Py_RETURN_NONE;
    }
    Vec codes = {NULL, 0, 0, sizeof(int32_t)}, indptr = {NULL, 0, 0, sizeof(int64_t)};
    TokenTable table = {NULL, 0, 0};
    int32_t n_codes = 0;
    int err = vec_reserve(&indptr, 1) || token_table_grow(&table) ? ERR_NOMEM : OK;
    if (err == OK) ((int64_t *)indptr.data)[indptr.len++] = 0;
    /* stop[c]: 1 where a field ends (the separator, or any whitespace byte without one), 2 where a line
     * ends (\n, \r: the newlines open() turns into \n). Each byte is looked at once, plus once more
     * for an item's hash. */
    unsigned char stop[256] = {0};
    for (int c = 0; c < 256; c++) stop[c] = sep == 0 && is_space_byte((unsigned char)c);
    if (sep != 0) stop[sep] = 1;
    stop['\n'] = stop['\r'] = 2;
    Py_BEGIN_ALLOW_THREADS;
    int64_t p = 0;
    while (p < size && err == OK) {
        /* One line: its fields, then the newline (\r\n is one; a final newline starts no basket). */
        for (;;) {
            int64_t lo = p;
            while (p < size && !stop[data[p]]) p++;
            int64_t hi = p;
            if (sep != 0) {
                while (lo < hi && is_space_byte(data[lo])) lo++;
                while (hi > lo && is_space_byte(data[hi - 1])) hi--;
            }
            if (hi > lo) {
                if (hi - lo >= INT32_MAX || codes.len >= INT32_MAX - 1) {
                    err = ERR_OVERFLOW;
                    break;
                }
                int32_t code = token_code(&table, data, lo, (int32_t)(hi - lo), &n_codes);
                if (code < 0 || vec_reserve(&codes, 1)) {
                    err = ERR_NOMEM;
                    break;
                }
                ((int32_t *)codes.data)[codes.len++] = code;
            }
            if (p < size && stop[data[p]] == 1) {
                p++;
                continue;
            }
            break;
        }
        if (err != OK || vec_reserve(&indptr, 1)) {
            err = err != OK ? err : ERR_NOMEM;
            break;
        }
        ((int64_t *)indptr.data)[indptr.len++] = (int64_t)codes.len;
        if (p < size) p += data[p] == '\r' && p + 1 < size && data[p + 1] == '\n' ? 2 : 1;
    }
    Py_END_ALLOW_THREADS;
    PyObject *labels = NULL;
    if (err == OK) {
        labels = PyList_New(n_codes);
        for (size_t s = 0; labels != NULL && s <= table.mask; s++) {
            Token *t = &table.slots[s];
            if (t->code < 0) continue;
            PyObject *label = PyUnicode_DecodeASCII((const char *)data + t->start, t->length, NULL);
            if (label == NULL) Py_CLEAR(labels);
            else PyList_SET_ITEM(labels, t->code, label);
        }
    }
    free(table.slots);
    PyBuffer_Release(&view);
    if (err != OK || labels == NULL) {
        free(codes.data);
        free(indptr.data);
        if (err == ERR_OVERFLOW) {
            PyErr_SetString(PyExc_OverflowError, "read_simple: more than 2**31 items");
            return NULL;
        }
        return err == ERR_NOMEM ? PyErr_NoMemory() : NULL;
    }
    PyObject *codes_buf = vec_to_buffer(&codes);
    PyObject *indptr_buf = codes_buf ? vec_to_buffer(&indptr) : (free(indptr.data), NULL);
    if (indptr_buf == NULL) {
        Py_XDECREF(codes_buf);
        Py_DECREF(labels);
        return NULL;
    }
    return Py_BuildValue("(NNN)", labels, codes_buf, indptr_buf);
}

static PyObject *fm_finish(PyObject *module, PyObject *args) {
    (void)module;
    PyObject *codes_obj, *indptr_obj, *rank_obj;
    if (!PyArg_ParseTuple(args, "OOO:finish", &codes_obj, &indptr_obj, &rank_obj)) return NULL;
    Py_buffer cv, iv, rv;
    if (get_int_buffer(codes_obj, &cv, 4, "codes", 1) < 0) return NULL;
    if (get_int_buffer(indptr_obj, &iv, 8, "indptr", 1) < 0) {
        PyBuffer_Release(&cv);
        return NULL;
    }
    if (get_int_buffer(rank_obj, &rv, 4, "rank", 0) < 0) {
        PyBuffer_Release(&cv);
        PyBuffer_Release(&iv);
        return NULL;
    }
    int32_t *codes = cv.buf;
    int64_t *indptr = iv.buf;
    const int32_t *rank = rv.buf;
    Py_ssize_t n_codes = cv.len / 4, n_ranks = rv.len / 4, n_baskets = iv.len / 8 - 1;
    int err = OK;
    int64_t written = 0;
    Py_BEGIN_ALLOW_THREADS;
    if (n_baskets < 0 || indptr[0] != 0) err = ERR_VALUE;
    int64_t start = 0;
    for (Py_ssize_t b = 0; b < n_baskets && err == OK; b++) {
        int64_t end = indptr[b + 1];
        if (end < start || end > n_codes) {
            err = ERR_VALUE;
            break;
        }
        int64_t first = written;
        for (int64_t p = start; p < end; p++) {
            int32_t c = codes[p];
            if (c < 0 || c >= n_ranks) {
                err = ERR_VALUE;
                break;
            }
            codes[written++] = rank[c];
        }
        sort_int32(codes + first, (Py_ssize_t)(written - first));
        int64_t kept = first;
        for (int64_t p = first; p < written; p++)
            if (p == first || codes[p] != codes[kept - 1]) codes[kept++] = codes[p];
        written = kept;
        start = end;
        indptr[b + 1] = written;
    }
    Py_END_ALLOW_THREADS;
    PyBuffer_Release(&cv);
    PyBuffer_Release(&iv);
    PyBuffer_Release(&rv);
    if (err != OK) {
        PyErr_SetString(PyExc_ValueError, "finish: indptr or codes out of range");
        return NULL;
    }
    return PyLong_FromLongLong(written);
}

/* ---------------------------------------------------------------------------------------------
 * mine: the depth-first search.
 * ------------------------------------------------------------------------------------------- */

typedef struct {
    Vec items;  /* int32, k per row, dense ids while searching */
    Vec counts; /* int64 */
} LevelOut;

/* The buffers of one depth of the search, kept from one node to the next at that depth. */
typedef struct {
    int32_t *node;    /* ext, ext_count, remap and glob arrays of the node (see search) */
    int64_t *offsets; /* where each child's baskets start in the projection */
    int32_t *child;   /* the projected baskets of a batch of children */
    int32_t *pairs;   /* counts of the pairs of children (upper triangle, row by row) */
    int32_t *lengths; /* the length of each of the node's baskets, once renumbered */
    size_t cap_node, cap_offsets, cap_child, cap_pairs, cap_lengths;
} Frame;

typedef struct {
    int32_t min_count;
    int max_len;      /* 0: no limit */
    int64_t budget;   /* items of projected baskets built at once per depth (at least one child's) */
    int32_t *cnt;     /* per local item, plus one slot in front for the basket separators; zero between nodes */
    int64_t *cursor;  /* per child: next write position while projecting */
    int32_t *prefix;  /* the current node's items (dense ids) */
    Frame *frames;    /* frames[depth] */
    int n_frames;
    LevelOut *levels; /* levels[k - 1]: itemsets of length k */
    int n_levels;
    int cap_levels;
} Miner;

static int emit(Miner *M, int length, int32_t last, int64_t count) {
    if (length > M->n_levels) {
        if (length > M->cap_levels) {
            int cap = M->cap_levels ? M->cap_levels * 2 : 16;
            while (cap < length) cap *= 2;
            LevelOut *grown = realloc(M->levels, (size_t)cap * sizeof(LevelOut));
            if (grown == NULL) return ERR_NOMEM;
            M->levels = grown;
            M->cap_levels = cap;
        }
        for (int k = M->n_levels; k < length; k++) {
            M->levels[k].items = (Vec){NULL, 0, 0, sizeof(int32_t)};
            M->levels[k].counts = (Vec){NULL, 0, 0, sizeof(int64_t)};
        }
        M->n_levels = length;
    }
    LevelOut *L = &M->levels[length - 1];
    if (vec_reserve(&L->items, (size_t)length) || vec_reserve(&L->counts, 1)) return ERR_NOMEM;
    int32_t *row = (int32_t *)L->items.data + L->items.len;
    memcpy(row, M->prefix, (size_t)(length - 1) * sizeof(int32_t));
    row[length - 1] = last;
    L->items.len += (size_t)length;
    ((int64_t *)L->counts.data)[L->counts.len++] = count;
    return OK;
}

/* Makes room for `need` elements of `size` bytes in *p, dropping the contents. */
static int grow(void **p, size_t *cap, size_t need, size_t size) {
    if (need <= *cap) return OK;
    size_t c = *cap ? *cap : 256;
    while (c < need) c *= 2;
    free(*p);
    *p = malloc(c * size);
    if (*p == NULL) {
        *cap = 0;
        return ERR_NOMEM;
    }
    *cap = c;
    return OK;
}

/* The next basket of `db` from position *p on, renumbered through remap (dropping -1s), into out. */
static inline int32_t next_basket(const int32_t *db, int64_t *p, const int32_t *remap, int32_t *out) {
    int32_t n = 0, x;
    int64_t q = *p;
    for (; (x = db[q]) >= 0; q++) {
        /* Branch-free: whether an item is kept is close to random, and a mispredicted branch per item
         * cost more than the store. `out` has room for every local item. */
        int32_t r = remap[x];
        out[n] = r;
        n += r >= 0;
    }
    *p = q + 1;
    return n;
}

/* Where row j of the upper triangle of an n x n pair matrix starts (pairs (j, k), k > j). */
#define ROW(j, n) ((int64_t)(j) * (2 * (int64_t)(n) - (j) - 1) / 2)

/* Searches below the node M->prefix[0 .. depth-1]. `db` holds the baskets containing the node,
 * reduced to the items that may extend it, as local ids 0 .. n_local-1 (ascending in each basket,
 * every basket followed by -1); glob[x] is the dense id of local item x. The search renumbers `db`
 * in place, which the caller no longer needs.
 *
 * A sequential pass counts the items: the frequent ones are the children. Each child's own
 * baskets (the frequent items after it, renumbered from 0: a projection, as in FP-growth's
 * conditional databases) are then written out for a batch of children at a time, in one more
 * sequential pass per batch, and searched. Every pass reads a compact array front to back: following
 * each occurrence into the whole data set instead (LCM's occurrence delivery) missed the cache on
 * nearly every basket. The batch bounds the memory per depth (M->budget). */
static int search(Miner *M, int depth, int32_t *db, int64_t db_len, int32_t n_local, const int32_t *glob) {
    Frame *F = &M->frames[depth];
    int32_t *cnt = M->cnt + 1; /* cnt[-1] counts the separators */
    for (int64_t p = 0; p < db_len; p++) cnt[db[p]]++;
    if (grow((void **)&F->node, &F->cap_node, 4 * (size_t)n_local, sizeof(int32_t))) return ERR_NOMEM;
    int32_t *ext = F->node, *ext_count = ext + n_local, *remap = ext_count + n_local;
    int32_t n_ext = 0;
    for (int32_t x = 0; x < n_local; x++) {
        if (cnt[x] >= M->min_count) {
            remap[x] = n_ext;
            ext_count[n_ext] = cnt[x];
            ext[n_ext++] = x;
        } else {
            remap[x] = -1;
        }
        cnt[x] = 0;
    }
    int64_t db_baskets = cnt[-1];
    cnt[-1] = 0;
    int32_t *child_glob = remap + n_local;
    int err = OK;
    for (int32_t j = 0; j < n_ext && err == OK; j++) {
        child_glob[j] = glob[ext[j]];
        err = emit(M, depth + 1, child_glob[j], ext_count[j]);
    }
    /* The last child has no larger frequent item to grow by; nothing grows past max_len. */
    if (err != OK || n_ext < 2 || (M->max_len && depth + 2 > M->max_len)) return err;

    /* The baskets renumbered to the children, in place (nothing reads this node's baskets after it):
     * infrequent items and baskets of fewer than two children go, and every later pass reads them
     * without the remap, and their lengths from `lengths` rather than by finding each -1. Each write
     * lands at or before the position just read. */
    if (grow((void **)&F->lengths, &F->cap_lengths, (size_t)db_baskets + 1, sizeof(int32_t))) return ERR_NOMEM;
    int32_t *lengths = F->lengths;
    int64_t len = 0, n_baskets = 0;
    for (int64_t p = 0; p < db_len;) {
        int32_t n = next_basket(db, &p, remap, db + len);
        if (n < 2) continue;
        db[len + n] = -1;
        len += n + 1;
        lengths[n_baskets++] = n;
    }

    if (grow((void **)&F->offsets, &F->cap_offsets, (size_t)n_ext + 1, sizeof(int64_t))) return ERR_NOMEM;
    int64_t *offsets = F->offsets;
    memset(offsets, 0, ((size_t)n_ext + 1) * sizeof(int64_t));
    int32_t min_count = M->min_count;
    /* With few enough children, count their pairs first (a triangular matrix, as Borgelt's miners
     * do): a child's baskets then carry only the items it is frequent with, which on sparse data
     * is a small share of the items after it, and every later pass over them shrinks alike. */
    int64_t n_pairs = (int64_t)n_ext * (n_ext - 1) / 2;
    int32_t *pairs = NULL;
    if (depth == 0 && n_pairs <= M->budget) {
        if (grow((void **)&F->pairs, &F->cap_pairs, (size_t)n_pairs + 1, sizeof(int32_t))) return ERR_NOMEM;
        pairs = F->pairs;
        memset(pairs, 0, (size_t)n_pairs * sizeof(int32_t));
        for (int64_t i = 0, p = 0; i < n_baskets; i++) {
            const int32_t *basket = db + p;
            int32_t n = lengths[i];
            p += n + 1;
            for (int32_t a = 0; a + 1 < n; a++) {
                int32_t *row = pairs + ROW(basket[a], n_ext) - basket[a] - 1;
                for (int32_t b = a + 1; b < n; b++) row[basket[b]]++;
            }
        }
        for (int64_t i = 0, p = 0; i < n_baskets; i++) {
            const int32_t *basket = db + p;
            int32_t n = lengths[i];
            p += n + 1;
            for (int32_t a = 0; a + 1 < n; a++) {
                const int32_t *row = pairs + ROW(basket[a], n_ext) - basket[a] - 1;
                int32_t kept = 0;
                for (int32_t b = a + 1; b < n; b++) kept += row[basket[b]] >= min_count;
                if (kept) offsets[basket[a] + 1] += kept + 1;
            }
        }
    } else {
        for (int64_t i = 0, p = 0; i < n_baskets; i++) {
            const int32_t *basket = db + p;
            int32_t n = lengths[i];
            p += n + 1;
            for (int32_t a = 0; a + 1 < n; a++) offsets[basket[a] + 1] += n - a; /* n - a - 1 items, a separator */
        }
    }
    for (int32_t j = 0; j < n_ext; j++) offsets[j + 1] += offsets[j];

    int32_t last = n_ext - 1;
    for (int32_t lo = 0, hi; lo < last && err == OK; lo = hi) {
        for (hi = lo + 1; hi < last && offsets[hi + 1] - offsets[lo] <= M->budget;) hi++;
        int64_t base = offsets[lo];
        if (grow((void **)&F->child, &F->cap_child, (size_t)(offsets[hi] - base) + 1, sizeof(int32_t)))
            return ERR_NOMEM;
        int32_t *child = F->child;
        int64_t *cursor = M->cursor;
        for (int32_t j = lo; j < hi; j++) cursor[j] = offsets[j] - base;
        for (int64_t i = 0, p = 0; i < n_baskets; i++) {
            const int32_t *basket = db + p;
            int32_t n = lengths[i];
            p += n + 1;
            for (int32_t a = 0; a + 1 < n && basket[a] < hi; a++) {
                int32_t r = basket[a];
                if (r < lo) continue;
                int32_t *out = child + cursor[r], *begin = out;
                if (pairs != NULL) {
                    const int32_t *row = pairs + ROW(r, n_ext) - r - 1;
                    for (int32_t b = a + 1; b < n; b++)
                        if (row[basket[b]] >= min_count) *out++ = basket[b] - (r + 1);
                    if (out == begin) continue;
                } else {
                    for (int32_t b = a + 1; b < n; b++) *out++ = basket[b] - (r + 1);
                }
                *out++ = -1;
                cursor[r] = out - child;
            }
        }
        for (int32_t j = lo; j < hi && err == OK; j++) {
            int64_t length = offsets[j + 1] - offsets[j];
            if (length == 0) continue;
            M->prefix[depth] = child_glob[j];
            err = search(M, depth + 1, child + (offsets[j] - base), length, n_ext - j - 1, child_glob + j + 1);
        }
    }
    return err;
}

static void free_levels(Miner *M) {
    for (int k = 0; k < M->n_levels; k++) {
        free(M->levels[k].items.data);
        free(M->levels[k].counts.data);
    }
    free(M->levels);
    M->levels = NULL;
    M->n_levels = M->cap_levels = 0;
}

/* Sorts row indices by rows of k codes (each <= max_code) packed into one 64-bit key, first code most
 * significant, with a least-significant-digit radix sort; 0 when the rows do not fit in 64 bits (or
 * memory is short), and the caller falls back to the comparison sort. The digit is as wide as the
 * rows are many (8 to 16 bits): clearing and summing a 16-bit histogram is 65,536 steps a pass, which
 * on Groceries' levels of a few thousand rows cost more than the rest of the search. */
static int radix_sort_rows(const int32_t *rows, int k, int32_t max_code, int32_t *index, size_t n) {
    int bits = 1;
    while (bits < 31 && ((int64_t)1 << bits) <= max_code) bits++;
    if ((int64_t)bits * k > 64) return 0;
    uint64_t *keys = malloc(n * 2 * sizeof(uint64_t));
    int32_t *other = malloc(n * sizeof(int32_t));
    int digit = 8;
    while (digit < 16 && ((size_t)1 << digit) < n) digit++;
    size_t radix = (size_t)1 << digit, digit_mask = radix - 1;
    size_t *histogram = malloc(radix * sizeof(size_t));
    if (keys == NULL || other == NULL || histogram == NULL) {
        free(keys);
        free(other);
        free(histogram);
        return 0;
    }
    uint64_t *key_out = keys + n;
    for (size_t r = 0; r < n; r++) {
        uint64_t key = 0;
        for (int i = 0; i < k; i++) key = (key << bits) | (uint64_t)rows[r * (size_t)k + i];
        keys[r] = key;
        index[r] = (int32_t)r;
    }
    int total_bits = bits * k;
    for (int shift = 0; shift < total_bits; shift += digit) {
        memset(histogram, 0, radix * sizeof(size_t));
        for (size_t r = 0; r < n; r++) histogram[(keys[r] >> shift) & digit_mask]++;
        if (histogram[(keys[0] >> shift) & digit_mask] == n) continue; /* one digit throughout: no change */
        size_t sum = 0;
        for (size_t d = 0; d < radix; d++) {
            size_t c = histogram[d];
            histogram[d] = sum;
            sum += c;
        }
        for (size_t r = 0; r < n; r++) {
            size_t at = histogram[(keys[r] >> shift) & digit_mask]++;
            key_out[at] = keys[r];
            other[at] = index[r];
        }
        uint64_t *swap_keys = keys;
        keys = key_out;
        key_out = swap_keys;
        memcpy(index, other, n * sizeof(int32_t));
    }
    free(keys < key_out ? keys : key_out);
    free(other);
    free(histogram);
    return 1;
}

/* Dense ids back to item codes; with a frequency order, rows re-sorted into label order. */
static int relabel(Miner *M, const int32_t *code_of_dense, int32_t max_code, int sorted_already) {
    for (int k = 1; k <= M->n_levels; k++) {
        LevelOut *L = &M->levels[k - 1];
        int32_t *rows = (int32_t *)L->items.data;
        size_t n = L->counts.len;
        for (size_t i = 0; i < n * (size_t)k; i++) rows[i] = code_of_dense[rows[i]];
        if (sorted_already || n == 0) continue;
        for (size_t r = 0; r < n; r++) insertion_sort_int32(rows + r * (size_t)k, k);
        int32_t *index = malloc(n * 2 * sizeof(int32_t));
        int32_t *new_rows = malloc(n * (size_t)k * sizeof(int32_t));
        int64_t *new_counts = malloc(n * sizeof(int64_t));
        if (index == NULL || new_rows == NULL || new_counts == NULL) {
            free(index);
            free(new_rows);
            free(new_counts);
            return ERR_NOMEM;
        }
        for (size_t r = 0; r < n; r++) index[r] = (int32_t)r;
        if (!radix_sort_rows(rows, k, max_code, index, n)) {
            RowOrder order = {rows, k, NULL};
            sort_rows(&order, index, index + n, n);
        }
        const int64_t *counts = (const int64_t *)L->counts.data;
        for (size_t r = 0; r < n; r++) {
            memcpy(new_rows + r * (size_t)k, rows + (size_t)index[r] * k, (size_t)k * sizeof(int32_t));
            new_counts[r] = counts[index[r]];
        }
        free(index);
        free(L->items.data);
        free(L->counts.data);
        L->items = (Vec){(char *)new_rows, n * (size_t)k, n * (size_t)k, sizeof(int32_t)};
        L->counts = (Vec){(char *)new_counts, n, n, sizeof(int64_t)};
    }
    return OK;
}

typedef struct {
    const int32_t *codes;
    const int64_t *indptr;
    Py_ssize_t n_codes, n_baskets;
    int64_t n_items;
    int32_t *count_of;    /* per item code */
    int32_t *dense_of;    /* per item code, -1 when infrequent */
    int32_t *code_of;     /* per dense id */
    int32_t m;            /* frequent items */
} Encoded;

static int cmp_int64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* The thread-free part of mine(): everything between reading the buffers and building the result. */
static int run_search(Miner *M, Encoded *E, int frequency_order) {
    int err = OK;
    int32_t *data = NULL;
    E->count_of = calloc((size_t)(E->n_items ? E->n_items : 1), sizeof(int32_t));
    E->dense_of = malloc((size_t)(E->n_items ? E->n_items : 1) * sizeof(int32_t));
    if (E->count_of == NULL || E->dense_of == NULL) return ERR_NOMEM;
    if (E->indptr[0] != 0) return ERR_VALUE;
    for (Py_ssize_t b = 0; b < E->n_baskets; b++) {
        int64_t lo = E->indptr[b], hi = E->indptr[b + 1];
        if (hi < lo || hi > E->n_codes) return ERR_VALUE;
        for (int64_t p = lo; p < hi; p++) {
            int32_t c = E->codes[p];
            if (c < 0 || c >= E->n_items || (p > lo && c <= E->codes[p - 1])) return ERR_VALUE;
            E->count_of[c]++;
        }
    }
    int32_t m = 0;
    for (int64_t c = 0; c < E->n_items; c++) m += E->count_of[c] >= M->min_count;
    E->m = m;
    if (m == 0) return OK;
    E->code_of = malloc((size_t)m * sizeof(int32_t));
    if (E->code_of == NULL) return ERR_NOMEM;
    m = 0;
    for (int64_t c = 0; c < E->n_items; c++)
        if (E->count_of[c] >= M->min_count) E->code_of[m++] = (int32_t)c;
    if (frequency_order) {
        /* Rarest first (ties by code): a node's extensions are then the more frequent items, and the
         * longest suffixes are scanned for the fewest occurrences, as in FP-growth's header order. */
        int64_t *keys = malloc((size_t)m * sizeof(int64_t));
        if (keys == NULL) return ERR_NOMEM;
        for (int32_t d = 0; d < m; d++) keys[d] = ((int64_t)E->count_of[E->code_of[d]] << 32) | E->code_of[d];
        qsort(keys, (size_t)m, sizeof(int64_t), cmp_int64);
        for (int32_t d = 0; d < m; d++) E->code_of[d] = (int32_t)(keys[d] & 0xFFFFFFFF);
        free(keys);
    }
    for (int64_t c = 0; c < E->n_items; c++) E->dense_of[c] = -1;
    for (int32_t d = 0; d < m; d++) E->dense_of[E->code_of[d]] = d;

    /* The reduced baskets: frequent items only, as dense ids, each basket after a -1. */
    int64_t size = 0, n_rows = 0, longest = 0;
    for (Py_ssize_t b = 0; b < E->n_baskets; b++) {
        int64_t kept = 0;
        for (int64_t p = E->indptr[b]; p < E->indptr[b + 1]; p++) kept += E->dense_of[E->codes[p]] >= 0;
        if (kept) {
            size += kept + 1;
            n_rows++;
            if (kept > longest) longest = kept;
        }
    }
    data = malloc((size_t)(size ? size : 1) * sizeof(int32_t));
    M->cnt = calloc((size_t)m + 1, sizeof(int32_t));
    M->cursor = malloc((size_t)m * sizeof(int64_t));
    M->prefix = malloc((size_t)(m + 1) * sizeof(int32_t));
    M->n_frames = (int)(longest + 2);
    M->frames = calloc((size_t)M->n_frames, sizeof(Frame));
    int32_t *identity = malloc((size_t)m * sizeof(int32_t));
    if (data == NULL || M->cnt == NULL || M->cursor == NULL || M->prefix == NULL ||
        M->frames == NULL || identity == NULL) {
        free(identity);
        err = ERR_NOMEM;
        goto done;
    }
    for (int32_t d = 0; d < m; d++) identity[d] = d;
    int64_t at = 0;
    for (Py_ssize_t b = 0; b < E->n_baskets; b++) {
        int64_t begin = at;
        for (int64_t p = E->indptr[b]; p < E->indptr[b + 1]; p++) {
            int32_t d = E->dense_of[E->codes[p]];
            if (d >= 0) data[at++] = d;
        }
        if (at > begin) {
            if (frequency_order) insertion_sort_int32(data + begin, (Py_ssize_t)(at - begin));
            data[at++] = -1;
        }
    }
    free(E->count_of);
    E->count_of = NULL;
    err = search(M, 0, data, size, m, identity);
    free(identity);
    free(data);
    data = NULL;
    if (err == OK) err = relabel(M, E->code_of, (int32_t)(E->n_items - 1), !frequency_order);
done:
    free(data);
    return err;
}

static PyObject *fm_mine(PyObject *module, PyObject *args) {
    (void)module;
    PyObject *codes_obj, *indptr_obj;
    long long n_items, min_count, budget;
    int max_len, frequency_order;
    if (!PyArg_ParseTuple(args, "OOLLipL:mine", &codes_obj, &indptr_obj, &n_items, &min_count, &max_len,
                          &frequency_order, &budget))
        return NULL;
    if (n_items < 0 || n_items > INT32_MAX || max_len < 0 || min_count < 1 || budget < 1) {
        PyErr_SetString(PyExc_ValueError,
                        "mine: n_items must be in [0, 2**31), max_len >= 0, min_count >= 1, budget >= 1");
        return NULL;
    }
    Py_buffer cv, iv;
    if (get_int_buffer(codes_obj, &cv, 4, "codes", 0) < 0) return NULL;
    if (get_int_buffer(indptr_obj, &iv, 8, "indptr", 0) < 0) {
        PyBuffer_Release(&cv);
        return NULL;
    }
    Miner M = {0};
    /* A count above every basket count finds nothing; clamp so it fits the int32 counters. */
    M.min_count = min_count > INT32_MAX ? INT32_MAX : (int32_t)min_count;
    M.max_len = max_len;
    M.budget = budget;
    Encoded E = {0};
    E.codes = cv.buf;
    E.indptr = iv.buf;
    E.n_codes = cv.len / 4;
    E.n_baskets = iv.len / 8 - 1;
    E.n_items = n_items;
    int err;
    if (E.n_baskets < 0 || E.n_baskets >= INT32_MAX)
        err = ERR_VALUE;
    else {
        Py_BEGIN_ALLOW_THREADS;
        err = run_search(&M, &E, frequency_order);
        Py_END_ALLOW_THREADS;
    }
    free(E.count_of);
    free(E.dense_of);
    free(E.code_of);
    free(M.cnt);
    free(M.cursor);
    free(M.prefix);
    for (int d = 0; d < M.n_frames; d++) {
        free(M.frames[d].node);
        free(M.frames[d].offsets);
        free(M.frames[d].child);
        free(M.frames[d].pairs);
        free(M.frames[d].lengths);
    }
    free(M.frames);
    PyBuffer_Release(&cv);
    PyBuffer_Release(&iv);
#ifdef __GLIBC__
    /* The search's buffers are freed; hand the pages back now. glibc keeps freed blocks below its
     * (adaptive) mmap threshold in the heap, where Python's own allocator never reuses them, so
     * without this the records built next would sit on top of the search's peak. */
    malloc_trim(0);
#endif
    if (err != OK) {
        free_levels(&M);
        if (err == ERR_NOMEM) return PyErr_NoMemory();
        if (err == ERR_OVERFLOW) {
            PyErr_SetString(PyExc_OverflowError, "mine: more than 2**31 frequent item occurrences");
            return NULL;
        }
        PyErr_SetString(PyExc_ValueError, "mine: indptr must run from 0 up to len(codes), and each basket's "
                                          "codes must be strictly increasing and below n_items");
        return NULL;
    }
    PyObject *result = PyList_New(M.n_levels);
    if (result == NULL) {
        free_levels(&M);
        return NULL;
    }
    for (int k = 0; k < M.n_levels; k++) {
        PyObject *items = vec_to_buffer(&M.levels[k].items);
        PyObject *counts = items ? vec_to_buffer(&M.levels[k].counts) : NULL;
        PyObject *pair = counts ? PyTuple_Pack(2, items, counts) : NULL;
        Py_XDECREF(items);
        Py_XDECREF(counts);
        if (pair == NULL) {
            Py_DECREF(result);
            free_levels(&M);
            return NULL;
        }
        PyList_SET_ITEM(result, k, pair);
    }
    free_levels(&M);
    return result;
}

/* ---------------------------------------------------------------------------------------------
 * rules: single-consequent rules from the frequent itemsets (in label order).
 * ------------------------------------------------------------------------------------------- */

typedef struct {
    const int32_t *items; /* k per row, rows in lexicographic order */
    const int64_t *counts;
    Py_ssize_t n;
} LevelIn;

/* The count of `key` (k items) in level k, or -1 when it is not there. */
static int64_t lookup(const LevelIn *L, const int32_t *key, int k) {
    Py_ssize_t lo = 0, hi = L->n;
    while (lo < hi) {
        Py_ssize_t mid = lo + (hi - lo) / 2;
        const int32_t *row = L->items + (size_t)mid * k;
        int c = 0;
        for (int i = 0; i < k && c == 0; i++) c = (row[i] > key[i]) - (row[i] < key[i]);
        if (c == 0) return L->counts[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -1;
}

/* A hash table of the rows of one level (open addressing, row indices, -1 for empty): a lookup
 * costs one hash and usually one row comparison, against a dozen for a binary search. */
typedef struct {
    int32_t *slots;
    size_t mask;
} RowTable;

static size_t hash_row(const int32_t *row, int k) {
    uint64_t h = 0x9E3779B97F4A7C15u;
    for (int i = 0; i < k; i++) h = (h ^ (uint32_t)row[i]) * 0xFF51AFD7ED558CCDu;
    return (size_t)(h ^ (h >> 32));
}

static int row_table_build(RowTable *T, const LevelIn *L, int k) {
    size_t size = 16;
    while (size < 2 * (size_t)L->n) size *= 2;
    T->slots = malloc(size * sizeof(int32_t));
    if (T->slots == NULL) return ERR_NOMEM;
    T->mask = size - 1;
    memset(T->slots, 0xFF, size * sizeof(int32_t));
    for (Py_ssize_t r = 0; r < L->n; r++) {
        size_t at = hash_row(L->items + (size_t)r * k, k) & T->mask;
        while (T->slots[at] >= 0) at = (at + 1) & T->mask;
        T->slots[at] = (int32_t)r;
    }
    return OK;
}

/* The count of `key` (k items) in level L, or -1 when it is not there. */
static int64_t row_table_find(const RowTable *T, const LevelIn *L, const int32_t *key, int k) {
    for (size_t at = hash_row(key, k) & T->mask;; at = (at + 1) & T->mask) {
        int32_t r = T->slots[at];
        if (r < 0) return -1;
        if (memcmp(L->items + (size_t)r * k, key, (size_t)k * sizeof(int32_t)) == 0) return L->counts[r];
    }
}

typedef struct {
    Vec antecedents; /* int32, length per row */
    Vec consequents; /* int32 */
    Vec counts, antecedent_counts, consequent_counts; /* int64 */
} RuleOut;

static void free_rule_out(RuleOut *R) {
    free(R->antecedents.data);
    free(R->consequents.data);
    free(R->counts.data);
    free(R->antecedent_counts.data);
    free(R->consequent_counts.data);
}

/* The rules of the itemsets of level k that meet the thresholds, in the order of the itemsets. */
static int rules_from_rows(const LevelIn *L, const LevelIn *parents, const LevelIn *singles, const RowTable *table,
                           int k, double n, double confidence, double lift, int32_t *antecedent, RuleOut *R) {
    for (Py_ssize_t r = 0; r < L->n; r++) {
        const int32_t *row = L->items + (size_t)r * k;
        double count = (double)L->counts[r];
        for (int p = 0; p < k; p++) {
            for (int i = 0, j = 0; i < k; i++)
                if (i != p) antecedent[j++] = row[i];
            int64_t ante = row_table_find(table, parents, antecedent, k - 1);
            if (ante < 0) return ERR_VALUE; /* not downward closed: not the itemsets of one search */
            if (!(count >= (double)ante * confidence)) continue;
            int64_t cons = lookup(singles, &row[p], 1);
            if (cons < 0) return ERR_VALUE;
            if (lift >= 0 && !(count * n >= ((double)ante * (double)cons) * lift)) continue;
            if (vec_reserve(&R->antecedents, (size_t)(k - 1)) || vec_reserve(&R->consequents, 1) ||
                vec_reserve(&R->counts, 1) || vec_reserve(&R->antecedent_counts, 1) ||
                vec_reserve(&R->consequent_counts, 1))
                return ERR_NOMEM;
            memcpy((int32_t *)R->antecedents.data + R->antecedents.len, antecedent, (size_t)(k - 1) * sizeof(int32_t));
            R->antecedents.len += (size_t)(k - 1);
            ((int32_t *)R->consequents.data)[R->consequents.len++] = row[p];
            ((int64_t *)R->counts.data)[R->counts.len++] = L->counts[r];
            ((int64_t *)R->antecedent_counts.data)[R->antecedent_counts.len++] = ante;
            ((int64_t *)R->consequent_counts.data)[R->consequent_counts.len++] = cons;
        }
    }
    return OK;
}

static int rules_of_length(const LevelIn *levels, int k, double n, double confidence, double lift, RuleOut *R) {
    const LevelIn *L = &levels[k - 1], *parents = &levels[k - 2], *singles = &levels[0];
    int32_t antecedent[k > 1 ? k - 1 : 1];
    RowTable table = {NULL, 0};
    if (row_table_build(&table, parents, k - 1)) return ERR_NOMEM;
    int err = rules_from_rows(L, parents, singles, &table, k, n, confidence, lift, antecedent, R);
    free(table.slots);
    if (err != OK) return err;
    /* Order by antecedent, then consequent. */
    size_t n_rules = R->consequents.len;
    if (n_rules < 2) return OK;
    if (n_rules >= INT32_MAX) return ERR_OVERFLOW;
    int32_t *index = malloc(n_rules * 2 * sizeof(int32_t));
    if (index == NULL) return ERR_NOMEM;
    for (size_t i = 0; i < n_rules; i++) index[i] = (int32_t)i;
    RowOrder order = {(const int32_t *)R->antecedents.data, k - 1, (const int32_t *)R->consequents.data};
    sort_rows(&order, index, index + n_rules, n_rules);
    /* Permute each array through one scratch array the size of the largest. */
    void *scratch = malloc(n_rules * (size_t)(k - 1 > 2 ? k - 1 : 2) * sizeof(int32_t));
    if (scratch == NULL) {
        free(index);
        return ERR_NOMEM;
    }
    Vec *arrays[] = {&R->antecedents, &R->consequents, &R->counts, &R->antecedent_counts, &R->consequent_counts};
    for (int a = 0; a < 5; a++) {
        size_t width = arrays[a] == &R->antecedents ? (size_t)(k - 1) * sizeof(int32_t) : arrays[a]->itemsize;
        char *src = arrays[a]->data, *dst = scratch;
        for (size_t i = 0; i < n_rules; i++) memcpy(dst + i * width, src + (size_t)index[i] * width, width);
        memcpy(src, dst, n_rules * width);
    }
    free(scratch);
    free(index);
    return OK;
}

static PyObject *fm_rules(PyObject *module, PyObject *args) {
    (void)module;
    PyObject *level_list;
    double n, confidence, lift;
    if (!PyArg_ParseTuple(args, "O!ddd:rules", &PyList_Type, &level_list, &n, &confidence, &lift)) return NULL;
    Py_ssize_t n_levels = PyList_GET_SIZE(level_list);
    Py_buffer *views = PyMem_Calloc((size_t)(2 * n_levels + 1), sizeof(Py_buffer));
    LevelIn *levels = PyMem_Calloc((size_t)(n_levels + 1), sizeof(LevelIn));
    RuleOut *out = PyMem_Calloc((size_t)(n_levels + 1), sizeof(RuleOut));
    PyObject *result = NULL;
    Py_ssize_t held = 0;
    if (views == NULL || levels == NULL || out == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    for (Py_ssize_t k = 1; k <= n_levels; k++) {
        PyObject *pair = PyList_GET_ITEM(level_list, k - 1);
        if (!PyTuple_Check(pair) || PyTuple_GET_SIZE(pair) != 2) {
            PyErr_SetString(PyExc_TypeError, "rules: each level must be an (items, counts) pair");
            goto done;
        }
        if (get_int_buffer(PyTuple_GET_ITEM(pair, 0), &views[held], 4, "items", 0) < 0) goto done;
        held++;
        if (get_int_buffer(PyTuple_GET_ITEM(pair, 1), &views[held], 8, "counts", 0) < 0) goto done;
        held++;
        levels[k - 1].items = views[held - 2].buf;
        levels[k - 1].counts = views[held - 1].buf;
        levels[k - 1].n = views[held - 1].len / 8;
        if (views[held - 2].len / 4 != levels[k - 1].n * k) {
            PyErr_SetString(PyExc_ValueError, "rules: level k must hold k items per count");
            goto done;
        }
    }
    int err = OK;
    Py_BEGIN_ALLOW_THREADS;
    for (Py_ssize_t k = 2; k <= n_levels && err == OK; k++) {
        RuleOut *R = &out[k - 2];
        R->antecedents.itemsize = R->consequents.itemsize = sizeof(int32_t);
        R->counts.itemsize = R->antecedent_counts.itemsize = R->consequent_counts.itemsize = sizeof(int64_t);
        err = rules_of_length(levels, (int)k, n, confidence, lift, R);
    }
    Py_END_ALLOW_THREADS;
    if (err != OK) {
        if (err == ERR_NOMEM)
            PyErr_NoMemory();
        else if (err == ERR_OVERFLOW)
            PyErr_SetString(PyExc_OverflowError, "rules: more than 2**31 rules of one length");
        else
            PyErr_SetString(PyExc_ValueError, "rules: the levels are not the frequent itemsets of one search");
        goto done;
    }
    result = PyList_New(n_levels > 1 ? n_levels - 1 : 0);
    if (result == NULL) goto done;
    for (Py_ssize_t k = 2; k <= n_levels; k++) {
        RuleOut *R = &out[k - 2];
        PyObject *block = PyTuple_New(5);
        if (block == NULL) {
            Py_CLEAR(result);
            goto done;
        }
        PyList_SET_ITEM(result, k - 2, block);
        Vec *arrays[] = {&R->antecedents, &R->consequents, &R->counts, &R->antecedent_counts, &R->consequent_counts};
        for (int a = 0; a < 5; a++) {
            PyObject *buffer = vec_to_buffer(arrays[a]);
            if (buffer == NULL) {
                Py_CLEAR(result);
                goto done;
            }
            PyTuple_SET_ITEM(block, a, buffer);
        }
    }
done:
    for (Py_ssize_t i = 0; i < held; i++) PyBuffer_Release(&views[i]);
    if (out != NULL)
        for (Py_ssize_t k = 0; k <= n_levels; k++) free_rule_out(&out[k]);
    PyMem_Free(views);
    PyMem_Free(levels);
    PyMem_Free(out);
    return result;
}

/* ---------------------------------------------------------------------------------------------
 * records: the result rows as instances of the Itemset and Rule named tuples.
 * ------------------------------------------------------------------------------------------- */

/* An instance of the tuple subclass `cls` (a NamedTuple: no __dict__) holding `n` new references. */
static PyObject *new_record(PyTypeObject *cls, PyObject **values, Py_ssize_t n) {
    for (Py_ssize_t i = 0; i < n; i++)
        if (values[i] == NULL) goto fail;
    PyObject *record = cls->tp_alloc(cls, n);
    if (record == NULL) goto fail;
    for (Py_ssize_t i = 0; i < n; i++) PyTuple_SET_ITEM(record, i, values[i]);
    return record;
fail:
    for (Py_ssize_t i = 0; i < n; i++) Py_XDECREF(values[i]);
    return NULL;
}

/* The labels of `k` item codes as a tuple; NULL (with an exception) when a code is out of range. */
static PyObject *label_tuple(PyObject *labels, const int32_t *codes, Py_ssize_t k) {
    Py_ssize_t n_labels = PyTuple_GET_SIZE(labels);
    PyObject *items = PyTuple_New(k);
    if (items == NULL) return NULL;
    for (Py_ssize_t i = 0; i < k; i++) {
        if (codes[i] < 0 || codes[i] >= n_labels) {
            Py_DECREF(items);
            PyErr_SetString(PyExc_IndexError, "item code out of range of the labels");
            return NULL;
        }
        PyTuple_SET_ITEM(items, i, Py_NewRef(PyTuple_GET_ITEM(labels, codes[i])));
    }
    return items;
}

/* One int and one float (count / n) object per distinct count, shared by every record with that
 * count: counts repeat a lot (Groceries' 49,580 itemsets have 900 distinct ones), and sharing saves
 * 56 bytes a record, which kept the result lists no larger than pyfim's. */
typedef struct {
    int64_t *keys; /* -1: empty */
    PyObject **values; /* 2 per slot: the int, the float */
    size_t mask, used;
} CountCache;

static void count_cache_free(CountCache *C) {
    for (size_t i = 0; C->keys != NULL && i <= C->mask; i++) {
        if (C->keys[i] < 0) continue;
        Py_DECREF(C->values[2 * i]);
        Py_DECREF(C->values[2 * i + 1]);
    }
    free(C->keys);
    free(C->values);
    C->keys = NULL;
    C->values = NULL;
}

static int count_cache_grow(CountCache *C) {
    size_t size = C->keys ? (C->mask + 1) * 2 : 256;
    int64_t *keys = malloc(size * sizeof(int64_t));
    PyObject **values = malloc(size * 2 * sizeof(PyObject *));
    if (keys == NULL || values == NULL) {
        free(keys);
        free(values);
        PyErr_NoMemory();
        return -1;
    }
    for (size_t i = 0; i < size; i++) keys[i] = -1;
    for (size_t i = 0; C->keys != NULL && i <= C->mask; i++) {
        if (C->keys[i] < 0) continue;
        size_t at = ((uint64_t)C->keys[i] * 0x9E3779B97F4A7C15u >> 20) & (size - 1);
        while (keys[at] >= 0) at = (at + 1) & (size - 1);
        keys[at] = C->keys[i];
        values[2 * at] = C->values[2 * i];
        values[2 * at + 1] = C->values[2 * i + 1];
    }
    free(C->keys);
    free(C->values);
    C->keys = keys;
    C->values = values;
    C->mask = size - 1;
    return 0;
}

/* New references to the shared int `count` and float `count / n` (NULLs, with an exception, on failure). */
static void count_objects(CountCache *C, int64_t count, double n, PyObject **as_int, PyObject **as_float) {
    *as_int = *as_float = NULL;
    if (count < 0) {
        *as_int = PyLong_FromLongLong(count);
        *as_float = PyFloat_FromDouble((double)count / n);
        return;
    }
    if ((C->keys == NULL || 2 * (C->used + 1) > C->mask + 1) && count_cache_grow(C) < 0) return;
    size_t at = ((uint64_t)count * 0x9E3779B97F4A7C15u >> 20) & C->mask;
    while (C->keys[at] >= 0 && C->keys[at] != count) at = (at + 1) & C->mask;
    if (C->keys[at] < 0) {
        PyObject *i = PyLong_FromLongLong(count), *f = PyFloat_FromDouble((double)count / n);
        if (i == NULL || f == NULL) {
            Py_XDECREF(i);
            Py_XDECREF(f);
            return;
        }
        C->keys[at] = count;
        C->values[2 * at] = i;
        C->values[2 * at + 1] = f;
        C->used++;
    }
    *as_int = Py_NewRef(C->values[2 * at]);
    *as_float = Py_NewRef(C->values[2 * at + 1]);
}

static int check_record_class(PyObject *cls, Py_ssize_t fields) {
    if (!PyType_Check(cls) || !PyType_IsSubtype((PyTypeObject *)cls, &PyTuple_Type) ||
        ((PyTypeObject *)cls)->tp_dictoffset != 0) {
        PyErr_SetString(PyExc_TypeError, "records: cls must be a NamedTuple class");
        return -1;
    }
    (void)fields;
    return 0;
}

static PyObject *fm_itemset_records(PyObject *module, PyObject *args) {
    (void)module;
    PyObject *level_list, *labels, *cls;
    long long n_baskets;
    if (!PyArg_ParseTuple(args, "O!O!LO:itemset_records", &PyList_Type, &level_list, &PyTuple_Type, &labels,
                          &n_baskets, &cls))
        return NULL;
    if (check_record_class(cls, 3) < 0) return NULL;
    if (n_baskets < 1) {
        PyErr_SetString(PyExc_ValueError, "itemset_records: n_baskets must be >= 1");
        return NULL;
    }
    PyObject *out = PyList_New(0);
    if (out == NULL) return NULL;
    double n = (double)n_baskets;
    CountCache cache = {NULL, NULL, 0, 0};
    for (Py_ssize_t k = 1; k <= PyList_GET_SIZE(level_list); k++) {
        PyObject *pair = PyList_GET_ITEM(level_list, k - 1);
        Py_buffer iv, cv;
        if (!PyTuple_Check(pair) || PyTuple_GET_SIZE(pair) != 2) {
            PyErr_SetString(PyExc_TypeError, "itemset_records: each level must be an (items, counts) pair");
            goto fail;
        }
        if (get_int_buffer(PyTuple_GET_ITEM(pair, 0), &iv, 4, "items", 0) < 0) goto fail;
        if (get_int_buffer(PyTuple_GET_ITEM(pair, 1), &cv, 8, "counts", 0) < 0) {
            PyBuffer_Release(&iv);
            goto fail;
        }
        Py_ssize_t rows = cv.len / 8;
        int ok = iv.len / 4 == rows * k;
        const int32_t *items = iv.buf;
        const int64_t *counts = cv.buf;
        for (Py_ssize_t r = 0; r < rows && ok; r++) {
            PyObject *values[3] = {label_tuple(labels, items + r * k, k), NULL, NULL};
            count_objects(&cache, counts[r], n, &values[1], &values[2]);
            PyObject *record = new_record((PyTypeObject *)cls, values, 3);
            ok = record != NULL && PyList_Append(out, record) == 0;
            Py_XDECREF(record);
            if (!ok && !PyErr_Occurred()) PyErr_NoMemory();
        }
        if (iv.len / 4 != rows * k && !PyErr_Occurred())
            PyErr_SetString(PyExc_ValueError, "itemset_records: level k must hold k items per count");
        PyBuffer_Release(&iv);
        PyBuffer_Release(&cv);
        if (PyErr_Occurred()) goto fail;
    }
    count_cache_free(&cache);
    return out;
fail:
    count_cache_free(&cache);
    Py_DECREF(out);
    return NULL;
}

/* Rules as Rule(antecedent, consequent, support, confidence, lift, count); the floats are computed
 * as crm_core.mining.rules computes them with numpy (the same IEEE operations, in the same order). */
static PyObject *fm_rule_records(PyObject *module, PyObject *args) {
    (void)module;
    PyObject *block_list, *labels, *cls;
    long long n_baskets;
    if (!PyArg_ParseTuple(args, "O!O!LO:rule_records", &PyList_Type, &block_list, &PyTuple_Type, &labels,
                          &n_baskets, &cls))
        return NULL;
    if (check_record_class(cls, 6) < 0) return NULL;
    if (n_baskets < 1) {
        PyErr_SetString(PyExc_ValueError, "rule_records: n_baskets must be >= 1");
        return NULL;
    }
    PyObject *out = PyList_New(0);
    if (out == NULL) return NULL;
    double n = (double)n_baskets;
    CountCache cache = {NULL, NULL, 0, 0};
    Py_ssize_t n_labels = PyTuple_GET_SIZE(labels);
    for (Py_ssize_t b = 0; b < PyList_GET_SIZE(block_list); b++) {
        PyObject *block = PyList_GET_ITEM(block_list, b);
        Py_ssize_t length;
        PyObject *arrays[5];
        if (!PyTuple_Check(block)) {
            PyErr_SetString(PyExc_TypeError, "rule_records: each block must be a tuple");
            goto fail;
        }
        if (!PyArg_ParseTuple(block, "nOOOOO", &length, &arrays[0], &arrays[1], &arrays[2], &arrays[3], &arrays[4]))
            goto fail;
        Py_buffer views[5];
        int held = 0;
        for (; held < 5; held++)
            if (get_int_buffer(arrays[held], &views[held], held < 2 ? 4 : 8, "rule block", 0) < 0) break;
        if (held == 5) {
            Py_ssize_t rows = views[1].len / 4;
            const int32_t *ante = views[0].buf, *cons = views[1].buf;
            const int64_t *count = views[2].buf, *ante_count = views[3].buf, *cons_count = views[4].buf;
            if (length < 0 || views[0].len / 4 != rows * length || views[2].len / 8 != rows ||
                views[3].len / 8 != rows || views[4].len / 8 != rows) {
                PyErr_SetString(PyExc_ValueError, "rule_records: a block's arrays must have one row per rule");
            } else {
                for (Py_ssize_t r = 0; r < rows; r++) {
                    if (cons[r] < 0 || cons[r] >= n_labels || ante_count[r] == 0) {
                        PyErr_SetString(PyExc_ValueError, "rule_records: consequent or antecedent count out of range");
                        break;
                    }
                    double confidence = (double)count[r] / (double)ante_count[r];
                    double lift = confidence / ((double)cons_count[r] / n);
                    PyObject *values[6] = {label_tuple(labels, ante + r * length, length),
                                           Py_NewRef(PyTuple_GET_ITEM(labels, cons[r])),
                                           NULL,
                                           PyFloat_FromDouble(confidence),
                                           PyFloat_FromDouble(lift),
                                           NULL};
                    count_objects(&cache, count[r], n, &values[5], &values[2]);
                    PyObject *record = new_record((PyTypeObject *)cls, values, 6);
                    int ok = record != NULL && PyList_Append(out, record) == 0;
                    Py_XDECREF(record);
                    if (!ok) break;
                }
            }
        }
        for (int i = 0; i < held; i++) PyBuffer_Release(&views[i]);
        if (PyErr_Occurred()) goto fail;
    }
    count_cache_free(&cache);
    return out;
fail:
    count_cache_free(&cache);
    Py_DECREF(out);
    return NULL;
}

/* ---------------------------------------------------------------------------------------------
 * rules_json: the text json.dumps(..., ensure_ascii=False) gives for format_rules' JSON objects.
 * ------------------------------------------------------------------------------------------- */

typedef struct {
    char *data;
    size_t len, cap;
} Text;

static int text_put(Text *T, const char *s, size_t n) {
    if (T->len + n > T->cap) {
        size_t cap = T->cap ? T->cap : 4096;
        while (cap < T->len + n) cap *= 2;
        char *grown = realloc(T->data, cap);
        if (grown == NULL) return ERR_NOMEM;
        T->data = grown;
        T->cap = cap;
    }
    memcpy(T->data + T->len, s, n);
    T->len += n;
    return OK;
}

#define TEXT_LIT(T, s) text_put((T), (s), sizeof(s) - 1)

/* A str as the json module writes it without ensure_ascii: quoted, with '"', '\\' and the control
 * characters below U+0020 escaped (\n, \r, \t, \b, \f, else \u00xx), everything else as is.
 * ERR_VALUE when the value is not an exact str, or has no UTF-8 form (a lone surrogate): the caller then
 * leaves the whole text to the json module. */
static int text_json_str(Text *T, PyObject *value) {
    if (!PyUnicode_CheckExact(value)) return ERR_VALUE;
    Py_ssize_t n;
    const char *s = PyUnicode_AsUTF8AndSize(value, &n);
    if (s == NULL) {
        PyErr_Clear();
        return ERR_VALUE;
    }
    if (TEXT_LIT(T, "\"")) return ERR_NOMEM;
    Py_ssize_t run = 0; /* start of the bytes not yet written */
    for (Py_ssize_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\') continue;
        char escape[7] = {'\\', 0, 0, 0, 0, 0, 0};
        size_t length = 2;
        switch (c) {
        case '"': escape[1] = '"'; break;
        case '\\': escape[1] = '\\'; break;
        case '\n': escape[1] = 'n'; break;
        case '\r': escape[1] = 'r'; break;
        case '\t': escape[1] = 't'; break;
        case '\b': escape[1] = 'b'; break;
        case '\f': escape[1] = 'f'; break;
        default:
            memcpy(escape + 1, "u00", 3);
            escape[4] = "0123456789abcdef"[c >> 4];
            escape[5] = "0123456789abcdef"[c & 15];
            length = 6;
        }
        if (text_put(T, s + run, (size_t)(i - run)) || text_put(T, escape, length)) return ERR_NOMEM;
        run = i + 1;
    }
    if (text_put(T, s + run, (size_t)(n - run)) || TEXT_LIT(T, "\"")) return ERR_NOMEM;
    return OK;
}

/* A float as json writes it (float.__repr__, or NaN / Infinity / -Infinity); ERR_VALUE when not an exact float. */
static int text_json_float(Text *T, PyObject *value) {
    if (!PyFloat_CheckExact(value)) return ERR_VALUE;
    double x = PyFloat_AS_DOUBLE(value);
    if (x != x) return TEXT_LIT(T, "NaN");
    if (x == Py_HUGE_VAL) return TEXT_LIT(T, "Infinity");
    if (x == -Py_HUGE_VAL) return TEXT_LIT(T, "-Infinity");
    char *repr = PyOS_double_to_string(x, 'r', 0, Py_DTSF_ADD_DOT_0, NULL);
    if (repr == NULL) return ERR_NOMEM;
    int err = text_put(T, repr, strlen(repr));
    PyMem_Free(repr);
    return err;
}

/* An int as json writes it (int.__repr__); ERR_VALUE when not an exact int that fits in 64 bits. */
static int text_json_int(Text *T, PyObject *value) {
    if (!PyLong_CheckExact(value)) return ERR_VALUE;
    int overflow = 0;
    long long v = PyLong_AsLongLongAndOverflow(value, &overflow);
    if (overflow || (v == -1 && PyErr_Occurred())) {
        PyErr_Clear();
        return ERR_VALUE;
    }
    char digits[32];
    int length = snprintf(digits, sizeof digits, "%lld", v);
    return text_put(T, digits, (size_t)length);
}

/* One record: {"antecedent": [...], "consequent": ..., "support": ..., "confidence": ..., "lift": ...,
 * "count": ...}, with json.dumps' default separators. */
static int text_json_rule(Text *T, PyObject *rule) {
    if (!PyTuple_Check(rule) || PyTuple_GET_SIZE(rule) != 6) return ERR_VALUE;
    PyObject *antecedent = PyTuple_GET_ITEM(rule, 0);
    if (!PyTuple_Check(antecedent)) return ERR_VALUE;
    int err = TEXT_LIT(T, "{\"antecedent\": [");
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(antecedent) && err == OK; i++) {
        if (i > 0) err = TEXT_LIT(T, ", ");
        if (err == OK) err = text_json_str(T, PyTuple_GET_ITEM(antecedent, i));
    }
    if (err == OK) err = TEXT_LIT(T, "], \"consequent\": ");
    if (err == OK) err = text_json_str(T, PyTuple_GET_ITEM(rule, 1));
    if (err == OK) err = TEXT_LIT(T, ", \"support\": ");
    if (err == OK) err = text_json_float(T, PyTuple_GET_ITEM(rule, 2));
    if (err == OK) err = TEXT_LIT(T, ", \"confidence\": ");
    if (err == OK) err = text_json_float(T, PyTuple_GET_ITEM(rule, 3));
    if (err == OK) err = TEXT_LIT(T, ", \"lift\": ");
    if (err == OK) err = text_json_float(T, PyTuple_GET_ITEM(rule, 4));
    if (err == OK) err = TEXT_LIT(T, ", \"count\": ");
    if (err == OK) err = text_json_int(T, PyTuple_GET_ITEM(rule, 5));
    if (err == OK) err = TEXT_LIT(T, "}");
    return err;
}

static PyObject *fm_rules_json(PyObject *module, PyObject *rules) {
    (void)module;
    if (!PyList_Check(rules)) Py_RETURN_NONE;
    Text T = {NULL, 0, 0};
    int err = TEXT_LIT(&T, "[");
    for (Py_ssize_t r = 0; r < PyList_GET_SIZE(rules) && err == OK; r++) {
        if (r > 0) err = TEXT_LIT(&T, ", ");
        if (err == OK) err = text_json_rule(&T, PyList_GET_ITEM(rules, r));
    }
    if (err == OK) err = TEXT_LIT(&T, "]");
    PyObject *text = NULL;
    if (err == OK) text = PyUnicode_DecodeUTF8(T.data, (Py_ssize_t)T.len, "strict");
    free(T.data);
    if (err == ERR_NOMEM) return PyErr_NoMemory();
    if (err != OK) Py_RETURN_NONE; /* a value json.dumps writes otherwise: the caller's json path */
    return text;
}

/* ---------------------------------------------------------------------------------------------
 * The module.
 * ------------------------------------------------------------------------------------------- */

static PyMethodDef fastmine_methods[] = {
    {"collect", fm_collect, METH_O,
     "collect(rows) -> (labels, codes, indptr) numbered by first appearance, or None for the general path"},
    {"read_simple", fm_read_simple, METH_VARARGS,
     "read_simple(data, sep) -> (labels, codes, indptr) numbered by first appearance, or None for read_baskets"},
    {"finish", fm_finish, METH_VARARGS, "finish(codes, indptr, rank) -> codes kept: recode, sort, drop repeats"},
    {"mine", fm_mine, METH_VARARGS,
     "mine(codes, indptr, n_items, min_count, max_len, frequency_order, budget) -> [(items, counts) per length]"},
    {"rules", fm_rules, METH_VARARGS,
     "rules(levels, n_baskets, min_confidence, min_lift) -> [(antecedents, consequents, counts, "
     "antecedent_counts, consequent_counts) per antecedent length]"},
    {"itemset_records", fm_itemset_records, METH_VARARGS,
     "itemset_records(levels, labels, n_baskets, cls) -> [cls(items, count, support)]"},
    {"rule_records", fm_rule_records, METH_VARARGS,
     "rule_records([(length, antecedents, consequents, counts, antecedent_counts, consequent_counts)], labels, "
     "n_baskets, cls) -> [cls(antecedent, consequent, support, confidence, lift, count)]"},
    {"rules_json", fm_rules_json, METH_O,
     "rules_json(rules) -> format_rules' JSON text, as json.dumps(ensure_ascii=False) writes it, or None when "
     "a value is not a plain str, float or int (the json module then writes it)"},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef fastmine_module = {
    PyModuleDef_HEAD_INIT, "_fastmine", "The optional C accelerator of crm_core.mining (see _fastmine.c).", -1,
    fastmine_methods,      NULL,        NULL,
    NULL,                  NULL};

PyMODINIT_FUNC PyInit__fastmine(void) {
    if (PyType_Ready(&BufferType) < 0) return NULL;
    PyObject *module = PyModule_Create(&fastmine_module);
    if (module == NULL) return NULL;
    if (PyModule_AddObjectRef(module, "Buffer", (PyObject *)&BufferType) < 0) {
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
