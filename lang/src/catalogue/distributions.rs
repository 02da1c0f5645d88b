//! The distributions and functions of prior programs.

use crate::ir::{Func, Prim};

pub(crate) const MAX_DIM: f64 = (1 << 20) as f64;

/// The primitive distributions: name, distribution, parameters (name, default).
pub(crate) const PRIMS: &[(&str, Prim, &[(&str, Option<f64>)])] = &[
    (
        "normal",
        Prim::Normal,
        &[("mean", Some(0.0)), ("std", Some(1.0))],
    ),
    (
        "uniform",
        Prim::Uniform,
        &[("low", Some(0.0)), ("high", Some(1.0))],
    ),
    ("uniform_sphere", Prim::UniformSphere, &[]),
    ("dirichlet", Prim::Dirichlet, &[("alpha", None)]),
    (
        "gamma",
        Prim::Gamma,
        &[("shape", None), ("rate", Some(1.0))],
    ),
    ("beta", Prim::Beta, &[("a", None), ("b", None)]),
    ("categorical", Prim::Categorical, &[("weights", None)]),
    ("bernoulli", Prim::Bernoulli, &[("p", Some(0.5))]),
    (
        "laplace",
        Prim::Laplace,
        &[("loc", Some(0.0)), ("scale", Some(1.0))],
    ),
    ("exponential", Prim::Exponential, &[("rate", Some(1.0))]),
    (
        "von_mises_fisher",
        Prim::VonMisesFisher,
        &[("mu", None), ("kappa", None)],
    ),
    (
        "von_mises",
        Prim::VonMises,
        &[("loc", Some(0.0)), ("kappa", Some(1.0))],
    ),
];

pub(crate) const FUNCS: &[(&str, Func)] = &[
    ("exp", Func::Exp),
    ("log", Func::Log),
    ("sin", Func::Sin),
    ("cos", Func::Cos),
    ("sqrt", Func::Sqrt),
    ("abs", Func::Abs),
    ("tanh", Func::Tanh),
    ("sigmoid", Func::Sigmoid),
    ("floor", Func::Floor),
    ("softmax", Func::Softmax),
    ("normalize", Func::Normalize),
    ("normalise", Func::Normalize),
    ("sum", Func::Sum),
    ("log1p", Func::Log1p),
    ("expm1", Func::Expm1),
    ("erf", Func::Erf),
    ("logsumexp", Func::Logsumexp),
    ("norm", Func::Norm),
    ("cumsum", Func::Cumsum),
    // With two arguments `min` and `max` are elementwise (`SPECIAL`'s two-argument forms).
    ("max", Func::Max),
    ("min", Func::Min),
    ("torus", Func::Torus),
    ("expmap0", Func::Expmap0),
];

/// Names a prior program can call besides functions and priors.
pub(crate) const SPECIAL: &[&str] = &[
    "mixture",
    "concat",
    "vmf",
    "atan2",
    "pow",
    "dot",
    "clip",
    "eye",
    "zeros",
    "ones",
    "range",
    "one_hot",
    "transpose",
    "diag",
];
