// Token trees (terms in DESIGN.md). A tree proposal holds n nodes in topological order: node i has
// token tokens[i] and parent[i] < i, -1 for a child of the root (the last committed token). The
// verify pass has n + 1 rows: row 0 the root, row i + 1 node i, each attending to the cache and to
// its ancestors (Backend::attention's parent), so p at row r is the target's distribution after
// that node's path. Acceptance walks down from the root:
//   greedy:  at the current row, the first child (in node order) whose token is argmax(p_row) is
//            accepted and becomes current; when none is, next = argmax(p_row) (recovered); when
//            the current node has no children, next = argmax(p_row) (bonus).
//   sampled: multi-candidate rejection over the children of the current row, R = p_row at first:
//            child c (in node order) is accepted iff u[c] * q_c(x_c) < R(x_c) / |R|; on rejection
//            R = max(0, R / |R| - q_c) (the residual; kept as it was when that leaves nothing).
//            All children rejected: next ~ R at u[n] (recovered); no children: next ~ p_row at
//            u[n] (bonus). q_c is the distribution child c was drawn from given its earlier
//            siblings: one-hot for deterministic drafters (n-gram continuations, top-k children);
//            siblings drawn independently from one q keep that q. Either way the committed tokens
//            are distributed as the target's sampler would draw them (exact).
// On a chain (parent[i] = i - 1) both rules, with the same uniforms, make exactly the decisions of
// rejection_sample (rejection.h): the uniform of node i is u[i], the last draw u[n].
#pragma once
#include <cstdint>
#include <vector>

#include "fastspec/options.h"
#include "spec/sampler.h"

namespace fastspec {

// The most nodes of a tree (its verify pass has one more row; the CPU attention takes 64).
constexpr int32_t kTreeMaxNodes = 63;

struct TreeOutcome {
  std::vector<int32_t> path;  // accepted nodes, root's child first, each the parent of the next
  int32_t next = -1;          // the recovered or bonus token after the path
  bool bonus = false;         // the last path node (or the root) had no children
};

// p_logits: [n + 1, vocab] verify rows; tokens, parent: [n]; q: [>= n] draft distributions;
// uniforms: [n + 1] in [0, 1) (unused when greedy). InvalidArgument on a malformed tree.
void tree_accept(const float* p_logits, int64_t vocab, const int32_t* tokens, const int32_t* parent,
                 const std::vector<SparseDist>& q, int32_t n, const SamplingOptions& o, const double* uniforms,
                 TreeOutcome* out);

// Checks parent[n] (parent[i] in [-1, i)); InvalidArgument naming the node otherwise.
void tree_check(const int32_t* parent, int32_t n);

}  // namespace fastspec
