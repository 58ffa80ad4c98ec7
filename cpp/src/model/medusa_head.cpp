#include "model/medusa_head.h"

#include <cmath>

#include "fastspec/status.h"
#include "model/transformer.h"

namespace fastspec {

MedusaHead::MedusaHead(std::shared_ptr<const ModelFile> file) : file_(std::move(file)) {
  const ModelFile& f = *file_;
  if (f.config().architecture != "fastspec-medusa")
    throw ModelError(f.path() + ": not a Medusa draft head (general.architecture is '" + f.config().architecture +
                     "', expected 'fastspec-medusa')");
  meta_ = read_head_meta(f);
  if (meta_.kind != "medusa") throw ModelError(f.path() + ": fastspec.head.kind is '" + meta_.kind + "', not 'medusa'");
  if (meta_.feature_layers.size() != 1)
    throw ModelError(f.path() + ": Medusa heads read one target state (fastspec.head.feature_layers has " +
                     std::to_string(meta_.feature_layers.size()) + ")");
  d_ = f.config().n_embd;
  const MetaValue* kv = meta_find(f.metadata(), "fastspec-medusa.head_count");
  const int64_t K = kv && kv->is_number() ? kv->as_int() : 0;
  if (d_ < 1 || d_ > (int64_t{1} << 24) || K < 1 || K > kMaxHeads)
    throw ModelError(f.path() + ": Medusa head with embedding_length " + std::to_string(d_) + " and head_count " +
                     std::to_string(K) + " (need 1..2^24 and 1.." + std::to_string(kMaxHeads) + ")");
  out_ = bind_weight(f, f.get("token_embd.weight"), vocab(), d_);
  out_.is_output = true;
  for (int64_t i = 0; i < K; ++i) {
    const std::string p = "fastspec_medusa." + std::to_string(i);
    w_.push_back(bind_weight(f, f.get(p + ".weight"), d_, d_));
    const TensorInfo& b = f.get(p + ".bias");
    if (b.n_elements() != d_)
      throw ModelError(f.path() + ": tensor '" + p + ".bias' has " + std::to_string(b.n_elements()) +
                       " elements, expected " + std::to_string(d_));
    b_.emplace_back(static_cast<size_t>(d_));
    f.dequantize(b, b_.back().data());
  }
}

void MedusaHead::bind(Backend& be) {
  be.prepare_weight(out_);
  for (Weight& w : w_) be.prepare_weight(w);
  be.reserve(n_heads(), d_, 0);
}

void MedusaHead::forward(Backend& be, const float* feat, float* logits, float* scratch) const {
  const int64_t K = n_heads(), d = d_;
  float* u = scratch;          // [K, d] W_i F + b_i
  float* h = scratch + K * d;  // [K, d] F + silu(u_i)
  MatmulOut outs[kMaxHeads];  // the K matmuls over the one input F in one pass
  for (int64_t i = 0; i < K; ++i) outs[i].w = &w_[i], outs[i].y = u + i * d, outs[i].bias = b_[i].data();
  be.matmuls(feat, 1, outs, static_cast<int>(K));
  for (int64_t i = 0; i < K; ++i)
    for (int64_t j = 0; j < d; ++j) {
      const float a = u[i * d + j];
      h[i * d + j] = feat[j] + a / (1.0f + std::exp(-a));
    }
  MatmulOut o;
  o.w = &out_, o.y = logits;
  be.matmuls(h, K, &o, 1);  // logits: [K, V_sub], the K rows in one pass over W_sub
}

}  // namespace fastspec
