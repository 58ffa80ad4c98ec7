// Drafters behind one interface. A drafter proposes up to k tokens continuing `context` (prompt +
// committed tokens), each with the distribution q it was drawn from (one-hot for deterministic
// drafters). It may propose fewer (or none) when it has nothing good to offer.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "fastspec/options.h"
#include "fastspec/tensor.h"
#include "spec/sampler.h"

namespace fastspec {

class Backend;
class Transformer;
class KvCache;
class EagleHead;
class MedusaHead;

struct Proposal {
  std::vector<int32_t> tokens;  // [n] a chain (n <= k) or a tree's nodes (spec/tree.h)
  std::vector<SparseDist> q;    // [>= n] distributions the tokens were drawn from (first n valid)
  std::vector<int32_t> parent;  // [n] a tree: each node's parent (-1: the root); empty: a chain
  int32_t max_nodes = 0;        // set by the caller: the most nodes a tree may have (0: chains)
  double sync_s = 0;            // time spent catching up on the context (not a per-draft cost)
  void clear() { tokens.clear(), parent.clear(), sync_s = 0; }  // keeps q's buffers for reuse
  // Appends a token drawn from a one-hot distribution (deterministic drafters); no allocation
  // once the buffers have grown.
  void push_one_hot(int32_t tok) {
    const size_t i = tokens.size();
    tokens.push_back(tok);
    if (q.size() <= i) q.resize(i + 1);
    q[i].probs.clear();
    q[i].probs.emplace_back(tok, 1.0f);
  }
};

class Drafter {
 public:
  virtual ~Drafter() = default;
  virtual const char* name() const = 0;
  // Writes up to k draft tokens into out (cleared first; its buffers are reused, so a drafter
  // that keeps a Proposal across steps allocates nothing once warm). Draws with rng when
  // sampling (temperature > 0); greedy drafts take the argmax.
  virtual void propose(const std::vector<int32_t>& context, int32_t k, const SamplingOptions& o, Rng& rng,
                       Proposal& out) = 0;
  // Draft heads read the target's hidden states: the ones they need (Features numbering in
  // model/transformer.h; an EAGLE-3 head several, low to high), or none (the default) for
  // drafters that do not.
  virtual std::vector<int32_t> feature_layers() const { return {}; }
  // Those hidden states for committed positions [pos, pos + n) of the context:
  // f [n, feature_layers().size(), n_embd], from the target passes that computed them (prefill
  // chunks, the kept rows of a verify pass).
  virtual void observe_features(int64_t pos, const float* f, int64_t n) { (void)pos, (void)f, (void)n; }
};

// Prompt lookup: the most recent earlier occurrence of the context's last n tokens (n from
// ngram_max down to ngram_min) and the tokens that followed it. With Proposal::max_nodes > 0, a
// tree: that chain first, then the continuations (up to k deep) of the other matches, most recent
// and longest n first, merged where they share a prefix, until max_nodes.
std::unique_ptr<Drafter> make_ngram_drafter(const SpecOptions& spec);

// A smaller model sharing the tokenizer, with its own KV cache kept in sync with the context
// (rolled back to the longest common prefix before each proposal).
std::unique_ptr<Drafter> make_model_drafter(const Transformer& model, Backend& backend, int64_t n_ctx,
                                            DType kv_type, const SpecOptions& spec);

// An EAGLE head (model/eagle_head.h) drafting from the target's features: its cache holds one
// row per committed position (true features), then drafts autoregressively, feeding each draft's
// embedding and its own predicted feature g back. Output ids map through the head's vocab_ids.
std::unique_ptr<Drafter> make_eagle_drafter(const EagleHead& head, const Transformer& target, Backend& backend,
                                            int64_t n_ctx, DType kv_type, const SpecOptions& spec);

// Medusa heads (model/medusa_head.h): K tokens at once from the last committed feature.
std::unique_ptr<Drafter> make_medusa_drafter(const MedusaHead& head, Backend& backend, const SpecOptions& spec);

// SpecOptions::lookup_min > 0: prompt lookup (suffixes of lookup_min .. max(lookup_min, ngram_max)
// tokens) proposes when it finds a match; `model` (a draft model or head) proposes otherwise.
std::unique_ptr<Drafter> make_lookup_first_drafter(const SpecOptions& spec, std::unique_ptr<Drafter> model);

}  // namespace fastspec
