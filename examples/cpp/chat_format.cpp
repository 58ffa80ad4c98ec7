#include "chat_format.h"

namespace chat {

Format detect(const std::string& t) {
  if (t.find("<|im_start|>") != std::string::npos) return Format::chatml;
  if (t.find("<start_of_turn>") != std::string::npos) return Format::gemma;
  if (t.find("<|start_header_id|>") != std::string::npos) return Format::llama3;
  return Format::raw;
}

const char* name(Format f) {
  switch (f) {
    case Format::chatml: return "chatml";
    case Format::gemma: return "gemma";
    case Format::llama3: return "llama3";
    default: return "raw";
  }
}

std::string prompt(Format f, const std::string& user, const std::string& system) {
  switch (f) {
    case Format::chatml: {
      std::string p = system.empty() ? "" : "<|im_start|>system\n" + system + "<|im_end|>\n";
      return p + "<|im_start|>user\n" + user + "<|im_end|>\n<|im_start|>assistant\n";
    }
    case Format::gemma:  // Gemma has no system role: its template prepends the system text to the turn
      return "<start_of_turn>user\n" + (system.empty() ? "" : system + "\n\n") + user +
             "<end_of_turn>\n<start_of_turn>model\n";
    case Format::llama3: {
      std::string p = system.empty() ? "" : "<|start_header_id|>system<|end_header_id|>\n\n" + system + "<|eot_id|>";
      return p + "<|start_header_id|>user<|end_header_id|>\n\n" + user +
             "<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n";
    }
    default: return user;
  }
}

}  // namespace chat
