// Scalar reference integer dots of the K-quants (Q4_K, Q5_K, Q6_K) against Q8K activations.
// Placeholder: no kernels yet (the backend then uses the float32 path for these types).
#include "backend/cpu/qdot.h"

namespace fastspec::cpu {
void fill_scalar_k(QKernels& k) { (void)k; }
}  // namespace fastspec::cpu
