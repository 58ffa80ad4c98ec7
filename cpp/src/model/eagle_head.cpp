#include "model/eagle_head.h"

#include <algorithm>
#include <cstring>

#include "fastspec/status.h"

namespace fastspec {
namespace {

std::shared_ptr<const ModelFile> checked(std::shared_ptr<const ModelFile> f) {
  if (f->config().architecture != "fastspec-eagle")
    throw ModelError(f->path() + ": not an EAGLE draft head (general.architecture is '" + f->config().architecture +
                     "', expected 'fastspec-eagle')");
  if (f->config().n_layers != 1)
    throw ModelError(f->path() + ": an EAGLE head has one decoder layer (block_count is " +
                     std::to_string(f->config().n_layers) + ")");
  return f;
}

}  // namespace

EagleHead::EagleHead(std::shared_ptr<const ModelFile> file)
    : meta_(read_head_meta(*checked(file))), layer_(file) {
  const int64_t d = n_embd();
  if (meta_.kind != "eagle") throw ModelError(file->path() + ": fastspec.head.kind is '" + meta_.kind + "', not 'eagle'");
  if (vocab() != layer_.vocab_size())
    throw ModelError(file->path() + ": fastspec.head.vocab_ids has " + std::to_string(vocab()) +
                     " ids but the output layer has " + std::to_string(layer_.vocab_size()) + " rows");
  if (!layer_.config().tied_embeddings)
    throw ModelError(file->path() + ": an EAGLE head's output layer is token_embd.weight (output.weight must be absent)");
  fc_ = bind_weight(*file, file->get("fastspec_eagle.fc.weight"), d, 2 * d);
  const TensorInfo& b = file->get("fastspec_eagle.fc.bias");
  if (b.n_elements() != d)
    throw ModelError(file->path() + ": tensor 'fastspec_eagle.fc.bias' has " + std::to_string(b.n_elements()) +
                     " elements, expected " + std::to_string(d));
  fc_bias_.resize(static_cast<size_t>(d));
  file->dequantize(b, fc_bias_.data());
  if (n_feat() > 1) {
    const TensorInfo* w = file->find("fastspec_eagle.feat.weight");
    if (!w)
      throw ModelError(file->path() + ": reads " + std::to_string(n_feat()) +
                       " target states (fastspec.head.feature_layers) but has no tensor 'fastspec_eagle.feat.weight'");
    feat_ = bind_weight(*file, *w, d, n_feat() * d);
  }
}

void EagleHead::reduce(Backend& be, const float* S, int64_t T, float* F) const {
  if (n_feat() == 1) {
    std::memcpy(F, S, static_cast<size_t>(T * n_embd()) * sizeof(float));
    return;
  }
  for (int64_t c0 = 0; c0 < T; c0 += kMaxPass)
    be.matmul(feat_, S + c0 * n_feat() * n_embd(), F + c0 * n_embd(), std::min(kMaxPass, T - c0));
}

void EagleHead::bind(Backend& be) {
  layer_.bind(be);
  be.prepare_weight(fc_);
  if (n_feat() > 1) be.prepare_weight(feat_);
  be.reserve(kMaxPass, std::max<int64_t>(2, n_feat()) * n_embd(), 0);  // the fc input is 2d wide, W_feat's n_feat d
}

void EagleHead::forward(Backend& be, KvCache& kv, const float* emb, const float* feat, int64_t T, float* g,
                        float* logits, int64_t n_logits, float* scratch, const int32_t* parent) const {
  const int64_t d = n_embd();
  if (T < 1 || n_logits < 0 || n_logits > T || (parent && T > kMaxPass))
    throw Error("EagleHead::forward: T=" + std::to_string(T) + " n_logits=" + std::to_string(n_logits) +
                (parent ? " (a tree pass takes at most " + std::to_string(kMaxPass) + " rows)" : ""));
  const int32_t last = 1;  // hidden state 1 of a 1-layer model: its final norm's output, g
  const int64_t first_logit = T - n_logits;
  for (int64_t c0 = 0; c0 < T; c0 += kMaxPass) {
    const int64_t n = std::min(kMaxPass, T - c0);
    float* cat = scratch;        // [n, 2d] = [E | F] per row
    float* x = scratch + n * 2 * d;  // [n, d]   = W_fc cat + b
    for (int64_t t = 0; t < n; ++t) {
      std::memcpy(cat + t * 2 * d, emb + (c0 + t) * d, static_cast<size_t>(d) * sizeof(float));
      std::memcpy(cat + t * 2 * d + d, feat + (c0 + t) * d, static_cast<size_t>(d) * sizeof(float));
    }
    MatmulOut o;
    o.w = &fc_, o.y = x, o.bias = fc_bias_.data();
    be.matmuls(cat, n, &o, 1);
    Features f{&last, 1, g + c0 * d};
    SeqRows rows;
    rows.kv = &kv, rows.T = n, rows.features = &f, rows.embd = x, rows.parent = parent;
    const int64_t lo = std::max(c0, first_logit);  // first row of this chunk that needs logits
    rows.n_logits = lo < c0 + n ? c0 + n - lo : 0;
    layer_.forward_batch(be, &rows, 1, rows.n_logits ? logits + (lo - first_logit) * vocab() : nullptr);
  }
}

}  // namespace fastspec
