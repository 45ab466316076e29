// igemm_module.cpp: the Python module gpuquant.backends.numpy._igemm over igemm_vnni.h.
//
//   supported() -> bool        the CPU (and OS) run AVX-512 VNNI
//   pack(w, flip) -> bytes     panels of the (N, K) 1-byte buffer w, each byte xor flip
//   gemm(x, flip_x, packed, zw, folded, multiplier, shift, multiplier_f32,
//        zero_point, qmin, qmax, rounding, out) -> None
//
// x is an (M, K) 1-byte buffer and out an (M, N) buffer of int32 (accumulators) or of 1-byte
// codes (requantized); both may have any row stride but must be contiguous along a row. zw,
// folded, multiplier and shift are N int32 values and multiplier_f32 N float32 values. Every
// size is checked against the buffers before any pointer is read; the GIL is released while
// the product runs.
#define PY_SSIZE_T_CLEAN
#include <Python.h>

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

// A 2-D buffer of `itemsize`-byte items, contiguous along its rows.
bool matrix(Buffer& b, PyObject* obj, int writable, Py_ssize_t itemsize, const char* what) {
  if (!b.get(obj, PyBUF_STRIDES | PyBUF_FORMAT | (writable ? PyBUF_WRITABLE : 0), what)) {
    return false;
  }
  if (b.view.ndim != 2 || b.view.itemsize != itemsize || b.view.strides[1] != itemsize ||
      b.view.strides[0] < 0 || b.view.shape[0] > INT_MAX || b.view.shape[1] > INT_MAX) {
    PyErr_Format(PyExc_ValueError,
                 "%s: expected a 2-D buffer of %zd-byte items, contiguous along rows", what,
                 itemsize);
    return false;
  }
  return true;
}

bool vector(Buffer& b, PyObject* obj, Py_ssize_t n, Py_ssize_t itemsize, const char* what) {
  if (!b.get(obj, PyBUF_C_CONTIGUOUS, what)) return false;
  if (b.view.len != n * itemsize) {
    PyErr_Format(PyExc_ValueError, "%s: expected %zd values of %zd bytes, got %zd bytes", what, n,
                 itemsize, b.view.len);
    return false;
  }
  return true;
}

PyObject* supported(PyObject*, PyObject*) { return PyBool_FromLong(gq_cpu_supported()); }

PyObject* pack(PyObject*, PyObject* args) {
  PyObject* w_obj;
  int flip;
  if (!PyArg_ParseTuple(args, "Op", &w_obj, &flip)) return nullptr;
  Buffer w;
  if (!w.get(w_obj, PyBUF_STRIDES, "weights")) return nullptr;
  if (w.view.ndim != 2 || w.view.itemsize != 1 || w.view.strides[0] < 0 ||
      w.view.strides[1] < 0 || w.view.shape[0] > INT_MAX || w.view.shape[1] > INT_MAX) {
    PyErr_SetString(PyExc_ValueError, "weights: expected a 2-D buffer of bytes");
    return nullptr;
  }
  const int n = (int)w.view.shape[0], k = (int)w.view.shape[1];
  PyObject* out = PyBytes_FromStringAndSize(nullptr, gq_cpu_packed_size(n, k));
  if (out == nullptr) return nullptr;
  gq_cpu_pack((const int8_t*)w.view.buf, w.view.strides[0], w.view.strides[1], n, k,
              flip ? 0x80 : 0, (int8_t*)PyBytes_AS_STRING(out));
  return out;
}

PyObject* gemm(PyObject*, PyObject* args) {
  PyObject *x_obj, *packed_obj, *zw_obj, *folded_obj, *mult_obj, *shift_obj, *multf_obj, *out_obj;
  int flip_x, zero_point, qmin, qmax, rounding;
  if (!PyArg_ParseTuple(args, "OpOOOOOOiiiiO", &x_obj, &flip_x, &packed_obj, &zw_obj, &folded_obj,
                        &mult_obj, &shift_obj, &multf_obj, &zero_point, &qmin, &qmax, &rounding,
                        &out_obj)) {
    return nullptr;
  }
  Buffer x, out, packed, zw, folded, mult, shift, multf;
  if (!matrix(x, x_obj, 0, 1, "x")) return nullptr;
  if (!out.get(out_obj, PyBUF_STRIDES | PyBUF_WRITABLE, "out")) return nullptr;
  const Py_ssize_t out_item = out.view.itemsize;
  if ((out_item != 1 && out_item != 4) || !matrix(out, out_obj, 1, out_item, "out")) {
    if (!PyErr_Occurred()) PyErr_SetString(PyExc_ValueError, "out: expected int32 or 1-byte items");
    return nullptr;
  }
  const Py_ssize_t m = x.view.shape[0], k = x.view.shape[1], n = out.view.shape[1];
  if (out.view.shape[0] != m) {
    PyErr_Format(PyExc_ValueError, "out has %zd rows, x has %zd", out.view.shape[0], m);
    return nullptr;
  }
  if (!packed.get(packed_obj, PyBUF_SIMPLE, "packed")) return nullptr;
  if (packed.view.len != gq_cpu_packed_size((int)n, (int)k)) {
    PyErr_Format(PyExc_ValueError, "packed weights of %zd bytes do not fit N=%zd, K=%zd",
                 packed.view.len, n, k);
    return nullptr;
  }
  if (!vector(zw, zw_obj, n, 4, "zw") || !vector(folded, folded_obj, n, 4, "folded") ||
      !vector(mult, mult_obj, n, 4, "multiplier") || !vector(shift, shift_obj, n, 4, "shift") ||
      !vector(multf, multf_obj, n, 4, "multiplier_f32")) {
    return nullptr;
  }
  if (rounding < GQ_ROUND_GEMMLOWP || rounding > GQ_ROUND_F32) {
    PyErr_Format(PyExc_ValueError, "unknown rounding code %d", rounding);
    return nullptr;
  }
  if (!gq_cpu_supported()) {
    PyErr_SetString(PyExc_RuntimeError, "this CPU does not run AVX-512 VNNI");
    return nullptr;
  }
  const int32_t* zwp = (const int32_t*)zw.view.buf;
  bool has_zw = false;
  for (Py_ssize_t i = 0; i < n; ++i) has_zw = has_zw || zwp[i] != 0;
  GqCpuGemm g;
  g.x = (const uint8_t*)x.view.buf;
  g.ldx = (long)x.view.strides[0];
  g.m = (int)m;
  g.k = (int)k;
  g.flip_x = flip_x != 0;
  g.packed = (const int8_t*)packed.view.buf;
  g.n = (int)n;
  g.zw = zwp;
  g.folded = (const int32_t*)folded.view.buf;
  g.has_zw = has_zw;
  g.rq = GqRequant{(const int*)mult.view.buf, (const int*)shift.view.buf,
                   (const float*)multf.view.buf, zero_point, qmin, qmax, rounding};
  g.out_int32 = out_item == 4;
  g.y = out.view.buf;
  g.ldy = (long)(out.view.strides[0] / out_item);
  Py_BEGIN_ALLOW_THREADS
  gq_cpu_gemm(g);
  Py_END_ALLOW_THREADS
  Py_RETURN_NONE;
}

PyMethodDef methods[] = {
    {"supported", supported, METH_NOARGS, "Whether this CPU runs AVX-512 VNNI."},
    {"pack", pack, METH_VARARGS, "Pack (N, K) int8 weights into 64-column panels."},
    {"gemm", gemm, METH_VARARGS, "Integer GEMM with zero-point correction and requantization."},
    {nullptr, nullptr, 0, nullptr},
};

PyModuleDef module = {PyModuleDef_HEAD_INIT, "_igemm", nullptr, -1, methods,
                      nullptr, nullptr, nullptr, nullptr};

}  // namespace

PyMODINIT_FUNC PyInit__igemm(void) { return PyModule_Create(&module); }
