// Shared declarations of the pybind11 module fastspec._core (one bind_*.cpp per area).
#pragma once
#include <pybind11/pybind11.h>

namespace fastspec::py_bind {

void bind_errors(pybind11::module_& m);
void bind_model_file(pybind11::module_& m);
void bind_engine(pybind11::module_& m);
void bind_kernels(pybind11::module_& m);
void bind_attention(pybind11::module_& m);

}  // namespace fastspec::py_bind
