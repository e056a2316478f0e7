/*
 * fields: per packet, the flow fields a hash sees (steering/fields.py Fields), taken from
 * the inner_raw IP layer where a mask says so and from the outer layer elsewhere; addresses
 * as 128-bit big-endian numbers in two 64-bit halves (IPv4 in the low 32 bits).
 *
 * Why in C: steer needs these fields for up to three layer choices a batch (the NIC's, the
 * flow dissector's, the innermost for the flow table). In NumPy each choice is ~22 passes
 * (a where() per field, the address halves, the ports test), ~40 ns a packet against a
 * budget of ~650 ns for all of steer; here one pass. fields.py keeps the NumPy definition
 * (select_numpy), and tests/test_steer.py checks the two agree on real tables.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

/* Input columns of one IP layer, in this order (fields.py _LAYER_IN). */
enum { I_VER, I_SRC4, I_DST4, I_SRC6, I_DST6, I_PROTO, I_SPORT, I_DPORT, I_L4_OFF, I_IS_FRAG,
       I_FLOW_LABEL, NIN };
static const Py_ssize_t IN_ITEM[NIN] = {1, 4, 4, 16, 16, 1, 2, 2, 4, 1, 4};
/* Output columns (Fields order). */
enum { O_VER, O_SRC_HI, O_SRC_LO, O_DST_HI, O_DST_LO, O_PROTO, O_SPORT, O_DPORT,
       O_HAS_PORTS, O_FLOW_LABEL, NOUT };
static const Py_ssize_t OUT_ITEM[NOUT] = {1, 8, 8, 8, 8, 1, 2, 2, 1, 4};

typedef struct {
    const uint8_t *ver, *src6, *dst6, *proto, *is_frag;
    const uint32_t *src4, *dst4, *flow_label;
    const uint16_t *sport, *dport;
    const int32_t *l4_off;
} In;

static void in_cols(In *L, Py_buffer *v) {
    L->ver = v[I_VER].buf;
    L->src4 = v[I_SRC4].buf;
    L->dst4 = v[I_DST4].buf;
    L->src6 = v[I_SRC6].buf;
    L->dst6 = v[I_DST6].buf;
    L->proto = v[I_PROTO].buf;
    L->sport = v[I_SPORT].buf;
    L->dport = v[I_DPORT].buf;
    L->l4_off = v[I_L4_OFF].buf;
    L->is_frag = v[I_IS_FRAG].buf;
    L->flow_label = v[I_FLOW_LABEL].buf;
}

static inline uint64_t be64(const uint8_t *b) {
    uint64_t w = 0;
    for (int k = 0; k < 8; k++) w = (w << 8) | b[k];
    return w;
}

/* TCP, UDP, SCTP: the protocols whose first four payload bytes are the ports (fields.py
 * PORT_PROTOS). */
static inline int port_proto(unsigned p) { return p == 6 || p == 17 || p == 132; }

/* fields(outer_cols, inner_cols, mask, out_cols): mask is n bools (True: inner_raw). */
static PyObject *fields(PyObject *self, PyObject *args) {
    PyObject *oseq, *iseq, *mobj, *dseq;
    Py_buffer v[2 * NIN + 1 + NOUT];
    (void)self;
    if (!PyArg_ParseTuple(args, "OOOO", &oseq, &iseq, &mobj, &dseq)) return NULL;
    if (!PyTuple_Check(oseq) || !PyTuple_Check(iseq) || !PyTuple_Check(dseq) ||
        PyTuple_GET_SIZE(oseq) != NIN || PyTuple_GET_SIZE(iseq) != NIN ||
        PyTuple_GET_SIZE(dseq) != NOUT) {
        PyErr_SetString(PyExc_ValueError, "fields: tuples of 11, 11 and 10 arrays");
        return NULL;
    }
    const int total = 2 * NIN + 1 + NOUT;
    int got = 0, ok = 1;
    Py_ssize_t n = -1;
    for (; got < total; got++) {
        PyObject *o;
        Py_ssize_t item;
        int flags = PyBUF_C_CONTIGUOUS;
        if (got < NIN) {
            o = PyTuple_GET_ITEM(oseq, got);
            item = IN_ITEM[got];
        } else if (got < 2 * NIN) {
            o = PyTuple_GET_ITEM(iseq, got - NIN);
            item = IN_ITEM[got - NIN];
        } else if (got == 2 * NIN) {
            o = mobj;
            item = 1;
        } else {
            o = PyTuple_GET_ITEM(dseq, got - 2 * NIN - 1);
            item = OUT_ITEM[got - 2 * NIN - 1];
            flags |= PyBUF_WRITABLE;
        }
        if (PyObject_GetBuffer(o, &v[got], flags) < 0) {
            ok = -1;
            break;
        }
        if (n < 0) n = v[got].len / item;
        if (v[got].len != n * item) {
            got++;
            ok = 0;
            break;
        }
    }
    if (ok != 1) {
        for (int k = 0; k < got; k++) PyBuffer_Release(&v[k]);
        if (ok == 0) PyErr_SetString(PyExc_ValueError, "fields: column sizes do not match");
        return NULL;
    }
    In layer[2];
    in_cols(&layer[0], v);
    in_cols(&layer[1], v + NIN);
    const uint8_t *mask = v[2 * NIN].buf;
    Py_buffer *d = v + 2 * NIN + 1;
    uint8_t *ver = d[O_VER].buf, *proto = d[O_PROTO].buf, *has_ports = d[O_HAS_PORTS].buf;
    uint64_t *shi = d[O_SRC_HI].buf, *slo = d[O_SRC_LO].buf;
    uint64_t *dhi = d[O_DST_HI].buf, *dlo = d[O_DST_LO].buf;
    uint16_t *sport = d[O_SPORT].buf, *dport = d[O_DPORT].buf;
    uint32_t *label = d[O_FLOW_LABEL].buf;
    for (Py_ssize_t i = 0; i < n; i++) {
        const In *L = &layer[mask[i] != 0];
        unsigned vv = L->ver[i], p = L->proto[i];
        ver[i] = (uint8_t)vv;
        /* IPv4 rows take their 32-bit address whatever the IPv6 columns hold (a deeper
         * layer can keep a stale IPv6 address under a later IPv4 header). */
        if (vv == 4) {
            shi[i] = 0;
            slo[i] = L->src4[i];
            dhi[i] = 0;
            dlo[i] = L->dst4[i];
        } else {
            shi[i] = be64(L->src6 + 16 * i);
            slo[i] = be64(L->src6 + 16 * i + 8);
            dhi[i] = be64(L->dst6 + 16 * i);
            dlo[i] = be64(L->dst6 + 16 * i + 8);
        }
        proto[i] = (uint8_t)p;
        sport[i] = L->sport[i];
        dport[i] = L->dport[i];
        has_ports[i] = (uint8_t)(port_proto(p) && L->l4_off[i] != 0 && !L->is_frag[i]);
        label[i] = L->flow_label[i];
    }
    for (int k = 0; k < total; k++) PyBuffer_Release(&v[k]);
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"fields", fields, METH_VARARGS, "Flow fields per packet from the outer or inner layer."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef moddef = {
    PyModuleDef_HEAD_INIT, "_fields", "Flow fields per packet, from a chosen IP layer.", -1,
    methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__fields(void) { return PyModule_Create(&moddef); }
