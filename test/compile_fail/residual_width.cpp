// A residual connection around a network that changes the width cannot compile.
// expect: strata::Residual: the inner network must keep the width of its input
#include <strata/graph/model.hpp>
#include <strata/graph/residual.hpp>
#include <strata/layers/activation.hpp>
#include <strata/layers/dense.hpp>
#include <strata/layers/identity.hpp>

using namespace strata;
#ifdef STRATA_COMPILE_FAIL_CONTROL
using Inner = Sequential<Dense<64>, ReLU, Dense<64>>;
#else
using Inner = Sequential<Dense<64>, ReLU, Dense<32>>;
#endif
using Net = Sequential<Input<64>, Residual<Inner>>;

int main() { return Model<Net>::static_output_width == 64 ? 0 : 1; }
