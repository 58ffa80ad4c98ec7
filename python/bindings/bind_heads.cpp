// Draft heads from Python (model/draft_head.h, eagle_head.h, medusa_head.h): the tie a head
// records, and a head run on its own (a fresh cache per call) for parity tests against the
// PyTorch module that trained it (python/fastspec/distill.py).
#include <pybind11/numpy.h>
#include <pybind11/stl.h>

#include <memory>
#include <string>
#include <vector>

#include "backend/cpu/cpu_backend.h"
#include "bindings.h"
#include "fastspec/status.h"
#include "model/draft_head.h"
#include "model/eagle_head.h"
#include "model/kv_cache.h"
#include "model/medusa_head.h"

namespace py = pybind11;

namespace fastspec::py_bind {
namespace {

// One head with its own backend.
struct PyHead {
  std::shared_ptr<const ModelFile> file;
  std::unique_ptr<cpu::CpuBackend> be;
  std::unique_ptr<EagleHead> eagle;
  std::unique_ptr<MedusaHead> medusa;
  const HeadMeta& meta() const { return eagle ? eagle->meta() : medusa->meta(); }
  int64_t d() const { return eagle ? eagle->n_embd() : medusa->n_embd(); }
};

// rows x d input, named in errors
int64_t rows_of(const F32Array& a, int64_t d, const char* name) {
  if (a.ndim() != 2 || a.shape(1) != d || a.shape(0) < 1)
    throw InvalidArgument(std::string("DraftHead.forward: ") + name + " must be float32 [T, " + std::to_string(d) +
                          "] with T >= 1");
  return a.shape(0);
}

}  // namespace

void bind_heads(py::module_& m) {
  m.def("target_tie", [](const std::string& path) {
    std::shared_ptr<const ModelFile> f = ModelFile::open(path);
    const TargetTie t = target_tie(*f);
    return py::make_tuple(t.sha256, t.vocab_hash);
  }, py::arg("path"), "(target_sha256, vocab_hash) of a target model as a draft head records them "
     "(cpp/src/model/draft_head.h).");

  py::class_<PyHead>(m, "DraftHead", "A draft head file (fastspec-eagle / fastspec-medusa) run on its own.")
      .def(py::init([](const std::string& path, int threads, const std::string& precision) {
        auto h = std::make_unique<PyHead>();
        h->file = ModelFile::open(path);
        if (precision != "q8" && precision != "f32")
          throw InvalidArgument("precision must be 'q8' or 'f32' (got '" + precision + "')");
        h->be = std::make_unique<cpu::CpuBackend>(threads, precision == "q8" ? Precision::q8 : Precision::f32);
        if (h->file->config().architecture == "fastspec-medusa") {
          h->medusa = std::make_unique<MedusaHead>(h->file);
          h->medusa->bind(*h->be);
        } else {
          h->eagle = std::make_unique<EagleHead>(h->file);
          h->eagle->bind(*h->be);
        }
        return h;
      }), py::arg("path"), py::arg("threads") = 1, py::arg("precision") = "f32")
      .def_property_readonly("kind", [](const PyHead& h) { return h.meta().kind; })
      .def_property_readonly("n_embd", &PyHead::d)
      .def_property_readonly("vocab_ids", [](const PyHead& h) { return h.meta().vocab_ids; })
      .def_property_readonly("feature_layer", [](const PyHead& h) { return h.meta().feature_layer; })
      .def_property_readonly("feature_layers", [](const PyHead& h) { return h.meta().feature_layers; })
      .def("check_target", [](const PyHead& h, const std::string& target) {
        std::shared_ptr<const ModelFile> t = ModelFile::open(target);
        check_head_target(*h.file, h.meta(), h.d(), *t);
      }, py::arg("target"), "ModelError naming both files unless this head was distilled from target.")
      .def("forward", [](PyHead& h, F32Array a, py::object b) -> py::tuple {
        const int64_t d = h.d();
        const int64_t T = rows_of(a, d, h.eagle ? "emb" : "feat");
        if (h.medusa) {
          const int64_t K = h.medusa->n_heads(), V = h.medusa->vocab();
          py::array_t<float> logits({static_cast<py::ssize_t>(T), static_cast<py::ssize_t>(K), static_cast<py::ssize_t>(V)});
          std::vector<float> scratch(static_cast<size_t>(2 * K * d));
          for (int64_t t = 0; t < T; ++t)
            h.medusa->forward(*h.be, a.data() + t * d, logits.mutable_data() + t * K * V, scratch.data());
          return py::make_tuple(logits, py::none());
        }
        F32Array states = b.cast<F32Array>();
        const int64_t nf = h.eagle->n_feat();
        if (rows_of(states, nf * d, "feat") != T) throw InvalidArgument("DraftHead.forward: emb and feat must have the same rows");
        std::vector<float> feat(static_cast<size_t>(T * d));
        h.eagle->reduce(*h.be, states.data(), T, feat.data());
        const ModelConfig& c = h.eagle->config();
        KvCache kv(1, T, c.n_kv_heads, c.head_dim, DType::F32);
        const int64_t V = h.eagle->vocab();
        py::array_t<float> logits({static_cast<py::ssize_t>(T), static_cast<py::ssize_t>(V)});
        py::array_t<float> g({static_cast<py::ssize_t>(T), static_cast<py::ssize_t>(d)});
        std::vector<float> scratch(static_cast<size_t>(std::min(T, EagleHead::kMaxPass) * 3 * d));
        h.eagle->forward(*h.be, kv, a.data(), feat.data(), T, g.mutable_data(), logits.mutable_data(), T, scratch.data());
        return py::make_tuple(logits, g);
      }, py::arg("x"), py::arg("feat") = py::none(),
         "EAGLE: forward(emb [T, d] = E(c_{t+1}), feat [T, n_feat * d] = the target's states S_t (F_t when n_feat "
         "is 1)) -> (logits [T, V_sub], g [T, d]), rows at "
         "positions 0..T-1 of a fresh f32 cache. Medusa: forward(feat [T, d]) -> (logits [T, K, V_sub], None).");
}

}  // namespace fastspec::py_bind
