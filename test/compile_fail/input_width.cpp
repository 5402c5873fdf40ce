// A layer that declares an input width other than what the previous layer produces cannot
// compile.
// expect: strata::Input: the declared input width differs from the width it receives
#include <strata/graph/model.hpp>
#include <strata/graph/sequential.hpp>
#include <strata/layers/dense.hpp>
#include <strata/layers/identity.hpp>

using namespace strata;
#ifdef STRATA_COMPILE_FAIL_CONTROL
using Net = Sequential<Input<10>, Dense<6>, Input<6>, Dense<1>>;
#else
using Net = Sequential<Input<10>, Dense<5>, Input<6>, Dense<1>>;
#endif

int main() { return Model<Net>::static_output_width == 1 ? 0 : 1; }
