//! The catalogue of built-ins: every layer, data set, transform, prior, cost, penalty and
//! optimiser with its parameters (type, default, range and why), as the checker binds them.

pub mod distributions;

#[cfg(test)]
mod tests;

use crate::ir;

#[derive(Clone, Copy, PartialEq)]
pub(crate) enum Ty {
    Int,
    Real,
    Bool,
    Str,
    /// A real number or a list of them (Dirichlet's alpha).
    Reals,
}

#[derive(Clone, Copy)]
pub(crate) enum Range {
    Any,
    Positive,
    NonNegative,
    AtLeast(f64),
    /// [0, 1).
    Fraction,
    OneOf(&'static [&'static str]),
    /// One of the listed integers (e.g. 1 or 3 channels).
    Ints(&'static [i64]),
}

#[derive(Clone, Copy)]
pub(crate) enum Dflt {
    Required,
    I(i64),
    R(f64),
    B(bool),
    S(&'static str),
}

/// One parameter of a built-in.
#[derive(Clone, Copy)]
pub(crate) struct P {
    pub(crate) name: &'static str,
    pub(crate) ty: Ty,
    pub(crate) default: Dflt,
    pub(crate) range: Range,
    /// Why the range holds, for the help text.
    pub(crate) why: &'static str,
}

pub(crate) const fn p(
    name: &'static str,
    ty: Ty,
    default: Dflt,
    range: Range,
    why: &'static str,
) -> P {
    P {
        name,
        ty,
        default,
        range,
        why,
    }
}

/// One built-in (layer, data set, transform, prior, cost, penalty, optimiser): its name, a doc
/// line (for help texts and the editor) and its parameters in positional order.
#[derive(Clone, Copy)]
pub(crate) struct Builtin {
    pub(crate) name: &'static str,
    pub(crate) doc: &'static str,
    pub(crate) params: &'static [P],
}

pub(crate) const fn b(name: &'static str, doc: &'static str, params: &'static [P]) -> Builtin {
    Builtin { name, doc, params }
}

pub(crate) use Dflt::{Required as REQ, B, I, R, S};
pub(crate) use Range::{AtLeast, Fraction, Ints, NonNegative, OneOf, Positive};

pub(crate) const SIZE: &str = "sizes count units, so they must be positive";

/// A layer's `init`: "model" takes the model's default (`train { init "..." }`).
pub(crate) const LAYER_INIT: P = p(
    "init",
    Ty::Str,
    S("model"),
    OneOf(&[
        "model",
        "pytorch",
        "kaiming",
        "xavier",
        "orthogonal",
        "zeros",
    ]),
    "how the weights start: the model's default, or one named",
);

/// Built-in layers and their parameters. `reshape`/`unflatten` take a variable list of sizes.
pub(crate) const LAYERS: &[Builtin] = &[
    b("linear", "fully connected: [F] -> [out]",
        &[
            p("out", Ty::Int, REQ, Positive, SIZE),
            p("bias", Ty::Bool, B(true), Range::Any, ""),
            LAYER_INIT,
        ],
    ),
    b("conv2d", "2-D convolution: [C, H, W] -> [out, H', W']",
        &[
            p(
                "out",
                Ty::Int,
                REQ,
                Positive,
                "the number of output channels must be positive",
            ),
            p("kernel", Ty::Int, I(3), Positive, SIZE),
            p("stride", Ty::Int, I(1), Positive, SIZE),
            p(
                "padding",
                Ty::Int,
                I(0),
                NonNegative,
                "padding cannot be negative",
            ),
            p("bias", Ty::Bool, B(true), Range::Any, ""),
            LAYER_INIT,
            DILATION,
            GROUPS,
        ],
    ),
    // Kept apart from conv2d's row: the same parameters plus output_padding, in PyTorch's order.
    b("conv_transpose2d", "2-D transposed convolution: [C, H, W] -> [out, H', W']",
        &[
            p(
                "out",
                Ty::Int,
                REQ,
                Positive,
                "the number of output channels must be positive",
            ),
            p("kernel", Ty::Int, I(3), Positive, SIZE),
            p("stride", Ty::Int, I(1), Positive, SIZE),
            p(
                "padding",
                Ty::Int,
                I(0),
                NonNegative,
                "padding cannot be negative",
            ),
            p(
                "output_padding",
                Ty::Int,
                I(0),
                NonNegative,
                "padding cannot be negative",
            ),
            p("bias", Ty::Bool, B(true), Range::Any, ""),
            LAYER_INIT,
            DILATION,
            GROUPS,
        ],
    ),
    b("batch_norm", "batch normalisation over features or channels; shape unchanged", &[]),
    b("relu", "max(x, 0); shape unchanged", &[]),
    b("leaky_relu", "max(x, slope x); shape unchanged",
        &[p(
            "slope",
            Ty::Real,
            R(0.2),
            NonNegative,
            "a negative slope would flip the sign",
        )],
    ),
    b("tanh", "hyperbolic tangent; shape unchanged", &[]),
    b("gelu", "Gaussian error linear unit x Phi(x) (exact, PyTorch's default); shape unchanged", &[]),
    b("silu", "x sigmoid(x) (swish); shape unchanged", &[]),
    b("elu", "x for x > 0, alpha (exp(x) - 1) otherwise; shape unchanged",
        &[p("alpha", Ty::Real, R(1.0), Positive, "alpha scales the negative side")],
    ),
    b("softplus", "log(1 + exp(beta x)) / beta (x where beta x > threshold); shape unchanged",
        &[
            p("beta", Ty::Real, R(1.0), Positive, "beta is a sharpness"),
            p("threshold", Ty::Real, R(20.0), Positive, "beyond the threshold softplus is x"),
        ],
    ),
    b("identity", "passes its input on; shape unchanged", &[]),
    // Their arguments are layers and nets (handled before binding).
    b("residual", "x + body(x): the layers and nets given, applied in order, plus the input (through a 1x1 convolution or linear projection when the body changes the shape)", &[]),
    b("repeat", "repeat(n, layers...): the layers and nets given, n times in a row (depth as a parameter)", &[]),
    b("concat", "each layer or net given is a branch on the same input; their outputs joined along the first axis (channels or features)", &[]),
    b("dropout", "zeroes each value with probability p in training (the rest scaled by 1 / (1 - p)), off in evaluation; shape unchanged",
        &[p("p", Ty::Real, R(0.5), Fraction, "a probability lies in [0, 1)")],
    ),
    b("layer_norm", "normalisation over all of an example's values, with a scale and shift per value (starting at 1 and 0); shape unchanged", &[]),
    b("group_norm", "normalisation over groups of channels, with a scale and shift per channel (starting at 1 and 0): [C, ...] unchanged",
        &[p("groups", Ty::Int, REQ, Positive, "groups divide the channels")],
    ),
    b("avg_pool2d", "average over kernel x kernel windows: [C, H, W] -> [C, H', W']", POOL),
    b("max_pool2d", "maximum over kernel x kernel windows: [C, H, W] -> [C, H', W']", POOL),
    b("adaptive_avg_pool2d", "averages to a size x size output: [C, H, W] -> [C, size, size]",
        &[p("size", Ty::Int, REQ, Positive, SIZE)],
    ),
    b("upsample", "resizes by an integer factor: [C, H, W] -> [C, scale H, scale W]",
        &[p("scale", Ty::Int, I(2), Positive, "the factor multiplies the size"), RESAMPLE],
    ),
    b("interpolate", "resizes to size x size: [C, H, W] -> [C, size, size]",
        &[p("size", Ty::Int, REQ, Positive, SIZE), RESAMPLE],
    ),
    b("sigmoid", "the logistic function, onto (0, 1); shape unchanged", &[]),
    b("softmax", "onto the simplex: [F] unchanged", &[]),
    b("flatten", "any shape -> [F]", &[]),
    b("reshape", "to the given sizes, with the same number of values", &[]),
    b("unflatten", "to the given sizes, with the same number of values (as reshape)", &[]),
    b("normalize", "onto the unit sphere: [F] unchanged", &[]),
    b("torus", "onto the torus (S^1)^k: [2k] unchanged, each pair of coordinates normalised", &[]),
    b("expmap0", "onto the Poincare ball by the exponential map at the origin, tanh(sqrt(c)|v|) v / (sqrt(c)|v|): [F] unchanged", &[p("curvature", Ty::Real, R(1.0), Positive, "the ball's curvature is -c with c > 0")]),
    b("gaussian", "mean and log-variance heads of a Gaussian encoder: [F] -> [out]", &[p("out", Ty::Int, REQ, Positive, SIZE), LAYER_INIT]),
    // The first argument of these three names a latent component (handled before binding).
    b("select", "the coordinates of a latent component (generator only)", &[]),
    b("place", "a spatial transformer: draws an image onto a size x size canvas at a component's position (generator only)", PLACEMENT),
    b("crop", "the window that place would fill, cut out of a canvas (component encoders only)", PLACEMENT),
];

/// A convolution's spacing of kernel taps.
pub(crate) const DILATION: P = p(
    "dilation",
    Ty::Int,
    I(1),
    Positive,
    "a dilation of 1 uses adjacent pixels",
);

/// A convolution's channel groups.
pub(crate) const GROUPS: P = p(
    "groups",
    Ty::Int,
    I(1),
    Positive,
    "groups divide the input and output channels",
);

/// How `upsample` and `interpolate` fill new pixels.
pub(crate) const RESAMPLE: P = p(
    "mode",
    Ty::Str,
    S("nearest"),
    OneOf(&["nearest", "bilinear"]),
    "PyTorch's resampling modes (bilinear with align_corners = False)",
);

/// The window of `avg_pool2d` / `max_pool2d`; a stride of 0 means the kernel size (PyTorch's
/// default).
pub(crate) const POOL: &[P] = &[
    p("kernel", Ty::Int, REQ, Positive, SIZE),
    p(
        "stride",
        Ty::Int,
        I(0),
        NonNegative,
        "0 means the kernel size",
    ),
    p(
        "padding",
        Ty::Int,
        I(0),
        NonNegative,
        "padding cannot be negative",
    ),
];

/// The window or canvas size and the placement scales of `place` / `crop` / `canvas`.
pub(crate) const PLACEMENT: &[P] = &[
    p("size", Ty::Int, REQ, Positive, SIZE),
    p(
        "shift",
        Ty::Real,
        R(0.3),
        NonNegative,
        "a shift scale cannot be negative",
    ),
    p(
        "zoom",
        Ty::Real,
        R(0.2),
        NonNegative,
        "a zoom scale cannot be negative",
    ),
];

/// Data transforms (`data mnist() -> canvas(64) -> salt(0.05)`).
pub(crate) const TRANSFORMS: &[Builtin] = &[
    b(
        "canvas",
        "places each image at a random position and scale on a size x size canvas",
        PLACEMENT,
    ),
    b(
        "salt",
        "sets each pixel to 1 with probability p",
        &[p(
            "p",
            Ty::Real,
            REQ,
            Fraction,
            "a probability lies in [0, 1)",
        )],
    ),
];

pub(crate) const DATASETS: &[Builtin] = &[
    b(
        "mnist",
        "MNIST digits, 28 x 28 grey, from IDX files",
        IDX_PARAMS,
    ),
    b(
        "fashion_mnist",
        "Fashion-MNIST, 28 x 28 grey, from IDX files",
        IDX_PARAMS,
    ),
    b(
        "rings",
        "k concentric rings in 2-D",
        &[
            p("n", Ty::Int, I(4096), Positive, SIZE),
            p(
                "k",
                Ty::Int,
                I(2),
                Positive,
                "the number of rings must be at least 1",
            ),
            p(
                "noise",
                Ty::Real,
                R(0.04),
                NonNegative,
                "noise is a standard deviation",
            ),
        ],
    ),
    b(
        "gaussian_grid",
        "a k x k grid of Gaussian blobs in 2-D",
        &[
            p("n", Ty::Int, I(4096), Positive, SIZE),
            p(
                "k",
                Ty::Int,
                I(3),
                Positive,
                "the grid has k x k blobs, k >= 1",
            ),
            p(
                "std",
                Ty::Real,
                R(0.05),
                Positive,
                "a standard deviation must be positive",
            ),
        ],
    ),
    b(
        "swiss_roll",
        "the swiss roll in 2-D",
        &[
            p("n", Ty::Int, I(4096), Positive, SIZE),
            p(
                "noise",
                Ty::Real,
                R(0.03),
                NonNegative,
                "noise is a standard deviation",
            ),
        ],
    ),
    b(
        "tree",
        "a hierarchy: noisy nodes of a complete tree placed by unit steps in R^dim (labels: depth)",
        &[
            p("n", Ty::Int, I(4096), Positive, SIZE),
            p("depth", Ty::Int, I(4), Positive, "the tree needs at least one level below its root"),
            p("branching", Ty::Int, I(2), Positive, "each node needs at least one child"),
            p("dim", Ty::Int, I(16), Positive, SIZE),
            p("noise", Ty::Real, R(0.02), NonNegative, "noise is a standard deviation"),
            p("tree_seed", Ty::Int, I(0), NonNegative, "a seed is a whole number >= 0"),
        ],
    ),
    b(
        "donut",
        "periodic data: a torus of revolution in R^3 (labels: the eighth of the big circle)",
        &[
            p("n", Ty::Int, I(4096), Positive, SIZE),
            p("noise", Ty::Real, R(0.02), NonNegative, "noise is a standard deviation"),
        ],
    ),
    b(
        "images",
        "a folder of PNG/JPEG images (searched recursively; labels from its first-level sub-folders)",
        IMAGES_PARAMS,
    ),
    b(
        "arrays",
        "NumPy arrays from a .npy or .npz file: images [N, H, W], [N, C, H, W], [N, H, W, C] or vectors [N, D]",
        ARRAYS_PARAMS,
    ),
    b(
        "cifar10",
        "CIFAR-10, 32 x 32 RGB, from its binary files (cifar-10-batches-bin)",
        &[
            p("split", Ty::Str, S("train"), OneOf(&["train", "test"]), "CIFAR-10 has a train and a test split"),
            LIMIT,
        ],
    ),
    b(
        "shapes",
        "coloured shapes on black (procedural, RGB): square, circle, triangle, cross at a drawn scale, rotation, position and hue; the factors are kept as labels",
        &[
            p("n", Ty::Int, I(20000), Positive, SIZE),
            p("size", Ty::Int, I(32), AtLeast(8.0), "a shape needs at least 8 x 8 pixels to be told apart"),
            p("seed", Ty::Int, I(0), NonNegative, "the data set is drawn from this seed, the same in every run"),
        ],
    ),
];

const LIMIT: P = p(
    "limit",
    Ty::Int,
    I(0),
    NonNegative,
    "limit is a number of examples; 0 means all",
);
const CHANNELS: P = p(
    "channels",
    Ty::Int,
    I(3),
    Ints(&[1, 3]),
    "images are grey (1 channel) or RGB (3)",
);
const TEST_FRACTION: P = p(
    "test_fraction",
    Ty::Real,
    R(0.1),
    Fraction,
    "the share held out as the test set when the source has no test split; in [0, 1)",
);
const SPLIT_SEED: P = p(
    "split_seed",
    Ty::Int,
    I(0),
    NonNegative,
    "the seed that chooses the test examples",
);

pub(crate) const IMAGES_PARAMS: &[P] = &[
    p("path", Ty::Str, REQ, Range::Any, ""),
    CHANNELS,
    p("size", Ty::Int, I(64), Positive, SIZE),
    p(
        "crop",
        Ty::Int,
        I(0),
        NonNegative,
        "the side of the centre square cut before resizing; 0 takes the largest",
    ),
    LIMIT,
    TEST_FRACTION,
    SPLIT_SEED,
    p(
        "bad_files",
        Ty::Str,
        S("stop"),
        OneOf(&["stop", "skip"]),
        "an unreadable image stops the run, or is skipped with a warning",
    ),
];

pub(crate) const ARRAYS_PARAMS: &[P] = &[
    p("path", Ty::Str, REQ, Range::Any, ""),
    p(
        "key",
        Ty::Str,
        S(""),
        Range::Any,
        "the array's name in a .npz file",
    ),
    p(
        "labels",
        Ty::Str,
        S(""),
        Range::Any,
        "the labels: a key of the same .npz, or a .npy file",
    ),
    CHANNELS,
    p(
        "size",
        Ty::Int,
        I(0),
        NonNegative,
        "the images' side; 0 for vectors",
    ),
    p(
        "dim",
        Ty::Int,
        I(0),
        NonNegative,
        "the length of a vector example; 0 for images",
    ),
    p(
        "test_key",
        Ty::Str,
        S(""),
        Range::Any,
        "the test images' name in a .npz file; empty: split by test_fraction",
    ),
    p(
        "test_labels",
        Ty::Str,
        S(""),
        Range::Any,
        "the test labels' key or .npy file",
    ),
    LIMIT,
    TEST_FRACTION,
    SPLIT_SEED,
];

pub(crate) const IDX_PARAMS: &[P] = &[
    p(
        "split",
        Ty::Str,
        S("train"),
        OneOf(&["train", "test"]),
        "the IDX data sets have a train and a test split",
    ),
    p("binarize", Ty::Bool, B(false), Range::Any, ""),
    p(
        "limit",
        Ty::Int,
        I(0),
        NonNegative,
        "limit is a number of images; 0 means all",
    ),
];

pub(crate) const PRIORS: &[Builtin] = &[
    b(
        "normal",
        "independent Gaussians on R^d",
        &[
            p("mean", Ty::Real, R(0.0), Range::Any, ""),
            p(
                "std",
                Ty::Real,
                R(1.0),
                Positive,
                "a standard deviation must be positive",
            ),
        ],
    ),
    b(
        "uniform",
        "uniform on the box [low, high]^d",
        &[
            p("low", Ty::Real, R(-1.0), Range::Any, ""),
            p("high", Ty::Real, R(1.0), Range::Any, ""),
        ],
    ),
    b("uniform_sphere", "uniform on the unit sphere S^k", &[]),
    b(
        "dirichlet",
        "Dirichlet on simplex(d)",
        &[p(
            "alpha",
            Ty::Reals,
            REQ,
            Positive,
            "Dirichlet concentrations must be positive",
        )],
    ),
];

pub(crate) const COSTS: &[Builtin] = &[
    b(
        "squared_l2",
        "squared error, summed over an example's features",
        &[],
    ),
    b(
        "l1",
        "absolute error, summed over an example's features",
        &[],
    ),
    b(
        "bce",
        "binary cross-entropy of sigmoid outputs against data in [0, 1]",
        &[],
    ),
];

pub(crate) const COST_NAMES: &[&str] = &["auto", "euclidean", "geodesic", "fisher_rao"];

pub(crate) const PENALTIES: &[Builtin] = &[
    b("sinkhorn", "entropic optimal transport (Sinkhorn) between codes and prior samples",
        &[
            p("epsilon", Ty::Real, R(0.1), Positive, "epsilon is the entropic regularisation; it must be positive"),
            p("iterations", Ty::Int, I(50), Positive, "at least one Sinkhorn iteration is needed"),
            p("p", Ty::Real, R(2.0), AtLeast(1.0), "the latent cost |z - w|^p is a transport cost only for p >= 1"),
            p("metric", Ty::Str, S("auto"), OneOf(COST_NAMES), "the ground cost: the space's own metric (auto), or one named"),
            p("debiased", Ty::Bool, B(false), Range::Any, ""),
            p("gradient", Ty::Str, S("unrolled"), OneOf(&["unrolled", "envelope"]), "unrolled back-propagates through the iterations; envelope differentiates the final plan"),
            p("scaling", Ty::Real, R(1.0), Positive, "epsilon scaling factor in (0, 1]; 1 turns it off"),
            p("tolerance", Ty::Real, R(0.0), NonNegative, "stop when the marginal error is below this; 0 runs exactly `iterations`"),
            p("weights", Ty::Reals, R(0.0), NonNegative, "one weight >= 0 per latent component: the joint cost is their weighted sum of the components' costs"),
        ],
    ),
    b("mmd", "maximum mean discrepancy, unbiased",
        &[
            p("kernel", Ty::Str, S("imq"), OneOf(&["imq", "rbf"]), "inverse multiquadratic (the WAE paper's) or Gaussian"),
            p("sigma", Ty::Real, R(1.0), Positive, "the kernel scale is C = 2 d sigma^2, sigma^2 the prior's variance"),
        ],
    ),
    b("gan", "adversarial: a latent discriminator against the encoder", GAN_PARAMS),
    b("sliced", "sliced Wasserstein distance over random directions",
        &[
            p("projections", Ty::Int, I(50), Positive, "the number of random directions must be positive"),
            p("p", Ty::Real, R(2.0), AtLeast(1.0), "W_p needs p >= 1"),
        ],
    ),
    b("exact", "optimal one-to-one assignment (Hungarian algorithm)",
        &[
            p("p", Ty::Real, R(2.0), AtLeast(1.0), "the matching cost |z - w|^p needs p >= 1"),
            p("metric", Ty::Str, S("auto"), OneOf(COST_NAMES), "the ground cost: the space's own metric (auto), or one named"),
        ],
    ),
    b("kl", "closed-form KL divergence of a Gaussian encoder to a normal prior", &[]),
];

/// Weight decay and clipping, shared by the model's optimiser and a discriminator's.
const DECAY: P = p(
    "weight_decay",
    Ty::Real,
    R(0.0),
    NonNegative,
    "weight decay (AdamW's, decoupled) is a non-negative rate",
);
const CLIP: P = p(
    "clip_norm",
    Ty::Real,
    R(0.0),
    NonNegative,
    "the largest gradient norm is non-negative (0 turns clipping off)",
);

pub(crate) const GAN_PARAMS: &[P] = &[
    p(
        "lr",
        Ty::Real,
        R(5e-4),
        Positive,
        "the discriminator's learning rate must be positive",
    ),
    p(
        "beta1",
        Ty::Real,
        R(0.5),
        Fraction,
        "Adam's betas lie in [0, 1)",
    ),
    p(
        "beta2",
        Ty::Real,
        R(0.999),
        Fraction,
        "Adam's betas lie in [0, 1)",
    ),
    DECAY,
    CLIP,
];

pub(crate) const OPTIMIZERS: &[Builtin] = &[b(
    "adam",
    "Adam",
    &[
        p(
            "lr",
            Ty::Real,
            R(1e-3),
            Positive,
            "the learning rate must be positive",
        ),
        p(
            "beta1",
            Ty::Real,
            R(0.9),
            Fraction,
            "Adam's betas lie in [0, 1)",
        ),
        p(
            "beta2",
            Ty::Real,
            R(0.999),
            Fraction,
            "Adam's betas lie in [0, 1)",
        ),
        DECAY,
        CLIP,
    ],
)];

/// Learning-rate schedules (`train { schedule cosine(...) }`); each starts with a linear warm-up
/// of `warmup` steps.
pub(crate) const SCHEDULES: &[Builtin] = &[
    b(
        "constant",
        "the optimiser's learning rate throughout",
        &[WARMUP],
    ),
    b(
        "step",
        "the learning rate times `factor` every `every` epochs",
        &[
            p(
                "every",
                Ty::Int,
                I(10),
                Positive,
                "a number of epochs must be positive",
            ),
            p(
                "factor",
                Ty::Real,
                R(0.1),
                Positive,
                "a learning-rate factor must be positive",
            ),
            WARMUP,
        ],
    ),
    b(
        "cosine",
        "half a cosine from the learning rate down to `min` times it over the run",
        &[
            p(
                "min",
                Ty::Real,
                R(0.0),
                NonNegative,
                "the final factor is non-negative",
            ),
            WARMUP,
        ],
    ),
    b(
        "exponential",
        "the learning rate times `factor` after every epoch",
        &[
            p(
                "factor",
                Ty::Real,
                R(0.95),
                Positive,
                "a learning-rate factor must be positive",
            ),
            WARMUP,
        ],
    ),
];

const WARMUP: P = p(
    "warmup",
    Ty::Int,
    I(0),
    NonNegative,
    "warm-up is a number of steps, 0 for none",
);

/// The validation split (`train { validation split(...) }`).
pub(crate) const VALIDATIONS: &[Builtin] = &[b(
    "split",
    "hold out a fraction of the training examples; evaluate on them, keep the best checkpoint, stop early",
    &[
        p("fraction", Ty::Real, R(0.1), Fraction, "the held-out fraction lies in (0, 1)"),
        p("seed", Ty::Int, I(0), NonNegative, "seeds are non-negative integers"),
        p("every", Ty::Int, I(1), Positive, "a number of epochs must be positive"),
        p("metric", Ty::Str, S("recon"), OneOf(ir::VALIDATION_METRICS), "the best checkpoint is chosen by one of the validation metrics"),
        p("patience", Ty::Int, I(0), NonNegative, "patience counts evaluations, 0 for no early stopping"),
    ],
)];

/// The settings of a `train { ... }` clause besides `optimizer` (an [`OPTIMIZERS`] call), with
/// their defaults.
pub(crate) const TRAIN_SETTINGS: &[P] = &[
    p("batch", Ty::Int, I(128), Positive, SIZE),
    p("epochs", Ty::Int, I(10), Positive, SIZE),
    p(
        "seed",
        Ty::Int,
        I(0),
        NonNegative,
        "seeds are non-negative integers",
    ),
    p(
        "init",
        Ty::Str,
        S("pytorch"),
        OneOf(&["pytorch", "kaiming", "xavier", "orthogonal", "zeros"]),
        "how layers without their own `init` start; pytorch is PyTorch's default",
    ),
    p(
        "precision",
        Ty::Str,
        S("float32"),
        OneOf(&["float32", "bf16"]),
        "bf16 autocasts the networks on CUDA; the transport solve stays float32",
    ),
    p(
        "images_every",
        Ty::Int,
        I(5),
        Positive,
        "a number of epochs must be positive",
    ),
];

/// Every name a `train` clause accepts.
pub(crate) const SETTINGS: &[&str] = &[
    "optimizer",
    "schedule",
    "validation",
    "batch",
    "epochs",
    "seed",
    "init",
    "precision",
    "images_every",
];

/// The default of an integer parameter of `params`.
pub(crate) fn default_int(params: &[P], name: &str) -> Option<i64> {
    params
        .iter()
        .find(|p| p.name == name)
        .and_then(|p| match p.default {
            I(i) => Some(i),
            _ => None,
        })
}

/// The default of a real parameter of `params`.
pub(crate) fn default_real(params: &[P], name: &str) -> Option<f64> {
    params
        .iter()
        .find(|p| p.name == name)
        .and_then(|p| match p.default {
            R(r) => Some(r),
            _ => None,
        })
}

pub(crate) fn names(table: &[Builtin]) -> Vec<&'static str> {
    table.iter().map(|b| b.name).collect()
}

/// The entry of `name` in `table`.
pub(crate) fn find(table: &'static [Builtin], name: &str) -> Option<&'static Builtin> {
    table.iter().find(|b| b.name == name)
}

pub(crate) fn signature(name: &str, params: &[P]) -> String {
    call_form(
        name,
        params.iter().map(|p| (p.name, default_text(p.default))),
    )
}

/// How a built-in is called: `name(a, b = 1)`, parameters in order, each with its default
/// when it has one. The one format of every signature in messages and docs.
pub(crate) fn call_form<'a>(
    name: &str,
    params: impl IntoIterator<Item = (&'a str, Option<String>)>,
) -> String {
    let ps: Vec<String> = params
        .into_iter()
        .map(|(p, d)| match d {
            Some(d) => format!("{p} = {d}"),
            None => p.to_string(),
        })
        .collect();
    format!("{name}({})", ps.join(", "))
}

/// One documented built-in, for tools (completion, hover, generated docs).
#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    /// `layer`, `data set`, `transform`, `prior`, `cost`, `penalty` or `optimizer`.
    pub kind: &'static str,
    pub name: &'static str,
    pub doc: &'static str,
    /// How it is called, with its defaults: `linear(out, bias = true)`.
    pub signature: String,
    /// Its parameters in order.
    pub params: Vec<ParamDoc>,
}

/// A parameter of a built-in, for tools: name, default as written, and why its range holds.
#[derive(Clone, Debug, PartialEq)]
pub struct ParamDoc {
    pub name: &'static str,
    /// None when the parameter is required.
    pub default: Option<String>,
    pub why: &'static str,
}

/// A default as written in a model file (None: required).
pub(crate) fn default_text(d: Dflt) -> Option<String> {
    match d {
        REQ => None,
        I(i) => Some(i.to_string()),
        R(r) => Some(ir::num(r)),
        B(b) => Some(b.to_string()),
        S(s) => Some(format!("\"{s}\"")),
    }
}

/// The distributions a prior program can draw from (`x ~ NAME(...)`), with their parameters,
/// and the functions it can apply: for tools (completion, hover).
pub fn program_builtins() -> (Vec<Entry>, Vec<&'static str>) {
    let dists = distributions::PRIMS
        .iter()
        .map(|(name, _, params)| {
            let params: Vec<ParamDoc> = params
                .iter()
                .map(|(n, d)| ParamDoc {
                    name: n,
                    default: d.map(ir::num),
                    why: "",
                })
                .collect();
            Entry {
                kind: "distribution",
                name,
                doc: "a primitive distribution of prior programs (`x ~ ...`); `dim = d` draws d independent coordinates",
                signature: call_form(name, params.iter().map(|p| (p.name, p.default.clone()))),
                params,
            }
        })
        .collect();
    let mut funcs: Vec<&'static str> = distributions::FUNCS.iter().map(|(n, _)| *n).collect();
    funcs.extend(distributions::SPECIAL);
    (dists, funcs)
}

/// Every built-in of the catalogue with its doc line and signature.
pub fn reference() -> Vec<Entry> {
    let tables: [(&str, &[Builtin]); 9] = [
        ("layer", LAYERS),
        ("data set", DATASETS),
        ("transform", TRANSFORMS),
        ("prior", PRIORS),
        ("cost", COSTS),
        ("penalty", PENALTIES),
        ("optimizer", OPTIMIZERS),
        ("schedule", SCHEDULES),
        ("validation", VALIDATIONS),
    ];
    tables
        .iter()
        .flat_map(|(kind, table)| {
            table.iter().map(move |b| Entry {
                kind,
                name: b.name,
                doc: b.doc,
                signature: signature(b.name, b.params),
                params: b
                    .params
                    .iter()
                    .map(|p| ParamDoc {
                        name: p.name,
                        default: default_text(p.default),
                        why: p.why,
                    })
                    .collect(),
            })
        })
        .collect()
}

/// Names other tools use for our built-ins, for "did you mean" by meaning rather than spelling:
/// (their name, ours, what differs). A name suggests ours only where ours is a candidate, so
/// `gaussian` means `normal` among priors but stays the Gaussian layer among layers.
pub(crate) const KNOWN_AS: &[(&str, &str, &str)] = &[
    (
        "mse",
        "squared_l2",
        " (summed over an example's features, not averaged)",
    ),
    ("l2", "squared_l2", ""),
    (
        "mae",
        "l1",
        " (summed over an example's features, not averaged)",
    ),
    ("cross_entropy", "bce", ""),
    ("binary_cross_entropy", "bce", ""),
    ("bce_loss", "bce", ""),
    ("adamw", "adam", " (AdamW with `weight_decay > 0`)"),
    ("dense", "linear", ""),
    ("fc", "linear", ""),
    ("deconv", "conv_transpose2d", ""),
    ("conv_transpose", "conv_transpose2d", ""),
    ("batchnorm", "batch_norm", ""),
    ("batchnorm2d", "batch_norm", ""),
    ("bn", "batch_norm", ""),
    ("lrelu", "leaky_relu", ""),
    ("view", "reshape", ""),
    ("gaussian", "normal", ""),
    ("gauss", "normal", ""),
    ("spherical", "uniform_sphere", ""),
    ("wasserstein", "sinkhorn", " (entropic optimal transport)"),
    ("ot", "sinkhorn", " (entropic optimal transport)"),
    (
        "sinkhorn_divergence",
        "sinkhorn",
        " (with `debiased = true`)",
    ),
    ("hungarian", "exact", ""),
    ("assignment", "exact", ""),
    ("swd", "sliced", ""),
    ("sliced_wasserstein", "sliced", ""),
    ("adversarial", "gan", ""),
    ("aae", "gan", ""),
    ("kld", "kl", ""),
];

/// The help for `name` when another tool calls one of `candidates` so: "`mse` is called
/// `squared_l2` here ...".
pub(crate) fn known_as(name: &str, candidates: &[&str]) -> Option<String> {
    let lower = name.to_lowercase();
    KNOWN_AS
        .iter()
        .find(|(theirs, ours, _)| *theirs == lower && candidates.contains(ours))
        .map(|(_, ours, note)| format!("`{name}` is called `{ours}` here{note}; write `{ours}`"))
}
