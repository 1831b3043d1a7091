# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False
"""The ten non-payload columns of ``events`` written straight into Arrow buffers (issue #22).

:func:`sinks.clickhouse.writer.to_arrow` built them as ten Python lists, then ten
``pa.array`` conversions (~1.8 µs a row of its ~3.6, measured warm on 5,000 learning events);
here one pass over the records fills the buffers in C and Arrow wraps them without a copy.

Same values or none: :func:`columns` returns ``None`` (and the caller runs the Python lists)
for anything whose conversion it is not sure to do exactly as ``pa.array`` does — a value of
another class than expected (``str`` for the string columns, ``int`` for the others; ``None``
included, which ``pa.array`` would make a null), an integer outside its column's range, a
string that is not valid UTF-8, more than 2 GiB of text in one column. tests/unit/
test_clickhouse_rows.py checks the tables are equal, and that every such value declines.

:func:`payloads` cuts the ``payload`` column out of one ``orjson.dumps`` of the whole batch
(see :func:`sinks.clickhouse.writer._payloads`) in one ``memchr`` pass, where Arrow's
``split_pattern`` and ``binary_join_element_wise`` took two passes and a copy each.

Built by ``setup.py`` as an optional extension, like :mod:`schemas._avrovm`.
"""

import sys

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize
from cpython.mem cimport PyMem_Free, PyMem_Malloc, PyMem_Realloc
from cpython.long cimport PyLong_AsLongLongAndOverflow
from cpython.unicode cimport PyUnicode_AsUTF8AndSize
from libc.stdint cimport int32_t, int64_t, uint16_t
from libc.string cimport memchr, memcpy

if sys.byteorder != "little":  # Arrow buffers are little-endian here
    raise ImportError("sinks.clickhouse._columns needs a little-endian host")

import pyarrow as pa

_STRING = pa.string()
_UINT16 = pa.uint16()
_UINT64 = pa.uint64()
_TS_MS = pa.timestamp("ms", tz="UTC")


class _Decline(Exception):
    """A value this module does not convert; the caller builds the columns in Python."""


cdef class _Strings:
    """A growing Arrow ``string`` column: int32 offsets and UTF-8 data."""
    cdef bytes offsets
    cdef int32_t* off
    cdef char* data
    cdef Py_ssize_t size, cap, n

    def __cinit__(self, Py_ssize_t n):
        self.n = n
        self.offsets = PyBytes_FromStringAndSize(NULL, (n + 1) * 4)
        self.off = <int32_t*>PyBytes_AS_STRING(self.offsets)
        self.off[0] = 0
        self.cap = 32 * n + 64
        self.size = 0
        self.data = <char*>PyMem_Malloc(self.cap)
        if self.data == NULL:
            raise MemoryError()

    def __dealloc__(self):
        PyMem_Free(self.data)

    cdef int put(self, Py_ssize_t i, object value) except -1:
        cdef const char* s
        cdef Py_ssize_t length
        cdef char* grown
        if type(value) is not str:
            raise _Decline
        try:
            s = PyUnicode_AsUTF8AndSize(value, &length)
        except UnicodeEncodeError:
            raise _Decline
        if self.size + length > self.cap:
            self.cap = 2 * (self.size + length)
            grown = <char*>PyMem_Realloc(self.data, self.cap)
            if grown == NULL:
                raise MemoryError()
            self.data = grown
        memcpy(self.data + self.size, s, length)
        self.size += length
        if self.size > 2147483647:
            raise _Decline
        self.off[i + 1] = <int32_t>self.size
        return 0

    cdef object array(self):
        return pa.StringArray.from_buffers(
            self.n, pa.py_buffer(self.offsets),
            pa.py_buffer(PyBytes_FromStringAndSize(self.data, self.size)))


cdef inline int64_t _int(object value, int64_t low, int64_t high) except? -1:
    """``value`` as a C integer: an exact ``int`` within ``[low, high]``, else declined."""
    cdef int overflow = 0
    cdef long long x
    if type(value) is not int:
        raise _Decline
    x = PyLong_AsLongLongAndOverflow(value, &overflow)
    if overflow or x < low or x > high:
        raise _Decline
    return x


def columns(records, rs):
    """The arrays of ``events``' first ten columns (``EVENTS_SCHEMA`` order) for
    ``records`` (``ConsumedRecord``s) and ``rs`` (their ``record`` dicts), or ``None`` when
    a value declines (module doc)."""
    cdef Py_ssize_t n = len(records), i
    cdef int64_t big = 9223372036854775807
    cdef int64_t small = -big - 1
    cdef _Strings event_id = _Strings(n), record_type = _Strings(n), agent = _Strings(n)
    cdef _Strings producer = _Strings(n), topic = _Strings(n)
    cdef bytes version = PyBytes_FromStringAndSize(NULL, n * 2)
    cdef bytes partition = PyBytes_FromStringAndSize(NULL, n * 2)
    cdef bytes occurred = PyBytes_FromStringAndSize(NULL, n * 8)
    cdef bytes offset = PyBytes_FromStringAndSize(NULL, n * 8)
    cdef bytes kafka_ts = PyBytes_FromStringAndSize(NULL, n * 8)
    cdef uint16_t* v = <uint16_t*>PyBytes_AS_STRING(version)
    cdef uint16_t* p = <uint16_t*>PyBytes_AS_STRING(partition)
    cdef int64_t* o = <int64_t*>PyBytes_AS_STRING(occurred)
    cdef int64_t* off = <int64_t*>PyBytes_AS_STRING(offset)
    cdef int64_t* k = <int64_t*>PyBytes_AS_STRING(kafka_ts)
    cdef dict r
    try:
        for i in range(n):
            rec = records[i]
            r = rs[i]
            event_id.put(i, r["event_id"])
            record_type.put(i, rec.record_type)
            v[i] = <uint16_t>_int(r.get("schema_version", 1), 0, 65535)
            agent.put(i, r.get("agent_id") or "")
            o[i] = _int(r["occurred_at"], small, big)
            producer.put(i, r.get("producer", ""))
            topic.put(i, rec.topic)
            p[i] = <uint16_t>_int(rec.partition, 0, 65535)
            off[i] = _int(rec.offset, 0, big)
            k[i] = _int(rec.timestamp_ms, small, big)
    except (_Decline, TypeError, KeyError):
        return None
    return [
        event_id.array(),
        record_type.array(),
        pa.Array.from_buffers(_UINT16, n, [None, pa.py_buffer(version)]),
        agent.array(),
        pa.Array.from_buffers(_TS_MS, n, [None, pa.py_buffer(occurred)]),
        producer.array(),
        topic.array(),
        pa.Array.from_buffers(_UINT16, n, [None, pa.py_buffer(partition)]),
        pa.Array.from_buffers(_UINT64, n, [None, pa.py_buffer(offset)]),
        pa.Array.from_buffers(_TS_MS, n, [None, pa.py_buffer(kafka_ts)]),
    ]


def payloads(bytes data, Py_ssize_t n):
    """The ``payload`` column (an Arrow ``string`` array of ``n`` JSON objects) cut out of
    ``data`` = ``orjson.dumps(list_of_n_dicts)``: ``[`` + the objects joined by ``,`` + ``]``.

    Every boundary between two objects is an occurrence of ``},{``; the commas of those
    boundaries are dropped and each object's bytes are kept exactly. Returns ``None`` when
    ``data`` holds another number of ``},{`` than ``n - 1`` (an object whose JSON contains the
    sequence itself, inside a string or a list of objects), or over 2 GiB: the caller then
    dumps row by row. Same count as ``pyarrow.compute.split_pattern`` (the pattern cannot
    overlap itself), so the same batches take this path as the Arrow one it replaces.
    """
    cdef Py_ssize_t size = len(data), k = 0, w = 0, seg
    cdef const char* src = PyBytes_AS_STRING(data)
    cdef const char* p
    cdef const char* q
    cdef const char* start
    cdef const char* end
    cdef bytes offsets, out
    cdef int32_t* off
    cdef char* dst
    if n <= 0 or size < 4 or src[0] != b'[' or src[size - 1] != b']' or size > 2147483647:
        return None
    offsets = PyBytes_FromStringAndSize(NULL, (n + 1) * 4)
    out = PyBytes_FromStringAndSize(NULL, size - 2 - (n - 1))
    off = <int32_t*>PyBytes_AS_STRING(offsets)
    dst = PyBytes_AS_STRING(out)
    off[0] = 0
    start = src + 1
    end = src + size - 1
    p = start
    while p < end:
        q = <const char*>memchr(p, b'}', end - p)
        if q == NULL:
            break
        if end - q > 2 and q[1] == b',' and q[2] == b'{':
            k += 1
            if k >= n:
                return None
            seg = q + 1 - start
            memcpy(dst + w, start, seg)
            w += seg
            off[k] = <int32_t>w
            start = q + 2
            p = start
        else:
            p = q + 1
    if k != n - 1:
        return None
    seg = end - start
    memcpy(dst + w, start, seg)
    w += seg
    off[n] = <int32_t>w
    return pa.StringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(out))
