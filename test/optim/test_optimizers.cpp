// Optimizers against PyTorch's update rules worked out by hand on one- and two-element
// parameters, their state for checkpoints, hyperparameter validation, learning-rate schedules
// and gradient clipping.

#include <catch2/catch.hpp>

#include <cmath>
#include <limits>
#include <map>
#include <string>
#include <vector>

#include "strata/backend/eigen_backend.hpp"
#include "strata/optim/optimizer.hpp"

using strata::matrix_d;
using B = strata::EigenBackend<double>;

namespace {

/// A tensor and its gradient in plain matrices: what optimizers see of a model's parameter,
/// without a model.
template <class Backend>
struct plain_parameter {
  std::string name;
  typename Backend::matrix* value;
  typename Backend::matrix* gradient;
  strata::parameter_group group{};
};

/// Whole-tensor optimizer slices over plain matrices (as a model's parameter store hands out).
template <class Backend>
std::vector<strata::parameter_slice<Backend>> slices_of(const std::vector<plain_parameter<Backend>>& list) {
  std::vector<strata::parameter_slice<Backend>> slices;
  for (std::size_t k = 0; k < list.size(); ++k) {
    const auto& p = list[k];
    slices.push_back({p.name, p.value->data(), p.gradient->data(), p.value->rows(), p.value->cols(), 0, k, p.group});
  }
  return slices;
}

/// One model parameter "p" with a settable gradient.
struct one_weight {
  matrix_d value, gradient;
  std::vector<strata::parameter_slice<B>> params;

  one_weight(std::initializer_list<double> w) : value(static_cast<strata::Index>(w.size()), 1) {
    strata::Index k = 0;
    for (double x : w) value(k++, 0) = x;
    gradient = matrix_d::Zero(value.rows(), 1);
    std::vector<plain_parameter<B>> whole{{"p", &value, &gradient}};
    params = slices_of(whole);
  }
  double w(strata::Index i = 0) const { return value(i, 0); }
  void set_gradient(std::initializer_list<double> g) {
    strata::Index k = 0;
    for (double x : g) gradient(k++, 0) = x;
  }
};

/// The state tensors of an optimizer as name -> copy.
template <class Optimizer>
std::map<std::string, matrix_d> states(Optimizer& opt) {
  std::map<std::string, matrix_d> out;
  opt.for_each_state([&out](const std::string& name, matrix_d& m) { out[name] = m; });
  return out;
}

}  // namespace

TEST_CASE("Optimizer specs default to PyTorch's hyperparameters", "[optim]") {
  SECTION("SGD: lr 0.01 (our choice; PyTorch has none), no momentum, dampening or decay") {
    const strata::SGD s;
    CHECK(s.lr == 0.01);
    CHECK(s.momentum == 0.0);
    CHECK(s.dampening == 0.0);
    CHECK(s.weight_decay == 0.0);
    CHECK_FALSE(s.nesterov);
  }
  SECTION("Adam: lr 1e-3, betas (0.9, 0.999), eps 1e-8, no decay; AdamW decays by 0.01") {
    const strata::Adam a;
    CHECK(a.lr == 1e-3);
    CHECK(a.beta1 == 0.9);
    CHECK(a.beta2 == 0.999);
    CHECK(a.eps == 1e-8);
    CHECK(a.weight_decay == 0.0);
    const strata::AdamW aw;
    CHECK(aw.lr == 1e-3);
    CHECK(aw.beta1 == 0.9);
    CHECK(aw.beta2 == 0.999);
    CHECK(aw.eps == 1e-8);
    CHECK(aw.weight_decay == 0.01);
  }
  SECTION("RMSprop: lr 0.01, alpha 0.99, eps 1e-8, no decay, no momentum, not centered") {
    const strata::RMSprop r;
    CHECK(r.lr == 0.01);
    CHECK(r.alpha == 0.99);
    CHECK(r.eps == 1e-8);
    CHECK(r.weight_decay == 0.0);
    CHECK(r.momentum == 0.0);
    CHECK_FALSE(r.centered);
  }
  SECTION("Adagrad: lr 0.01, no lr decay or weight decay, accumulator from 0, eps 1e-10") {
    const strata::Adagrad a;
    CHECK(a.lr == 0.01);
    CHECK(a.lr_decay == 0.0);
    CHECK(a.weight_decay == 0.0);
    CHECK(a.initial_accumulator_value == 0.0);
    CHECK(a.eps == 1e-10);
  }
  SECTION("aggregate initialisation follows PyTorch's argument order") {
    const strata::SGD s{0.1, 0.9};
    CHECK(s.lr == 0.1);
    CHECK(s.momentum == 0.9);
    const strata::RMSprop r{0.1, 0.9, 1e-6, 0.5};
    CHECK(r.weight_decay == 0.5);
  }
}

TEST_CASE("SGD follows PyTorch's update rule", "[optim][sgd]") {
  SECTION("plain SGD: w -= lr * g, with the lr given to step rather than the spec's") {
    one_weight p{1.0, -2.0};
    strata::sgd_optimizer<B> opt(strata::SGD{0.5}, p.params);
    p.set_gradient({0.5, 1.0});
    opt.step(p.params, 0.1);
    CHECK(p.w(0) == Approx(0.95));
    CHECK(p.w(1) == Approx(-2.1));
    opt.step(p.params, 0.2);
    CHECK(p.w(0) == Approx(0.85));
    CHECK(p.w(1) == Approx(-2.3));
    CHECK(opt.step_count() == 2);
  }
  SECTION("weight decay adds weight_decay * w to the gradient") {
    one_weight p{1.0};
    strata::SGD spec;
    spec.weight_decay = 0.1;
    strata::sgd_optimizer<B> opt(spec, p.params);
    p.set_gradient({0.5});
    opt.step(p.params, 0.1);
    CHECK(p.w() == Approx(1.0 - 0.1 * (0.5 + 0.1 * 1.0)));  // 0.94
    opt.step(p.params, 0.1);
    CHECK(p.w() == Approx(0.94 - 0.1 * (0.5 + 0.1 * 0.94)));  // 0.8806
  }
  SECTION("momentum: the first step copies the gradient, later ones dampen it") {
    one_weight p{0.0};
    strata::sgd_optimizer<B> opt(strata::SGD{0.1, 0.9, 0.5}, p.params);
    p.set_gradient({1.0});
    opt.step(p.params, 0.1);  // buf = 1 (no dampening on the first step)
    CHECK(p.w() == Approx(-0.1));
    opt.step(p.params, 0.1);  // buf = 0.9 * 1 + 0.5 * 1 = 1.4
    CHECK(p.w() == Approx(-0.24));
    p.set_gradient({-2.0});
    opt.step(p.params, 0.1);  // buf = 0.9 * 1.4 + 0.5 * -2 = 0.26
    CHECK(p.w() == Approx(-0.266));
    CHECK(states(opt).at("p.momentum_buffer")(0, 0) == Approx(0.26));
  }
  SECTION("Nesterov steps along g + momentum * buf") {
    one_weight p{0.0};
    strata::SGD spec{0.1, 0.9};
    spec.nesterov = true;
    strata::sgd_optimizer<B> opt(spec, p.params);
    p.set_gradient({1.0});
    opt.step(p.params, 0.1);  // buf = 1, d = 1 + 0.9 = 1.9
    CHECK(p.w() == Approx(-0.19));
    opt.step(p.params, 0.1);  // buf = 1.9, d = 1 + 0.9 * 1.9 = 2.71
    CHECK(p.w() == Approx(-0.461));
  }
  SECTION("without momentum there is no state") {
    one_weight p{1.0};
    strata::sgd_optimizer<B> opt(strata::SGD{}, p.params);
    CHECK(states(opt).empty());
  }
}

TEST_CASE("Adam and AdamW follow PyTorch's update rule", "[optim][adam]") {
  const double eps = 1e-8;

  SECTION("bias correction makes the first step lr * g / (|g| + eps)") {
    one_weight p{1.0, 1.0};
    strata::adam_optimizer<B> opt(strata::Adam{}, p.params);
    p.set_gradient({0.5, -1e-3});
    opt.step(p.params, 0.1);
    CHECK(p.w(0) == Approx(1.0 - 0.1 * 0.5 / (0.5 + eps)));
    CHECK(p.w(1) == Approx(1.0 + 0.1 * 1e-3 / (1e-3 + eps)));
  }
  SECTION("two steps match the bias-corrected moment estimates") {
    one_weight p{1.0};
    strata::adam_optimizer<B> opt(strata::Adam{}, p.params);
    const double b1 = 0.9, b2 = 0.999, lr = 0.1;
    double m = 0.0, v = 0.0, w = 1.0;
    const double grads[] = {0.5, -0.25, 2.0};
    for (int t = 1; t <= 3; ++t) {
      const double g = grads[t - 1];
      p.set_gradient({g});
      opt.step(p.params, lr);
      m = b1 * m + (1 - b1) * g;
      v = b2 * v + (1 - b2) * g * g;
      const double m_hat = m / (1 - std::pow(b1, t));
      const double v_hat = v / (1 - std::pow(b2, t));
      w -= lr * m_hat / (std::sqrt(v_hat) + eps);
      INFO("step " << t);
      CHECK(p.w() == Approx(w).epsilon(1e-12));
    }
    const auto s = states(opt);
    CHECK(s.at("p.exp_avg")(0, 0) == Approx(m));
    CHECK(s.at("p.exp_avg_sq")(0, 0) == Approx(v));
  }
  SECTION("Adam's weight decay is L2: it enters the moments") {
    one_weight p{1.0};
    strata::Adam spec;
    spec.weight_decay = 0.1;
    strata::adam_optimizer<B> opt(spec, p.params);
    p.set_gradient({0.5});
    opt.step(p.params, 0.1);
    // g' = 0.5 + 0.1 * 1 = 0.6; the first step is still lr * sign(g')
    CHECK(states(opt).at("p.exp_avg")(0, 0) == Approx(0.1 * 0.6));
    CHECK(states(opt).at("p.exp_avg_sq")(0, 0) == Approx(0.001 * 0.36));
    CHECK(p.w() == Approx(1.0 - 0.1 * 0.6 / (0.6 + eps)));
  }
  SECTION("AdamW's weight decay is decoupled: w shrinks by lr * wd, the moments see only g") {
    one_weight p{1.0};
    strata::AdamW spec;
    spec.weight_decay = 0.1;
    strata::adam_optimizer<B> opt(spec, p.params);
    CHECK(opt.decoupled());
    p.set_gradient({0.5});
    opt.step(p.params, 0.1);
    CHECK(states(opt).at("p.exp_avg")(0, 0) == Approx(0.05));
    CHECK(p.w() == Approx(1.0 * (1 - 0.1 * 0.1) - 0.1 * 0.5 / (0.5 + eps)));  // 0.89
    opt.step(p.params, 0.1);  // same gradient: m_hat = 0.5, v_hat = 0.25
    CHECK(p.w() == Approx(0.89 * 0.99 - 0.1 * 0.5 / (0.5 + eps)));
  }
  SECTION("the state is the two moments of every parameter") {
    one_weight p{1.0};
    strata::adam_optimizer<B> opt(strata::Adam{}, p.params);
    const auto s = states(opt);
    CHECK(s.size() == 2);
    CHECK(s.count("p.exp_avg") == 1);
    CHECK(s.count("p.exp_avg_sq") == 1);
  }
}

TEST_CASE("Adam's vectorised step equals the element-by-element rule bit for bit", "[optim][adam]") {
  // 200,003 float weights (threads and vector lanes in play, a ragged tail), every decay mode
  // and both ends of lerp (beta1 0.9: from m; beta1 0.3: from g), three steps, against the rule
  // written one element at a time with detail::lerp and std::sqrt.
  using F = strata::EigenBackend<float>;
  const strata::Index n = 200003;
  struct mode {
    bool decoupled;
    double beta1, weight_decay;
  };
  for (const mode md : {mode{false, 0.9, 0.0}, mode{false, 0.3, 0.0}, mode{false, 0.9, 0.01}, mode{false, 0.3, 0.01},
                        mode{true, 0.9, 0.01}, mode{true, 0.3, 0.01}}) {
    INFO("decoupled " << md.decoupled << ", beta1 " << md.beta1 << ", weight_decay " << md.weight_decay);
    strata::matrix_f value(n, 1), gradient(n, 1);
    for (strata::Index i = 0; i < n; ++i) value(i, 0) = 0.01f * static_cast<float>(i % 97) - 0.4f;
    std::vector<plain_parameter<F>> whole{{"p", &value, &gradient}};
    auto params = slices_of(whole);
    const strata::Adam spec{1e-3, md.beta1, 0.999, 1e-8, md.weight_decay};
    strata::adam_optimizer<F> opt = md.decoupled
        ? strata::adam_optimizer<F>(strata::AdamW{spec.lr, spec.beta1, spec.beta2, spec.eps, spec.weight_decay}, params)
        : strata::adam_optimizer<F>(spec, params);
    std::vector<float> w(value.data(), value.data() + n), m(n, 0.0f), v(n, 0.0f);
    bool same = true;
    for (int t = 1; t <= 3; ++t) {
      for (strata::Index i = 0; i < n; ++i) gradient(i, 0) = 0.001f * static_cast<float>((i * 7 + t) % 131) - 0.06f;
      const double lr = 0.01;
      opt.step(params, lr);
      const float step_size = static_cast<float>(lr / (1.0 - std::pow(spec.beta1, t)));
      const float bc2 = static_cast<float>(std::sqrt(1.0 - std::pow(spec.beta2, t)));
      for (std::size_t i = 0; i < w.size(); ++i) {
        float g = gradient(static_cast<strata::Index>(i), 0);
        if (md.weight_decay != 0.0) {
          if (md.decoupled)
            w[i] = w[i] * static_cast<float>(1.0 - lr * md.weight_decay);
          else
            g = g + static_cast<float>(md.weight_decay) * w[i];
        }
        m[i] = strata::detail::lerp(m[i], g, static_cast<float>(1.0 - spec.beta1));
        v[i] = v[i] * static_cast<float>(spec.beta2) + static_cast<float>(1.0 - spec.beta2) * g * g;
        w[i] = w[i] - step_size * (m[i] / (std::sqrt(v[i]) / bc2 + static_cast<float>(spec.eps)));
        same = same && w[i] == value(static_cast<strata::Index>(i), 0);
      }
    }
    CHECK(same);
    bool moments_same = true;
    opt.for_each_state([&](const std::string& name, strata::matrix_f& state) {
      const std::vector<float>& expected = name == "p.exp_avg" ? m : v;
      for (strata::Index i = 0; i < n; ++i) moments_same = moments_same && state(i, 0) == expected[static_cast<std::size_t>(i)];
    });
    CHECK(moments_same);
  }
}

TEST_CASE("RMSprop follows PyTorch's update rule", "[optim][rmsprop]") {
  const double eps = 1e-8, lr = 0.01;

  SECTION("plain: divide by the root of the running mean square, plus eps") {
    one_weight p{1.0};
    strata::rmsprop_optimizer<B> opt(strata::RMSprop{}, p.params);
    p.set_gradient({0.5});
    opt.step(p.params, lr);  // sq = 0.01 * 0.25 = 0.0025
    const double w1 = 1.0 - lr * 0.5 / (0.05 + eps);
    CHECK(p.w() == Approx(w1));
    opt.step(p.params, lr);  // sq = 0.99 * 0.0025 + 0.0025 = 0.004975
    CHECK(p.w() == Approx(w1 - lr * 0.5 / (std::sqrt(0.004975) + eps)));
    CHECK(states(opt).at("p.square_avg")(0, 0) == Approx(0.004975));
  }
  SECTION("centered: subtract the squared running mean of g under the root") {
    one_weight p{1.0};
    strata::RMSprop spec;
    spec.centered = true;
    strata::rmsprop_optimizer<B> opt(spec, p.params);
    p.set_gradient({0.5});
    opt.step(p.params, lr);  // sq = 0.0025, ga = 0.005
    CHECK(p.w() == Approx(1.0 - lr * 0.5 / (std::sqrt(0.0025 - 0.005 * 0.005) + eps)));
    CHECK(states(opt).at("p.grad_avg")(0, 0) == Approx(0.005));
  }
  SECTION("momentum accumulates g / avg and steps along the buffer") {
    one_weight p{1.0};
    strata::RMSprop spec;
    spec.momentum = 0.9;
    strata::rmsprop_optimizer<B> opt(spec, p.params);
    p.set_gradient({0.5});
    opt.step(p.params, lr);
    const double buf1 = 0.5 / (0.05 + eps);
    CHECK(p.w() == Approx(1.0 - lr * buf1));
    opt.step(p.params, lr);
    const double buf2 = 0.9 * buf1 + 0.5 / (std::sqrt(0.004975) + eps);
    CHECK(p.w() == Approx(1.0 - lr * buf1 - lr * buf2));
    CHECK(states(opt).at("p.momentum_buffer")(0, 0) == Approx(buf2));
  }
  SECTION("weight decay adds weight_decay * w to the gradient") {
    one_weight p{2.0};
    strata::RMSprop spec;
    spec.weight_decay = 0.25;
    strata::rmsprop_optimizer<B> opt(spec, p.params);
    p.set_gradient({0.5});
    opt.step(p.params, lr);  // g' = 1, sq = 0.01
    CHECK(states(opt).at("p.square_avg")(0, 0) == Approx(0.01));
    CHECK(p.w() == Approx(2.0 - lr * 1.0 / (0.1 + eps)));
  }
  SECTION("only the buffers that are used are state") {
    one_weight p{1.0};
    strata::rmsprop_optimizer<B> opt(strata::RMSprop{}, p.params);
    CHECK(states(opt).size() == 1);
  }
}

TEST_CASE("Adagrad follows PyTorch's update rule", "[optim][adagrad]") {
  const double eps = 1e-10, lr = 0.1;

  SECTION("divide by the root of the sum of squared gradients") {
    one_weight p{1.0};
    strata::adagrad_optimizer<B> opt(strata::Adagrad{}, p.params);
    p.set_gradient({0.5});
    opt.step(p.params, lr);  // sum = 0.25
    CHECK(p.w() == Approx(1.0 - lr * 0.5 / (0.5 + eps)));
    opt.step(p.params, lr);  // sum = 0.5
    CHECK(p.w() == Approx(0.9 - lr * 0.5 / (std::sqrt(0.5) + eps)));
    CHECK(states(opt).at("p.sum")(0, 0) == Approx(0.5));
  }
  SECTION("lr_decay: step t uses lr / (1 + (t - 1) lr_decay)") {
    one_weight p{1.0};
    strata::adagrad_optimizer<B> opt(strata::Adagrad{0.1, 0.5}, p.params);
    p.set_gradient({0.5});
    opt.step(p.params, lr);
    opt.step(p.params, lr);
    CHECK(p.w() == Approx(0.9 - (lr / 1.5) * 0.5 / (std::sqrt(0.5) + eps)));
    opt.step(p.params, lr);  // sum = 0.75, lr / 2
    CHECK(p.w() == Approx(0.9 - (lr / 1.5) * 0.5 / std::sqrt(0.5) - (lr / 2) * 0.5 / std::sqrt(0.75)));
  }
  SECTION("the accumulator starts at initial_accumulator_value") {
    one_weight p{1.0};
    strata::Adagrad spec;
    spec.initial_accumulator_value = 0.75;
    strata::adagrad_optimizer<B> opt(spec, p.params);
    CHECK(states(opt).at("p.sum")(0, 0) == 0.75);
    p.set_gradient({0.5});
    opt.step(p.params, lr);  // sum = 1
    CHECK(p.w() == Approx(0.95));
  }
  SECTION("weight decay adds weight_decay * w to the gradient") {
    one_weight p{1.0};
    strata::Adagrad spec;
    spec.weight_decay = 0.1;
    strata::adagrad_optimizer<B> opt(spec, p.params);
    p.set_gradient({0.5});
    opt.step(p.params, lr);
    CHECK(states(opt).at("p.sum")(0, 0) == Approx(0.36));
  }
}

TEST_CASE("Optimizer state restored into a fresh optimizer resumes identically", "[optim]") {
  one_weight a{1.0, -1.0}, b{1.0, -1.0};
  strata::adam_optimizer<B> first(strata::Adam{}, a.params);
  a.set_gradient({0.3, -0.7});
  first.step(a.params, 0.01);
  first.step(a.params, 0.01);

  // Checkpoint: copy the weights, every state tensor and the step count.
  b.value = a.value;
  strata::adam_optimizer<B> second(strata::Adam{}, b.params);
  auto saved = states(first);
  second.for_each_state([&saved](const std::string& name, matrix_d& m) { m = saved.at(name); });
  second.set_step_count(first.step_count());

  a.set_gradient({-0.2, 0.4});
  b.set_gradient({-0.2, 0.4});
  first.step(a.params, 0.01);
  second.step(b.params, 0.01);
  CHECK(second.step_count() == 3);
  CHECK(b.value == a.value);

  SECTION("and without the step count the bias correction differs") {
    strata::adam_optimizer<B> third(strata::Adam{}, b.params);
    saved = states(first);
    third.for_each_state([&saved](const std::string& name, matrix_d& m) { m = saved.at(name); });
    third.step(b.params, 0.01);
    first.step(a.params, 0.01);
    CHECK(b.value != a.value);
  }
}

TEST_CASE("Optimizers work in single precision", "[optim]") {
  using F = strata::EigenBackend<float>;
  strata::matrix_f w(1, 1), g(1, 1);
  w << 1.0f;
  g << 0.5f;
  std::vector<plain_parameter<F>> whole{{"p", &w, &g}};
  auto params = slices_of(whole);
  strata::optimizer_t<strata::AdamW, F> opt(strata::AdamW{}, params);
  opt.step(params, 0.1);
  CHECK(w(0, 0) == Approx(0.899).epsilon(1e-6));  // 1 * (1 - 0.1 * 0.01) - 0.1
}

TEST_CASE("Bad hyperparameters are configuration errors naming optimizer and value", "[optim]") {
  one_weight p{1.0};
  auto sgd = [&p](const strata::SGD& s) { strata::sgd_optimizer<B> o(s, p.params); };
  auto adam = [&p](const strata::Adam& s) { strata::adam_optimizer<B> o(s, p.params); };
  auto adamw = [&p](const strata::AdamW& s) { strata::adam_optimizer<B> o(s, p.params); };

  SECTION("a negative learning rate") {
    CHECK_THROWS_AS(sgd(strata::SGD{-0.5}), strata::config_error);
    CHECK_THROWS_WITH(sgd(strata::SGD{-0.5}), Catch::Contains("SGD") && Catch::Contains("lr") &&
                                                  Catch::Contains("-0.5"));
    CHECK_THROWS_AS(strata::Adagrad{-1.0}.validate(), strata::config_error);
  }
  SECTION("betas outside [0, 1)") {
    CHECK_THROWS_WITH(adam(strata::Adam{1e-3, 1.0}), Catch::Contains("Adam") && Catch::Contains("beta1"));
    CHECK_THROWS_WITH(adamw(strata::AdamW{1e-3, 0.9, -0.1}),
                      Catch::Contains("AdamW") && Catch::Contains("beta2") && Catch::Contains("-0.1"));
  }
  SECTION("Nesterov without momentum or with dampening") {
    strata::SGD s;
    s.nesterov = true;
    CHECK_THROWS_WITH(sgd(s), Catch::Contains("nesterov"));
    s.momentum = 0.9;
    CHECK_NOTHROW(sgd(s));
    s.dampening = 0.1;
    CHECK_THROWS_AS(sgd(s), strata::config_error);
  }
  SECTION("other out-of-range values") {
    CHECK_THROWS_AS((strata::RMSprop{0.01, 1.5}.validate()), strata::config_error);
    CHECK_THROWS_AS((strata::RMSprop{0.01, 0.99, 1e-8, 0.0, -0.9}.validate()), strata::config_error);
    CHECK_THROWS_AS((strata::Adagrad{0.01, 0.0, 0.0, 0.0, -1e-10}.validate()), strata::config_error);
    CHECK_THROWS_AS((strata::Adam{1e-3, 0.9, 0.999, 1e-8, -0.01}.validate()), strata::config_error);
    CHECK_THROWS_AS((strata::SGD{std::numeric_limits<double>::quiet_NaN()}.validate()),
                    strata::config_error);
  }
  SECTION("valid defaults pass") {
    CHECK_NOTHROW(strata::SGD{}.validate());
    CHECK_NOTHROW(strata::Adam{}.validate());
    CHECK_NOTHROW(strata::AdamW{}.validate());
    CHECK_NOTHROW(strata::RMSprop{}.validate());
    CHECK_NOTHROW(strata::Adagrad{}.validate());
  }
  SECTION("step rejects a negative rate and a parameter list it was not built for") {
    strata::sgd_optimizer<B> opt(strata::SGD{}, p.params);
    CHECK_THROWS_AS(opt.step(p.params, -0.1), strata::config_error);
    one_weight two{1.0, 2.0};
    CHECK_THROWS_AS(opt.step(two.params, 0.1), strata::shape_error);
    std::vector<strata::parameter_slice<B>> none;
    CHECK_THROWS_AS(opt.step(none, 0.1), strata::shape_error);
  }
}

TEST_CASE("Learning-rate schedules", "[optim][schedule]") {
  SECTION("ConstantLR keeps the base rate") {
    CHECK(strata::ConstantLR{}.lr(0.3, 0) == 0.3);
    CHECK(strata::ConstantLR{}.lr(0.3, 1000) == 0.3);
  }
  SECTION("StepLR multiplies by gamma every step_size units") {
    const strata::StepLR s{2, 0.5};
    CHECK(s.lr(1.0, 0) == 1.0);
    CHECK(s.lr(1.0, 1) == 1.0);
    CHECK(s.lr(1.0, 2) == 0.5);
    CHECK(s.lr(1.0, 3) == 0.5);
    CHECK(s.lr(1.0, 4) == 0.25);
    CHECK(strata::StepLR{10}.lr(1.0, 10) == Approx(0.1));  // default gamma
  }
  SECTION("CosineAnnealingLR follows half a cosine from the base rate down to eta_min") {
    const strata::CosineAnnealingLR c{10, 0.1};
    CHECK(c.lr(1.0, 0) == Approx(1.0));
    CHECK(c.lr(1.0, 5) == Approx(0.55));
    CHECK(c.lr(1.0, 10) == Approx(0.1));
    CHECK(c.lr(1.0, 20) == Approx(1.0));  // past t_max it rises again, as PyTorch's closed form
    CHECK(strata::CosineAnnealingLR{4}.lr(2.0, 1) == Approx(1.0 + std::cos(3.141592653589793 / 4)));
  }
  SECTION("LinearWarmup ramps up to the inner schedule, which then starts its own clock") {
    const strata::LinearWarmup w{4, 0.2, strata::StepLR{2, 0.1}};
    CHECK(w.lr(1.0, 0) == Approx(0.2));
    CHECK(w.lr(1.0, 2) == Approx(0.6));
    CHECK(w.lr(1.0, 4) == Approx(1.0));
    CHECK(w.lr(1.0, 5) == Approx(1.0));
    CHECK(w.lr(1.0, 6) == Approx(0.1));
    const strata::LinearWarmup<> plain{3};  // default start factor 1/3, then constant
    CHECK(plain.lr(0.9, 0) == Approx(0.3));
    CHECK(plain.lr(0.9, 3) == Approx(0.9));
    CHECK(strata::LinearWarmup<>{0}.lr(0.9, 0) == 0.9);
  }
  SECTION("schedules reject meaningless parameters") {
    CHECK_THROWS_AS(strata::StepLR{0}, strata::config_error);
    CHECK_THROWS_WITH(strata::StepLR(5, -0.1), Catch::Contains("StepLR") && Catch::Contains("gamma"));
    CHECK_THROWS_AS(strata::CosineAnnealingLR{0}, strata::config_error);
    CHECK_THROWS_AS(strata::LinearWarmup<>(5, 1.5), strata::config_error);
  }
}

TEST_CASE("ReduceLROnPlateau reduces after more than patience observations without improvement",
          "[optim][schedule]") {
  SECTION("defaults are PyTorch's") {
    const strata::ReduceLROnPlateau r;
    CHECK(r.mode == strata::plateau_mode::min);
    CHECK(r.factor == 0.1);
    CHECK(r.patience == 10);
    CHECK(r.threshold == 1e-4);
    CHECK(r.threshold_kind == strata::threshold_mode::rel);
    CHECK(r.cooldown == 0);
    CHECK(r.min_lr == 0.0);
  }
  SECTION("an improvement smaller than the relative threshold does not count") {
    strata::ReduceLROnPlateau r(strata::plateau_mode::min, 0.5, 2);
    CHECK(r.observe(1.0) == 1.0);       // first value is the best
    CHECK(r.observe(1.0) == 1.0);       // bad 1
    CHECK(r.observe(0.99995) == 1.0);   // within 1e-4 of 1.0: bad 2
    CHECK(r.observe(1.2) == 0.5);       // bad 3 > patience: reduce
    CHECK(r.lr(0.1) == Approx(0.05));
    CHECK(r.observe(0.5) == 0.5);       // improvement resets the count
    CHECK(r.observe(0.6) == 0.5);
    CHECK(r.observe(0.6) == 0.5);
    CHECK(r.observe(0.6) == 0.25);
    CHECK(r.state().reductions == 2);
  }
  SECTION("mode max watches for increases; abs thresholds are differences") {
    strata::ReduceLROnPlateau r(strata::plateau_mode::max, 0.1, 0, 0.5, strata::threshold_mode::abs);
    CHECK(r.observe(1.0) == 1.0);
    CHECK(r.observe(1.6) == 1.0);          // +0.6 > 0.5: improvement
    CHECK(r.observe(2.0) == Approx(0.1));  // +0.4: not enough, patience 0
  }
  SECTION("cooldown ignores observations after a reduction") {
    strata::ReduceLROnPlateau r(strata::plateau_mode::min, 0.5, 0, 1e-4, strata::threshold_mode::rel, 2);
    r.observe(1.0);
    CHECK(r.observe(2.0) == 0.5);
    CHECK(r.observe(2.0) == 0.5);  // cooldown
    CHECK(r.observe(2.0) == 0.5);  // cooldown
    CHECK(r.observe(2.0) == 0.25);
  }
  SECTION("the rate never drops below min_lr, and is untouched before the first reduction") {
    strata::ReduceLROnPlateau r(strata::plateau_mode::min, 0.1, 0, 1e-4, strata::threshold_mode::rel, 0, 0.005);
    CHECK(r.lr(0.001) == 0.001);
    r.observe(1.0);
    r.observe(1.0);
    CHECK(r.lr(0.1) == Approx(0.01));
    r.observe(1.0);
    CHECK(r.lr(0.1) == Approx(0.005));
  }
  SECTION("NaN is never an improvement") {
    strata::ReduceLROnPlateau r(strata::plateau_mode::min, 0.5, 0);
    r.observe(1.0);
    CHECK(r.observe(std::nan("")) == 0.5);
  }
  SECTION("the state restores into a fresh scheduler") {
    strata::ReduceLROnPlateau a(strata::plateau_mode::min, 0.5, 1), b(strata::plateau_mode::min, 0.5, 1);
    a.observe(1.0);
    a.observe(2.0);
    b.restore(a.state());
    CHECK(b.observe(2.0) == a.observe(2.0));
    CHECK(b.scale() == 0.5);
  }
  SECTION("a factor outside (0, 1) is rejected") {
    CHECK_THROWS_AS(strata::ReduceLROnPlateau(strata::plateau_mode::min, 1.0), strata::config_error);
    CHECK_THROWS_AS(strata::ReduceLROnPlateau(strata::plateau_mode::min, 0.0), strata::config_error);
  }
}

TEST_CASE("clip_grad_norm rescales all gradients to a global norm", "[optim][clip]") {
  matrix_d w1 = matrix_d::Zero(1, 1), w2 = matrix_d::Zero(2, 1);
  matrix_d g1(1, 1), g2(2, 1);
  g1 << 3.0;
  g2 << 0.0, -4.0;
  std::vector<plain_parameter<B>> whole{{"a", &w1, &g1}, {"b", &w2, &g2}};
  auto params = slices_of(whole);

  SECTION("it returns the norm before clipping and scales by max_norm / (norm + 1e-6)") {
    CHECK(strata::clip_grad_norm(params, 1.0) == Approx(5.0));
    const double scale = 1.0 / (5.0 + 1e-6);
    CHECK(g1(0, 0) == Approx(3.0 * scale));
    CHECK(g2(1, 0) == Approx(-4.0 * scale));
    CHECK(std::hypot(g1(0, 0), g2(1, 0)) == Approx(1.0));
  }
  SECTION("gradients within the bound are left exactly as they are") {
    CHECK(strata::clip_grad_norm(params, 5.0) == Approx(5.0));  // scale just below 1 is applied
    g1 << 3.0;
    g2 << 0.0, -4.0;
    CHECK(strata::clip_grad_norm(params, 10.0) == Approx(5.0));
    CHECK(g1(0, 0) == 3.0);
    CHECK(g2(1, 0) == -4.0);
  }
  SECTION("a non-finite norm is returned and the gradients are left for the caller to handle") {
    g2(0, 0) = std::numeric_limits<double>::infinity();
    CHECK(std::isinf(strata::clip_grad_norm(params, 1.0)));
    CHECK(g1(0, 0) == 3.0);
  }
  SECTION("a negative max_norm is rejected") {
    CHECK_THROWS_AS(strata::clip_grad_norm(params, -1.0), strata::config_error);
  }
}

TEST_CASE("Every optimizer honours parameter groups", "[optim][groups]") {
  // Two copies of one weight vector: `a` trains in a group, `b` is the reference trained without
  // one at the rate the group should give.
  const auto run = [](auto spec, strata::parameter_group group, double lr, auto reference_spec, double reference_lr) {
    one_weight a{0.5, -1.5, 2.0}, b{0.5, -1.5, 2.0};
    a.params[0].group = group;
    strata::optimizer_t<decltype(spec), B> opt_a(spec, a.params);
    strata::optimizer_t<decltype(reference_spec), B> opt_b(reference_spec, b.params);
    for (int t = 0; t < 4; ++t) {
      a.set_gradient({0.3 - t, 1.0, -0.25 * t});
      b.set_gradient({0.3 - t, 1.0, -0.25 * t});
      opt_a.step(a.params, lr);
      opt_b.step(b.params, reference_lr);
    }
    CHECK(a.value == b.value);
    CHECK(states(opt_a) == states(opt_b));
  };
  const double lr = 0.0625;  // a power of two: lr * 0.1 is the same double as 0.1 * lr
  SECTION("a multiplier scales the rate") {
    run(strata::SGD{0, 0.9, 0.1, 0.01}, {0.1}, lr, strata::SGD{0, 0.9, 0.1, 0.01}, lr * 0.1);
    run(strata::Adam{0, 0.9, 0.999, 1e-8, 0.01}, {0.1}, lr, strata::Adam{0, 0.9, 0.999, 1e-8, 0.01}, lr * 0.1);
    run(strata::AdamW{}, {0.1}, lr, strata::AdamW{}, lr * 0.1);
    run(strata::RMSprop{0, 0.99, 1e-8, 0.01, 0.5, true}, {0.1}, lr, strata::RMSprop{0, 0.99, 1e-8, 0.01, 0.5, true}, lr * 0.1);
    run(strata::Adagrad{0, 0.01, 0.01}, {0.1}, lr, strata::Adagrad{0, 0.01, 0.01}, lr * 0.1);
  }
  SECTION("a group without weight decay trains as if the optimizer had none") {
    run(strata::SGD{0, 0.9, 0, 0.05}, {1.0, false}, lr, strata::SGD{0, 0.9}, lr);
    run(strata::Adam{0, 0.9, 0.999, 1e-8, 0.05}, {1.0, false}, lr, strata::Adam{}, lr);
    run(strata::AdamW{0, 0.9, 0.999, 1e-8, 0.05}, {1.0, false}, lr, strata::AdamW{0, 0.9, 0.999, 1e-8, 0.0}, lr);
    run(strata::RMSprop{0, 0.99, 1e-8, 0.05}, {1.0, false}, lr, strata::RMSprop{}, lr);
    run(strata::Adagrad{0, 0, 0.05}, {1.0, false}, lr, strata::Adagrad{}, lr);
  }
  SECTION("a frozen group keeps its weights and its state, decay included") {
    one_weight frozen{0.5, -1.5, 2.0};
    frozen.params[0].group = strata::parameter_group{0.0};
    strata::adam_optimizer<B> adam(strata::AdamW{0.1, 0.9, 0.999, 1e-8, 0.5}, frozen.params);
    strata::sgd_optimizer<B> sgd(strata::SGD{0.1, 0.9, 0, 0.5}, frozen.params);
    frozen.set_gradient({1.0, 2.0, 3.0});
    adam.step(frozen.params, 0.1);
    sgd.step(frozen.params, 0.1);
    CHECK(frozen.w(0) == 0.5);
    CHECK(frozen.w(1) == -1.5);
    CHECK(frozen.w(2) == 2.0);
    for (const auto& [name, state] : states(adam)) CHECK(state.isZero(0.0));
    for (const auto& [name, state] : states(sgd)) CHECK(state.isZero(0.0));
    CHECK(adam.step_count() == 1);  // the optimizer's count moves on (see optim/common.hpp)
  }
}

TEST_CASE("Norm clipping leaves frozen groups out of the norm and alone", "[optim][clip][groups]") {
  matrix_d w1 = matrix_d::Zero(1, 1), w2 = matrix_d::Zero(2, 1), w3 = matrix_d::Zero(1, 1);
  matrix_d g1(1, 1), g2(2, 1), g3(1, 1);
  g1 << 3.0;
  g2 << 0.0, -4.0;
  g3 << 100.0;
  std::vector<plain_parameter<B>> whole{{"a", &w1, &g1}, {"b", &w2, &g2}, {"frozen", &w3, &g3}};
  whole[2].group.lr_scale = 0.0;
  auto slices = slices_of(whole);
  CHECK(strata::clip_grad_norm(slices, 1.0) == Approx(5.0));
  CHECK(g1(0, 0) == Approx(3.0 / (5.0 + 1e-6)));
  CHECK(g3(0, 0) == 100.0);
}
