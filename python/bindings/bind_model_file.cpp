// Bindings of ModelFile (fastspec.inspect's engine room) and ModelConfig.
#include <pybind11/numpy.h>
#include <pybind11/stl.h>

#include <memory>

#include "bindings.h"
#include "fastspec/model_file.h"
#include "fastspec/status.h"

namespace py = pybind11;

namespace fastspec::py_bind {
namespace {

// A UTF-8 str, or the exact bytes when the file's string is not valid UTF-8.
py::object str_to_py(const std::string& s) {
  PyObject* o = PyUnicode_DecodeUTF8(s.data(), static_cast<Py_ssize_t>(s.size()), "strict");
  if (o) return py::reinterpret_steal<py::object>(o);
  PyErr_Clear();
  return py::bytes(s);
}

py::object meta_to_py(const MetaValue& v) {
  using K = MetaValue::Kind;
  switch (v.kind) {
    case K::Null: return py::none();
    case K::Bool: return py::bool_(v.b);
    case K::Int: return py::int_(v.i);
    case K::UInt: return py::int_(v.u);
    case K::Float: return py::float_(v.f);
    case K::String: return str_to_py(v.s);
    case K::Array: {
      if (!v.strings.empty()) {
        py::list l(v.strings.size());
        for (size_t k = 0; k < v.strings.size(); ++k) l[k] = str_to_py(v.strings[k]);
        return std::move(l);
      }
      const size_t n = v.array_size();
      py::list l(n);
      if (v.packed.empty()) {
        for (size_t k = 0; k < n; ++k) l[k] = meta_to_py(v.array[k]);
      } else {
        for (size_t k = 0; k < n; ++k) l[k] = meta_to_py(v.array_at(k));
      }
      return std::move(l);
    }
    case K::Object: {
      py::dict d;
      for (const auto& kv : v.object) d[py::str(kv.first)] = meta_to_py(kv.second);
      return std::move(d);
    }
  }
  return py::none();
}

py::dict rope_scaling_dict(const RopeScaling& r) {
  py::dict d;
  d["type"] = r.type;
  d["factor"] = r.factor;
  d["low_freq_factor"] = r.low_freq_factor;
  d["high_freq_factor"] = r.high_freq_factor;
  d["original_context"] = r.original_context;
  return d;
}

}  // namespace

void bind_model_file(py::module_& m) {
  py::class_<ModelConfig>(m, "ModelConfig", "Transformer hyper-parameters (see cpp/include/fastspec/model_config.h).")
      .def_readonly("architecture", &ModelConfig::architecture)
      .def_readonly("family", &ModelConfig::family)
      .def_readonly("n_layers", &ModelConfig::n_layers)
      .def_readonly("n_embd", &ModelConfig::n_embd)
      .def_readonly("n_heads", &ModelConfig::n_heads)
      .def_readonly("n_kv_heads", &ModelConfig::n_kv_heads)
      .def_readonly("head_dim", &ModelConfig::head_dim)
      .def_readonly("n_ff", &ModelConfig::n_ff)
      .def_readonly("vocab_size", &ModelConfig::vocab_size)
      .def_readonly("context_length", &ModelConfig::context_length)
      .def_readonly("rope_theta", &ModelConfig::rope_theta)
      .def_readonly("rope_local_theta", &ModelConfig::rope_local_theta)
      .def_readonly("rope_dim", &ModelConfig::rope_dim)
      .def_property_readonly("rope_scaling", [](const ModelConfig& c) { return rope_scaling_dict(c.rope_scaling); })
      .def_readonly("rope_pairs_adjacent", &ModelConfig::rope_pairs_adjacent)
      .def_readonly("norm_eps", &ModelConfig::norm_eps)
      .def_readonly("tied_embeddings", &ModelConfig::tied_embeddings)
      .def_readonly("qkv_bias", &ModelConfig::qkv_bias)
      .def_readonly("sliding_window", &ModelConfig::sliding_window)
      .def_readonly("sliding_window_pattern", &ModelConfig::sliding_window_pattern)
      .def_readonly("query_pre_attn_scalar", &ModelConfig::query_pre_attn_scalar)
      .def_readonly("final_logit_softcap", &ModelConfig::final_logit_softcap)
      .def_readonly("attn_logit_softcap", &ModelConfig::attn_logit_softcap)
      .def_readonly("norm_weight_plus_one", &ModelConfig::norm_weight_plus_one);

  py::class_<ModelFile, std::shared_ptr<ModelFile>>(m, "ModelFile", "An opened, memory-mapped model file.")
      .def(py::init([](const std::string& path) {
             std::unique_ptr<ModelFile> mf;
             {
               py::gil_scoped_release nogil;
               mf = ModelFile::open(path);
             }
             return std::shared_ptr<ModelFile>(std::move(mf));
           }),
           py::arg("path"))
      .def_property_readonly("path", &ModelFile::path)
      .def_property_readonly("format", &ModelFile::format)
      .def_property_readonly("mapped_bytes", &ModelFile::mapped_bytes)
      .def_property_readonly("config", &ModelFile::config, py::return_value_policy::reference_internal)
      .def("metadata", [](const ModelFile& mf) {
        py::dict d;
        for (const auto& kv : mf.metadata()) d[py::str(kv.first)] = meta_to_py(kv.second);
        return d;
      }, "Metadata as a dict (GGUF key/values; or config.json + safetensors header metadata).")
      .def("tensor_infos", [](const ModelFile& mf) {
        py::list l;
        for (const TensorInfo& t : mf.tensors())
          l.append(py::make_tuple(t.name, py::tuple(py::cast(t.shape)), dtype_name(t.type), t.nbytes, t.offset));
        return l;
      }, "[(name, shape (row-major), type name, nbytes, file offset)] in file order.")
      .def("dequantize", [](const ModelFile& mf, const std::string& name) {
        const TensorInfo& t = mf.get(name);
        py::array_t<float> out(t.shape);
        float* dst = out.mutable_data();
        {
          py::gil_scoped_release nogil;
          mf.dequantize(t, dst);
        }
        return out;
      }, py::arg("name"), "The tensor as float32, shape = its row-major shape.")
      .def("raw", [](py::object self, const std::string& name) {
        const ModelFile& mf = self.cast<const ModelFile&>();
        const TensorInfo& t = mf.get(name);
        if (!t.data) throw ModelError(mf.path() + ": tensor '" + name + "' is virtual (" + dtype_name(t.type) +
                                      "); read its packed parts instead");
        // Zero-copy read-only view into the mapping; `self` keeps the mapping alive.
        py::array_t<uint8_t> a({static_cast<py::ssize_t>(t.nbytes)}, {1}, t.data, self);
        py::detail::array_proxy(a.ptr())->flags &= ~py::detail::npy_api::NPY_ARRAY_WRITEABLE_;
        return a;
      }, py::arg("name"), "The stored bytes (uint8, read-only view of the mapped file).");
}

}  // namespace fastspec::py_bind
