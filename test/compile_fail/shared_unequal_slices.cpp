// One shared network cannot read slices of different widths.
// expect: strata::Shared: every slice read by a shared network must have the same width
#include <strata/graph/model.hpp>
#include <strata/graph/shared.hpp>
#include <strata/layers/dense.hpp>

using namespace strata;
#ifdef STRATA_COMPILE_FAIL_CONTROL
using Net = Shared<Dense<8>, Slice<0, 10>, Slice<10, 20>>;
#else
using Net = Shared<Dense<8>, Slice<0, 10>, Slice<10, 25>>;
#endif

int main() { return Model<Net>::static_output_width == 16 ? 0 : 1; }
