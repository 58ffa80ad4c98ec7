// fastspec-chat: load a GGUF, tokenize one user message in the model's chat format, and stream
// the reply to stdout as it is decoded, with the public C++ API only (fastspec/engine.h,
// fastspec/tokenizer.h). Statistics go to stderr.
//   fastspec-chat MODEL.gguf "message" [--max-tokens N] [--threads N] [--temperature T] [--seed S]
//                 [--draft ngram|DRAFT.gguf] [--system TEXT] [--raw] [--print-ids]
// --raw: the message as it is (no chat format); --print-ids: the prompt ids on stderr, one line.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <iostream>
#include <string>
#include <vector>

#include "chat_format.h"
#include "fastspec/engine.h"
#include "fastspec/model_file.h"
#include "fastspec/status.h"
#include "fastspec/tokenizer.h"

namespace {

struct Args {
  std::string model, message, system, draft;
  int64_t max_tokens = 256;
  int threads = 0;
  float temperature = 0.0f;
  uint64_t seed = 0;
  bool raw = false, print_ids = false;
};

[[noreturn]] void usage(const char* argv0, const char* why) {
  std::fprintf(stderr, "%s: %s\nusage: %s MODEL.gguf MESSAGE [--max-tokens N] [--threads N] [--temperature T] "
               "[--seed S] [--draft ngram|DRAFT.gguf] [--system TEXT] [--raw] [--print-ids]\n", argv0, why, argv0);
  std::exit(2);
}

Args parse(int argc, char** argv) {
  Args a;
  std::vector<std::string> pos;
  for (int i = 1; i < argc; ++i) {
    const std::string k = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) usage(argv[0], (k + " needs a value").c_str());
      return argv[++i];
    };
    if (k == "--max-tokens") a.max_tokens = std::atoll(value().c_str());
    else if (k == "--threads") a.threads = std::atoi(value().c_str());
    else if (k == "--temperature") a.temperature = std::strtof(value().c_str(), nullptr);
    else if (k == "--seed") a.seed = std::strtoull(value().c_str(), nullptr, 10);
    else if (k == "--draft") a.draft = value();
    else if (k == "--system") a.system = value();
    else if (k == "--raw") a.raw = true;
    else if (k == "--print-ids") a.print_ids = true;
    else if (k.rfind("--", 0) == 0) usage(argv[0], ("unknown option " + k).c_str());
    else pos.push_back(k);
  }
  if (pos.size() != 2) usage(argv[0], "need MODEL and MESSAGE");
  a.model = pos[0], a.message = pos[1];
  if (a.max_tokens < 1) usage(argv[0], "--max-tokens must be >= 1");
  return a;
}

}  // namespace

int main(int argc, char** argv) {
  const Args a = parse(argc, argv);
  using clock = std::chrono::steady_clock;
  const auto t0 = clock::now();
  try {
    // The tokenizer reads the vocabulary from the file's metadata (the engine maps it separately).
    auto file = fastspec::ModelFile::open(a.model);
    const fastspec::Tokenizer tok = fastspec::Tokenizer::from_model_file(*file);
    const fastspec::MetaValue* tmpl = fastspec::meta_find(file->metadata(), "tokenizer.chat_template");
    const chat::Format fmt = a.raw ? chat::Format::raw : chat::detect(tmpl ? tmpl->s : "");
    file.reset();
    const std::vector<int32_t> ids = tok.encode(chat::prompt(fmt, a.message, a.system));
    if (a.print_ids) {
      std::fprintf(stderr, "prompt ids (%s):", chat::name(fmt));
      for (int32_t t : ids) std::fprintf(stderr, " %d", t);
      std::fprintf(stderr, "\n");
    }

    fastspec::EngineOptions eo;
    eo.threads = a.threads;
    eo.context = std::min<int64_t>(4096, static_cast<int64_t>(ids.size()) + a.max_tokens);
    fastspec::SpecOptions so;
    so.draft = a.draft;
    fastspec::Engine engine(a.model, eo, so);
    fastspec::SamplingOptions s;
    s.max_tokens = a.max_tokens, s.temperature = a.temperature, s.seed = a.seed;
    auto session = engine.start(ids, s, tok.eog_ids());
    fastspec::StreamDecoder dec(tok, ids, /*skip_special=*/true);
    double first_s = -1;
    while (!session->finished()) {
      for (int32_t id : session->step()) {
        if (first_s < 0) first_s = std::chrono::duration<double>(clock::now() - t0).count();
        if (tok.is_eog(id)) continue;
        std::cout << dec.push(id) << std::flush;
      }
    }
    std::cout << dec.flush() << std::endl;
    const fastspec::SessionStats& st = session->stats();
    const double total = std::chrono::duration<double>(clock::now() - t0).count();
    std::fprintf(stderr,
                 "[%lld prompt + %lld tokens, %s; first token %.0f ms after start; decode %.1f tok/s; "
                 "%lld target passes, %lld/%lld drafts accepted; %.2f s in all]\n",
                 static_cast<long long>(st.prompt_tokens), static_cast<long long>(st.tokens),
                 session->finish_reason().c_str(), first_s * 1e3,
                 st.decode_s > 0 ? static_cast<double>(st.tokens - 1) / st.decode_s : 0.0,
                 static_cast<long long>(st.target_passes), static_cast<long long>(st.accepted),
                 static_cast<long long>(st.drafted), total);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "fastspec-chat: %s\n", e.what());
    return 1;
  }
  return 0;
}
