// A branch that reads features past the end of the input cannot compile.
// expect: strata::Slice: the slice ends beyond the width of its input
#include <strata/graph/fork.hpp>
#include <strata/graph/model.hpp>
#include <strata/layers/dense.hpp>
#include <strata/layers/identity.hpp>

using namespace strata;
#ifdef STRATA_COMPILE_FAIL_CONTROL
using Cells = Branch<Dense<8>, Slice<90, 100>>;
#else
using Cells = Branch<Dense<8>, Slice<90, 120>>;
#endif
using Net = Sequential<Input<100>, Fork<Branch<Dense<8>, Slice<0, 90>>, Cells>>;

int main() { return Model<Net>::static_output_width == 16 ? 0 : 1; }
