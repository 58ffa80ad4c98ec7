// Shared declarations of the pybind11 module fastspec._core (one bind_*.cpp per area).
#pragma once
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <string>

#include "fastspec/tensor.h"

namespace fastspec::py_bind {

// Contiguous input arrays, converted from any dtype/layout the caller passes.
using F32Array = pybind11::array_t<float, pybind11::array::c_style | pybind11::array::forcecast>;
using I32Array = pybind11::array_t<int32_t, pybind11::array::c_style | pybind11::array::forcecast>;

// A tensor type by its GGUF name ("Q4_0", "F16", ...); InvalidArgument when unknown (bind_kernels.cpp).
DType dtype_by_name(const std::string& name);

void bind_errors(pybind11::module_& m);
void bind_model_file(pybind11::module_& m);
void bind_engine(pybind11::module_& m);
void bind_kernels(pybind11::module_& m);
void bind_attention(pybind11::module_& m);
void bind_tokenizer(pybind11::module_& m);
void bind_scheduler(pybind11::module_& m);
void bind_heads(pybind11::module_& m);

}  // namespace fastspec::py_bind
