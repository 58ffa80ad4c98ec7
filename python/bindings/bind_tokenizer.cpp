// Bindings of the C++ tokenizer (fastspec::Tokenizer, StreamDecoder) for the tests that check it
// id for id against the Python tokenizer, plus hooks into its pre-tokenizer matcher.
#include <pybind11/stl.h>

#include <memory>
#include <optional>

#include "bindings.h"
#include "fastspec/status.h"
#include "fastspec/tokenizer.h"
#include "tokenizer/pre_tokenizer.h"
#include "tokenizer/unicode.h"

namespace py = pybind11;

namespace fastspec::py_bind {
namespace {

py::str utf8_str(const std::string& s) {  // the tokenizer's text is always valid UTF-8
  return py::reinterpret_steal<py::str>(PyUnicode_DecodeUTF8(s.data(), static_cast<Py_ssize_t>(s.size()), "strict"));
}

std::optional<int32_t> opt_id(int32_t id) { return id < 0 ? std::nullopt : std::optional<int32_t>(id); }

// Pieces of text by a pre-tokenizer (by tokenizer.ggml.pre name, or explicit regexes).
py::list split_pieces(const tok::PreTokenizer& pre, const std::string& text) {
  std::vector<uint32_t> cps, offsets;
  if (tok::utf8_decode(text, cps, offsets) != std::string::npos) throw InvalidArgument("text is not valid UTF-8");
  std::vector<uint8_t> props(cps.size());
  for (size_t i = 0; i < cps.size(); ++i) props[i] = tok::unicode_props(cps[i]);
  std::vector<std::pair<uint32_t, uint32_t>> pieces;
  pre.split(tok::CodeText{cps.data(), props.data(), cps.size()}, pieces);
  py::list out;
  for (const auto& p : pieces) out.append(utf8_str(text.substr(offsets[p.first], offsets[p.second] - offsets[p.first])));
  return out;
}

}  // namespace

void bind_tokenizer(py::module_& m) {
  py::class_<Tokenizer>(m, "CppTokenizer",
                        "The C++ tokenizer (cpp/include/fastspec/tokenizer.h) of a GGUF file's vocabulary.")
      .def(py::init([](const std::string& path) { return Tokenizer::from_file(path); }), py::arg("path"))
      .def("encode",
           [](const Tokenizer& t, const std::string& text, bool add_special, bool parse_special) {
             py::gil_scoped_release nogil;
             return t.encode(text, add_special, parse_special);
           },
           py::arg("text"), py::arg("add_special") = true, py::arg("parse_special") = true)
      .def("encode",  // UTF-8 bytes as given (tests of the invalid-UTF-8 error)
           [](const Tokenizer& t, const py::bytes& text, bool add_special, bool parse_special) {
             const std::string s = text;
             py::gil_scoped_release nogil;
             return t.encode(s, add_special, parse_special);
           },
           py::arg("text"), py::arg("add_special") = true, py::arg("parse_special") = true)
      .def("decode",
           [](const Tokenizer& t, const std::vector<int32_t>& ids, bool skip_special) {
             return utf8_str(t.decode(ids, skip_special));
           },
           py::arg("ids"), py::arg("skip_special") = false)
      .def("token_bytes", [](const Tokenizer& t, int32_t id) { return py::bytes(t.token_bytes(id)); }, py::arg("id"))
      .def("token_text", [](const Tokenizer& t, int32_t id) { return utf8_str(t.token_text(id)); }, py::arg("id"))
      .def("is_special", &Tokenizer::is_special, py::arg("id"))
      .def("is_eog", &Tokenizer::is_eog, py::arg("id"))
      .def("stream_decoder",
           [](const Tokenizer& t, std::optional<std::vector<int32_t>> prompt_ids, bool skip_special) {
             return StreamDecoder(t, prompt_ids.value_or(std::vector<int32_t>{}), skip_special);
           },
           py::arg("prompt_ids") = py::none(), py::arg("skip_special") = false)
      .def_property_readonly("vocab_size", &Tokenizer::vocab_size)
      .def_property_readonly("bos_id", [](const Tokenizer& t) { return opt_id(t.bos_id()); })
      .def_property_readonly("eos_id", [](const Tokenizer& t) { return opt_id(t.eos_id()); })
      .def_property_readonly("add_bos", &Tokenizer::add_bos)
      .def_property_readonly("add_eos", &Tokenizer::add_eos)
      .def_property_readonly("eog_ids", [](const Tokenizer& t) {
        py::set s;
        for (int32_t i : t.eog_ids()) s.add(py::int_(i));
        return s;
      })
      .def_property_readonly("model", &Tokenizer::model)
      .def_property_readonly("source", &Tokenizer::source);

  py::class_<StreamDecoder>(m, "CppStreamDecoder", "Streaming decoding: push(id) -> newly completed text.")
      .def("push", [](StreamDecoder& d, int32_t id) { return utf8_str(d.push(id)); }, py::arg("id"))
      .def("flush", [](StreamDecoder& d) { return utf8_str(d.flush()); });

  m.def("_cpp_pre_tokenize",
        [](const std::string& pre, const std::string& text) {
          return split_pieces(tok::PreTokenizer::by_name(pre, "_cpp_pre_tokenize"), text);
        },
        py::arg("pre"), py::arg("text"), "Test hook: the C++ pre-tokenizer pieces of text for a tokenizer.ggml.pre name.");
  m.def("_cpp_regex_split",
        [](const std::vector<std::string>& regexes, const std::string& text) {
          return split_pieces(tok::PreTokenizer(regexes), text);
        },
        py::arg("regexes"), py::arg("text"), "Test hook: text split 'isolated' by each regex in turn.");
  m.def("_cpp_unicode_props_all",
        []() {
          std::string out(0x110000, '\0');
          for (uint32_t cp = 0; cp < 0x110000; ++cp) out[cp] = static_cast<char>(tok::unicode_props(cp));
          return py::bytes(out);
        },
        "Test hook: the props byte (category index | 32 if White_Space) of every code point.");
  m.attr("_cpp_unicode_categories") = [] {
    py::list l;
    for (int k = 0; k < tok::kCategoryCount; ++k) l.append(tok::unicode_category_name(k));
    return l;
  }();
  m.attr("_cpp_unicode_version") = tok::unicode_version();
}

}  // namespace fastspec::py_bind
