// Bindings of Engine / Session / options. The GIL is released around every compute call (and
// while waiting for an engine's compute lock), so two Python threads with their own engines run
// concurrently, and two threads sharing one engine take turns (engine.h, "Threads").
#include <pybind11/numpy.h>
#include <pybind11/stl.h>

#include "bindings.h"
#include "fastspec/status.h"
#include "fastspec/engine.h"
#include "spec/sampler.h"
#include "spec/rejection.h"
#include "spec/tree.h"
#include "backend/cpu/dequant.h"
#include "backend/cpu/dequant_fast.h"

namespace py = pybind11;

namespace fastspec::py_bind {
namespace {
// Dense rows [n, V] -> sparse distributions (the entries > 0).
std::vector<SparseDist> sparse_rows(const float* dense, int64_t n, int64_t V) {
  std::vector<SparseDist> q(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i)
    for (int64_t v = 0; v < V; ++v)
      if (dense[i * V + v] > 0) q[i].probs.emplace_back(static_cast<int32_t>(v), dense[i * V + v]);
  return q;
}
}  // namespace


void bind_engine(py::module_& m) {
  py::class_<EngineOptions>(m, "EngineOptions")
      .def(py::init<>())
      .def_readwrite("threads", &EngineOptions::threads, "worker threads; 0 = physical cores")
      .def_readwrite("context", &EngineOptions::context, "KV positions per session")
      .def_readwrite("precision", &EngineOptions::precision,
                     "matmul precision: 'q8' (8-bit activations, integer dots; default) | 'f32' (reference)")
      .def_readwrite("kv_type", &EngineOptions::kv_type, "KV-cache element type: 'f16' (default) | 'f32'")
      .def_readwrite("copy_weights", &EngineOptions::copy_weights,
                     "copy weights into the backend's memory at load (default True) or read the file mapping")
      .def_readwrite("output_q8", &EngineOptions::output_q8,
                     "q8 precision: quantize an F16/BF16/F32 output layer to Q8_0 at load (default False)")
      .def_readwrite("prefix_cache_mb", &EngineOptions::prefix_cache_mb,
                     "MB of finished sessions' K/V kept for prompts that start with them (default 0 = off)");

  py::class_<SamplingOptions>(m, "SamplingOptions")
      .def(py::init<>())
      .def_readwrite("temperature", &SamplingOptions::temperature)
      .def_readwrite("top_k", &SamplingOptions::top_k)
      .def_readwrite("top_p", &SamplingOptions::top_p)
      .def_readwrite("seed", &SamplingOptions::seed)
      .def_readwrite("max_tokens", &SamplingOptions::max_tokens);

  m.def("processed_distribution", [](F32Array logits,
                                     const SamplingOptions& o) {
    if (logits.ndim() != 1) throw InvalidArgument("processed_distribution: logits must be 1-D [vocab]");
    sampling_options_check(o);
    SparseDist d = processed_distribution(logits.data(), logits.shape(0), o);
    py::array_t<int32_t> ids(static_cast<py::ssize_t>(d.probs.size()));
    py::array_t<float> probs(static_cast<py::ssize_t>(d.probs.size()));
    for (size_t k = 0; k < d.probs.size(); ++k) {
      ids.mutable_data()[k] = d.probs[k].first;
      probs.mutable_data()[k] = d.probs[k].second;
    }
    return py::make_tuple(ids, probs);
  }, py::arg("logits"), py::arg("sampling"),
     "(ids ascending, probs) of the processed distribution (spec/sampler.h) for logits [vocab].");
  m.def("sample_token", [](F32Array logits,
                           const SamplingOptions& o, double u) {
    sampling_options_check(o);
    if (o.temperature == 0.0f) return argmax(logits.data(), logits.shape(0));
    return sample_from(processed_distribution(logits.data(), logits.shape(0), o), u);
  }, py::arg("logits"), py::arg("sampling"), py::arg("u"),
     "The plain sampler with the uniform draw u in [0, 1) passed in (fixed-noise tests).");

  m.def("_dequantize_row", [](const std::string& type_name, py::bytes raw, int64_t n, bool fast) {
    const DType t = dtype_by_name(type_name);
    std::string b = raw;
    const DTypeTraits* tr = dtype_traits(t);
    if (n % tr->block_size != 0 || static_cast<int64_t>(b.size()) != n / tr->block_size * tr->block_bytes)
      throw InvalidArgument("_dequantize_row: " + std::to_string(b.size()) + " bytes do not hold " +
                            std::to_string(n) + " " + type_name + " values");
    py::array_t<float> out(n);
    if (!fast || !cpu::dequantize_row_fast(t, b.data(), out.mutable_data(), n))
      cpu::dequantize_row(t, b.data(), out.mutable_data(), n);
    return out;
  }, py::arg("type"), py::arg("raw"), py::arg("n"), py::arg("fast"),
     "Test hook: one row through the reference (fast=False) or the matmul (fast=True) dequantizer.");

  m.def("_live_sessions", &live_sessions, "Test hook: Session objects alive in this process.");
  m.def("_live_contexts", &live_contexts, "Test hook: Context objects alive in this process.");

  py::class_<Context>(m, "Context")
      .def("forward", [](Context& c, const std::vector<int32_t>& ids, const std::string& logits, py::object out_obj) {
        if (logits != "all" && logits != "last") throw InvalidArgument("logits must be 'all' or 'last' (got '" + logits + "')");
        if (ids.empty()) throw InvalidArgument("forward: ids is empty");
        const auto T = static_cast<int64_t>(ids.size());
        const int64_t n = logits == "last" ? 1 : T;
        py::array_t<float> a;
        if (out_obj.is_none()) {
          a = py::array_t<float>({static_cast<py::ssize_t>(n), static_cast<py::ssize_t>(c.vocab_size())});
        } else {  // the caller's buffer, reused across calls (no fresh pages per pass)
          a = out_obj.cast<py::array_t<float>>();
          const bool ok = py::isinstance<py::array_t<float>>(out_obj) && a.ndim() == 2 && a.shape(0) == n &&
                          a.shape(1) == c.vocab_size() && a.writeable() &&
                          (a.flags() & py::array::c_style) && a.ptr() == out_obj.ptr();
          if (!ok)
            throw InvalidArgument("forward: out must be a writeable C-contiguous float32 array [" + std::to_string(n) +
                                  ", " + std::to_string(c.vocab_size()) + "]");
        }
        float* out = a.mutable_data();
        {
          py::gil_scoped_release nogil;
          c.forward(ids.data(), T, out, n);
        }
        return a;
      }, py::arg("ids"), py::arg("logits") = "all", py::arg("out") = py::none(),
         "Append ids (run at the next positions of this cache); float32 logits [len(ids), vocab], or "
         "[1, vocab] for the last token only with logits='last' (a prefill needs no more). out: an "
         "array of that shape to write into and return (a loop reusing it touches no fresh memory).")
      .def("forward_features", [](Context& c, const std::vector<int32_t>& ids, const std::vector<int32_t>& layers,
                                  const std::string& logits) {
        if (logits != "all" && logits != "last") throw InvalidArgument("logits must be 'all' or 'last' (got '" + logits + "')");
        if (ids.empty()) throw InvalidArgument("forward_features: ids is empty");
        if (layers.empty()) throw InvalidArgument("forward_features: layers is empty");
        const auto T = static_cast<int64_t>(ids.size()), nf = static_cast<int64_t>(layers.size());
        const int64_t n = logits == "last" ? 1 : T;
        py::array_t<float> a({static_cast<py::ssize_t>(n), static_cast<py::ssize_t>(c.vocab_size())});
        py::array_t<float> f({static_cast<py::ssize_t>(T), static_cast<py::ssize_t>(nf),
                              static_cast<py::ssize_t>(c.n_embd())});
        float* out = a.mutable_data();
        float* fo = f.mutable_data();
        {
          py::gil_scoped_release nogil;
          c.forward(ids.data(), T, out, n, layers.data(), nf, fo);
        }
        return py::make_tuple(a, f);
      }, py::arg("ids"), py::arg("layers"), py::arg("logits") = "all",
         "forward() that also returns hidden states: (logits, features [len(ids), len(layers), n_embd]); "
         "layers numbered as Hugging Face's output_hidden_states (0: embeddings, n_layers: the final "
         "norm's output; EAGLE reads the last, EAGLE-3 a low/mid/high triple).")
      .def_property_readonly("n_layers", &Context::n_layers)
      .def("truncate", &Context::truncate, py::arg("n"), "Roll back to the first n positions.")
      .def_property_readonly("length", &Context::length);

  py::class_<SpecOptions>(m, "SpecOptions")
      .def(py::init<>())
      .def_readwrite("draft", &SpecOptions::draft, "'' (plain) | 'ngram' | draft model path")
      .def_readwrite("k", &SpecOptions::k, "fixed draft length; 0 = adaptive")
      .def_readwrite("k_max", &SpecOptions::k_max)
      .def_readwrite("ngram_min", &SpecOptions::ngram_min)
      .def_readwrite("ngram_max", &SpecOptions::ngram_max)
      .def_readwrite("draft_min_prob", &SpecOptions::draft_min_prob)
      .def_readwrite("verify_row_cost", &SpecOptions::verify_row_cost,
                     "sampled sessions' fixed cost model: one more verify row as a fraction of a plain pass")
      .def_readwrite("lookup_min", &SpecOptions::lookup_min,
                     "with a draft model or head: prompt lookup first where a suffix of >= this many tokens "
                     "occurred earlier; 0 = off")
      .def_readwrite("tree_nodes", &SpecOptions::tree_nodes,
                     "n-gram, EAGLE and Medusa drafters: token trees of up to this many nodes (<= 63); 0 = chains")
      .def_readwrite("trace_path", &SpecOptions::trace_path);

  m.def("rejection_sample", [](F32Array p_logits,
                               F32Array q_probs,
                               I32Array draft,
                               const SamplingOptions& o,
                               py::array_t<double, py::array::c_style | py::array::forcecast> uniforms) {
    // p_logits [k+1, V], q_probs [k, V] (dense), draft [k], uniforms [k+1]
    if (p_logits.ndim() != 2 || q_probs.ndim() != 2 || draft.ndim() != 1 || uniforms.ndim() != 1)
      throw InvalidArgument("rejection_sample: expected p_logits [k+1, V], q_probs [k, V], draft [k], uniforms [k+1]");
    const int64_t k = draft.shape(0), V = p_logits.shape(1);
    if (p_logits.shape(0) != k + 1 || q_probs.shape(0) != k || q_probs.shape(1) != V || uniforms.shape(0) != k + 1)
      throw InvalidArgument("rejection_sample: shapes p_logits [" + std::to_string(p_logits.shape(0)) + ", " +
                            std::to_string(V) + "], q_probs [" + std::to_string(q_probs.shape(0)) + ", " +
                            std::to_string(q_probs.shape(1)) + "], draft [" + std::to_string(k) + "], uniforms [" +
                            std::to_string(uniforms.shape(0)) + "] do not agree");
    sampling_options_check(o);
    for (int64_t i = 0; i < k; ++i)
      if (draft.data()[i] < 0 || draft.data()[i] >= V)
        throw InvalidArgument("rejection_sample: draft[" + std::to_string(i) + "] = " + std::to_string(draft.data()[i]) +
                              " is outside the vocabulary [0, " + std::to_string(V) + ")");
    const std::vector<SparseDist> q = sparse_rows(q_probs.data(), k, V);
    VerifyOutcome r = rejection_sample(p_logits.data(), V, draft.data(), q, static_cast<int32_t>(k), o, uniforms.data());
    return py::make_tuple(r.n_accepted, r.next, r.bonus ? "bonus" : "recovered");
  }, py::arg("p_logits"), py::arg("q_probs"), py::arg("draft"), py::arg("sampling"), py::arg("uniforms"),
     "The rejection sampler with its noise passed in (spec/rejection.h): (n_accepted, next, kind).");

  m.def("tree_accept", [](F32Array p_logits, F32Array q_probs, I32Array tokens, I32Array parent,
                          const SamplingOptions& o,
                          py::array_t<double, py::array::c_style | py::array::forcecast> uniforms) {
    // p_logits [n+1, V] (row 0 the root, row i+1 node i), q_probs [n, V], tokens [n], parent [n], uniforms [n+1]
    if (p_logits.ndim() != 2 || q_probs.ndim() != 2 || tokens.ndim() != 1 || parent.ndim() != 1 || uniforms.ndim() != 1)
      throw InvalidArgument("tree_accept: expected p_logits [n+1, V], q_probs [n, V], tokens [n], parent [n], uniforms [n+1]");
    const int64_t n = tokens.shape(0), V = p_logits.shape(1);
    if (p_logits.shape(0) != n + 1 || q_probs.shape(0) != n || q_probs.shape(1) != V || parent.shape(0) != n ||
        uniforms.shape(0) != n + 1)
      throw InvalidArgument("tree_accept: shapes p_logits [" + std::to_string(p_logits.shape(0)) + ", " +
                            std::to_string(V) + "], q_probs [" + std::to_string(q_probs.shape(0)) + ", " +
                            std::to_string(q_probs.shape(1)) + "], tokens [" + std::to_string(n) + "], parent [" +
                            std::to_string(parent.shape(0)) + "], uniforms [" + std::to_string(uniforms.shape(0)) +
                            "] do not agree");
    sampling_options_check(o);
    for (int64_t i = 0; i < n; ++i)
      if (tokens.data()[i] < 0 || tokens.data()[i] >= V)
        throw InvalidArgument("tree_accept: tokens[" + std::to_string(i) + "] = " + std::to_string(tokens.data()[i]) +
                              " is outside the vocabulary [0, " + std::to_string(V) + ")");
    const std::vector<SparseDist> q = sparse_rows(q_probs.data(), n, V);
    TreeOutcome r;
    tree_accept(p_logits.data(), V, tokens.data(), parent.data(), q, static_cast<int32_t>(n), o, uniforms.data(), &r);
    return py::make_tuple(r.path, r.next, r.bonus ? "bonus" : "recovered");
  }, py::arg("p_logits"), py::arg("q_probs"), py::arg("tokens"), py::arg("parent"), py::arg("sampling"),
     py::arg("uniforms"),
     "Token-tree acceptance with its noise passed in (spec/tree.h): (path of accepted nodes, next, kind).");

  py::class_<Session>(m, "Session")
      .def("step", &Session::step, py::call_guard<py::gil_scoped_release>(),
           "One round; returns the committed token ids (empty once finished).")
      .def_property_readonly("committed", [](const Session& s) { return s.committed(); },
                             "The tokens the last round (step() or Engine.step_batch) committed.")
      .def_property_readonly("finished", &Session::finished)
      .def_property_readonly("finish_reason", &Session::finish_reason)
      .def_property_readonly("stats", [](const Session& s) {
        const SessionStats& st = s.stats();
        py::dict d;
        d["prompt_tokens"] = st.prompt_tokens;
        d["tokens"] = st.tokens;
        d["target_passes"] = st.target_passes;
        d["prefill_s"] = st.prefill_s;
        d["decode_s"] = st.decode_s;
        d["sample_s"] = st.sample_s;
        d["drafted"] = st.drafted;
        d["accepted"] = st.accepted;
        d["accepted_by_position"] = st.accepted_by_position;
        d["tree_passes"] = st.tree_passes;
        d["tree_nodes"] = st.tree_nodes;
        d["draft_s"] = st.draft_s;
        d["verify_s"] = st.verify_s;
        d["prefix_cached_tokens"] = st.prefix_cached_tokens;
        return d;
      });

  py::class_<Engine>(m, "Engine")
      .def(py::init<const std::string&, const EngineOptions&, const SpecOptions&>(), py::arg("path"),
           py::arg("options"), py::arg("spec") = SpecOptions(), py::call_guard<py::gil_scoped_release>())
      .def_property_readonly("config", &Engine::config, py::return_value_policy::reference_internal)
      .def_property_readonly("threads", &Engine::threads)
      .def_property_readonly("context", [](const Engine& e) { return e.options().context; })
      .def("logits", [](Engine& e, const std::vector<int32_t>& ids) {
        std::vector<float> out;
        {
          py::gil_scoped_release nogil;
          out = e.logits(ids);
        }
        const auto vocab = static_cast<py::ssize_t>(e.config().vocab_size);
        py::array_t<float> a({static_cast<py::ssize_t>(ids.size()), vocab});
        std::copy(out.begin(), out.end(), a.mutable_data());
        return a;
      }, py::arg("ids"), "float32 [len(ids), vocab] from an empty context")
      .def("new_context", &Engine::new_context, py::keep_alive<0, 1>(),
           "A fresh KV cache for chained forward() calls (it keeps the engine alive).")
      .def("start", &Engine::start, py::arg("prompt"), py::arg("sampling"), py::arg("stop_ids"),
           py::arg("use_draft") = true,
           py::keep_alive<0, 1>(), py::call_guard<py::gil_scoped_release>(),
           "A generation session (it keeps the engine alive).")
      .def("step_batch", [](Engine& e, const std::vector<Session*>& sessions) {
        size_t ran;
        {
          py::gil_scoped_release nogil;
          ran = e.step_batch(sessions.data(), sessions.size());
        }
        return ran;
      }, py::arg("sessions"),
         "One round for several sessions in one target pass (continuous batching; engine.h). Each "
         "session's `committed` then holds its tokens of the round. Returns how many sessions ran.")
      .def("set_prefix_cache_mb", &Engine::set_prefix_cache_mb, py::arg("mb"),
           "Resize the prefix cache (0 = off, emptied).")
      .def_property_readonly("prefix_cache_stats", [](const Engine& e) {
        const PrefixCacheStats st = e.prefix_cache_stats();
        py::dict d;
        d["lookups"] = st.lookups, d["hits"] = st.hits, d["hit_tokens"] = st.hit_tokens;
        d["entries"] = st.entries, d["bytes"] = st.bytes, d["budget_bytes"] = st.budget_bytes;
        return d;
      })
      .def_property_readonly_static("max_batch_rows", [](py::object) { return Engine::max_batch_rows(); },
                                    "Rows (prompt chunks, tokens + drafts) of all sessions in one step_batch pass.");
}

}  // namespace fastspec::py_bind
