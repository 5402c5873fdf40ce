// Builds and trains nothing fancy: it proves the installed headers and package config work.
#include <strata/strata.hpp>

#include <iostream>

int main() {
  using Net = strata::Sequential<strata::Dense<8>, strata::ReLU, strata::Dense<1>>;
  strata::Model<Net> model;
  model.build(4, 7);
  const strata::matrix_f x = strata::matrix_f::Ones(4, 3);
  const auto& y = model.forward(x);
  std::cout << "consumer: " << model.parameter_count() << " parameters, output " << y.rows() << "x"
            << y.cols() << "\n";
  return (model.parameter_count() == 8 * 4 + 8 + 8 + 1 && y.cols() == 3) ? 0 : 1;
}
