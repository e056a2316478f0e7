/*
 * trains: the fragment audit's datagram instances, one pass over a batch's fragments sorted
 * by reassembly key (arrival order within a key), as the tracker (fragments.py Datagram)
 * would see them fragment by fragment: a datagram opens at a key's fragment, takes the
 * next ones, and is complete once its covered bytes leave no hole from 0 to the end the
 * MF=0 fragments gave (Datagram.complete; Linux ip_frag_queue/ip_frag_reasm free the queue
 * then, so the key's next fragment opens a new datagram). For each complete datagram the
 * verdicts Datagram's _finish would reach are computed here too: overlap (RFC 5722 for
 * IPv6), only exact duplicates, inconsistent ends, and whether the overlap policies of
 * real stacks build different payloads (reassembly.py policy_groups, with its rules given
 * as reassembly.rule_table's masks). Datagrams of more than MAX_FRAGS fragments are left
 * to the tracker (TOO_BIG), which decides exactly.
 *
 * Why in C: overlapping and duplicated trains (a teardrop or FragmentSmack flood, a mirror
 * port that copies every fragment twice) went to the Python tracker fragment by fragment,
 * and their verdicts through NumPy reassembly per policy: ~20-100 us a datagram, 20-150 k
 * packets/s. The walk and the byte compares here cost well under a microsecond a fragment.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

/* Instance flags (fragments.py reads the same bits). */
enum {
    COMPLETE = 1,
    OVERLAP = 2,
    DUP_ONLY = 4,
    INCONSISTENT = 8,
    CONFLICT = 16,
    TOO_BIG = 32,
    STALE = 64,
};
enum { MAX_FRAGS = 16 }; /* at most 120 pairs of byte compares a datagram */
enum { MAX_RULES = 16 };

typedef struct {
    const uint8_t *first, *last, *buf;
    const int64_t *off, *end, *data, *size, *ts;
    int64_t timeout;
    Py_ssize_t buflen;
    const uint16_t *rules; /* reassembly.rule_table() */
    Py_ssize_t nrules;
} Cols;

static int sign(int64_t a, int64_t b) { return (a > b) - (a < b) + 1; }

/* Whether the policies build different payloads from the data fragments idx[0..nd-1]
 * (arrival order), as reassembly.reassemble does byte by byte: a byte no fragment held
 * gets the first fragment covering it; a later one covering it takes it where the policy's
 * rule says the new fragment overwrites the byte's owner. The bytes between two
 * consecutive fragment edges are covered by the same fragments, so they share their owner
 * under every policy: two policies build the same payload when, span by span, their
 * owners are the same fragment or hold the same bytes there. */
static int conflict(const Cols *c, const Py_ssize_t *idx, int nd) {
    int64_t edge[2 * MAX_FRAGS];
    int ne = 0;
    for (int k = 0; k < nd; k++) {
        int64_t lo = c->off[idx[k]], hi = lo + c->size[idx[k]];
        for (int p = 0; p < 2; p++) {
            int64_t v = p ? hi : lo;
            int j = ne++;
            for (; j > 0 && edge[j - 1] > v; j--) edge[j] = edge[j - 1]; /* insertion sort */
            edge[j] = v;
        }
    }
    int8_t owner[MAX_RULES][2 * MAX_FRAGS]; /* per policy, per span: fragment k or -1 */
    for (int r = 0; r < c->nrules; r++) {
        for (int x = 0; x + 1 < ne; x++) {
            int8_t own = -1;
            if (edge[x] < edge[x + 1]) {
                for (int k = 0; k < nd; k++) {
                    const Py_ssize_t i = idx[k];
                    if (c->off[i] > edge[x] || c->off[i] + c->size[i] < edge[x + 1]) continue;
                    if (own >= 0) {
                        const Py_ssize_t o = idx[own];
                        int bit = 3 * sign(c->off[i], c->off[o]) +
                                  sign(c->off[i] + c->size[i], c->off[o] + c->size[o]);
                        if (!((c->rules[r] >> bit) & 1)) continue;
                    }
                    own = (int8_t)k;
                }
            }
            owner[r][x] = own;
        }
    }
    for (int r = 1; r < c->nrules; r++) {
        for (int x = 0; x + 1 < ne; x++) {
            int a = owner[0][x], b = owner[r][x];
            if (a == b) continue;
            const Py_ssize_t ia = idx[a], ib = idx[b];
            const uint8_t *pa = c->buf + c->data[ia] + (edge[x] - c->off[ia]);
            const uint8_t *pb = c->buf + c->data[ib] + (edge[x] - c->off[ib]);
            if (memcmp(pa, pb, (size_t)(edge[x + 1] - edge[x])) != 0) return 1;
        }
    }
    return 0;
}

/* The verdicts of fragments s..e (inclusive), one complete datagram. A fragment's stored
 * bytes are data[i] .. data[i] + size[i] (fewer than its header claims when the capture
 * cut it); the policies and the overlap test see those bytes, as the tracker stores them. */
static int verdicts(const Cols *c, Py_ssize_t s, Py_ssize_t e) {
    int flags = COMPLETE, has_last = 0, overlap = 0, dup_only = 1, agree = 1, nd = 0;
    int64_t min_last = 0, max_last = 0, reach = INT64_MIN, reach_all = INT64_MIN;
    Py_ssize_t idx[MAX_FRAGS]; /* the data fragments, in arrival order */
    for (Py_ssize_t i = s; i <= e; i++) {
        int64_t stored_end = c->off[i] + c->size[i];
        if (stored_end > reach_all) reach_all = stored_end;
        if (c->size[i] > 0) {
            idx[nd++] = i;
            if (stored_end > reach) reach = stored_end;
        }
        if (c->last[i]) {
            if (!has_last || stored_end < min_last) min_last = stored_end;
            if (!has_last || stored_end > max_last) max_last = stored_end;
            has_last = 1;
        }
    }
    if (nd == 0) reach = reach_all;
    if (has_last && (max_last != min_last || reach > min_last)) flags |= INCONSISTENT;
    for (Py_ssize_t a = s; a <= e; a++) {
        if (c->size[a] <= 0) continue;
        for (Py_ssize_t b = a + 1; b <= e; b++) {
            if (c->size[b] <= 0) continue;
            int64_t lo = c->off[a] > c->off[b] ? c->off[a] : c->off[b];
            int64_t ea = c->off[a] + c->size[a], eb = c->off[b] + c->size[b];
            int64_t hi = ea < eb ? ea : eb;
            if (lo >= hi) continue;
            overlap = 1;
            const uint8_t *pa = c->buf + c->data[a] + (lo - c->off[a]);
            const uint8_t *pb = c->buf + c->data[b] + (lo - c->off[b]);
            int same = memcmp(pa, pb, (size_t)(hi - lo)) == 0;
            if (!(same && c->off[a] == c->off[b] && c->size[a] == c->size[b])) dup_only = 0;
            if (!same) agree = 0;
        }
    }
    if (!overlap) return flags;
    flags |= OVERLAP;
    if (dup_only) return flags | DUP_ONLY;
    /* Overlapping fragments that agree byte for byte leave every policy the same payload. */
    if (!agree && conflict(c, idx, nd)) flags |= CONFLICT;
    return flags;
}

/* Add [lo, hi) to the sorted, merged ranges cs/ce (touching ranges merge, as
 * Datagram._cover does). There is room: at most one range a fragment, MAX_FRAGS. */
static Py_ssize_t cover(int64_t *cs, int64_t *ce, Py_ssize_t n, int64_t lo, int64_t hi) {
    Py_ssize_t w = 0, at = -1;
    int64_t ks[MAX_FRAGS + 1], ke[MAX_FRAGS + 1];
    for (Py_ssize_t j = 0; j < n; j++) {
        if (ce[j] < lo || cs[j] > hi) {
            if (cs[j] > hi && at < 0) at = w++;
            ks[w] = cs[j];
            ke[w] = ce[j];
            w++;
            continue;
        }
        if (cs[j] < lo) lo = cs[j];
        if (ce[j] > hi) hi = ce[j];
    }
    if (at < 0) at = w++;
    ks[at] = lo;
    ke[at] = hi;
    memcpy(cs, ks, (size_t)w * sizeof *cs);
    memcpy(ce, ke, (size_t)w * sizeof *ce);
    return w;
}

/* Walk the fragments; iid[i] <- the instance of fragment i, flags[k] <- instance k's flags.
 * An instance still open at its key's end lacks COMPLETE; one cut short by TOO_BIG takes
 * the key's remaining fragments. STALE: its fragments' timestamps lie more than the timeout
 * apart (to a reassembler, the earlier part expired first). Returns the instances. */
static Py_ssize_t walk(const Cols *c, Py_ssize_t n, int64_t *iid, uint8_t *flags) {
    Py_ssize_t ni = 0, s = 0, ncov = 0;
    int64_t cs[MAX_FRAGS], ce[MAX_FRAGS], last_end = -1, t_min = 0, t_max = 0;
    int open = 0, stuck = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        if (c->first[i]) stuck = 0;
        if (c->first[i] || !open) {
            if (!stuck) {
                flags[ni] = 0;
                s = i;
                ncov = 0;
                last_end = -1;
                t_min = t_max = c->ts[i];
                ni++;
                open = 1;
            }
        }
        iid[i] = ni - 1;
        if (stuck) continue;
        if (i - s + 1 > MAX_FRAGS) {
            flags[ni - 1] |= TOO_BIG;
            stuck = 1;
            continue;
        }
        if (c->ts[i] < t_min) t_min = c->ts[i];
        if (c->ts[i] > t_max) t_max = c->ts[i];
        /* Unsigned: a capture's timestamps may lie anywhere in int64. */
        if ((uint64_t)t_max - (uint64_t)t_min > (uint64_t)c->timeout) flags[ni - 1] |= STALE;
        if (c->last[i] && c->end[i] > last_end) last_end = c->end[i];
        /* At most MAX_FRAGS - 1 ranges before this one (the TOO_BIG test above comes
         * first): cover has room for one more. */
        if (c->end[i] > c->off[i]) ncov = cover(cs, ce, ncov, c->off[i], c->end[i]);
        int done = last_end <= 0 ? last_end == 0 : ncov == 1 && cs[0] == 0 && ce[0] >= last_end;
        if (done) {
            flags[ni - 1] |= (uint8_t)verdicts(c, s, i);
            open = 0;
        }
    }
    return ni;
}

/* Whether two buffers share a byte: an output that aliases an input would change the
 * checked values under the walk. */
static int overlap(const Py_buffer *a, const Py_buffer *b) {
    const char *pa = a->buf, *pb = b->buf;
    return a->len > 0 && b->len > 0 && pa < pb + b->len && pb < pa + a->len;
}

/* Whether a buffer's items are integers of `item` bytes (struct format codes, after any
 * byte-order prefix): an int32 or float64 column of the right byte length is refused,
 * not read as int64. */
static int integers(const Py_buffer *b, Py_ssize_t item) {
    const char *f = b->format ? b->format : "B";
    if (*f == '<' || *f == '=' || *f == '@' || *f == '!' || *f == '>') f++;
    if (b->itemsize != item || f[0] == '\0' || f[1] != '\0') return 0;
    const char *codes = item == 1 ? "Bb?" : item == 2 ? "Hh" : item == 4 ? "Ii" : "qQlLnN";
    return strchr(codes, f[0]) != NULL;
}

static int get(PyObject *o, Py_buffer *b, Py_ssize_t item, Py_ssize_t n, int writable) {
    int want = PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | (writable ? PyBUF_WRITABLE : 0);
    if (PyObject_GetBuffer(o, b, want) < 0) return -1;
    if (!integers(b, item)) {
        PyBuffer_Release(b);
        PyErr_Format(PyExc_ValueError, "expected a column of %zd-byte integers", item);
        return -1;
    }
    if (n >= 0 && b->len != n * item) {
        PyBuffer_Release(b);
        PyErr_SetString(PyExc_ValueError, "column sizes do not match");
        return -1;
    }
    return 0;
}

/* Whether any of the buffers from `out` on shares memory with another buffer. */
static int aliased(const Py_buffer *b, Py_ssize_t n, Py_ssize_t out) {
    for (Py_ssize_t k = out; k < n; k++)
        for (Py_ssize_t j = 0; j < n; j++)
            if (j != k && overlap(&b[k], &b[j])) return 1;
    return 0;
}

/* trains(first, last, off, end, data, size, ts, timeout, buf, rules, iid, flags) ->
 * instances. first, last: uint8 (a key's first fragment; MF=0); off, end, data, size, ts:
 * int64; timeout: ns; rules: uint16, 1 to MAX_RULES policy masks; iid: int64 out; flags:
 * uint8 out, n of them. Every fragment's stored bytes must lie inside buf: a fragment that
 * does not is refused (ValueError), not clamped. */
static PyObject *trains(PyObject *self, PyObject *args) {
    enum { NARGS = 11, BUF = 7, RULES = 8, OUT = 9 };
    PyObject *o[NARGS];
    Py_buffer b[NARGS];
    static const Py_ssize_t item[NARGS] = {1, 1, 8, 8, 8, 8, 8, 1, 2, 8, 1};
    long long timeout;
    (void)self;
    if (!PyArg_ParseTuple(args, "OOOOOOOLOOOO", &o[0], &o[1], &o[2], &o[3], &o[4], &o[5], &o[6],
                          &timeout, &o[7], &o[8], &o[9], &o[10]))
        return NULL;
    Py_ssize_t n = -1, held = 0;
    for (; held < NARGS; held++) {
        Py_ssize_t want = held == BUF || held == RULES ? -1 : n;
        if (get(o[held], &b[held], item[held], want, held >= OUT) < 0) break;
        if (held == 0) n = b[0].len;
    }
    PyObject *result = NULL;
    if (held == NARGS && (b[RULES].len % 2 || b[RULES].len < 2 || b[RULES].len > 2 * MAX_RULES))
        PyErr_SetString(PyExc_ValueError, "rules: 1 to 16 uint16 policy masks");
    else if (held == NARGS && timeout < 0)
        PyErr_SetString(PyExc_ValueError, "timeout: a duration, not negative");
    else if (held == NARGS && aliased(b, NARGS, OUT))
        PyErr_SetString(PyExc_ValueError, "the outputs must not share memory with the inputs");
    else if (held == NARGS) {
        Cols c = {b[0].buf, b[1].buf, b[BUF].buf, b[2].buf,     b[3].buf,     b[4].buf,
                  b[5].buf, b[6].buf, timeout,    b[BUF].len, b[RULES].buf, b[RULES].len / 2};
        int ok = 1;
        for (Py_ssize_t i = 0; i < n && ok; i++)
            /* Offsets are below 2^32 (an IPv6 jumbogram's at most): no sum overflows. */
            ok = c.size[i] >= 0 && c.off[i] >= 0 && c.off[i] < ((int64_t)1 << 40) &&
                 c.end[i] < ((int64_t)1 << 40) &&
                 (c.size[i] == 0 ||
                  (c.data[i] >= 0 && c.size[i] <= c.buflen && c.data[i] <= c.buflen - c.size[i]));
        if (!ok)
            PyErr_SetString(PyExc_ValueError, "a fragment's bytes lie outside the buffer");
        else
            result = PyLong_FromSsize_t(walk(&c, n, b[OUT].buf, b[OUT + 1].buf));
    }
    for (Py_ssize_t k = 0; k < held; k++) PyBuffer_Release(&b[k]);
    return result;
}

/* gather(src, start, count, out) -> bytes written: out <- src[start[k] : start[k] +
 * count[k]] for each k in turn (the outer reassembly's rebuilt datagrams: a header, then
 * the data of each fragment in offset order). In NumPy this was an index per byte copied
 * (np.repeat and arange over every byte). A range outside src, or more bytes than out
 * holds, is refused (ValueError), not clamped. */
static PyObject *gather(PyObject *self, PyObject *args) {
    PyObject *o[4];
    Py_buffer b[4];
    static const Py_ssize_t item[4] = {1, 8, 8, 1};
    (void)self;
    if (!PyArg_ParseTuple(args, "OOOO", &o[0], &o[1], &o[2], &o[3])) return NULL;
    Py_ssize_t held = 0, n = -1;
    for (; held < 4; held++) {
        Py_ssize_t want = held == 2 ? n : -1;
        if (get(o[held], &b[held], item[held], want, held == 3) < 0) break;
        if (held == 1) {
            if (b[1].len % 8) {
                PyErr_SetString(PyExc_ValueError, "start: int64");
                held++;
                break;
            }
            n = b[1].len / 8;
        }
    }
    PyObject *result = NULL;
    if (held == 4 && aliased(b, 4, 3))
        PyErr_SetString(PyExc_ValueError, "the output must not share memory with the inputs");
    else if (held == 4) {
        const uint8_t *src = b[0].buf;
        const int64_t *start = b[1].buf, *count = b[2].buf;
        uint8_t *out = b[3].buf;
        Py_ssize_t at = 0;
        int ok = 1;
        for (Py_ssize_t k = 0; k < n; k++) {
            if (start[k] < 0 || count[k] < 0 || start[k] > b[0].len ||
                count[k] > b[0].len - start[k] || count[k] > b[3].len - at) {
                ok = 0;
                break;
            }
            at += count[k];
        }
        if (!ok)
            PyErr_SetString(PyExc_ValueError, "a range lies outside the source or the output");
        else {
            at = 0;
            for (Py_ssize_t k = 0; k < n; k++) {
                memcpy(out + at, src + start[k], (size_t)count[k]);
                at += count[k];
            }
            result = PyLong_FromSsize_t(at);
        }
    }
    for (Py_ssize_t k = 0; k < held && k < 4; k++) PyBuffer_Release(&b[k]);
    return result;
}

/* The arguments of hashes and differ, (keys, width, x, y): keys a buffer of bytes, x and
 * y columns of 8-byte integers, y written to when `out`, else as long as x. Returns -1 on a
 * parse error, else how many buffers it took (3: all; fewer: an error is set); the caller
 * releases those. */
static Py_ssize_t rows_args(PyObject *args, Py_buffer b[3], Py_ssize_t *width, int out) {
    PyObject *o[3];
    static const Py_ssize_t item[3] = {1, 8, 8};
    if (!PyArg_ParseTuple(args, "OnOO", &o[0], width, &o[1], &o[2])) return -1;
    Py_ssize_t held = 0;
    for (; held < 3; held++) {
        Py_ssize_t want = held == 2 && !out ? b[1].len / 8 : -1;
        if (get(o[held], &b[held], item[held], want, held == 2 && out) < 0) break;
    }
    return held;
}

/* The hash of one row of `width` bytes: each 8-byte word (native byte order, the last one
 * zero-filled) times its odd constant of mix, summed, then mixed down. The products are
 * independent, so they pipeline: a chain that mixed after every word (two dependent
 * multiplies a word) cost 36 ns a 118-byte key, most of the key building. Two keys that
 * differ in one word only hash apart (an odd multiplier is a bijection); keys that differ
 * in two can be made to collide (the hash is no secret, nor was the chained one), so it
 * only ever says "maybe equal": fragments.group_keys and open_among compare the keys it
 * pairs, by their bytes, in time linear in the keys whatever the collisions. */
static uint64_t row_hash(const uint8_t *row, Py_ssize_t width, const uint64_t *mix) {
    uint64_t h = 0, w;
    Py_ssize_t j = 0, whole = width / 8;
    for (; j < whole; j++) { /* a fixed-size copy: one load, where a sized one is a call */
        memcpy(&w, row + 8 * j, 8);
        h += w * mix[j];
    }
    if (width % 8) {
        w = 0;
        memcpy(&w, row + 8 * j, (size_t)(width % 8));
        h += w * mix[j];
    }
    h ^= h >> 31;
    h *= mix[0];
    return h ^ (h >> 29);
}

/* hashes(keys, width, mix, out) -> rows: out[k] <- row_hash of row k of keys (uint8,
 * rows of `width` bytes, 1 to 8 * len(mix)). fragments.key_hashes did this in NumPy, a pass
 * over every key per word (a padded copy first): 7 % of a scan of overlapping fragment
 * trains. */
static PyObject *hashes(PyObject *self, PyObject *args) {
    Py_buffer b[3];
    Py_ssize_t width;
    (void)self;
    Py_ssize_t held = rows_args(args, b, &width, 1);
    if (held < 0) return NULL;
    PyObject *result = NULL;
    if (held == 3) {
        Py_ssize_t words = b[1].len / 8, n = width > 0 ? b[0].len / width : 0;
        if (width <= 0 || width > 8 * words || b[0].len % width)
            PyErr_SetString(PyExc_ValueError, "width: 1 to 8 bytes a multiplier, dividing the keys");
        else if (b[2].len != n * 8)
            PyErr_SetString(PyExc_ValueError, "out: one uint64 a key");
        else if (aliased(b, 3, 2))
            PyErr_SetString(PyExc_ValueError, "the output must not share memory with the inputs");
        else {
            const uint8_t *keys = b[0].buf;
            const uint64_t *mix = b[1].buf;
            uint64_t *out = b[2].buf;
            for (Py_ssize_t k = 0; k < n; k++) out[k] = row_hash(keys + k * width, width, mix);
            result = PyLong_FromSsize_t(n);
        }
    }
    for (Py_ssize_t k = 0; k < held; k++) PyBuffer_Release(&b[k]);
    return result;
}

/* differ(keys, width, a, b) -> 0 or 1: whether row a[k] of keys (uint8, rows of `width`
 * bytes) differs from row b[k] for some k. fragments.group_keys asks it of the keys whose
 * hashes equal their neighbour's: gathering both sides of 108-byte keys and comparing them
 * in NumPy was a tenth of a scan of overlapping fragment trains. An index outside the rows
 * is refused (IndexError), not clamped. */
static PyObject *differ(PyObject *self, PyObject *args) {
    Py_buffer b[3];
    Py_ssize_t width;
    (void)self;
    Py_ssize_t held = rows_args(args, b, &width, 0);
    if (held < 0) return NULL;
    PyObject *result = NULL;
    if (held == 3) {
        Py_ssize_t rows = width > 0 ? b[0].len / width : 0, n = b[1].len / 8;
        const int64_t *a = b[1].buf, *c = b[2].buf;
        int bad = width <= 0 || b[0].len % width, found = 0;
        for (Py_ssize_t k = 0; k < n && !bad; k++)
            bad = a[k] < 0 || a[k] >= rows || c[k] < 0 || c[k] >= rows;
        if (bad)
            PyErr_SetString(PyExc_IndexError, "width must divide the keys; indexes inside them");
        else {
            const uint8_t *keys = b[0].buf;
            for (Py_ssize_t k = 0; k < n && !found; k++)
                found = memcmp(keys + a[k] * width, keys + c[k] * width, (size_t)width) != 0;
            result = PyLong_FromLong(found);
        }
    }
    for (Py_ssize_t k = 0; k < held; k++) PyBuffer_Release(&b[k]);
    return result;
}

/* The reassembly key's fields, in the order of `at` (fragments.KEY_ORDER), with their
 * sizes; and pack()'s columns, in the order of fragments.pack_keys's tuple. */
enum {
    K_LAYER, K_VER, K_VLAN1, K_VLAN2, K_PROTO, K_IDENT, K_SRC4, K_DST4, K_SRC6, K_DST6, K_TKIND,
    K_TKEY, K_VNI, K_TSRC4, K_TDST4, K_TSRC6, K_TDST6, K_OBS, K_SIDE, NKEY
};
static const Py_ssize_t KEY_SIZE[NKEY] = {1, 1, 2, 2, 1, 4, 4, 4, 16, 16, 1, 8, 8, 4, 4, 16, 16, 8, 2};
enum {
    C_VER, C_VLAN1, C_VLAN2, C_IFINDEX, C_IFACE, C_PKTTYPE, C_DIRECTION, C_PROTO, C_IDENT,
    C_SRC4, C_DST4, C_SRC6, C_DST6, C_TKIND, C_TKEY, C_VNI, C_TSRC4, C_TDST4, C_TSRC6, C_TDST6,
    C_OUTER_VER, NCOLS
};
/* Each column's item size, and whether it may be empty (a batch without pcapng interfaces
 * or directions: RecordBatch.iface, .direction None, read as 0). */
static const Py_ssize_t COL_ITEM[NCOLS] = {1, 2, 2, 4, 4, 1, 1, 1, 4, 4, 4, 1, 1, 1, 8, 8, 4, 4,
                                           1, 1, 1};
static const Py_ssize_t COL_WIDTH[NCOLS] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 16, 16, 1, 1, 1, 1,
                                            1, 16, 16, 1};

static inline void put_le(uint8_t *dst, uint64_t v, Py_ssize_t size) {
    for (Py_ssize_t k = 0; k < size; k++) dst[k] = (uint8_t)(v >> (8 * k));
}

static inline uint64_t col_at(const Py_buffer *b, Py_ssize_t item, Py_ssize_t r) {
    if (b->len == 0) return 0; /* an absent optional column */
    const uint8_t *p = (const uint8_t *)b->buf + r * item;
    /* Copied, not cast: a buffer need not be aligned to its item size. */
    uint8_t v8;
    uint16_t v16;
    uint32_t v32;
    uint64_t v64;
    switch (item) {
    case 1: memcpy(&v8, p, 1); return v8;
    case 2: memcpy(&v16, p, 2); return v16;
    case 4: memcpy(&v32, p, 4); return v32;
    default: memcpy(&v64, p, 8); return v64;
    }
}

/* pack(rows, columns, inner, at, width, mix, keys, out) -> rows: the reassembly key of each
 * fragment row (fragments.fragment_keys: what it writes, field for field) into `keys`
 * (uint8, `width` bytes a row), and its hash (hashes()) into `out`, in one pass over the
 * rows. The NumPy version wrote the 118-byte keys one field at a time, a strided pass over
 * every key per field: with the hashes, a sixth of a scan of overlapping fragment trains.
 * `at`: each field's offset in a key (int64, NKEY of them). A row outside the columns, a
 * field outside the width, a column of the wrong type or length are refused. */
static PyObject *pack(PyObject *self, PyObject *args) {
    PyObject *rows_o, *cols_o, *at_o, *mix_o, *keys_o, *out_o;
    Py_ssize_t width;
    int inner;
    Py_buffer rb, ab, mb, kb, ob, cb[NCOLS];
    (void)self;
    if (!PyArg_ParseTuple(args, "OOpOnOOO", &rows_o, &cols_o, &inner, &at_o, &width, &mix_o,
                          &keys_o, &out_o))
        return NULL;
    if (!PyTuple_Check(cols_o) || PyTuple_GET_SIZE(cols_o) != NCOLS) {
        PyErr_SetString(PyExc_ValueError, "columns: a tuple in _trains.c's order");
        return NULL;
    }
    /* Refused before any size is computed from it (n * width below). */
    if (width <= 0 || width > 8 * 64) {
        PyErr_SetString(PyExc_ValueError, "width: 1 to 512 bytes");
        return NULL;
    }
    PyObject *result = NULL;
    int got = 0, held = 0;
    if (get(rows_o, &rb, 8, -1, 0) < 0) return NULL;
    held++;
    Py_ssize_t n = rb.len / 8;
    if (get(at_o, &ab, 8, NKEY, 0) < 0) goto done;
    held++;
    if (get(mix_o, &mb, 8, -1, 0) < 0) goto done;
    held++;
    if (get(keys_o, &kb, 1, n * width, 1) < 0) goto done;
    held++;
    if (get(out_o, &ob, 8, n, 1) < 0) goto done;
    held++;
    Py_ssize_t table = -1;
    while (got < NCOLS) {
        int c = got;
        if (get(PyTuple_GET_ITEM(cols_o, c), &cb[c], COL_ITEM[c], -1, 0) < 0) goto done;
        got++;
        Py_ssize_t row_bytes = COL_ITEM[c] * COL_WIDTH[c], len = cb[c].len / row_bytes;
        if (cb[c].len % row_bytes) {
            PyErr_SetString(PyExc_ValueError, "a column of 16-byte rows is not whole");
            goto done;
        }
        if ((c == C_IFACE || c == C_DIRECTION) && len == 0) continue; /* absent: 0 */
        if (table < 0) table = len;
        if (len != table) {
            PyErr_SetString(PyExc_ValueError, "columns of different lengths");
            goto done;
        }
    }
    for (int c = 0; c < NCOLS; c++)
        if (overlap(&kb, &cb[c]) || overlap(&ob, &cb[c])) {
            PyErr_SetString(PyExc_ValueError, "the outputs must not share memory with the inputs");
            goto done;
        }
    const int64_t *at = ab.buf, *rows = rb.buf;
    if (width > 8 * (mb.len / 8)) {
        PyErr_SetString(PyExc_ValueError, "width: 1 to 8 bytes a multiplier");
        goto done;
    }
    for (int f = 0; f < NKEY; f++)
        if (at[f] < 0 || at[f] > width - KEY_SIZE[f]) {
            PyErr_SetString(PyExc_ValueError, "a key field outside the key's width");
            goto done;
        }
    for (Py_ssize_t k = 0; k < n; k++)
        if (rows[k] < 0 || rows[k] >= table) {
            PyErr_SetString(PyExc_IndexError, "a row outside the columns");
            goto done;
        }
    if (aliased((Py_buffer[]){rb, ab, mb, kb, ob}, 5, 3)) {
        PyErr_SetString(PyExc_ValueError, "the outputs must not share memory with the inputs");
        goto done;
    }
    /* fragment_keys copies the tunnel's IPv6 addresses for every row when any row's outer
     * layer is IPv6 (zeros where it is IPv4). */
    int outer6 = 0;
    for (Py_ssize_t k = 0; inner && k < n && !outer6; k++)
        outer6 = col_at(&cb[C_OUTER_VER], 1, rows[k]) == 6;
    uint8_t *keys = kb.buf;
    uint64_t *out = ob.buf;
    const uint64_t *mix = mb.buf;
    for (Py_ssize_t k = 0; k < n; k++) {
        Py_ssize_t r = rows[k];
        uint8_t *row = keys + k * width;
        memset(row, 0, (size_t)width);
#define PUT(F, C) put_le(row + at[F], col_at(&cb[C], COL_ITEM[C], r), KEY_SIZE[F])
        unsigned ver = (unsigned)col_at(&cb[C_VER], 1, r);
        row[at[K_LAYER]] = (uint8_t)(inner ? 1 : 0);
        row[at[K_VER]] = (uint8_t)ver;
        PUT(K_VLAN1, C_VLAN1);
        PUT(K_VLAN2, C_VLAN2);
        put_le(row + at[K_OBS],
               col_at(&cb[C_IFINDEX], 4, r) | (col_at(&cb[C_IFACE], 4, r) << 32), 8);
        put_le(row + at[K_SIDE],
               col_at(&cb[C_PKTTYPE], 1, r) | (col_at(&cb[C_DIRECTION], 1, r) << 8), 2);
        /* IPv4 reassembly is keyed by protocol too (RFC 791 section 3.2); IPv6 is not. */
        if (ver == 4) PUT(K_PROTO, C_PROTO);
        PUT(K_IDENT, C_IDENT);
        PUT(K_SRC4, C_SRC4);
        PUT(K_DST4, C_DST4);
        if (ver == 6) {
            memcpy(row + at[K_SRC6], (const uint8_t *)cb[C_SRC6].buf + 16 * r, 16);
            memcpy(row + at[K_DST6], (const uint8_t *)cb[C_DST6].buf + 16 * r, 16);
        }
        if (inner) {
            PUT(K_TKIND, C_TKIND);
            PUT(K_TKEY, C_TKEY);
            PUT(K_VNI, C_VNI);
            PUT(K_TSRC4, C_TSRC4);
            PUT(K_TDST4, C_TDST4);
            if (outer6) {
                memcpy(row + at[K_TSRC6], (const uint8_t *)cb[C_TSRC6].buf + 16 * r, 16);
                memcpy(row + at[K_TDST6], (const uint8_t *)cb[C_TDST6].buf + 16 * r, 16);
            }
        }
#undef PUT
        out[k] = row_hash(row, width, mix);
    }
    result = PyLong_FromSsize_t(n);
done:
    for (int c = 0; c < got; c++) PyBuffer_Release(&cb[c]);
    Py_buffer *bs[] = {&rb, &ab, &mb, &kb, &ob};
    for (int k = 0; k < held; k++) PyBuffer_Release(bs[k]);
    return result;
}

static PyMethodDef methods[] = {
    {"pack", pack, METH_VARARGS, "Fragment reassembly keys and their hashes, one pass."},
    {"differ", differ, METH_VARARGS, "Whether any of the paired fixed-width rows differ."},
    {"trains", trains, METH_VARARGS, "Datagram instances and their verdicts, one pass."},
    {"gather", gather, METH_VARARGS, "Byte ranges of one buffer, one after the other."},
    {"hashes", hashes, METH_VARARGS, "A 64-bit hash of each fixed-width row of bytes."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef moddef = {
    PyModuleDef_HEAD_INIT, "_trains", "The fragment audit's datagram instances.", -1, methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__trains(void) { return PyModule_Create(&moddef); }
