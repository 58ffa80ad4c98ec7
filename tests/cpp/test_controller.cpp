// The draft-length controller (spec/controller.h) on synthetic timings: a losing tree shape is
// probed ever more rarely (its interval doubles), a tree slower than plain decoding never runs
// between probes, and a greedy controller's measured costs carry over to the engine's next greedy
// session (which then skips the measuring and the first try of every shape) but never into a
// sampled one. Timing-free: every "second" here is a number the test makes up.
#include <cstdio>

#include "check.h"
#include "spec/controller.h"

using namespace fastspec;

namespace {

SpecOptions adaptive(int32_t tree_nodes) {
  SpecOptions s;
  s.k = 0;
  s.k_max = 8;
  s.tree_nodes = tree_nodes;
  return s;
}

struct Counts {
  int plain = 0, chain = 0, tree = 0, first_tree_step = -1;
};

// steps of a session where a plain pass costs 1 s, a chain of k rows 1 + 0.1 k s (one draft
// accepted), a tree of n nodes tree_s s (two accepted).
Counts simulate(KController& c, int steps, double tree_s, int32_t tree_nodes) {
  Counts n;
  for (int i = 0; i < steps; ++i) {
    const int32_t k = c.choose();
    if (k == 0) {
      c.observe_plain(1.0);
      ++n.plain;
      continue;
    }
    const int32_t nodes = c.choose_nodes(tree_nodes);
    CHECK(nodes >= 0 && nodes <= tree_nodes);
    if (nodes == 0) {
      c.observe_spec(k, 1, 0.01 * k, 1.0 + 0.1 * k, k + 1);
      c.observe_kind(2, k + 1, 1.0 + 0.11 * k);
      ++n.chain;
    } else {
      c.observe_spec(k, 2, 0.01 * k, tree_s, nodes + 1);
      c.observe_kind(3, nodes + 1, tree_s);
      if (n.first_tree_step < 0) n.first_tree_step = i;
      ++n.tree;
    }
  }
  return n;
}

void losing_trees_are_probed_rarely() {
  KController c(adaptive(24), 0.01, false);
  const Counts n = simulate(c, 2000, 4.0, 24);  // a tree: 3 tokens per 4 s; a chain ~2 per 1.2 s
  std::printf("losing trees: %d plain, %d chain, %d tree steps\n", n.plain, n.chain, n.tree);
  CHECK(n.chain > 1500);
  // three tree shapes, each probed after 16, 32, 64, 128, 256, 256, ... steps: about 8 probes each
  CHECK(n.tree > 3 && n.tree < 40);
}

void trees_slower_than_plain_never_run() {
  // chains barely pay; a tree commits 3 tokens in 3.2 s (0.94 tok/s < plain's 1): it may only be probed
  KController c(adaptive(16), 0.01, false);
  const Counts n = simulate(c, 2000, 3.2, 16);
  std::printf("slow trees: %d plain, %d chain, %d tree steps\n", n.plain, n.chain, n.tree);
  CHECK(n.tree < 40);
}

void winning_trees_run() {
  KController c(adaptive(16), 0.01, false);
  const Counts n = simulate(c, 2000, 1.1, 16);  // a tree: 3 tokens per 1.1 s beats the chain
  std::printf("winning trees: %d plain, %d chain, %d tree steps\n", n.plain, n.chain, n.tree);
  CHECK(n.tree > 1800);
}

void greedy_memory_carries_over() {
  ControllerMemory mem;
  {
    KController fresh(adaptive(24), 0.01, false, &mem);
    CHECK(fresh.choose() == 0);  // with nothing measured, the first step is plain
    const Counts n = simulate(fresh, 200, 4.0, 24);
    CHECK(n.first_tree_step >= 0 && n.first_tree_step <= 3);  // the full tree is tried first
    fresh.save();
  }
  CHECK(mem.valid && mem.costs.a > 0.99 && mem.costs.a < 1.01);
  KController next(adaptive(24), 0.01, false, &mem);
  CHECK(next.choose() > 0);  // costs known: it speculates at once
  const Counts n = simulate(next, 12, 4.0, 24);
  CHECK(n.tree == 0);  // and does not re-try the losing trees first
  // a sampled controller neither reads nor writes the memory
  ControllerMemory empty;
  KController sampled(adaptive(24), 0.01, true, &empty);
  simulate(sampled, 50, 4.0, 24);
  sampled.save();
  CHECK(!empty.valid);
}

}  // namespace

int main() {
  losing_trees_are_probed_rarely();
  trees_slower_than_plain_never_run();
  winning_trees_run();
  greedy_memory_carries_over();
  std::printf("controller: %d failures\n", fastspec_test::failures());
  return fastspec_test::failures() != 0;
}
