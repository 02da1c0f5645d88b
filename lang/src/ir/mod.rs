//! The compiled model: what `check` produces and the backend consumes.
//!
//! Every shape is inferred and every default filled in. [`Model`]'s `Display` is the stable text
//! printed by `sae-dsl graph` and snapshotted in tests.

pub mod display;
mod dot;
mod train;

use std::fmt;

use serde::{Deserialize, Serialize};

pub use dot::to_dot;
pub use train::{
    Adam, LrSchedule, Precision, ScheduleKind, TrainConfig, Validation, VALIDATION_METRICS,
};

/// A tensor shape without the batch dimension.
pub type Shape = Vec<i64>;

/// A fully resolved model.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Model {
    pub name: String,
    pub data: DataSpec,
    /// The latent components in declaration order; the code is their concatenation.
    pub latents: Vec<Latent>,
    /// One encoder of the whole code, or one per component (run in this order).
    pub encoders: Vec<Encoder>,
    pub generator: Network,
    pub cost: ReconCost,
    pub penalties: Vec<Penalty>,
    pub train: TrainConfig,
    /// The main file's constants (`let NAME = ...`) with their values as written, in order.
    #[serde(default)]
    pub constants: Vec<(String, String)>,
}

/// An encoder network and the latent component it computes (None: the whole code).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Encoder {
    pub component: Option<String>,
    pub net: Network,
}

impl Model {
    /// Coordinates of the whole code.
    pub fn latent_dim(&self) -> i64 {
        self.latents.iter().map(|l| l.space.dim()).sum()
    }

    /// The latent space: the only component's, or R^n for a composite code (its components'
    /// own geometry is used by the penalties, which act per component).
    pub fn space(&self) -> Space {
        match self.latents.as_slice() {
            [one] => one.space,
            _ => Space::Euclidean {
                dim: self.latent_dim(),
            },
        }
    }

    /// Whether the code is a product of named components.
    pub fn is_composite(&self) -> bool {
        self.latents.len() > 1
    }

    /// The component called `name` and its first coordinate in the code.
    pub fn component(&self, name: &str) -> Option<(i64, &Latent)> {
        let mut offset = 0;
        for l in &self.latents {
            if l.name == name {
                return Some((offset, l));
            }
            offset += l.space.dim();
        }
        None
    }

    /// Learnable parameters of the priors (numbers, over every `param` of every latent).
    pub fn prior_params(&self) -> u64 {
        self.latents
            .iter()
            .filter_map(|l| match &l.prior {
                Prior::Program(p) => Some(
                    p.params
                        .iter()
                        .map(|q| q.shape.iter().product::<i64>() as u64)
                        .sum::<u64>(),
                ),
                _ => None,
            })
            .sum()
    }

    /// Parameters of all encoders.
    pub fn encoder_params(&self) -> u64 {
        self.encoders.iter().map(|e| e.net.params()).sum()
    }
}

/// A transform applied to every example of the data set, after loading.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub enum Transform {
    /// Places each image on a `size x size` black canvas at a random position and scale:
    /// w ~ normal(0, I_3) clipped to [-2, 2], centre = shift * (w0, w1), scale = exp(zoom * w2)
    /// (the parameterisation of the `place` and `crop` layers).
    Canvas { size: i64, shift: f64, zoom: f64 },
    /// Sets each pixel to 1 with probability `p` (noise the model does not describe).
    Salt { p: f64 },
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub enum DataSource {
    /// MNIST-format IDX files in a folder named `dir` (mnist, fashion-mnist).
    Idx {
        dir: String,
        split: String,
        limit: usize,
    },
    /// Points on `k` concentric rings of radii 1..k, scaled to unit outer radius.
    Rings { n: usize, k: usize, noise: f64 },
    /// A `k x k` grid of Gaussian blobs in [-1, 1]^2.
    GaussianGrid { n: usize, k: usize, std: f64 },
    /// The 2-D Swiss roll, scaled to about [-1, 1]^2.
    SwissRoll { n: usize, noise: f64 },
    /// A hierarchy: the nodes of a complete tree (`branching` children per node, `depth` levels
    /// below the root) placed in R^dim by random unit steps from their parents (fixed by
    /// `tree_seed`), drawn uniformly over nodes with Gaussian noise; labels are depths.
    Tree {
        n: usize,
        depth: usize,
        branching: usize,
        dim: usize,
        noise: f64,
        tree_seed: u64,
    },
    /// Periodic data: points of a torus of revolution in R^3 (two uniform angles), with noise;
    /// labels are the eighth of the big circle a point lies in.
    Donut { n: usize, noise: f64 },
    /// A folder of PNG/JPEG images, converted to `channels`, centre-cropped (a `crop` square, or
    /// the largest) and resized to `size x size`; labels from the first-level sub-folders.
    Images {
        path: String,
        channels: i64,
        size: i64,
        crop: i64,
        split: Split,
        skip_bad: bool,
    },
    /// NumPy arrays: `key` of a .npz (or the .npy itself); `shape` is one example's shape.
    Arrays {
        path: String,
        key: String,
        labels: String,
        test_key: String,
        test_labels: String,
        shape: Shape,
        split: Split,
    },
    /// CIFAR-10's binary batches.
    Cifar10 { split: String, limit: usize },
    /// Procedural coloured shapes at `size x size`, drawn from `seed`.
    Shapes { n: usize, size: i64, seed: u64 },
}

/// How a source without a test split is split, and how many examples are kept.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Split {
    /// The first `limit` examples (0: all), taken before the split.
    pub limit: usize,
    /// The share held out as the test set (when the source has no test split of its own).
    pub test_fraction: f64,
    /// The seed choosing the test examples.
    pub seed: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DataSpec {
    pub source: DataSource,
    pub shape: Shape,
    /// Dynamic binarisation: each batch is re-sampled as Bernoulli(pixel).
    pub binarize: bool,
    /// Applied in order to every example (train and test, each with its own fixed seed).
    pub transforms: Vec<Transform>,
    /// The folder relative data paths start from (the model file's), when known.
    #[serde(default)]
    pub base: Option<String>,
}

impl DataSpec {
    /// Whether the data are images (for pictures and the reconstruction grid).
    pub fn is_image(&self) -> bool {
        self.shape.len() == 3
    }

    /// The shape of one example as loaded, before the transforms.
    pub fn source_shape(&self) -> Shape {
        match self.source {
            DataSource::Idx { .. } => vec![1, 28, 28],
            DataSource::Images { channels, size, .. } => vec![channels, size, size],
            DataSource::Arrays { ref shape, .. } => shape.clone(),
            DataSource::Cifar10 { .. } => vec![3, 32, 32],
            DataSource::Shapes { size, .. } => vec![3, size, size],
            _ => vec![2],
        }
    }
}

/// The latent metric space.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq)]
pub enum Space {
    /// R^d.
    Euclidean { dim: i64 },
    /// The unit sphere S^(dim-1) in R^dim.
    Sphere { dim: i64 },
    /// The probability simplex with `dim` vertices.
    Simplex { dim: i64 },
    /// The torus (S^1)^k: each factor a unit vector (cos t, sin t), so 2k coordinates.
    Torus { k: i64 },
    /// The Poincare ball of dimension `dim` and curvature -c: the points with c |x|^2 < 1.
    Ball { dim: i64, c: f64 },
}

impl Space {
    /// Number of coordinates the encoder outputs.
    pub fn dim(&self) -> i64 {
        match *self {
            Space::Euclidean { dim }
            | Space::Sphere { dim }
            | Space::Simplex { dim }
            | Space::Ball { dim, .. } => dim,
            Space::Torus { k } => 2 * k,
        }
    }
}

/// A prior on the latent space, sampled on the training device.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub enum Prior {
    Normal {
        mean: f64,
        std: f64,
    },
    Uniform {
        low: f64,
        high: f64,
    },
    UniformSphere,
    Dirichlet {
        alpha: Vec<f64>,
    },
    /// A prior program (`prior NAME(...) on SPACE { ... }`), compiled to straight-line batched
    /// tensor code.
    Program(Program),
}

/// A primitive distribution of prior programs.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub enum Prim {
    /// Operands: mean, std.
    Normal,
    /// Operands: low, high.
    Uniform,
    /// No operands; the dimension is the instruction's.
    UniformSphere,
    /// Operand: alpha.
    Dirichlet,
    /// Operands: shape, rate.
    Gamma,
    /// Operands: a, b.
    Beta,
    /// Operand: weights (a vector, or a matrix of per-row weights); an integer in 0..k.
    Categorical,
    /// Operand: p; 0 or 1.
    Bernoulli,
    /// Operands: location, scale.
    Laplace,
    /// Operand: rate.
    Exponential,
    /// Operands: mean direction (a constant unit vector), kappa (a constant).
    VonMisesFisher,
    /// Angles in (-pi, pi]: operands loc, kappa (a constant number).
    VonMises,
}

impl Prim {
    /// The name in model files.
    pub fn name(self) -> &'static str {
        match self {
            Prim::Normal => "normal",
            Prim::Uniform => "uniform",
            Prim::UniformSphere => "uniform_sphere",
            Prim::Dirichlet => "dirichlet",
            Prim::Gamma => "gamma",
            Prim::Beta => "beta",
            Prim::Categorical => "categorical",
            Prim::Bernoulli => "bernoulli",
            Prim::Laplace => "laplace",
            Prim::Exponential => "exponential",
            Prim::VonMisesFisher => "von_mises_fisher",
            Prim::VonMises => "von_mises",
        }
    }

    /// Whether a draw is a differentiable function of its operands (a reparameterised draw), so
    /// that learnable parameters may flow into them: location-scale and inverse-CDF draws, and
    /// the Gamma family through libtorch's implicit gradient of `_standard_gamma`.
    pub fn reparameterised(self) -> bool {
        match self {
            Prim::Normal
            | Prim::Uniform
            | Prim::Laplace
            | Prim::Exponential
            | Prim::Gamma
            | Prim::Beta
            | Prim::Dirichlet => true,
            Prim::UniformSphere
            | Prim::Categorical
            | Prim::Bernoulli
            | Prim::VonMisesFisher
            | Prim::VonMises => false,
        }
    }
}

/// An elementwise or reducing function of prior programs.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub enum Func {
    Exp,
    Log,
    Sin,
    Cos,
    Sqrt,
    Abs,
    Tanh,
    Sigmoid,
    Floor,
    /// Vector -> simplex.
    Softmax,
    /// Vector -> unit sphere.
    Normalize,
    /// Vector -> scalar.
    Sum,
    /// log(1 + x), accurate near 0.
    Log1p,
    /// exp(x) - 1, accurate near 0.
    Expm1,
    Erf,
    /// Vector -> scalar: log(sum(exp(x))), computed stably.
    Logsumexp,
    /// Vector -> scalar: the Euclidean norm.
    Norm,
    /// Vector -> vector: running sums.
    Cumsum,
    /// Angles -> points of the torus: [k] -> [2k], (cos t, sin t) for each.
    Torus,
    /// Vector -> the Poincare ball of curvature -1: the exponential map at the origin,
    /// tanh(|v|) v / |v|.
    Expmap0,
    /// Vector -> scalar: the largest element.
    Max,
    /// Vector -> scalar: the smallest element.
    Min,
}

impl Func {
    pub fn name(self) -> &'static str {
        match self {
            Func::Exp => "exp",
            Func::Log => "log",
            Func::Sin => "sin",
            Func::Cos => "cos",
            Func::Sqrt => "sqrt",
            Func::Abs => "abs",
            Func::Tanh => "tanh",
            Func::Sigmoid => "sigmoid",
            Func::Floor => "floor",
            Func::Softmax => "softmax",
            Func::Normalize => "normalize",
            Func::Sum => "sum",
            Func::Log1p => "log1p",
            Func::Expm1 => "expm1",
            Func::Erf => "erf",
            Func::Logsumexp => "logsumexp",
            Func::Norm => "norm",
            Func::Cumsum => "cumsum",
            Func::Max => "max",
            Func::Min => "min",
            Func::Torus => "torus",
            Func::Expmap0 => "expmap0",
        }
    }

    /// Whether the function needs a vector (reducing it, or mapping it as a whole).
    pub fn needs_vector(self) -> bool {
        matches!(
            self,
            Func::Softmax
                | Func::Normalize
                | Func::Expmap0
                | Func::Sum
                | Func::Logsumexp
                | Func::Norm
                | Func::Cumsum
                | Func::Max
                | Func::Min
        )
    }

    /// Whether the function turns a vector into a scalar.
    pub fn reduces(self) -> bool {
        matches!(
            self,
            Func::Sum | Func::Logsumexp | Func::Norm | Func::Max | Func::Min
        )
    }
}

/// Arithmetic of prior programs (broadcasting a scalar over a vector).
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub enum Arith {
    Add,
    Sub,
    Mul,
    Div,
    Pow,
    /// Elementwise `min(a, b)`.
    Minimum,
    /// Elementwise `max(a, b)`.
    Maximum,
    /// Elementwise `atan2(y, x)`: the angle of (x, y).
    Atan2,
    /// Comparisons: 1 where they hold, 0 elsewhere.
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
    Ne,
}

impl Arith {
    pub fn symbol(self) -> &'static str {
        match self {
            Arith::Add => "+",
            Arith::Sub => "-",
            Arith::Mul => "*",
            Arith::Div => "/",
            Arith::Pow => "^",
            Arith::Minimum => "min",
            Arith::Maximum => "max",
            Arith::Atan2 => "atan2",
            Arith::Lt => "<",
            Arith::Le => "<=",
            Arith::Gt => ">",
            Arith::Ge => ">=",
            Arith::Eq => "==",
            Arith::Ne => "!=",
        }
    }

    /// Whether the operation is written as a function call, `min(a, b)`, not infix.
    pub fn is_call(self) -> bool {
        matches!(self, Arith::Minimum | Arith::Maximum | Arith::Atan2)
    }

    /// The operation on two numbers (for folding constants and for references).
    pub fn apply(self, x: f64, y: f64) -> f64 {
        match self {
            Arith::Add => x + y,
            Arith::Sub => x - y,
            Arith::Mul => x * y,
            Arith::Div => x / y,
            Arith::Pow => x.powf(y),
            Arith::Minimum => x.min(y),
            Arith::Maximum => x.max(y),
            Arith::Atan2 => x.atan2(y),
            Arith::Lt => f64::from(u8::from(x < y)),
            Arith::Le => f64::from(u8::from(x <= y)),
            Arith::Gt => f64::from(u8::from(x > y)),
            Arith::Ge => f64::from(u8::from(x >= y)),
            Arith::Eq => f64::from(u8::from(x == y)),
            Arith::Ne => f64::from(u8::from(x != y)),
        }
    }
}

/// How one register of a prior program is computed; operands are earlier registers.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub enum Op {
    /// A constant, row-major in the register's shape (shared by all rows of the batch).
    Const(Vec<f64>),
    Draw(Prim, Vec<usize>),
    Apply(Func, usize),
    Neg(usize),
    Binary(Arith, usize, usize),
    /// `a @ b` of a matrix and a vector (either order) or two matrices.
    MatMul(usize, usize),
    /// `if c then a else b`: a where c is non-zero, b elsewhere (elementwise).
    Where(usize, usize, usize),
    /// Element `index` (an integer register) of a vector, or row of a matrix.
    Index(usize, usize),
    /// Scalars and vectors laid end to end into a vector.
    Concat(Vec<usize>),
    /// Values of one shape stacked into a vector (of scalars) or a matrix (of vectors).
    Stack(Vec<usize>),
    /// Learnable parameter `i` of the program (see [`Program::params`]).
    Param(usize),
    /// Elements (of a vector) or rows (of a matrix) `start` to `end - 1`.
    Slice(usize, i64, i64),
}

/// How a learnable parameter of a prior program starts, values row-major in its shape.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub enum ParamInit {
    /// `param w = zeros(3)`.
    Const(Vec<f64>),
    /// `param w ~ normal(mean, std)`: drawn once, when the model's variables are made.
    Normal { mean: Vec<f64>, std: Vec<f64> },
    /// `param w ~ uniform(low, high)`.
    Uniform { low: Vec<f64>, high: Vec<f64> },
}

/// A learnable parameter of a prior program: trained with the model through the penalty's
/// gradient (reparameterised draws) and saved in its checkpoint under `prior.LATENT.NAME`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct PriorParam {
    pub name: String,
    pub shape: Shape,
    pub init: ParamInit,
}

/// One register: its source name, its shape without the batch dimension (`[]` scalar, `[n]`
/// vector, `[k, n]` matrix), whether it holds integers, and how it is computed.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Instr {
    pub name: String,
    pub shape: Shape,
    pub int: bool,
    pub op: Op,
}

/// A prior program instantiated with its (constant) arguments, calls of other priors and
/// mixtures inlined: one pass over `instrs` draws a whole batch.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Program {
    /// The call as resolved, e.g. `ring_mixture(k = 8, radius = 2, scale = 0.2)`.
    pub call: String,
    pub instrs: Vec<Instr>,
    pub result: usize,
    /// Learnable parameters (`param` statements), in the order of their `Param` instructions.
    #[serde(default)]
    pub params: Vec<PriorParam>,
}

impl Program {
    /// Number of random draws per sample (a cost figure for `graph`).
    pub fn draws(&self) -> usize {
        self.instrs
            .iter()
            .filter(|i| matches!(i.op, Op::Draw(..)))
            .count()
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Latent {
    pub name: String,
    pub space: Space,
    pub prior: Prior,
}

/// One layer with the shapes it maps between.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Layer {
    pub op: LayerOp,
    pub input: Shape,
    pub output: Shape,
    pub params: u64,
    /// The chain of nets this layer was expanded from, outermost first.
    pub origin: Vec<String>,
    /// The initialisation written on the layer (`init = "xavier"`); None: the model's default
    /// (`train { init ... }`). Only layers with parameters have one.
    #[serde(default)]
    pub init: Option<Init>,
}

/// How a layer's parameters start. `Pytorch` is PyTorch's default for `nn.Linear`, `nn.Conv2d`
/// and `nn.ConvTranspose2d`: weights and biases uniform in +-1/sqrt(fan_in), fan_in computed from
/// the weight tensor as PyTorch does (for a transposed convolution: out channels x kernel area).
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Init {
    #[default]
    Pytorch,
    /// Kaiming-uniform with the ReLU gain (bound sqrt(6 / fan_in)), zero biases: tch's default.
    Kaiming,
    /// Glorot-uniform (bound sqrt(6 / (fan_in + fan_out))), zero biases.
    Xavier,
    /// Orthogonal weights (gain 1), zero biases.
    Orthogonal,
    /// Every parameter zero.
    Zeros,
}

impl Init {
    /// The names accepted by `init = "..."`, in the order of the variants.
    pub const NAMES: &'static [&'static str] =
        &["pytorch", "kaiming", "xavier", "orthogonal", "zeros"];

    /// The initialisation called `name`.
    pub fn from_name(name: &str) -> Option<Init> {
        Some(match name {
            "pytorch" => Init::Pytorch,
            "kaiming" => Init::Kaiming,
            "xavier" => Init::Xavier,
            "orthogonal" => Init::Orthogonal,
            "zeros" => Init::Zeros,
            _ => return None,
        })
    }

    /// Its name in model files.
    pub fn name(self) -> &'static str {
        match self {
            Init::Pytorch => "pytorch",
            Init::Kaiming => "kaiming",
            Init::Xavier => "xavier",
            Init::Orthogonal => "orthogonal",
            Init::Zeros => "zeros",
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub enum LayerOp {
    Linear {
        input: i64,
        output: i64,
        bias: bool,
    },
    Conv2d {
        input: i64,
        output: i64,
        kernel: i64,
        stride: i64,
        padding: i64,
        bias: bool,
        /// Spacing of the kernel's taps (1: adjacent). Defaults for run records of earlier
        /// versions.
        #[serde(default = "one")]
        dilation: i64,
        /// Channel groups: each output channel sees `input / groups` input channels.
        #[serde(default = "one")]
        groups: i64,
    },
    ConvTranspose2d {
        input: i64,
        output: i64,
        kernel: i64,
        stride: i64,
        padding: i64,
        output_padding: i64,
        bias: bool,
        #[serde(default = "one")]
        dilation: i64,
        #[serde(default = "one")]
        groups: i64,
    },
    BatchNorm {
        features: i64,
    },
    Relu,
    LeakyRelu {
        slope: f64,
    },
    Tanh,
    Sigmoid,
    Softmax,
    Flatten,
    Identity,
    /// The exact (erf) GELU, PyTorch's default.
    Gelu,
    /// x sigmoid(x).
    Silu,
    /// x for x > 0, alpha (exp(x) - 1) otherwise.
    Elu {
        alpha: f64,
    },
    /// log(1 + exp(beta x)) / beta, and x where beta x > threshold.
    Softplus {
        beta: f64,
        threshold: f64,
    },
    /// Zeroes each value with probability p in training (scaling the rest by 1 / (1 - p));
    /// the identity in evaluation.
    Dropout {
        p: f64,
    },
    /// Normalisation over all of an example's values, with a learned scale and shift per value.
    LayerNorm {
        shape: Shape,
    },
    /// Normalisation over groups of channels, with a learned scale and shift per channel.
    GroupNorm {
        groups: i64,
        channels: i64,
    },
    AvgPool2d {
        kernel: i64,
        stride: i64,
        padding: i64,
    },
    MaxPool2d {
        kernel: i64,
        stride: i64,
        padding: i64,
    },
    /// Average pooling to a `size x size` output, whatever the input's size.
    AdaptiveAvgPool2d {
        size: i64,
    },
    /// Resizing by an integer factor.
    Upsample {
        scale: i64,
        mode: Resample,
    },
    /// Resizing to `size x size`.
    Interpolate {
        size: i64,
        mode: Resample,
    },
    /// x + body(x); when the body changes the shape, x passes through `projection` (a 1x1
    /// convolution with the body's down-sampling as stride, or a linear map) first.
    Residual {
        body: Vec<Layer>,
        projection: Option<Box<Layer>>,
    },
    /// Branches applied to the same input, their outputs joined along the first axis
    /// (channels of images, features of vectors).
    Concat {
        branches: Vec<Vec<Layer>>,
    },
    Reshape {
        shape: Shape,
    },
    /// L2 normalisation onto the unit sphere.
    Normalize,
    /// Each pair of coordinates normalised: onto the torus (S^1)^k.
    Torus,
    /// The exponential map at the origin of the Poincare ball of curvature -c, with the norm
    /// kept below (1 - 1e-5) / sqrt(c).
    Expmap0 {
        c: f64,
    },
    /// Mean and log-variance heads of a Gaussian encoder; samples with the reparameterisation
    /// in training, returns the mean in evaluation.
    Gaussian {
        input: i64,
        output: i64,
    },
    /// The coordinates of one latent component (generator: a slice of the code).
    Select {
        component: String,
        offset: i64,
        len: i64,
    },
    /// Spatial transformer: draws the input image onto a `size x size` canvas at the position
    /// and scale given by a 3-coordinate component (affine grid + bilinear sampling).
    Place {
        component: String,
        offset: i64,
        size: i64,
        shift: f64,
        zoom: f64,
    },
    /// The inverse: cuts a `size x size` window out of the input at the position and scale of an
    /// already encoded component (`index` in the model's latents).
    Crop {
        component: String,
        index: usize,
        size: i64,
        shift: f64,
        zoom: f64,
    },
}

fn one() -> i64 {
    1
}

/// How `upsample` and `interpolate` fill the new pixels (PyTorch's modes; bilinear with
/// `align_corners = False`).
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq)]
pub enum Resample {
    Nearest,
    Bilinear,
}

impl Resample {
    /// The mode's name in the language and in PyTorch.
    pub fn name(self) -> &'static str {
        match self {
            Resample::Nearest => "nearest",
            Resample::Bilinear => "bilinear",
        }
    }
}

/// A layer pipeline with its input and output shapes.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Network {
    pub input: Shape,
    pub output: Shape,
    pub layers: Vec<Layer>,
}

impl Network {
    pub fn params(&self) -> u64 {
        self.layers.iter().map(|l| l.params).sum()
    }
}

/// The reconstruction cost c(x, G(Q(x))): summed over the features of an example, averaged
/// over the batch.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub enum ReconCost {
    SquaredL2,
    L1,
    Bce,
    /// A cost written in the language: an expression of the data `x` and the reconstruction
    /// `y` giving one number per example (`text` is the expression as written).
    Expr {
        text: String,
        expr: CostExpr,
    },
}

/// A reconstruction cost's expression, evaluated on a batch: `X` and `Y` are `[B, ...]`, every
/// node keeps the batch axis, `Sum` and `Mean` reduce an example's values to `[B]`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub enum CostExpr {
    X,
    Y,
    Const(f64),
    /// A constant vector, one value per channel (image data) or feature (vector data).
    Channels(Vec<f64>),
    Apply(Func, Box<CostExpr>),
    Binary(Arith, Box<CostExpr>, Box<CostExpr>),
    Neg(Box<CostExpr>),
    Sum(Box<CostExpr>),
    Mean(Box<CostExpr>),
    /// Differences of horizontal neighbours (`[C, H, W]` -> `[C, H, W - 1]`).
    Dx(Box<CostExpr>),
    /// Differences of vertical neighbours (`[C, H, W]` -> `[C, H - 1, W]`).
    Dy(Box<CostExpr>),
}

/// The ground cost of the latent penalty, from the latent space's metric.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq)]
pub enum LatentCost {
    /// |z - w|^p.
    Euclidean { p: f64 },
    /// Great-circle angle arccos(<z, w>) to the power p.
    Geodesic { p: f64 },
    /// Fisher-Rao distance on the simplex, 2 arccos(sum_i sqrt(z_i w_i)), to the power p.
    FisherRao { p: f64 },
    /// The flat torus's geodesic distance, sqrt(sum_i angle_i^2) over the circles, to the power p.
    Torus { p: f64 },
    /// The Poincare ball's geodesic distance arccosh(1 + 2c|x - y|^2 / ((1 - c|x|^2)(1 - c|y|^2)))
    /// / sqrt(c), to the power p.
    Hyperbolic { p: f64, c: f64 },
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum PenaltyKind {
    /// Entropic OT in the log domain; the loss is <P, C> (unrolled gradient) or the entropic dual
    /// (envelope gradient); optionally debiased, with tolerance stopping and epsilon scaling.
    Sinkhorn {
        epsilon: f64,
        iterations: i64,
        cost: LatentCost,
        debiased: bool,
        envelope: bool,
        tolerance: f64,
        scaling: f64,
        /// A joint problem over a product of components: the cost is the weighted sum of each
        /// component's own cost (`cost` is then unused). Empty for one component.
        #[serde(default)]
        factors: Vec<Factor>,
    },
    /// Unbiased MMD^2 with the kernel summed over `scale` times 0.1 ... 10 (scale = 2 d sigma^2).
    Mmd { imq: bool, sigma: f64, scale: f64 },
    /// Adversarial: a latent discriminator with its own Adam, non-saturating loss.
    Gan {
        discriminator: Network,
        /// The discriminator's own optimiser settings.
        opt: Adam,
    },
    /// Sliced Wasserstein W_p^p over random directions.
    Sliced { projections: i64, p: f64 },
    /// Optimal one-to-one assignment (Hungarian algorithm).
    Exact { cost: LatentCost },
    /// Closed-form KL between the Gaussian encoder and a normal prior.
    Kl { mean: f64, std: f64 },
}

/// One component of a joint (product-space) Sinkhorn cost: its coordinates in the code, its
/// weight, and its space's cost.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Factor {
    pub name: String,
    pub offset: i64,
    pub dim: i64,
    pub weight: f64,
    pub cost: LatentCost,
}

impl PenaltyKind {
    /// The penalty's name in model files.
    pub fn name(&self) -> &'static str {
        match self {
            PenaltyKind::Sinkhorn { .. } => "sinkhorn",
            PenaltyKind::Mmd { .. } => "mmd",
            PenaltyKind::Gan { .. } => "gan",
            PenaltyKind::Sliced { .. } => "sliced",
            PenaltyKind::Exact { .. } => "exact",
            PenaltyKind::Kl { .. } => "kl",
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Penalty {
    pub weight: f64,
    pub kind: PenaltyKind,
    /// The latent component it applies to.
    pub on: String,
}

/// A number without trailing noise: 0.2, 10, 0.001.
pub fn num(x: f64) -> String {
    if x.is_finite() && x == x.trunc() && x.abs() < 1e15 {
        format!("{}", x as i64)
    } else {
        format!("{x}")
    }
}

pub fn shape_str(s: &[i64]) -> String {
    let parts: Vec<String> = s.iter().map(|d| d.to_string()).collect();
    format!("[{}]", parts.join(", "))
}

/// 170193 -> "170,193".
pub fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

fn write_network(f: &mut dyn fmt::Write, title: &str, net: &Network) -> fmt::Result {
    writeln!(
        f,
        "{title} {} -> {}, {} parameters",
        shape_str(&net.input),
        shape_str(&net.output),
        thousands(net.params())
    )?;
    let mut rows = vec![];
    layer_rows(&net.layers, "", &mut rows);
    let wn = rows.iter().map(|r| r.0.len()).max().unwrap_or(0).max(2);
    let w0 = rows.iter().map(|r| r.1.len()).max().unwrap_or(0);
    let w1 = rows.iter().map(|r| r.2.len()).max().unwrap_or(0);
    for (n, op, out, params) in &rows {
        writeln!(f, "  {n:>wn$}  {op:<w0$}  {out:<w1$}  {params}")?;
    }
    Ok(())
}

/// The rows (number, layer, output, parameters) of `layers`, numbered under `prefix`; the
/// layers of a block follow it, indented and numbered within it ("3.1", "3.b2.1" for a
/// branch, "3.p" for a projection).
fn layer_rows(layers: &[Layer], prefix: &str, rows: &mut Vec<(String, String, String, String)>) {
    let depth = prefix.matches('.').count();
    let pad = "  ".repeat(depth);
    for (i, l) in layers.iter().enumerate() {
        let n = format!("{prefix}{}", i + 1);
        let origin = if l.origin.is_empty() {
            String::new()
        } else {
            format!("  ({})", l.origin.join(" > "))
        };
        let init = match l.init {
            Some(i) => format!(" init {}", i.name()),
            None => String::new(),
        };
        rows.push((
            n.clone(),
            format!("{pad}{}{init}", l.op),
            format!("-> {}", shape_str(&l.output)),
            format!("{}{origin}", thousands(l.params)),
        ));
        match &l.op {
            LayerOp::Residual { body, projection } => {
                layer_rows(body, &format!("{n}."), rows);
                if let Some(p) = projection {
                    rows.push((
                        format!("{n}.p"),
                        format!("{pad}  projection: {}", p.op),
                        format!("-> {}", shape_str(&p.output)),
                        thousands(p.params),
                    ));
                }
            }
            LayerOp::Concat { branches } => {
                for (k, b) in branches.iter().enumerate() {
                    layer_rows(b, &format!("{n}.b{}.", k + 1), rows);
                }
            }
            _ => {}
        }
    }
}
