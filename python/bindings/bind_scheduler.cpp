// fastspec._core.Scheduler / Request / SchedulerOptions / QueueFullError (fastspec/scheduler.h):
// the continuous-batching scheduler the server calls. Request.next releases the GIL while waiting.
#include <pybind11/stl.h>

#include "bindings.h"
#include "fastspec/scheduler.h"

namespace py = pybind11;

namespace fastspec::py_bind {

namespace {
py::list logprobs_list(const std::vector<TokenLogprob>& lps) {
  py::list out;
  for (const TokenLogprob& lp : lps) {
    py::list top;
    for (const auto& [id, l] : lp.top) top.append(py::make_tuple(id, l));
    out.append(py::make_tuple(lp.logprob, top));
  }
  return out;
}
}  // namespace

void bind_scheduler(py::module_& m) {
  auto queue_full = py::register_exception<QueueFull>(m, "QueueFullError", PyExc_RuntimeError);
  queue_full.doc() = "Scheduler.submit: max_queue requests already wait for a slot (retry later).";

  py::class_<SchedulerOptions>(m, "SchedulerOptions")
      .def(py::init<>())
      .def_readwrite("max_sequences", &SchedulerOptions::max_sequences, "sequences decoding at once (slots)")
      .def_readwrite("max_queue", &SchedulerOptions::max_queue, "waiting requests beyond which submit raises QueueFullError")
      .def_readwrite("prefix_cache_mb", &SchedulerOptions::prefix_cache_mb, "K/V the prefix cache may hold (0 = off)")
      .def_readwrite("spec_backoff", &SchedulerOptions::spec_backoff, "shrink draft lengths as the batch fills");

  py::class_<Request, std::shared_ptr<Request>>(m, "Request")
      .def_property_readonly("id", &Request::id)
      .def("next", &Request::next, py::arg("timeout_s"), py::call_guard<py::gil_scoped_release>(),
           "The tokens committed since the last call; waits up to timeout_s (empty on a timeout or at the end).")
      .def("logprobs", [](const Request& r) { return logprobs_list(r.logprobs()); },
           "[(logprob, [(id, logprob), ...]), ...] for every token next() returned (top_logprobs >= 0).")
      .def_property_readonly("finished", &Request::finished)
      .def_property_readonly("finish_reason", &Request::finish_reason)
      .def("cancel", &Request::cancel, "Frees the request's slot at the next round.")
      .def_property_readonly("stats", [](const Request& r) {
        const RequestStats s = r.stats();
        py::dict d;
        d["prompt_tokens"] = s.prompt_tokens, d["tokens"] = s.tokens, d["drafted"] = s.drafted;
        d["accepted"] = s.accepted, d["accepted_by_position"] = s.accepted_by_position;
        d["prefix_cached_tokens"] = s.prefix_cached_tokens, d["queued_s"] = s.queued_s;
        d["first_token_s"] = s.first_token_s, d["decode_s"] = s.decode_s;
        return d;
      });

  py::class_<Scheduler>(m, "Scheduler")
      .def(py::init<Engine&, const SchedulerOptions&>(), py::arg("engine"), py::arg("options") = SchedulerOptions(),
           py::keep_alive<1, 2>())
      .def("submit", &Scheduler::submit, py::arg("prompt"), py::arg("sampling"), py::arg("stop_ids"),
           py::arg("draft") = true, py::arg("top_logprobs") = -1, py::call_guard<py::gil_scoped_release>(),
           "Queues a request (ValueError for bad arguments, QueueFullError when the queue is full).")
      .def_property_readonly("stats", [](const Scheduler& s) {
        const SchedulerStats st = s.stats();
        py::dict d;
        d["active"] = st.active, d["queued"] = st.queued, d["max_sequences"] = st.max_sequences;
        d["rounds"] = st.rounds, d["batch_rows"] = st.batch_rows, d["finished"] = st.finished;
        d["cancelled"] = st.cancelled, d["prefix_lookups"] = st.prefix_lookups, d["prefix_hits"] = st.prefix_hits;
        d["prefix_hit_tokens"] = st.prefix_hit_tokens, d["prefix_entries"] = st.prefix_entries;
        d["prefix_bytes"] = st.prefix_bytes;
        return d;
      })
      .def_static("draft_cap", &Scheduler::draft_cap, py::arg("active"),
                  "spec_backoff: the most drafts a greedy session verifies with `active` sequences in the round.")
      .def("close", &Scheduler::close, py::call_guard<py::gil_scoped_release>(),
           "Stops the scheduler; unfinished requests end 'cancelled'.");
}

}  // namespace fastspec::py_bind
