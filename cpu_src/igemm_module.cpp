// igemm_module.cpp: the Python module gpuquant.backends.numpy._igemm over the native int8 GEMM
// cores igemm_vnni.h (AVX-512 VNNI) and igemm_avx2.h (AVX2).
//
//   supported() -> tuple       the cores this CPU (and OS) runs, fastest first: "vnni", "avx2"
//   pack(w, flip) -> bytes     the VNNI core's panels of the (N, K) 1-byte buffer w, each byte
//                              xor flip; pack_avx2(w, flip): the AVX2 core's
//   gemm(x, flip_x, packed, zw, folded, multiplier, shift, multiplier_f32,
//        zero_point, qmin, qmax, rounding, out) -> None
//   gemm_avx2(...)             the same arguments, packed by pack_avx2
//   requantize(acc, multiplier, shift, multiplier_f32, zero_point, qmin, qmax, rounding, out)
//                              -> None: the VNNI core's epilogue alone, out[m, n] =
//                              gq_requantize(acc[m, n], channel n); requantize_avx2: the AVX2
//                              core's
//
// x is an (M, K) buffer of int8 or uint8 and out an (M, N) buffer of int32 (accumulators) or of
// int8 / uint8 codes (requantized, zero_point and qmin <= qmax within the codes' range); both may
// have any row stride but must be contiguous along a row, and out's rows overlap neither each
// other nor any input. requantize's acc is an (M, N) int32 buffer of the same kind and its out
// (M, N) int8 / uint8. w is an (N, K) int8 or uint8 buffer of any strides. zw, folded,
// multiplier and shift are N int32 values and multiplier_f32 N float32 values, contiguous, in
// native byte order. Every type, size and stride is checked against the buffers before any
// pointer is read (a ValueError, or a TypeError for an object that is no buffer of the kind);
// the GIL is released while the product runs (gemm_avx2 allocates its workspace before).
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <cstring>
#include <initializer_list>

#include "igemm_avx2.h"
#include "igemm_vnni.h"

namespace {

struct Buffer {
  Py_buffer view{};
  bool held = false;
  ~Buffer() {
    if (held) PyBuffer_Release(&view);
  }
  bool get(PyObject* obj, int flags, const char* what) {
    if (PyObject_GetBuffer(obj, &view, flags) != 0) {
      PyErr_Format(PyExc_TypeError, "%s: not a buffer of the required kind", what);
      return false;
    }
    held = true;
    return true;
  }
};

// The struct code of a buffer's items in native byte order and size ("i", "@i", "=i", or "<i" on
// this little-endian target), or 0 for any other format.
char item_code(const Py_buffer& v) {
  const char* f = v.format == nullptr ? "B" : v.format;
  if (*f == '@' || *f == '=' || *f == '<') ++f;
  return f[0] != 0 && f[1] == 0 ? f[0] : 0;
}

// Whether the items have a struct code in `codes` and its size: int8 'b' and uint8 'B' 1 byte;
// int32 'i' (or 'l' where a long has 4 bytes) and float32 'f' 4 bytes.
bool has_items(const Py_buffer& v, const char* codes) {
  const char code = item_code(v);
  if (code == 0 || std::strchr(codes, code) == nullptr) return false;
  return v.itemsize == (code == 'b' || code == 'B' ? 1 : 4);
}

// A 2-D buffer of items of a struct code in `codes`, contiguous along its rows, with a row stride
// of whole items; `rows_apart`: rows that do not overlap (for writing).
bool matrix(Buffer& b, PyObject* obj, bool writable, const char* codes, bool rows_apart,
            const char* what) {
  if (!b.get(obj, PyBUF_STRIDES | PyBUF_FORMAT | (writable ? PyBUF_WRITABLE : 0), what)) {
    return false;
  }
  const Py_buffer& v = b.view;
  const Py_ssize_t item = v.itemsize;
  if (v.ndim != 2 || !has_items(v, codes) || v.strides[1] != item || v.strides[0] % item != 0 ||
      v.shape[0] > INT_MAX || v.shape[1] > INT_MAX ||
      (rows_apart && v.shape[0] > 1 && v.strides[0] < v.shape[1] * item &&
       -v.strides[0] < v.shape[1] * item)) {
    PyErr_Format(PyExc_ValueError,
                 "%s: expected a 2-D buffer of items '%s' (b int8, B uint8, i int32), contiguous "
                 "along rows%s", what, codes, rows_apart ? ", rows apart" : "");
    return false;
  }
  return true;
}

// n contiguous items of a struct code in `codes`.
bool vector(Buffer& b, PyObject* obj, Py_ssize_t n, const char* codes, const char* what) {
  if (!b.get(obj, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT, what)) return false;
  if (!has_items(b.view, codes) || b.view.len != n * b.view.itemsize) {
    PyErr_Format(PyExc_ValueError, "%s: expected %zd values of '%s', got %zd bytes of '%s'", what,
                 n, codes, b.view.len, b.view.format == nullptr ? "B" : b.view.format);
    return false;
  }
  return true;
}

// The address range [first, last) of the bytes a buffer's items cover (empty for no items).
void extent(const Py_buffer& v, const char** first, const char** last) {
  const char* lo = (const char*)v.buf;
  const char* hi = lo + v.len;
  if (v.strides != nullptr && v.len > 0) {
    hi = lo + v.itemsize;
    for (int d = 0; d < v.ndim; ++d) {
      (v.strides[d] < 0 ? lo : hi) += v.strides[d] * (v.shape[d] - 1);
    }
  }
  *first = lo;
  *last = v.len > 0 ? hi : lo;
}

// Whether two buffers' byte ranges are disjoint.
bool disjoint(const Py_buffer& a, const Py_buffer& b) {
  const char *a0, *a1, *b0, *b1;
  extent(a, &a0, &a1);
  extent(b, &b0, &b1);
  return a0 == a1 || b0 == b1 || a1 <= b0 || b1 <= a0;
}

PyObject* supported(PyObject*, PyObject*) {
  if (gq_cpu_supported()) return Py_BuildValue("(ss)", "vnni", "avx2");
  if (gq_avx2_supported()) return Py_BuildValue("(s)", "avx2");
  return PyTuple_New(0);
}

// pack(w, flip) of a core: its packed size and packing of (N, K) weights.
template <long (*SIZE)(int, int), typename Out, void (*PACK)(const int8_t*, long, long, int, int,
                                                             uint8_t, Out*)>
PyObject* pack(PyObject*, PyObject* args) {
  PyObject* w_obj;
  int flip;
  if (!PyArg_ParseTuple(args, "Op", &w_obj, &flip)) return nullptr;
  Buffer w;
  if (!w.get(w_obj, PyBUF_STRIDES | PyBUF_FORMAT, "weights")) return nullptr;
  if (w.view.ndim != 2 || !has_items(w.view, "bB") || w.view.shape[0] > INT_MAX ||
      w.view.shape[1] > INT_MAX) {
    PyErr_SetString(PyExc_ValueError, "weights: expected a 2-D buffer of int8 or uint8");
    return nullptr;
  }
  const int n = (int)w.view.shape[0], k = (int)w.view.shape[1];
  PyObject* out = PyBytes_FromStringAndSize(nullptr, SIZE(n, k));
  if (out == nullptr) return nullptr;
  PACK((const int8_t*)w.view.buf, w.view.strides[0], w.view.strides[1], n, k, flip ? 0x80 : 0,
       (Out*)PyBytes_AS_STRING(out));
  return out;
}

// Whether zero_point and qmin <= qmax lie in the range of out's 1-byte codes (else a ValueError).
bool codes_hold(const Py_buffer& out, int zero_point, int qmin, int qmax) {
  const int lo = item_code(out) == 'b' ? -128 : 0, hi = lo + 255;
  if (lo <= qmin && qmin <= qmax && qmax <= hi && lo <= zero_point && zero_point <= hi) {
    return true;
  }
  PyErr_Format(PyExc_ValueError,
               "zero point %d and clamp bounds [%d, %d] must lie in [%d, %d] (qmin <= qmax)",
               zero_point, qmin, qmax, lo, hi);
  return false;
}

// The buffers of one gemm call, held until it returns, and the product they describe.
struct GemmCall {
  Buffer x, out, packed, zw, folded, mult, shift, multf;
  GqCpuGemm g;
};

// Parses and checks gemm's arguments into c, for panels of packed_size(N, K) bytes.
bool parse_gemm(PyObject* args, long (*packed_size)(int, int), GemmCall& c) {
  PyObject *x_obj, *packed_obj, *zw_obj, *folded_obj, *mult_obj, *shift_obj, *multf_obj, *out_obj;
  int flip_x, zero_point, qmin, qmax, rounding;
  if (!PyArg_ParseTuple(args, "OpOOOOOOiiiiO", &x_obj, &flip_x, &packed_obj, &zw_obj, &folded_obj,
                        &mult_obj, &shift_obj, &multf_obj, &zero_point, &qmin, &qmax, &rounding,
                        &out_obj)) {
    return false;
  }
  if (!matrix(c.x, x_obj, false, "bB", false, "x") ||
      !matrix(c.out, out_obj, true, "ilbB", true, "out")) {
    return false;
  }
  const Py_ssize_t out_item = c.out.view.itemsize;
  const Py_ssize_t m = c.x.view.shape[0], k = c.x.view.shape[1], n = c.out.view.shape[1];
  if (c.out.view.shape[0] != m) {
    PyErr_Format(PyExc_ValueError, "out has %zd rows, x has %zd", c.out.view.shape[0], m);
    return false;
  }
  if (!c.packed.get(packed_obj, PyBUF_SIMPLE, "packed")) return false;
  if (c.packed.view.len != packed_size((int)n, (int)k)) {
    PyErr_Format(PyExc_ValueError, "packed weights of %zd bytes do not fit N=%zd, K=%zd",
                 c.packed.view.len, n, k);
    return false;
  }
  if (!vector(c.zw, zw_obj, n, "il", "zw") || !vector(c.folded, folded_obj, n, "il", "folded") ||
      !vector(c.mult, mult_obj, n, "il", "multiplier") ||
      !vector(c.shift, shift_obj, n, "il", "shift") ||
      !vector(c.multf, multf_obj, n, "f", "multiplier_f32")) {
    return false;
  }
  for (const Buffer* in : {&c.x, &c.packed, &c.zw, &c.folded, &c.mult, &c.shift, &c.multf}) {
    if (!disjoint(c.out.view, in->view)) {
      PyErr_SetString(PyExc_ValueError, "out overlaps an input");
      return false;
    }
  }
  if (rounding < GQ_ROUND_GEMMLOWP || rounding > GQ_ROUND_F32) {
    PyErr_Format(PyExc_ValueError, "unknown rounding code %d", rounding);
    return false;
  }
  const bool out_int32 = out_item == 4;
  if (!out_int32 && !codes_hold(c.out.view, zero_point, qmin, qmax)) return false;
  const int32_t* zwp = (const int32_t*)c.zw.view.buf;
  bool has_zw = false;
  for (Py_ssize_t i = 0; i < n; ++i) has_zw = has_zw || zwp[i] != 0;
  GqCpuGemm& g = c.g;
  g.x = (const uint8_t*)c.x.view.buf;
  g.ldx = (long)c.x.view.strides[0];
  g.m = (int)m;
  g.k = (int)k;
  g.flip_x = flip_x != 0;
  g.packed = (const int8_t*)c.packed.view.buf;
  g.n = (int)n;
  g.zw = zwp;
  g.folded = (const int32_t*)c.folded.view.buf;
  g.has_zw = has_zw;
  g.rq = GqRequant{(const int*)c.mult.view.buf, (const int*)c.shift.view.buf,
                   (const float*)c.multf.view.buf, zero_point, qmin, qmax, rounding};
  g.out_int32 = out_int32;
  g.y = c.out.view.buf;
  g.ldy = (long)(c.out.view.strides[0] / out_item);
  return true;
}

PyObject* gemm(PyObject*, PyObject* args) {
  GemmCall c;
  if (!parse_gemm(args, gq_cpu_packed_size, c)) return nullptr;
  if (!gq_cpu_supported()) {
    PyErr_SetString(PyExc_RuntimeError, "this CPU does not run AVX-512 VNNI");
    return nullptr;
  }
  Py_BEGIN_ALLOW_THREADS
  gq_cpu_gemm(c.g);
  Py_END_ALLOW_THREADS
  Py_RETURN_NONE;
}

PyObject* gemm_avx2(PyObject*, PyObject* args) {
  GemmCall c;
  if (!parse_gemm(args, gq_avx2_packed_size, c)) return nullptr;
  if (!gq_avx2_supported()) {
    PyErr_SetString(PyExc_RuntimeError, "this CPU does not run AVX2");
    return nullptr;
  }
  const long words = gq_avx2_workspace_size(c.g.m, c.g.k);
  int32_t* ws = (int32_t*)PyMem_RawMalloc((size_t)(words > 0 ? words : 1) * sizeof(int32_t));
  if (ws == nullptr) return PyErr_NoMemory();
  Py_BEGIN_ALLOW_THREADS
  gq_avx2_gemm(c.g, ws);
  Py_END_ALLOW_THREADS
  PyMem_RawFree(ws);
  Py_RETURN_NONE;
}

// requantize(...) of a core: checks every buffer, then its rows' epilogue without the GIL.
template <bool (*SUPPORTED)(), void (*ROWS)(const int32_t*, long, int, int, const GqRequant&,
                                            uint8_t*, long)>
PyObject* requantize(PyObject*, PyObject* args) {
  PyObject *acc_obj, *mult_obj, *shift_obj, *multf_obj, *out_obj;
  int zero_point, qmin, qmax, rounding;
  if (!PyArg_ParseTuple(args, "OOOOiiiiO", &acc_obj, &mult_obj, &shift_obj, &multf_obj,
                        &zero_point, &qmin, &qmax, &rounding, &out_obj)) {
    return nullptr;
  }
  Buffer acc, out, mult, shift, multf;
  if (!matrix(acc, acc_obj, false, "il", false, "acc") ||
      !matrix(out, out_obj, true, "bB", true, "out")) {
    return nullptr;
  }
  const Py_ssize_t m = acc.view.shape[0], n = acc.view.shape[1];
  if (out.view.shape[0] != m || out.view.shape[1] != n) {
    PyErr_Format(PyExc_ValueError, "out is (%zd, %zd), acc is (%zd, %zd)", out.view.shape[0],
                 out.view.shape[1], m, n);
    return nullptr;
  }
  if (!vector(mult, mult_obj, n, "il", "multiplier") ||
      !vector(shift, shift_obj, n, "il", "shift") ||
      !vector(multf, multf_obj, n, "f", "multiplier_f32")) {
    return nullptr;
  }
  for (const Buffer* in : {&acc, &mult, &shift, &multf}) {
    if (!disjoint(out.view, in->view)) {
      PyErr_SetString(PyExc_ValueError, "out overlaps an input");
      return nullptr;
    }
  }
  if (rounding < GQ_ROUND_GEMMLOWP || rounding > GQ_ROUND_F32) {
    PyErr_Format(PyExc_ValueError, "unknown rounding code %d", rounding);
    return nullptr;
  }
  if (!codes_hold(out.view, zero_point, qmin, qmax)) return nullptr;
  if (!SUPPORTED()) {
    PyErr_SetString(PyExc_RuntimeError, "this CPU does not run the core's instructions");
    return nullptr;
  }
  const GqRequant rq{(const int*)mult.view.buf, (const int*)shift.view.buf,
                     (const float*)multf.view.buf, zero_point, qmin, qmax, rounding};
  Py_BEGIN_ALLOW_THREADS
  ROWS((const int32_t*)acc.view.buf, (long)(acc.view.strides[0] / 4), (int)m, (int)n, rq,
       (uint8_t*)out.view.buf, (long)out.view.strides[0]);
  Py_END_ALLOW_THREADS
  Py_RETURN_NONE;
}

PyMethodDef methods[] = {
    {"supported", supported, METH_NOARGS, "The cores this CPU runs, fastest first."},
    {"pack", pack<gq_cpu_packed_size, int8_t, gq_cpu_pack>, METH_VARARGS,
     "Pack (N, K) int8 weights into the VNNI core's 64-column panels."},
    {"pack_avx2", pack<gq_avx2_packed_size, char, gq_avx2_pack>, METH_VARARGS,
     "Pack (N, K) int8 weights into the AVX2 core's 16-column panels of int16."},
    {"gemm", gemm, METH_VARARGS,
     "Integer GEMM with zero-point correction and requantization (AVX-512 VNNI)."},
    {"gemm_avx2", gemm_avx2, METH_VARARGS,
     "Integer GEMM with zero-point correction and requantization (AVX2)."},
    {"requantize", requantize<gq_cpu_supported, gq_cpu_requantize_rows>, METH_VARARGS,
     "Requantize (M, N) int32 accumulators to 8-bit codes (AVX-512)."},
    {"requantize_avx2", requantize<gq_avx2_supported, gq_avx2_requantize_rows>, METH_VARARGS,
     "Requantize (M, N) int32 accumulators to 8-bit codes (AVX2)."},
    {nullptr, nullptr, 0, nullptr},
};

PyModuleDef module = {PyModuleDef_HEAD_INIT, "_igemm", nullptr, -1, methods,
                      nullptr, nullptr, nullptr, nullptr};

}  // namespace

PyMODINIT_FUNC PyInit__igemm(void) { return PyModule_Create(&module); }
