// One user turn (and an optional system message) in a model's chat format, for C++ apps without
// a Jinja engine: the format is recognised from markers in the GGUF's tokenizer.chat_template
// (ChatML: <|im_start|>; Gemma: <start_of_turn>; Llama 3: <|start_header_id|>). A model whose
// template matches none gets the bare text (Format::raw). Python applies the model's own template
// (fastspec.Tokenizer.apply_chat_template), which may add a default system message.
#pragma once
#include <string>

namespace chat {

enum class Format { raw, chatml, gemma, llama3 };

Format detect(const std::string& chat_template);
const char* name(Format f);
// The prompt text: the turn(s), then the assistant's opening (the model writes the reply next).
std::string prompt(Format f, const std::string& user, const std::string& system = "");

}  // namespace chat
