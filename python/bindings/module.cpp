// fastspec._core: the compiled core. GIL released around every long computation.
#include <string>

#include "bindings.h"
#include "fastspec/status.h"
#ifdef FASTSPEC_WITH_CUDA
#include "cuda_backend.h"
#endif

namespace py = pybind11;

namespace fastspec::py_bind {

void bind_errors(py::module_& m) {
  auto format_error = py::register_exception<FormatError>(m, "FormatError", PyExc_ValueError);
  auto model_error = py::register_exception<ModelError>(m, "ModelError", PyExc_ValueError);
  format_error.doc() = "A model file is malformed or uses an unsupported encoding (a ValueError).";
  model_error.doc() = "A model is well-formed but cannot be used as asked (a ValueError).";
  // Any other core error (e.g. a CUDA failure) surfaces as RuntimeError with its message.
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const InvalidArgument& e) {
      PyErr_SetString(PyExc_ValueError, e.what());
    } catch (const IoError& e) {
      std::string msg = e.what();
      bool missing = msg.find("o such file") != std::string::npos;
      PyErr_SetString(missing ? PyExc_FileNotFoundError : PyExc_OSError, msg.c_str());
    }
  });
}

}  // namespace fastspec::py_bind

PYBIND11_MODULE(_core, m) {
  m.doc() = "fastspec compiled core";
  fastspec::py_bind::bind_errors(m);
  fastspec::py_bind::bind_model_file(m);
  fastspec::py_bind::bind_engine(m);
  fastspec::py_bind::bind_kernels(m);
  fastspec::py_bind::bind_attention(m);
  fastspec::py_bind::bind_tokenizer(m);
  fastspec::py_bind::bind_scheduler(m);
  fastspec::py_bind::bind_heads(m);
  m.def("cuda_device_count", []() -> int {
#ifdef FASTSPEC_WITH_CUDA
    return fastspec::cuda::device_count();
#else
    return 0;
#endif
  }, "Number of usable CUDA devices (0 when the CUDA backend is not built or no GPU/driver is present).");
  m.def("cuda_built", []() {
#ifdef FASTSPEC_WITH_CUDA
    return true;
#else
    return false;
#endif
  }, "True when this build includes the CUDA backend.");
}
