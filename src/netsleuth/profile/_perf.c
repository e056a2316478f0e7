/*
 * The three things `profile` cannot do from Python: the perf_event_open system call, and
 * the ordered loads and stores on the mmap'ed ring's control page.
 *
 * perf_event_open has no libc wrapper and its number differs per architecture
 * (__NR_perf_event_open from <sys/syscall.h>); ctypes would need the number hard-coded.
 *
 * The ring is shared with the kernel, which writes records and then publishes data_head.
 * User space must load data_head with acquire semantics before reading the records, and
 * store data_tail with release semantics after it has read them, so the kernel never
 * overwrites a record still being copied. The pairing is described in
 * kernel/events/ring_buffer.c (barriers A-D) and implemented for perf itself in
 * tools/include/linux/ring_buffer.h (ring_buffer_read_head: smp_load_acquire;
 * ring_buffer_write_tail: smp_store_release); the GCC/Clang __atomic builtins give the
 * same orderings on every architecture. Python has no atomics, hence this file.
 *
 * attr_layout() reports where the system's <linux/perf_event.h> puts the fields and flag
 * bits that netsleuth.profile.abi writes by hand, so a test holds the two equal.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <linux/perf_event.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

/* Offsets of data_head and data_tail in struct perf_event_mmap_page. */
#define HEAD_OFF offsetof(struct perf_event_mmap_page, data_head)
#define TAIL_OFF offsetof(struct perf_event_mmap_page, data_tail)

static PyObject *perf_event_open(PyObject *Py_UNUSED(self), PyObject *args) {
    Py_buffer attr;
    int pid, cpu, group_fd;
    unsigned long flags;
    if (!PyArg_ParseTuple(args, "y*iiik", &attr, &pid, &cpu, &group_fd, &flags))
        return NULL;
    /* The attr's own size field says how much the kernel reads: refuse a buffer that does
     * not hold that many bytes instead of letting the kernel read past it. */
    uint32_t size = 0;
    if (attr.len >= 8)
        memcpy(&size, (const char *)attr.buf + 4, 4);
    if (attr.len < 8 || size != (uint32_t)attr.len) {
        PyBuffer_Release(&attr);
        PyErr_SetString(PyExc_ValueError, "perf_event_attr: size field differs from length");
        return NULL;
    }
    long fd;
    Py_BEGIN_ALLOW_THREADS
    fd = syscall(__NR_perf_event_open, attr.buf, pid, cpu, group_fd, flags);
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&attr);
    if (fd < 0)
        return PyErr_SetFromErrno(PyExc_OSError);
    return PyLong_FromLong(fd);
}

static int control_page(Py_buffer *page) {
    if (page->len < (Py_ssize_t)(TAIL_OFF + 8)) {
        PyErr_SetString(PyExc_ValueError, "buffer smaller than perf_event_mmap_page");
        return -1;
    }
    if (((uintptr_t)page->buf & 7) != 0) {
        PyErr_SetString(PyExc_ValueError, "perf_event_mmap_page not 8-byte aligned");
        return -1;
    }
    return 0;
}

static PyObject *read_head(PyObject *Py_UNUSED(self), PyObject *args) {
    Py_buffer page;
    if (!PyArg_ParseTuple(args, "w*", &page))
        return NULL;
    if (control_page(&page) < 0) {
        PyBuffer_Release(&page);
        return NULL;
    }
    uint64_t head = __atomic_load_n((uint64_t *)((char *)page.buf + HEAD_OFF), __ATOMIC_ACQUIRE);
    PyBuffer_Release(&page);
    return PyLong_FromUnsignedLongLong(head);
}

static PyObject *write_tail(PyObject *Py_UNUSED(self), PyObject *args) {
    Py_buffer page;
    unsigned long long tail;
    if (!PyArg_ParseTuple(args, "w*K", &page, &tail))
        return NULL;
    if (control_page(&page) < 0) {
        PyBuffer_Release(&page);
        return NULL;
    }
    __atomic_store_n((uint64_t *)((char *)page.buf + TAIL_OFF), (uint64_t)tail, __ATOMIC_RELEASE);
    PyBuffer_Release(&page);
    Py_RETURN_NONE;
}

static uint64_t flags_word(struct perf_event_attr *a) {
    uint64_t w;
    memcpy(&w, (char *)a + offsetof(struct perf_event_attr, read_format) + 8, 8);
    return w;
}

#define FLAG(name)                                                                           \
    do {                                                                                     \
        struct perf_event_attr a;                                                            \
        memset(&a, 0, sizeof a);                                                             \
        a.name = 1;                                                                          \
        PyObject *v = PyLong_FromUnsignedLongLong(flags_word(&a));                          \
        if (v == NULL || PyDict_SetItemString(bits, #name, v) < 0) {                         \
            Py_XDECREF(v);                                                                   \
            goto fail;                                                                       \
        }                                                                                    \
        Py_DECREF(v);                                                                        \
    } while (0)

#define OFFSET(name)                                                                         \
    do {                                                                                     \
        PyObject *v = PyLong_FromSize_t(offsetof(struct perf_event_attr, name));             \
        if (v == NULL || PyDict_SetItemString(offsets, #name, v) < 0) {                      \
            Py_XDECREF(v);                                                                   \
            goto fail;                                                                       \
        }                                                                                    \
        Py_DECREF(v);                                                                        \
    } while (0)

static PyObject *attr_layout(PyObject *Py_UNUSED(self), PyObject *Py_UNUSED(noargs)) {
    PyObject *offsets = PyDict_New(), *bits = PyDict_New();
    if (offsets == NULL || bits == NULL)
        goto fail;
    OFFSET(type);
    OFFSET(size);
    OFFSET(config);
    OFFSET(sample_freq);
    OFFSET(sample_type);
    OFFSET(read_format);
    OFFSET(wakeup_watermark);
    OFFSET(sample_max_stack);
    FLAG(disabled);
    FLAG(exclude_user);
    FLAG(freq);
    FLAG(watermark);
    FLAG(exclude_callchain_user);
    return Py_BuildValue("{sNsNsnsnsn}", "offsets", offsets, "flags", bits, "head",
                         (Py_ssize_t)HEAD_OFF, "tail", (Py_ssize_t)TAIL_OFF, "data_offset",
                         (Py_ssize_t)offsetof(struct perf_event_mmap_page, data_offset));
fail:
    Py_XDECREF(offsets);
    Py_XDECREF(bits);
    return NULL;
}

static PyMethodDef methods[] = {
    {"perf_event_open", perf_event_open, METH_VARARGS,
     "perf_event_open(attr, pid, cpu, group_fd, flags) -> fd; OSError with errno."},
    {"read_head", read_head, METH_VARARGS, "data_head of a mapped ring, load-acquire."},
    {"write_tail", write_tail, METH_VARARGS, "Store data_tail of a mapped ring, store-release."},
    {"attr_layout", attr_layout, METH_NOARGS,
     "Field offsets and flag bits of the system's struct perf_event_attr."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_perf", NULL, -1, methods,
                                    NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__perf(void) { return PyModule_Create(&module); }
