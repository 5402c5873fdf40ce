#pragma once
// drug_response's commands besides training (drug_response_predict.cpp): each takes its own
// command line, argv[0] being the command's name, and returns the exit code.
namespace examples {

/// `drug_response predict`: predictions (with uncertainty) for tuples from a model file.
int drug_response_predict(int argc, char** argv);
/// `drug_response export`: a model file as NumPy .npz + architecture JSON.
int drug_response_export(int argc, char** argv);

}  // namespace examples
