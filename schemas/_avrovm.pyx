# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False
"""Compiled Avro binary encoder and decoder: a schema becomes a tree of typed nodes once,
and C code walks the tree per record (issue #22: the generated pure-Python fast path of
:mod:`schemas.fastcodec` had reached the interpreter's floor, ~40 µs for the largest record).

The contract is :mod:`schemas.fastcodec`'s, exactly: the same bytes and values as fastavro
(Avro spec, "Binary Encoding", https://avro.apache.org/docs/1.11.1/specification/#binary-encoding),
and whatever this code is not sure to handle as fastavro does raises :class:`Fallback` (or
the ``KeyError``/``TypeError``/``UnicodeError``/``OverflowError`` of the failed look-up or
conversion), after which :class:`schemas.codec.Codec` runs fastavro on the same input. The
checks are the generated code's, one for one: exact classes (``bool`` is not an ``int``, a
record or map is a ``dict``, an array a ``list``), ``int`` within 32 bits and ``long`` within
64, non-negative block counts and string lengths, one-byte branch indexes, booleans 0 or 1;
and on decoding, a value that would read past the end declines instead of raising.

Built by ``setup.py`` as an optional extension; without it :mod:`schemas.fastcodec` uses the
generated Python. Little-endian hosts only (doubles are copied as bytes): on any other the
module refuses to import.
"""

import sys

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.dict cimport PyDict_GetItemWithError, PyDict_SetItem
from cpython.list cimport PyList_Append
from cpython.long cimport PyLong_AsLongLongAndOverflow
from cpython.mem cimport PyMem_Free, PyMem_Malloc, PyMem_Realloc
from cpython.object cimport PyObject
from cpython.unicode cimport PyUnicode_AsUTF8AndSize, PyUnicode_DecodeUTF8
from libc.stdint cimport int64_t, uint64_t
from libc.string cimport memcpy

if sys.byteorder != "little":  # doubles are written as the host's bytes
    raise ImportError("schemas._avrovm needs a little-endian host")


from schemas.fastcodec import Fallback as _FALLBACK  # fastcodec imports this module lazily

cdef enum Kind:
    K_NULL, K_BOOL, K_INT, K_LONG, K_DOUBLE, K_STRING, K_ENUM, K_NULLABLE, K_ARRAY, K_MAP, K_RECORD

cdef object _MISSING = object()
cdef int64_t _INT_MIN = -(2 ** 31)
cdef int64_t _INT_MAX = 2 ** 31 - 1

_PRIMITIVES = {"null": K_NULL, "boolean": K_BOOL, "int": K_INT, "long": K_LONG,
               "double": K_DOUBLE, "string": K_STRING}


class Unsupported(Exception):
    """The schema uses a type this module has no node for (``float``, ``bytes``, ``fixed``,
    unions other than two branches with ``null``)."""


cdef class Node:
    """One schema node: its kind and what the kind needs (children, names, symbols)."""
    cdef int kind
    cdef int null_at
    cdef Node child
    cdef tuple names
    cdef tuple fields
    cdef tuple defaults
    cdef tuple symbols
    cdef dict index
    cdef Py_ssize_t stamp_at
    cdef bytes stamp


cdef Node _node(object schema):
    """The node of a fastavro-parsed (physical) schema; raises :class:`Unsupported`."""
    cdef Node n = Node()
    n.stamp_at = -1
    if isinstance(schema, str):
        if schema not in _PRIMITIVES:
            raise Unsupported(schema)
        n.kind = _PRIMITIVES[schema]
        return n
    if isinstance(schema, list):
        if len(schema) == 2 and "null" in schema and schema[0] != schema[1]:
            n.kind = K_NULLABLE
            n.null_at = schema.index("null")
            n.child = _node(schema[1 - n.null_at])
            return n
        raise Unsupported("union")
    if not isinstance(schema, dict):
        raise Unsupported(repr(schema))
    t = schema.get("type")
    if t == "record":
        n.kind = K_RECORD
        n.names = tuple(f["name"] for f in schema["fields"])
        n.fields = tuple(_node(f["type"]) for f in schema["fields"])
        n.defaults = tuple(f.get("default", _MISSING) for f in schema["fields"])
    elif t == "enum":
        n.kind = K_ENUM
        n.symbols = tuple(schema["symbols"])
        n.index = {s: i for i, s in enumerate(n.symbols)}
    elif t == "array":
        n.kind = K_ARRAY
        n.child = _node(schema["items"])
    elif t == "map":
        n.kind = K_MAP
        n.child = _node(schema["values"])
    else:
        return _node(t)
    return n


# ---------------------------------------------------------------------------------- encoding

cdef struct Buf:
    char* data
    Py_ssize_t size
    Py_ssize_t cap


cdef int _grow(Buf* b, Py_ssize_t need) except -1:
    cdef Py_ssize_t cap = b.cap * 2
    if cap < b.size + need:
        cap = b.size + need + 256
    cdef char* p = <char*>PyMem_Realloc(b.data, cap)
    if p == NULL:
        raise MemoryError()
    b.data = p
    b.cap = cap
    return 0


cdef inline int _put(Buf* b, const char* src, Py_ssize_t n) except -1:
    if b.size + n > b.cap:
        _grow(b, n)
    memcpy(b.data + b.size, src, n)
    b.size += n
    return 0


cdef inline int _put_z(Buf* b, uint64_t z) except -1:
    """The varint of unsigned (already zig-zagged) ``z``: at most 10 bytes."""
    if b.size + 10 > b.cap:
        _grow(b, 10)
    while z >= 0x80:
        b.data[b.size] = <char>((z & 0x7F) | 0x80)
        b.size += 1
        z >>= 7
    b.data[b.size] = <char>z
    b.size += 1
    return 0


cdef inline int _put_long(Buf* b, int64_t v) except -1:
    return _put_z(b, (<uint64_t>v << 1) ^ <uint64_t>(v >> 63))


cdef inline int _put_str(Buf* b, object v) except -1:
    """An exact ``str`` as its UTF-8 length and bytes (else Fallback)."""
    cdef const char* s
    cdef Py_ssize_t size
    if type(v) is not str:
        raise _FALLBACK
    s = PyUnicode_AsUTF8AndSize(v, &size)
    _put_z(b, <uint64_t>size << 1)
    _put(b, s, size)
    return 0


cdef int64_t _as_long(object v, bint is_int) except? -1:
    """``v`` as a C long: an exact ``int`` within 64 (``is_int``: 32) bits, else Fallback."""
    cdef int overflow = 0
    if type(v) is not int:
        raise _FALLBACK
    cdef long long x = PyLong_AsLongLongAndOverflow(v, &overflow)
    if overflow or (is_int and not _INT_MIN <= x <= _INT_MAX):
        raise _FALLBACK
    return x


cdef inline object _field(object r, bint exact, object name, object default):
    """``r[name]``, or ``r.get(name, default)`` when the field has a default."""
    cdef PyObject* found
    if exact:
        found = PyDict_GetItemWithError(r, name)
        if found != NULL:
            return <object>found
        if default is _MISSING:
            raise KeyError(name)
        return default
    if default is _MISSING:
        return r[name]
    return r.get(name, default)


cdef int _enc_record(Node n, object r, bint exact, Buf* b) except -1:
    cdef Py_ssize_t i
    cdef Node f
    for i in range(len(n.fields)):
        if i == n.stamp_at:  # the version written (codec contract)
            _put(b, PyBytes_AS_STRING(n.stamp), PyBytes_GET_SIZE(n.stamp))
            continue
        f = <Node>n.fields[i]
        _enc(f, _field(r, exact, n.names[i], n.defaults[i]), b)
    return 0


cdef int _enc(Node n, object v, Buf* b) except -1:
    cdef double d
    cdef Node c
    if n.kind == K_STRING:
        _put_str(b, v)
    elif n.kind == K_LONG or n.kind == K_INT:
        _put_long(b, _as_long(v, n.kind == K_INT))
    elif n.kind == K_NULLABLE:
        if v is None:
            _put_z(b, <uint64_t>(2 * n.null_at))
        else:
            _put_z(b, <uint64_t>(2 * (1 - n.null_at)))
            _enc(n.child, v, b)
    elif n.kind == K_DOUBLE:
        if type(v) is not float and type(v) is not int:
            raise _FALLBACK
        d = v
        _put(b, <const char*>&d, 8)
    elif n.kind == K_BOOL:
        if v is True:
            _put(b, b"\x01", 1)
        elif v is False:
            _put(b, b"\x00", 1)
        else:
            raise _FALLBACK
    elif n.kind == K_ENUM:
        _put_long(b, <int64_t>n.index[v])
    elif n.kind == K_RECORD:
        if type(v) is not dict:
            raise _FALLBACK
        _enc_record(n, v, True, b)
    elif n.kind == K_ARRAY:
        if type(v) is not list:
            raise _FALLBACK
        if v:
            _put_z(b, <uint64_t>len(v) << 1)
            c = n.child
            for x in v:
                _enc(c, x, b)
        _put(b, b"\x00", 1)
    elif n.kind == K_MAP:
        if type(v) is not dict:
            raise _FALLBACK
        if v:
            _put_z(b, <uint64_t>len(v) << 1)
            c = n.child
            for k, x in v.items():
                _put_str(b, k)
                _enc(c, x, b)
        _put(b, b"\x00", 1)
    elif n.kind == K_NULL:
        if v is not None:
            raise _FALLBACK
    return 0


cdef class Encoder:
    """``encoder(record, header)`` → ``header`` + the record's Avro body (bytes)."""
    cdef Node root

    def __call__(self, record, bytes header not None):
        cdef Buf b
        b.size = 0
        b.cap = 512
        b.data = <char*>PyMem_Malloc(b.cap)
        if b.data == NULL:
            raise MemoryError()
        try:
            _put(&b, PyBytes_AS_STRING(header), PyBytes_GET_SIZE(header))
            _enc_record(self.root, record, type(record) is dict, &b)
            return PyBytes_FromStringAndSize(b.data, b.size)
        finally:
            PyMem_Free(b.data)


def compile_encoder(schema, int version):
    """The :class:`Encoder` of record schema ``schema`` (fastavro-parsed, physical), writing
    ``schema_version`` as ``version``; ``None`` when the schema is unsupported."""
    cdef Encoder e = Encoder()
    cdef Py_ssize_t i
    try:
        e.root = _node(schema)
    except Unsupported:
        return None
    for i, name in enumerate(e.root.names):
        if name == "schema_version":
            e.root.stamp_at = i
            b = bytearray()
            z = (version << 1) ^ (version >> 63)
            while z >= 0x80:
                b.append((z & 0x7F) | 0x80)
                z >>= 7
            b.append(z)
            e.root.stamp = bytes(b)
    return e


# ---------------------------------------------------------------------------------- decoding

cdef struct Reader:
    const unsigned char* data
    Py_ssize_t size
    Py_ssize_t pos


cdef uint64_t _get_z(Reader* r) except? 0xFFFFFFFFFFFFFFFF:
    """The unsigned (still zig-zagged) varint at the position; at most 10 bytes, the tenth
    at most 1 (64 bits); else, or past the end, Fallback."""
    cdef uint64_t z = 0
    cdef unsigned int shift = 0
    cdef unsigned char c
    while True:
        if r.pos >= r.size or shift > 63:
            raise _FALLBACK
        c = r.data[r.pos]
        r.pos += 1
        if shift == 63 and c > 1:
            raise _FALLBACK
        z |= <uint64_t>(c & 0x7F) << shift
        if c < 0x80:
            return z
        shift += 7


cdef inline Py_ssize_t _get_count(Reader* r) except -1:
    """A non-negative block count (a negative one, which fastavro reads as a sized block:
    Fallback)."""
    cdef uint64_t z = _get_z(r)
    if z & 1:
        raise _FALLBACK
    return <Py_ssize_t>(z >> 1)


cdef inline object _get_str(Reader* r):
    """The string at the position: a non-negative length within the bytes left, then UTF-8
    (strict: ``UnicodeDecodeError`` otherwise); else Fallback."""
    cdef uint64_t z = _get_z(r)
    cdef Py_ssize_t start = r.pos
    if z & 1 or (z >> 1) > <uint64_t>(r.size - r.pos):
        raise _FALLBACK
    r.pos += <Py_ssize_t>(z >> 1)
    return PyUnicode_DecodeUTF8(<const char*>r.data + start, <Py_ssize_t>(z >> 1), NULL)


cdef object _dec(Node n, Reader* r):
    cdef uint64_t z
    cdef Py_ssize_t count, i, start
    cdef double d
    cdef unsigned char c
    cdef list out
    cdef dict rec
    cdef Node f
    if n.kind == K_STRING:
        return _get_str(r)
    if n.kind == K_LONG or n.kind == K_INT:
        z = _get_z(r)
        return <int64_t>((z >> 1) ^ (0 - (z & 1)))
    if n.kind == K_NULLABLE:
        if r.pos >= r.size:
            raise _FALLBACK
        c = r.data[r.pos]
        r.pos += 1
        if c == 2 * n.null_at:
            return None
        if c == 2 * (1 - n.null_at):
            return _dec(n.child, r)
        raise _FALLBACK
    if n.kind == K_RECORD:
        rec = {}
        for i in range(len(n.fields)):
            f = <Node>n.fields[i]
            PyDict_SetItem(rec, n.names[i], _dec(f, r))
        return rec
    if n.kind == K_DOUBLE:
        if r.pos + 8 > r.size:
            raise _FALLBACK
        memcpy(&d, r.data + r.pos, 8)
        r.pos += 8
        return d
    if n.kind == K_BOOL:
        if r.pos >= r.size:
            raise _FALLBACK
        c = r.data[r.pos]
        r.pos += 1
        if c == 0:
            return False
        if c == 1:
            return True
        raise _FALLBACK
    if n.kind == K_ENUM:
        z = _get_z(r)
        if z & 1 or (z >> 1) >= <uint64_t>len(n.symbols):
            raise _FALLBACK
        return n.symbols[<Py_ssize_t>(z >> 1)]
    if n.kind == K_ARRAY or n.kind == K_MAP:
        out = [] if n.kind == K_ARRAY else None
        rec = {} if n.kind == K_MAP else None
        while True:
            count = _get_count(r)
            if count == 0:
                break
            for i in range(count):
                if out is not None:
                    PyList_Append(out, _dec(n.child, r))
                else:
                    k = _get_str(r)
                    PyDict_SetItem(rec, k, _dec(n.child, r))
        return out if out is not None else rec
    if n.kind == K_NULL:
        return None
    raise _FALLBACK


cdef class Decoder:
    """``decoder(data, start)`` → ``(record, position after it)``; ``data`` is ``bytes``."""
    cdef Node root

    def __call__(self, bytes data not None, Py_ssize_t pos):
        cdef Reader r
        if pos < 0 or pos > PyBytes_GET_SIZE(data):
            raise _FALLBACK
        r.data = <const unsigned char*>PyBytes_AS_STRING(data)
        r.size = PyBytes_GET_SIZE(data)
        r.pos = pos
        record = _dec(self.root, &r)
        return record, r.pos


def compile_decoder(schema):
    """The :class:`Decoder` of record schema ``schema`` (fastavro-parsed, physical), giving
    the record as fastavro's ``schemaless_reader`` does; ``None`` when unsupported."""
    cdef Decoder d = Decoder()
    try:
        d.root = _node(schema)
    except Unsupported:
        return None
    return d
