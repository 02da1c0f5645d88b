//! Stage 2, `check`: resolves names, binds and validates arguments, expands nets, infers every
//! shape and matches the encoder, prior and space; produces the IR ([`ir::Model`]).
//!
//! Entry point: [`check`]. It never stops at the first problem: every diagnostic of the program is
//! collected, and a model is returned only when none of them is an error.

use std::collections::HashMap;

use crate::diag::{unknown_help, Code, Diag, Span};
use crate::ir::{self, shape_str, DataSource, LayerOp, Shape, Space};
use crate::load::Program;
use crate::prior::{self, Priors};
use crate::syntax::{
    Arg, BinOp, Call, Clause, ClauseKind, Expr, ExprKind, Ident, NetDef, Pipeline, SpaceExpr,
};

/// The outcome of checking: the model when there was no error, and all diagnostics.
pub struct Checked {
    pub model: Option<ir::Model>,
    pub diags: Vec<Diag>,
    /// True when the main file has no model clauses (a library such as `stdlib/nets.sae`).
    pub library: bool,
    /// A library's prior programs, instantiated with their defaults (for `graph`).
    pub library_priors: Vec<(ir::Program, Space)>,
}

/// Largest tensor (elements per example) or parameter count accepted before allocation.
pub const MAX_ELEMENTS: i128 = 1 << 31;

/// Checks a loaded program whose main file is named `name`.
pub fn check(program: &Program, name: &str) -> Checked {
    let mut diags = vec![];
    let priors = Priors::collect(&program.modules, &mut diags);
    let mut c = Checker {
        program,
        diags,
        nets: HashMap::new(),
        priors,
        components: vec![],
        role: Role::Library,
    };
    c.collect_nets();
    let main = program.main();
    if main.clauses.is_empty() {
        c.check_library();
        let mut diags = std::mem::take(&mut c.diags);
        let library_priors = c.priors.check_library(main, &mut diags);
        return Checked {
            model: None,
            diags,
            library: true,
            library_priors,
        };
    }
    let model = c.model(name, &main.clauses);
    let failed = c.diags.iter().any(Diag::is_error);
    Checked {
        model: if failed { None } else { model },
        diags: c.diags,
        library: false,
        library_priors: vec![],
    }
}

// ---- values ------------------------------------------------------------------------------------

#[derive(Clone, Debug, PartialEq)]
enum Value {
    Int(i64),
    Real(f64),
    Bool(bool),
    Str(String),
    List(Vec<Value>),
}

impl Value {
    fn type_name(&self) -> &'static str {
        match self {
            Value::Int(_) => "an integer",
            Value::Real(_) => "a real number",
            Value::Bool(_) => "a boolean",
            Value::Str(_) => "a string",
            Value::List(_) => "a list",
        }
    }
    fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Int(i) => Some(*i as f64),
            Value::Real(r) => Some(*r),
            _ => None,
        }
    }
}

type Env = HashMap<String, Value>;

#[derive(Clone, Copy, PartialEq)]
enum Ty {
    Int,
    Real,
    Bool,
    Str,
    /// A real number or a list of them (Dirichlet's alpha).
    Reals,
}

#[derive(Clone, Copy)]
enum Range {
    Any,
    Positive,
    NonNegative,
    AtLeast(f64),
    /// [0, 1).
    Fraction,
    OneOf(&'static [&'static str]),
}

#[derive(Clone, Copy)]
enum Dflt {
    Required,
    I(i64),
    R(f64),
    B(bool),
    S(&'static str),
}

/// One parameter of a built-in.
#[derive(Clone, Copy)]
struct P {
    name: &'static str,
    ty: Ty,
    default: Dflt,
    range: Range,
    /// Why the range holds, for the help text.
    why: &'static str,
}

const fn p(name: &'static str, ty: Ty, default: Dflt, range: Range, why: &'static str) -> P {
    P {
        name,
        ty,
        default,
        range,
        why,
    }
}

use Dflt::{Required as REQ, B, I, R, S};
use Range::{AtLeast, Fraction, NonNegative, OneOf, Positive};

const SIZE: &str = "sizes count units, so they must be positive";

/// Built-in layers and their parameters. `reshape`/`unflatten` take a variable list of sizes.
const LAYERS: &[(&str, &[P])] = &[
    (
        "linear",
        &[
            p("out", Ty::Int, REQ, Positive, SIZE),
            p("bias", Ty::Bool, B(true), Range::Any, ""),
        ],
    ),
    (
        "conv2d",
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
        ],
    ),
    (
        "conv_transpose2d",
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
        ],
    ),
    ("batch_norm", &[]),
    ("relu", &[]),
    (
        "leaky_relu",
        &[p(
            "slope",
            Ty::Real,
            R(0.2),
            NonNegative,
            "a negative slope would flip the sign",
        )],
    ),
    ("tanh", &[]),
    ("sigmoid", &[]),
    ("softmax", &[]),
    ("flatten", &[]),
    ("reshape", &[]),
    ("unflatten", &[]),
    ("normalize", &[]),
    ("gaussian", &[p("out", Ty::Int, REQ, Positive, SIZE)]),
    // The first argument of these three names a latent component (handled before binding).
    ("select", &[]),
    ("place", PLACEMENT),
    ("crop", PLACEMENT),
];

/// The window or canvas size and the placement scales of `place` / `crop` / `canvas`.
const PLACEMENT: &[P] = &[
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
const TRANSFORMS: &[(&str, &[P])] = &[
    ("canvas", PLACEMENT),
    (
        "salt",
        &[p(
            "p",
            Ty::Real,
            REQ,
            Fraction,
            "a probability lies in [0, 1)",
        )],
    ),
];

const DATASETS: &[(&str, &[P])] = &[
    ("mnist", IDX_PARAMS),
    ("fashion_mnist", IDX_PARAMS),
    (
        "rings",
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
    (
        "gaussian_grid",
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
    (
        "swiss_roll",
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
];

const IDX_PARAMS: &[P] = &[
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

const PRIORS: &[(&str, &[P])] = &[
    (
        "normal",
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
    (
        "uniform",
        &[
            p("low", Ty::Real, R(-1.0), Range::Any, ""),
            p("high", Ty::Real, R(1.0), Range::Any, ""),
        ],
    ),
    ("uniform_sphere", &[]),
    (
        "dirichlet",
        &[p(
            "alpha",
            Ty::Reals,
            REQ,
            Positive,
            "Dirichlet concentrations must be positive",
        )],
    ),
];

const COSTS: &[(&str, &[P])] = &[("squared_l2", &[]), ("l1", &[]), ("bce", &[])];

const COST_NAMES: &[&str] = &["auto", "euclidean", "geodesic", "fisher_rao"];

const PENALTIES: &[(&str, &[P])] = &[
    (
        "sinkhorn",
        &[
            p("epsilon", Ty::Real, R(0.1), Positive, "epsilon is the entropic regularisation; it must be positive"),
            p("iterations", Ty::Int, I(50), Positive, "at least one Sinkhorn iteration is needed"),
            p("p", Ty::Real, R(2.0), AtLeast(1.0), "the latent cost |z - w|^p is a transport cost only for p >= 1"),
            p("metric", Ty::Str, S("auto"), OneOf(COST_NAMES), "the ground cost: the space's own metric (auto), or one named"),
            p("debiased", Ty::Bool, B(false), Range::Any, ""),
            p("gradient", Ty::Str, S("unrolled"), OneOf(&["unrolled", "envelope"]), "unrolled back-propagates through the iterations; envelope differentiates the final plan"),
            p("scaling", Ty::Real, R(1.0), Positive, "epsilon scaling factor in (0, 1]; 1 turns it off"),
            p("tolerance", Ty::Real, R(0.0), NonNegative, "stop when the marginal error is below this; 0 runs exactly `iterations`"),
        ],
    ),
    (
        "mmd",
        &[
            p("kernel", Ty::Str, S("imq"), OneOf(&["imq", "rbf"]), "inverse multiquadratic (the WAE paper's) or Gaussian"),
            p("sigma", Ty::Real, R(1.0), Positive, "the kernel scale is C = 2 d sigma^2, sigma^2 the prior's variance"),
        ],
    ),
    ("gan", GAN_PARAMS),
    (
        "sliced",
        &[
            p("projections", Ty::Int, I(50), Positive, "the number of random directions must be positive"),
            p("p", Ty::Real, R(2.0), AtLeast(1.0), "W_p needs p >= 1"),
        ],
    ),
    (
        "exact",
        &[
            p("p", Ty::Real, R(2.0), AtLeast(1.0), "the matching cost |z - w|^p needs p >= 1"),
            p("metric", Ty::Str, S("auto"), OneOf(COST_NAMES), "the ground cost: the space's own metric (auto), or one named"),
        ],
    ),
    ("kl", &[]),
];

const GAN_PARAMS: &[P] = &[
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
];

const OPTIMIZERS: &[(&str, &[P])] = &[(
    "adam",
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
    ],
)];

const SETTINGS: &[&str] = &["optimizer", "batch", "epochs", "seed"];

fn names(table: &[(&'static str, &[P])]) -> Vec<&'static str> {
    table.iter().map(|(n, _)| *n).collect()
}

fn signature(name: &str, params: &[P]) -> String {
    let ps: Vec<String> = params
        .iter()
        .map(|p| match p.default {
            REQ => p.name.to_string(),
            I(i) => format!("{} = {i}", p.name),
            R(r) => format!("{} = {}", p.name, ir::num(r)),
            B(b) => format!("{} = {b}", p.name),
            S(s) => format!("{} = \"{s}\"", p.name),
        })
        .collect();
    format!("{name}({})", ps.join(", "))
}

// ---- the checker -------------------------------------------------------------------------------

struct Checker<'a> {
    program: &'a Program,
    diags: Vec<Diag>,
    nets: HashMap<String, &'a NetDef>,
    priors: Priors<'a>,
    /// The latent components (name, space, declaration), once checked.
    components: Vec<(String, Space, Span)>,
    /// Which pipeline is being expanded (for the component layers).
    role: Role,
}

/// The pipeline being expanded.
#[derive(Clone, PartialEq)]
enum Role {
    /// A net of a library: components are not known.
    Library,
    /// An encoder; the components already encoded by earlier encoders.
    Encoder(Vec<String>),
    Generator,
    /// A discriminator or other network that sees codes only.
    Other,
}

/// Arguments bound to a built-in's parameters, with the span each value came from.
struct Bound {
    values: Vec<Value>,
    spans: Vec<Span>,
}

impl Bound {
    fn int(&self, i: usize) -> i64 {
        match self.values[i] {
            Value::Int(v) => v,
            Value::Real(r) => r as i64,
            _ => 0,
        }
    }
    fn real(&self, i: usize) -> f64 {
        self.values[i].as_f64().unwrap_or(f64::NAN)
    }
    fn bool(&self, i: usize) -> bool {
        matches!(self.values[i], Value::Bool(true))
    }
    fn str(&self, i: usize) -> String {
        match &self.values[i] {
            Value::Str(s) => s.clone(),
            _ => String::new(),
        }
    }
}

/// A pipeline being expanded: the current shape (None after an error) and the layers so far.
struct Flow {
    shape: Option<Shape>,
    layers: Vec<ir::Layer>,
    /// The source span of each layer (the call as written at the outermost level).
    spans: Vec<Span>,
    origin: Vec<String>,
    stack: Vec<String>,
}

impl<'a> Checker<'a> {
    fn err(&mut self, d: Diag) {
        self.diags.push(d);
    }

    fn collect_nets(&mut self) {
        let builtin = names(LAYERS);
        for m in &self.program.modules {
            for n in &m.nets {
                if builtin.contains(&n.name.name.as_str()) {
                    self.diags.push(
                        Diag::error(
                            Code::DuplicateDefinition,
                            format!("`{}` is a built-in layer", n.name.name),
                        )
                        .label(
                            n.name.span,
                            "a net cannot take the name of a built-in layer",
                        )
                        .help("choose another name for this net"),
                    );
                    continue;
                }
                if let Some(prev) = self.nets.get(&n.name.name) {
                    let mut d = Diag::error(
                        Code::DuplicateDefinition,
                        format!("net `{}` is defined twice", n.name.name),
                    )
                    .label(n.name.span, "defined again here");
                    if prev.name.span.file == n.name.span.file {
                        d = d.label(prev.name.span, "first defined here");
                    } else {
                        d = d.help(format!(
                            "the first definition is in {}; rename one of them",
                            self.program.sources.name(prev.name.span.file)
                        ));
                    }
                    self.diags.push(d);
                    continue;
                }
                for (i, par) in n.params.iter().enumerate() {
                    if let Some(first) = n.params[..i].iter().find(|q| q.name.name == par.name.name)
                    {
                        self.diags.push(
                            Diag::error(
                                Code::DuplicateDefinition,
                                format!("parameter `{}` is declared twice", par.name.name),
                            )
                            .label(par.name.span, "declared again here")
                            .label(first.name.span, "first declared here"),
                        );
                    }
                }
                self.nets.insert(n.name.name.clone(), n);
            }
        }
    }

    /// A library has no model; its nets are checked for names and arguments only, since their
    /// input shapes are known only where they are used.
    fn check_library(&mut self) {
        let nets: Vec<&NetDef> = self.program.main().nets.iter().collect();
        for n in nets {
            let mut env = Env::new();
            for par in &n.params {
                let v = match &par.default {
                    Some(e) => self.eval(e, &Env::new()).unwrap_or(Value::Int(1)),
                    None => Value::Int(1),
                };
                env.insert(par.name.name.clone(), v);
            }
            let mut flow = Flow {
                shape: None,
                layers: vec![],
                spans: vec![],
                origin: vec![],
                stack: vec![n.name.name.clone()],
            };
            self.expand(&n.body, &env, &mut flow, None);
        }
    }

    fn model(&mut self, name: &str, clauses: &'a [Clause]) -> Option<ir::Model> {
        // One clause of each kind (penalties may repeat).
        let mut by_kind: HashMap<&'static str, &'a Clause> = HashMap::new();
        for cl in clauses {
            let kw = cl.keyword_name();
            if kw == "penalty" || kw == "latent" {
                continue;
            }
            if let ClauseKind::Encoder(Some(_), _) = cl.kind {
                continue;
            }
            if let Some(prev) = by_kind.get(kw) {
                let d = Diag::error(Code::DuplicateClause, format!("the model has two `{kw}` clauses"))
                    .label(cl.keyword, "second one here")
                    .label(prev.keyword, "first one here")
                    .help(if kw == "encoder" {
                        "keep one, or name the latent components and give each its own: `encoder what { ... }`"
                    } else {
                        "keep one of them"
                    });
                self.err(d);
            } else {
                by_kind.insert(kw, cl);
            }
        }
        let first_kw = clauses[0].keyword;
        let missing = |s: &mut Self, kw: &str, example: &str| {
            s.err(
                Diag::error(
                    Code::MissingClause,
                    format!("the model has no `{kw}` clause"),
                )
                .label(first_kw, format!("this model needs a `{kw}` clause"))
                .help(format!("add one, for example: {example}")),
            );
        };
        let data_cl = by_kind.get("data").copied();
        let latent_cl = clauses
            .iter()
            .find(|c| matches!(c.kind, ClauseKind::Latent { .. }));
        let enc_cl = clauses
            .iter()
            .find(|c| matches!(c.kind, ClauseKind::Encoder(..)));
        let gen_cl = by_kind.get("generator").copied();
        if data_cl.is_none() {
            missing(self, "data", "`data mnist()`");
        }
        if latent_cl.is_none() {
            missing(self, "latent", "`latent R^8 ~ normal()`");
        }
        if enc_cl.is_none() {
            missing(
                self,
                "encoder",
                "`encoder { flatten linear(256) relu linear(8) }`",
            );
        }
        if gen_cl.is_none() {
            missing(
                self,
                "generator",
                "`generator { linear(256) relu linear(784) sigmoid reshape(1, 28, 28) }`",
            );
        }
        if !clauses
            .iter()
            .any(|c| matches!(c.kind, ClauseKind::Penalty { .. }))
        {
            missing(
                self,
                "penalty",
                "`penalty 10 * sinkhorn(epsilon = 0.1, iterations = 50)`",
            );
        }

        let data = data_cl.and_then(|c| match &c.kind {
            ClauseKind::Data(call, transforms) => self.data(call, transforms).map(|d| (d, c.span)),
            _ => None,
        });
        let latents = self.latents(clauses);
        self.components = latents
            .iter()
            .flatten()
            .map(|(l, s)| (l.name.clone(), l.space, *s))
            .collect();
        let total_dim: Option<i64> = latents
            .as_ref()
            .map(|ls| ls.iter().map(|(l, _)| l.space.dim()).sum());
        let encoders = self.encoders(clauses, data.as_ref(), latents.as_ref());

        // Generator: latent coordinates -> data shape.
        let generator = gen_cl.and_then(|c| match &c.kind {
            ClauseKind::Generator(p) => {
                let input = total_dim.map(|d| vec![d]);
                self.role = Role::Generator;
                let mut flow = self.pipeline(p, input.clone());
                self.role = Role::Other;
                self.gaussian_placement(&mut flow, None, false);
                if let (Some(shape), Some((d, dspan))) = (&flow.shape, &data) {
                    if shape != &d.shape {
                        let at = flow.spans.last().copied().unwrap_or(p.span);
                        let n: i64 = d.shape.iter().product();
                        let help = if d.shape.len() == 3 && shape.len() == 1 && shape[0] == n {
                            format!(
                                "add `reshape({})` at the end",
                                d.shape
                                    .iter()
                                    .map(|x| x.to_string())
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            )
                        } else {
                            format!(
                                "the generator must produce one example of shape {}",
                                shape_str(&d.shape)
                            )
                        };
                        self.err(
                            Diag::error(
                                Code::OutputShape,
                                format!(
                                    "the generator outputs {} but the data have shape {}",
                                    shape_str(shape),
                                    shape_str(&d.shape)
                                ),
                            )
                            .label(
                                at,
                                format!("the generator ends here with {}", shape_str(shape)),
                            )
                            .label(*dspan, format!("the data are {}", shape_str(&d.shape)))
                            .help(help),
                        );
                    }
                }
                Some((flow, input, p.span))
            }
            _ => None,
        });

        let cost = self.cost(
            by_kind.get("cost").copied(),
            generator.as_ref().map(|(f, _, s)| (f, *s)),
            data.as_ref(),
        );
        let penalties = self.penalties(clauses, latents.as_ref(), encoders.as_ref());
        let train = self.train(by_kind.get("train").copied());
        let generator = generator.and_then(|(flow, input, _)| {
            Some(ir::Network {
                input: input?,
                output: flow.shape?,
                layers: flow.layers,
            })
        });
        let params = encoders
            .iter()
            .flatten()
            .map(|(e, _)| e.net.params())
            .chain(generator.iter().map(ir::Network::params))
            .map(u128::from)
            .sum();
        self.size_check(params, clauses[0].keyword);

        Some(ir::Model {
            name: name.to_string(),
            data: data?.0,
            latents: latents?.into_iter().map(|(l, _)| l).collect(),
            encoders: encoders?.into_iter().map(|(e, _)| e).collect(),
            generator: generator?,
            cost: cost?,
            penalties: penalties?,
            train: train?,
        })
    }

    fn size_check(&mut self, total: u128, at: Span) {
        if total > MAX_ELEMENTS as u128 {
            self.err(
                Diag::error(
                    Code::TooLarge,
                    format!(
                        "the model has {} parameters, more than this tool allows",
                        ir::thousands(total as u64)
                    ),
                )
                .label(at, "in this model")
                .help(format!(
                    "at most {} parameters fit; use smaller layers",
                    ir::thousands(MAX_ELEMENTS as u64)
                )),
            );
        }
    }

    // ---- clauses -------------------------------------------------------------------------------

    /// The `latent` clauses: one (named or not), or several named components.
    fn latents(&mut self, clauses: &'a [Clause]) -> Option<Vec<(ir::Latent, Span)>> {
        let cls: Vec<&Clause> = clauses
            .iter()
            .filter(|c| matches!(c.kind, ClauseKind::Latent { .. }))
            .collect();
        if cls.is_empty() {
            return None;
        }
        let mut ok = true;
        let mut out = vec![];
        let mut seen: HashMap<&str, Span> = HashMap::new();
        for c in &cls {
            let ClauseKind::Latent { name, space, prior } = &c.kind else {
                continue;
            };
            match name {
                None if cls.len() > 1 => {
                    self.err(
                        Diag::error(
                            Code::DuplicateClause,
                            "a composite latent space needs a name for every component",
                        )
                        .label(c.keyword, "this component has no name")
                        .help("name each component, e.g. `latent what: S^9 ~ uniform_sphere()` and `latent where: R^3 ~ normal()`"),
                    );
                    ok = false;
                    continue;
                }
                Some(n) => {
                    if let Some(prev) = seen.get(n.name.as_str()) {
                        self.err(
                            Diag::error(
                                Code::DuplicateDefinition,
                                format!("latent component `{}` is declared twice", n.name),
                            )
                            .label(n.span, "declared again here")
                            .label(*prev, "first declared here"),
                        );
                        ok = false;
                        continue;
                    }
                    seen.insert(&n.name, n.span);
                }
                None => {}
            }
            match self.latent(name.as_ref().map(|n| n.name.as_str()), space, prior) {
                Some(l) => out.push(l),
                None => ok = false,
            }
        }
        ok.then_some(out)
    }

    /// The encoder clauses: one for the whole code, or one per named component. Each ends on
    /// its space; a component encoder may `crop` at components encoded before it.
    fn encoders(
        &mut self,
        clauses: &'a [Clause],
        data: Option<&(ir::DataSpec, Span)>,
        latents: Option<&Vec<(ir::Latent, Span)>>,
    ) -> Option<Vec<(ir::Encoder, Span)>> {
        let cls: Vec<(&Clause, Option<&Ident>, &Pipeline)> = clauses
            .iter()
            .filter_map(|c| match &c.kind {
                ClauseKind::Encoder(n, p) => Some((c, n.as_ref(), p)),
                _ => None,
            })
            .collect();
        let named: Vec<&Ident> = cls.iter().filter_map(|(_, n, _)| *n).collect();
        if cls.is_empty() || (named.len() < cls.len() && cls.len() > 1) {
            if !named.is_empty() && named.len() < cls.len() {
                let whole = cls
                    .iter()
                    .find(|(_, n, _)| n.is_none())
                    .map(|(c, ..)| c.keyword);
                self.err(
                    Diag::error(
                        Code::DuplicateClause,
                        "an encoder of the whole code beside encoders of components",
                    )
                    .label(whole.unwrap_or(named[0].span), "encodes the whole code")
                    .label(named[0].span, "encodes one component")
                    .help("use one `encoder { ... }`, or one `encoder NAME { ... }` per component"),
                );
            }
            return None;
        }
        let input = data.map(|(d, _)| d.shape.clone());
        let mut ok = true;
        let mut done: Vec<String> = vec![];
        let mut out = vec![];
        for (c, name, p) in &cls {
            // The target: a component, or the whole code.
            let target: Option<(Space, Span, bool)> = match name {
                Some(n) => match self.components.iter().find(|(c, ..)| *c == n.name) {
                    Some((_, sp, s)) => Some((*sp, *s, true)),
                    None if latents.is_none() => None,
                    None => {
                        self.unknown_component(n, "not a component");
                        ok = false;
                        continue;
                    }
                },
                None => latents.map(|ls| match ls.as_slice() {
                    [(l, s)] => (l.space, *s, true),
                    _ => (
                        Space::Euclidean {
                            dim: ls.iter().map(|(l, _)| l.space.dim()).sum(),
                        },
                        ls[0].1,
                        false,
                    ),
                }),
            };
            if let Some(n) = name {
                if done.contains(&n.name) {
                    self.err(
                        Diag::error(
                            Code::DuplicateClause,
                            format!("component `{}` has two encoders", n.name),
                        )
                        .label(c.keyword, "second one here")
                        .help("keep one of them"),
                    );
                    ok = false;
                    continue;
                }
            }
            self.role = Role::Encoder(done.clone());
            let mut flow = self.pipeline(p, input.clone());
            self.role = Role::Other;
            self.gaussian_placement(&mut flow, target.map(|(sp, s, _)| (sp, s)), true);
            if let Some((space, lspan, single)) = target {
                if !single {
                    if let Some((l, s)) = latents
                        .into_iter()
                        .flatten()
                        .find(|(l, _)| !matches!(l.space, Space::Euclidean { .. }))
                    {
                        self.err(
                            Diag::error(
                                Code::EncoderSpace,
                                format!("one encoder cannot end on the component `{}` ({})", l.name, l.space),
                            )
                            .label(c.keyword, "this encoder computes the whole code")
                            .label(*s, "this component is not Euclidean")
                            .help(format!("give each component its own encoder, e.g. `encoder {} {{ ... normalize }}`", l.name)),
                        );
                        ok = false;
                        continue;
                    }
                }
                if flow.shape.is_some() {
                    self.project(&mut flow, space, lspan, p.span);
                    self.encoder_end(&flow, space.dim(), lspan, p.span);
                }
            }
            match (&input, &flow.shape) {
                (Some(i), Some(o)) => out.push((
                    ir::Encoder {
                        component: name.map(|n| n.name.clone()),
                        net: ir::Network {
                            input: i.clone(),
                            output: o.clone(),
                            layers: flow.layers,
                        },
                    },
                    p.span,
                )),
                _ => ok = false,
            }
            if let Some(n) = name {
                done.push(n.name.clone());
            }
        }
        if !named.is_empty() {
            for (comp, _, lspan) in self.components.clone() {
                if !done.contains(&comp) {
                    self.err(
                        Diag::error(
                            Code::MissingClause,
                            format!("latent component `{comp}` has no encoder"),
                        )
                        .label(lspan, "declared here")
                        .help(format!("add `encoder {comp} {{ ... }}`")),
                    );
                    ok = false;
                }
            }
        }
        ok.then_some(out)
    }

    /// A name that is not one of the latent components, with the known ones.
    fn unknown_component(&mut self, name: &Ident, label: &str) {
        let names: Vec<&str> = self.components.iter().map(|(c, ..)| c.as_str()).collect();
        let d = Diag::error(
            Code::UnknownComponent,
            format!("no latent component named `{}`", name.name),
        )
        .label(name.span, label)
        .help(unknown_help(&name.name, "components", &names));
        self.err(d);
    }

    /// The encoder must end with exactly `d` coordinates.
    fn encoder_end(&mut self, flow: &Flow, d: i64, lspan: Span, pspan: Span) {
        let Some(shape) = &flow.shape else {
            return;
        };
        if shape == &vec![d] {
            return;
        }
        let at = flow.spans.last().copied().unwrap_or(pspan);
        let help = if shape.len() == 1 {
            format!("end the encoder with `linear({d})`")
        } else {
            format!("flatten, then end the encoder with `linear({d})`")
        };
        self.err(
            Diag::error(
                Code::LatentShape,
                format!(
                    "the encoder outputs {} but the latent space has {d} coordinates",
                    shape_str(shape)
                ),
            )
            .label(
                at,
                format!("the encoder ends here with {}", shape_str(shape)),
            )
            .label(lspan, format!("{d} coordinates declared here"))
            .help(help),
        );
    }

    fn data(&mut self, call: &Call, transforms: &[Call]) -> Option<ir::DataSpec> {
        let spec = self.data_set(call);
        let mut out = vec![];
        let mut ok = true;
        for t in transforms {
            let Some(params) = self.lookup(t, TRANSFORMS, Code::UnknownDataset, "data transforms")
            else {
                ok = false;
                continue;
            };
            let Some(b) = self.bind(t, params, &Env::new()) else {
                ok = false;
                continue;
            };
            out.push((
                match name_of(t) {
                    "canvas" => ir::Transform::Canvas {
                        size: b.int(0),
                        shift: b.real(1),
                        zoom: b.real(2),
                    },
                    _ => ir::Transform::Salt { p: b.real(0) },
                },
                t.span,
            ));
        }
        let mut spec = spec?;
        for (t, span) in out {
            if !spec.is_image() {
                self.err(
                    Diag::error(Code::LayerInput, "image transforms need image data")
                        .label(span, "an image transform")
                        .label(
                            call.span,
                            format!("these data are points {}", shape_str(&spec.shape)),
                        )
                        .help("`canvas` and `salt` apply to MNIST-like image data"),
                );
                return None;
            }
            if let ir::Transform::Canvas { size, .. } = t {
                spec.shape = vec![spec.shape[0], size, size];
            }
            spec.transforms.push(t);
        }
        ok.then_some(spec)
    }

    fn data_set(&mut self, call: &Call) -> Option<ir::DataSpec> {
        let params = self.lookup(call, DATASETS, Code::UnknownDataset, "data sets")?;
        let b = self.bind(call, params, &Env::new())?;
        let n = name_of(call);
        let (source, shape, binarize) = match n {
            "mnist" | "fashion_mnist" => (
                DataSource::Idx {
                    dir: n.replace('_', "-"),
                    split: b.str(0),
                    limit: b.int(2) as usize,
                },
                vec![1, 28, 28],
                b.bool(1),
            ),
            "rings" => (
                DataSource::Rings {
                    n: b.int(0) as usize,
                    k: b.int(1) as usize,
                    noise: b.real(2),
                },
                vec![2],
                false,
            ),
            "gaussian_grid" => (
                DataSource::GaussianGrid {
                    n: b.int(0) as usize,
                    k: b.int(1) as usize,
                    std: b.real(2),
                },
                vec![2],
                false,
            ),
            _ => (
                DataSource::SwissRoll {
                    n: b.int(0) as usize,
                    noise: b.real(1),
                },
                vec![2],
                false,
            ),
        };
        Some(ir::DataSpec {
            source,
            shape,
            binarize,
            transforms: vec![],
        })
    }

    fn latent(
        &mut self,
        name: Option<&str>,
        space: &SpaceExpr,
        prior: &Call,
    ) -> Option<(ir::Latent, Span)> {
        let sp = self.space(space);
        let pname = name_of(prior);
        if self.priors.has(pname) {
            let sp = sp?;
            let (program, declared, dspan) = self.priors.instantiate(prior, &mut self.diags)?;
            if declared != sp {
                self.err(
                    Diag::error(
                        Code::PriorSpace,
                        format!("prior `{pname}` is declared on {declared}, but the latent space is {sp}"),
                    )
                    .label(prior.span, format!("samples lie on {declared}"))
                    .label(space.span(), "the latent space is declared here")
                    .label(dspan, "the prior's space"),
                );
                return None;
            }
            return Some((
                ir::Latent {
                    name: name.unwrap_or("z").to_string(),
                    space: sp,
                    prior: ir::Prior::Program(program),
                },
                space.span(),
            ));
        }
        if !PRIORS.iter().any(|(n, _)| *n == pname) && prior::is_primitive(pname) {
            let sp = sp?;
            let program = self
                .priors
                .primitive(prior, sp, space.span(), &mut self.diags)?;
            return Some((
                ir::Latent {
                    name: name.unwrap_or("z").to_string(),
                    space: sp,
                    prior: ir::Prior::Program(program),
                },
                space.span(),
            ));
        }
        let params = if PRIORS.iter().any(|(n, _)| *n == pname) {
            self.lookup(prior, PRIORS, Code::UnknownPrior, "priors")
        } else {
            let mut cands: Vec<String> = names(PRIORS).iter().map(|n| n.to_string()).collect();
            cands.extend(self.priors.names().iter().map(|n| n.to_string()));
            // Discrete draws make poor latent priors; they are not suggested.
            cands.extend(
                prior::primitive_names()
                    .filter(|n| !["categorical", "bernoulli"].contains(n))
                    .map(String::from),
            );
            cands.sort();
            cands.dedup();
            let cands: Vec<&str> = cands.iter().map(String::as_str).collect();
            let help = stdlib_hint("prior", pname)
                .unwrap_or_else(|| unknown_help(pname, "priors", &cands));
            self.err(
                Diag::error(Code::UnknownPrior, format!("unknown prior `{pname}`"))
                    .label(prior.name.span, "not a known prior")
                    .help(help),
            );
            None
        };
        let sp = sp?;
        let b = self.bind(prior, params?, &Env::new())?;
        let d = sp.dim();
        let (prior_ir, needs) = match pname {
            "normal" => (
                ir::Prior::Normal {
                    mean: b.real(0),
                    std: b.real(1),
                },
                "R",
            ),
            "uniform" => {
                if b.real(0) >= b.real(1) {
                    self.err(
                        Diag::error(Code::InvalidValue, "uniform needs low < high")
                            .label(b.spans[0], format!("low = {}", ir::num(b.real(0))))
                            .label(b.spans[1], format!("high = {}", ir::num(b.real(1))))
                            .help("swap the bounds"),
                    );
                    return None;
                }
                (
                    ir::Prior::Uniform {
                        low: b.real(0),
                        high: b.real(1),
                    },
                    "R",
                )
            }
            "uniform_sphere" => (ir::Prior::UniformSphere, "S"),
            _ => {
                let alpha = match &b.values[0] {
                    Value::List(items) => {
                        if items.len() as i64 != d {
                            self.err(
                                Diag::error(Code::InvalidValue, format!(
                                    "dirichlet has {} concentrations but the simplex has {d} vertices",
                                    items.len()
                                ))
                                .label(b.spans[0], format!("{} values", items.len()))
                                .label(space.span(), format!("{d} vertices"))
                                .help("give one alpha per vertex, or a single number for all"),
                            );
                            return None;
                        }
                        items.iter().filter_map(Value::as_f64).collect()
                    }
                    v => vec![v.as_f64().unwrap_or(1.0); d.max(0) as usize],
                };
                (ir::Prior::Dirichlet { alpha }, "simplex")
            }
        };
        let ok = matches!(
            (needs, sp),
            ("R", Space::Euclidean { .. })
                | ("S", Space::Sphere { .. })
                | ("simplex", Space::Simplex { .. })
        );
        if !ok {
            let (want, example) = match needs {
                "R" => (
                    "Euclidean space R^d",
                    format!("latent R^{d} ~ {pname}(...)"),
                ),
                "S" => (
                    "sphere S^k",
                    format!("latent S^{} ~ uniform_sphere()", d - 1),
                ),
                _ => (
                    "simplex",
                    format!("latent simplex({d}) ~ dirichlet(alpha = 0.2)"),
                ),
            };
            let fitting = match sp {
                Space::Euclidean { .. } => "`normal` or `uniform`",
                Space::Sphere { .. } => "`uniform_sphere`",
                Space::Simplex { .. } => "`dirichlet`",
            };
            self.err(
                Diag::error(
                    Code::PriorSpace,
                    format!("a `{pname}` prior lives on a {want}, not on {sp}"),
                )
                .label(prior.span, format!("samples of `{pname}` lie on a {want}"))
                .label(space.span(), "the latent space is declared here")
                .help(format!(
                    "write `{example}`, or use a prior of this space: {fitting}"
                )),
            );
            return None;
        }
        Some((
            ir::Latent {
                name: name.unwrap_or("z").to_string(),
                space: sp,
                prior: prior_ir,
            },
            space.span(),
        ))
    }

    fn space(&mut self, s: &SpaceExpr) -> Option<Space> {
        const SPACES: &[&str] = &["R", "S", "simplex"];
        let (base, arg, span) = match s {
            SpaceExpr::Pow {
                base,
                exponent,
                span,
            } => (base, Some(exponent), *span),
            SpaceExpr::Call(c) => (&c.name, c.args.first().map(|a| &a.value), c.span),
        };
        let known = match s {
            SpaceExpr::Pow { .. } => ["R", "S"].contains(&base.name.as_str()),
            SpaceExpr::Call(c) => {
                c.name.name == "simplex" && c.args.len() == 1 && c.args[0].name.is_none()
            }
        };
        if !known {
            let help = match base.name.as_str() {
                "sphere" | "hypersphere" => {
                    "the unit sphere in R^d is written `S^(d-1)`, e.g. `S^9` for codes in R^10"
                        .to_string()
                }
                "simplex" => "write `simplex(d)` with the number of vertices d".to_string(),
                "R" | "S" => format!("write `{}^d`", base.name),
                n => format!(
                    "{}; spaces are written `R^d`, `S^k` or `simplex(d)`",
                    unknown_help(n, "spaces", SPACES)
                ),
            };
            self.err(
                Diag::error(
                    Code::UnknownSpace,
                    format!("unknown latent space `{}`", base.name),
                )
                .label(span, "not a latent space")
                .help(help),
            );
            return None;
        }
        let arg = arg?;
        let v = self.eval(arg, &Env::new())?;
        let Value::Int(n) = v else {
            self.err(
                Diag::error(
                    Code::ArgType,
                    format!(
                        "a space dimension must be an integer, found {}",
                        v.type_name()
                    ),
                )
                .label(arg.span, "not an integer"),
            );
            return None;
        };
        let (space, min, what) = match base.name.as_str() {
            "R" => (Space::Euclidean { dim: n }, 1, "R^d needs d >= 1"),
            "S" => (
                Space::Sphere {
                    dim: n.saturating_add(1),
                },
                1,
                "S^k needs k >= 1 (S^1 is the circle)",
            ),
            _ => (
                Space::Simplex { dim: n },
                2,
                "a simplex needs at least 2 vertices",
            ),
        };
        if n < min || n as i128 > MAX_ELEMENTS {
            self.err(
                Diag::error(
                    Code::InvalidValue,
                    format!("invalid dimension {n} for `{}`", base.name),
                )
                .label(arg.span, "out of range")
                .help(what),
            );
            return None;
        }
        Some(space)
    }

    /// A Gaussian head may only end an encoder whose latent space is R^d.
    fn gaussian_placement(&mut self, flow: &mut Flow, space: Option<(Space, Span)>, encoder: bool) {
        let n = flow.layers.len();
        for i in 0..n {
            if !matches!(flow.layers[i].op, LayerOp::Gaussian { .. }) {
                continue;
            }
            let at = flow.spans[i];
            let (msg, help) = if !encoder {
                (
                    "a `gaussian` head belongs to the encoder, not the generator".to_string(),
                    "remove it from the generator; a stochastic encoder ends with `gaussian(d)`"
                        .to_string(),
                )
            } else if i + 1 != n {
                (
                    "`gaussian` must be the encoder's last layer".to_string(),
                    "its samples are the codes: move the layers after it before it".to_string(),
                )
            } else if let Some((sp @ (Space::Sphere { .. } | Space::Simplex { .. }), _)) = space {
                (format!("a Gaussian encoder samples in R^d, but the latent space is {sp}"), "use `latent R^d ~ normal()` for a Gaussian encoder, or a deterministic encoder here".to_string())
            } else {
                continue;
            };
            let mut d = Diag::error(Code::GaussianPlacement, msg)
                .label(at, "the Gaussian head")
                .help(help);
            if let (Some((_, lspan)), true) = (space, encoder && i + 1 == n) {
                d = d.label(lspan, "the latent space");
            }
            self.err(d);
            flow.shape = None;
        }
    }

    /// Makes the encoder end on the latent space: inserts the projection with a note, or rejects
    /// a projection onto a different space.
    fn project(&mut self, flow: &mut Flow, space: Space, lspan: Span, pspan: Span) {
        let (needed, wrong, name) = match space {
            Space::Sphere { .. } => (LayerOp::Normalize, LayerOp::Softmax, "normalize"),
            Space::Simplex { .. } => (LayerOp::Softmax, LayerOp::Normalize, "softmax"),
            Space::Euclidean { .. } => return,
        };
        let last = flow.layers.last().map(|l| l.op.clone());
        let at = flow.spans.last().copied().unwrap_or(pspan);
        if last.as_ref() == Some(&needed) {
            return;
        }
        if last.as_ref() == Some(&wrong) {
            self.err(
                Diag::error(
                    Code::EncoderSpace,
                    format!("the encoder ends in `{wrong}`, which does not map onto {space}"),
                )
                .label(at, format!("`{wrong}` here"))
                .label(lspan, "the latent space is declared here")
                .help(format!(
                    "end the encoder with `{name}` so that codes lie on {space}"
                )),
            );
            return;
        }
        if let Some(Shape { .. }) = flow.shape.as_ref().filter(|s| s.len() == 1) {
            self.diags.push(
                Diag::warning(
                    Code::ProjectionInserted,
                    format!("inserted `{name}` at the end of the encoder"),
                )
                .label(
                    at,
                    format!("codes leave this layer in R^d; `{name}` maps them onto {space}"),
                )
                .label(lspan, "the latent space")
                .help(format!(
                    "write `{name}` as the encoder's last layer to make this explicit"
                )),
            );
            let shape = flow.shape.clone().unwrap_or_default();
            flow.layers.push(ir::Layer {
                op: needed,
                input: shape.clone(),
                output: shape,
                params: 0,
                origin: vec![],
            });
            flow.spans.push(at);
        }
    }

    fn cost(
        &mut self,
        cl: Option<&Clause>,
        gen: Option<(&Flow, Span)>,
        data: Option<&(ir::DataSpec, Span)>,
    ) -> Option<ir::ReconCost> {
        let Some(cl) = cl else {
            return Some(ir::ReconCost::SquaredL2);
        };
        let ClauseKind::Cost(call) = &cl.kind else {
            return None;
        };
        let params = self.lookup(call, COSTS, Code::UnknownCost, "reconstruction costs")?;
        self.bind(call, params, &Env::new())?;
        let cost = match name_of(call) {
            "squared_l2" => ir::ReconCost::SquaredL2,
            "l1" => ir::ReconCost::L1,
            _ => ir::ReconCost::Bce,
        };
        if cost == ir::ReconCost::Bce {
            if let Some((d, dspan)) = data {
                if !d.is_image() {
                    self.err(
                        Diag::error(
                            Code::CostOutput,
                            "binary cross-entropy needs data in [0, 1]; these data are 2-D points",
                        )
                        .label(call.span, "bce here")
                        .label(*dspan, "points, not pixel intensities")
                        .help("use `cost squared_l2` for point data"),
                    );
                    return None;
                }
            }
            if let Some((flow, pspan)) = gen {
                if flow.shape.is_some()
                    && !flow.layers.iter().rev().any(|l| l.op == LayerOp::Sigmoid)
                {
                    let at = flow.spans.last().copied().unwrap_or(pspan);
                    self.err(
                        Diag::error(Code::CostOutput, "binary cross-entropy needs a generator that outputs probabilities")
                            .label(call.span, "bce compares probabilities")
                            .label(at, "the generator ends here without a sigmoid")
                            .help("add `sigmoid` to the generator (before any reshape), or use `cost squared_l2`"),
                    );
                    return None;
                }
            }
        }
        Some(cost)
    }

    fn penalties(
        &mut self,
        clauses: &[Clause],
        latents: Option<&Vec<(ir::Latent, Span)>>,
        encoders: Option<&Vec<(ir::Encoder, Span)>>,
    ) -> Option<Vec<ir::Penalty>> {
        let mut out = vec![];
        let mut ok = true;
        for cl in clauses {
            let ClauseKind::Penalty { weight, call, on } = &cl.kind else {
                continue;
            };
            let w = match weight {
                Some(e) => match self.eval(e, &Env::new()) {
                    Some(v) => match v.as_f64() {
                        Some(w) if w >= 0.0 && w.is_finite() => w,
                        Some(w) => {
                            self.err(
                                Diag::error(Code::InvalidValue, format!("penalty weight {} is negative", ir::num(w)))
                                    .label(e.span, "must be >= 0")
                                    .help("gamma trades reconstruction against matching the prior; it cannot be negative"),
                            );
                            ok = false;
                            continue;
                        }
                        None => {
                            self.err(
                                Diag::error(
                                    Code::ArgType,
                                    format!(
                                        "a penalty weight must be a number, found {}",
                                        v.type_name()
                                    ),
                                )
                                .label(e.span, "not a number"),
                            );
                            ok = false;
                            continue;
                        }
                    },
                    None => {
                        ok = false;
                        continue;
                    }
                },
                None => 1.0,
            };
            // The component it matches: named with `on`, or the only one.
            let all: Vec<&(ir::Latent, Span)> = latents.into_iter().flatten().collect();
            let latent: Option<&(ir::Latent, Span)> = match on {
                Some(on) => match all.iter().find(|(l, _)| l.name == on.name) {
                    Some(l) => Some(*l),
                    None if latents.is_none() => None,
                    None => {
                        self.unknown_component(on, "unknown component");
                        ok = false;
                        continue;
                    }
                },
                None if all.len() > 1 => {
                    let names: Vec<String> = all
                        .iter()
                        .map(|(l, _)| format!("`on {}`", l.name))
                        .collect();
                    self.err(
                        Diag::error(
                            Code::UnknownComponent,
                            "which latent component does this penalty match?",
                        )
                        .label(call.span, "no `on NAME`")
                        .help(format!(
                            "each component has its own penalty; add {}",
                            names.join(" or ")
                        )),
                    );
                    ok = false;
                    continue;
                }
                None => all.first().copied(),
            };
            let lat_name = latent
                .map(|(l, _)| l.name.clone())
                .unwrap_or_else(|| "z".into());
            // The encoder that computes this component.
            let encoder = encoders.and_then(|es| {
                es.iter()
                    .find(|(e, _)| e.component.as_deref() == Some(lat_name.as_str()))
                    .or_else(|| es.iter().find(|(e, _)| e.component.is_none()))
                    .map(|(e, s)| (e.net.clone(), *s))
            });
            let encoder = encoder.as_ref();
            match self.penalty_kind(call, latent, encoder) {
                Some(kind) => out.push(ir::Penalty {
                    weight: w,
                    kind,
                    on: lat_name,
                }),
                None => ok = false,
            }
        }
        ok.then_some(out)
    }

    /// One penalty call: its parameters, and whether it fits the latent space and encoder.
    fn penalty_kind(
        &mut self,
        call: &Call,
        latent: Option<&(ir::Latent, Span)>,
        encoder: Option<&(ir::Network, Span)>,
    ) -> Option<ir::PenaltyKind> {
        let space = latent.map(|(l, _)| l.space);
        let lspan = latent.map(|(_, s)| *s).unwrap_or(call.span);
        if name_of(call) == "gan" {
            return self.gan(call, space);
        }
        let params = self.lookup(call, PENALTIES, Code::UnknownPenalty, "penalties")?;
        let b = self.bind(call, params, &Env::new())?;
        let kind = match name_of(call) {
            "sinkhorn" => {
                let scaling = b.real(6);
                if !(scaling > 0.0 && scaling <= 1.0) {
                    self.err(
                        Diag::error(Code::InvalidValue, format!("`scaling` must be in (0, 1], found {}", ir::num(scaling)))
                            .label(b.spans[6], "out of range")
                            .help("epsilon is multiplied by `scaling` at each annealing stage; 1 turns scaling off"),
                    );
                    return None;
                }
                ir::PenaltyKind::Sinkhorn {
                    epsilon: b.real(0),
                    iterations: b.int(1),
                    cost: self.latent_cost(&b.str(3), b.real(2), space, b.spans[3], lspan)?,
                    debiased: b.bool(4),
                    envelope: b.str(5) == "envelope",
                    tolerance: b.real(7),
                    scaling,
                }
            }
            "mmd" => {
                let d = space.map_or(1, |s| s.dim()) as f64;
                let sigma = b.real(1);
                ir::PenaltyKind::Mmd {
                    imq: b.str(0) == "imq",
                    sigma,
                    scale: 2.0 * d * sigma * sigma,
                }
            }
            "sliced" => ir::PenaltyKind::Sliced {
                projections: b.int(0),
                p: b.real(1),
            },
            "exact" => ir::PenaltyKind::Exact {
                cost: self.latent_cost(&b.str(1), b.real(0), space, b.spans[1], lspan)?,
            },
            _ => {
                // KL needs a Gaussian encoder and a normal prior on R^d.
                let prior = latent.map(|(l, _)| l.prior.clone());
                let (mean, std) = match (space, prior) {
                    (Some(Space::Euclidean { .. }), Some(ir::Prior::Normal { mean, std })) => {
                        (mean, std)
                    }
                    (Some(sp), Some(pr)) => {
                        self.err(
                            Diag::error(Code::PenaltySpace, format!("the KL penalty needs a normal prior on R^d, not `{pr}` on {sp}"))
                                .label(call.span, "KL is computed in closed form between Gaussians")
                                .label(lspan, "the latent space and prior")
                                .help("use `latent R^d ~ normal()` with `kl()`, or a sample-based penalty (sinkhorn, mmd, sliced, exact, gan) for this prior"),
                        );
                        return None;
                    }
                    _ => return None,
                };
                if let Some((enc, espan)) = encoder {
                    if !matches!(
                        enc.layers.last().map(|l| &l.op),
                        Some(LayerOp::Gaussian { .. })
                    ) {
                        let d = space.map_or(8, |s| s.dim());
                        self.err(
                            Diag::error(Code::PenaltySpace, "the KL penalty needs a Gaussian encoder")
                                .label(call.span, "KL between the encoder's Gaussian and the prior")
                                .label(*espan, "this encoder is deterministic")
                                .help(format!("end the encoder with `gaussian({d})`: mean and log-variance heads, sampled with the reparameterisation")),
                        );
                        return None;
                    }
                }
                ir::PenaltyKind::Kl { mean, std }
            }
        };
        Some(kind)
    }

    /// The ground cost named by a penalty's `cost` argument ("auto" picks the space's metric).
    fn latent_cost(
        &mut self,
        name: &str,
        p: f64,
        space: Option<Space>,
        at: Span,
        lspan: Span,
    ) -> Option<ir::LatentCost> {
        let cost = match (name, space) {
            ("auto", Some(Space::Sphere { .. })) | ("geodesic", Some(Space::Sphere { .. })) => {
                ir::LatentCost::Geodesic { p }
            }
            ("auto" | "euclidean", _) => ir::LatentCost::Euclidean { p },
            ("fisher_rao", Some(Space::Simplex { .. })) => ir::LatentCost::FisherRao { p },
            (_, None) => return None,
            (other, Some(sp)) => {
                let fits = if other == "geodesic" {
                    "the sphere S^k"
                } else {
                    "the simplex"
                };
                self.err(
                    Diag::error(Code::PenaltySpace, format!("the `{other}` metric is defined on {fits}, not on {sp}"))
                        .label(at, "this metric")
                        .label(lspan, "the latent space")
                        .help("use `metric = \"euclidean\"`, or leave `metric` out to use the space's own metric"),
                );
                return None;
            }
        };
        Some(cost)
    }

    /// `gan(discriminator = NET(...), lr, beta1, beta2)`: the discriminator is a net applied to
    /// latent codes and must output one logit.
    fn gan(&mut self, call: &Call, space: Option<Space>) -> Option<ir::PenaltyKind> {
        let pos = call
            .args
            .iter()
            .position(|a| a.name.as_ref().is_some_and(|n| n.name == "discriminator"))
            .or_else(|| call.args.iter().position(|a| a.name.is_none()));
        let Some(pos) = pos else {
            self.err(
                Diag::error(Code::MissingArgument, "`gan` needs a discriminator")
                    .label(call.span, "`discriminator` missing")
                    .help("declare a net and pass it: `net critic(h = 256) { linear(h) relu linear(h) relu linear(1) }` and `gan(discriminator = critic())`"),
            );
            return None;
        };
        let arg = &call.args[pos];
        let mut rest = call.clone();
        rest.args.remove(pos);
        let b = self.bind(&rest, GAN_PARAMS, &Env::new());
        let ExprKind::Call(net_call) = &arg.value.kind else {
            self.err(
                Diag::error(
                    Code::ArgType,
                    "the discriminator must be a net, e.g. `critic()`",
                )
                .label(arg.value.span, "not a net")
                .help("declare it with `net critic(h = 256) { linear(h) relu linear(1) }`"),
            );
            return None;
        };
        let d = space?.dim();
        let pipe = Pipeline {
            layers: vec![net_call.clone()],
            span: net_call.span,
        };
        let flow = self.pipeline(&pipe, Some(vec![d]));
        let out = flow.shape.clone()?;
        if out != vec![1] {
            self.err(
                Diag::error(
                    Code::OutputShape,
                    format!(
                        "the discriminator outputs {} but must output one logit, [1]",
                        shape_str(&out)
                    ),
                )
                .label(net_call.span, format!("ends with {}", shape_str(&out)))
                .help("end the discriminator with `linear(1)`; its sigmoid is part of the loss"),
            );
            return None;
        }
        let b = b?;
        let discriminator = ir::Network {
            input: vec![d],
            output: out,
            layers: flow.layers,
        };
        Some(ir::PenaltyKind::Gan {
            discriminator,
            lr: b.real(0),
            beta1: b.real(1),
            beta2: b.real(2),
        })
    }

    fn train(&mut self, cl: Option<&Clause>) -> Option<ir::TrainConfig> {
        let mut t = ir::TrainConfig {
            optimizer: ir::Adam {
                lr: 1e-3,
                beta1: 0.9,
                beta2: 0.999,
            },
            batch: 128,
            epochs: 10,
            seed: 0,
        };
        let Some(cl) = cl else { return Some(t) };
        let ClauseKind::Train(settings) = &cl.kind else {
            return None;
        };
        let mut ok = true;
        let mut seen: HashMap<&str, Span> = HashMap::new();
        for (name, value) in settings {
            if let Some(prev) = seen.insert(name.name.as_str(), name.span) {
                self.err(
                    Diag::error(
                        Code::DuplicateArgument,
                        format!("`{}` is set twice", name.name),
                    )
                    .label(name.span, "set again here")
                    .label(prev, "first set here"),
                );
                ok = false;
                continue;
            }
            match name.name.as_str() {
                "optimizer" => {
                    let ExprKind::Call(call) = &value.kind else {
                        self.err(
                            Diag::error(
                                Code::ArgType,
                                "the optimizer is written as a call, e.g. `adam(lr = 1e-3)`",
                            )
                            .label(value.span, "not an optimizer"),
                        );
                        ok = false;
                        continue;
                    };
                    match self
                        .lookup(call, OPTIMIZERS, Code::UnknownOptimizer, "optimizers")
                        .and_then(|ps| self.bind(call, ps, &Env::new()))
                    {
                        Some(b) => {
                            t.optimizer = ir::Adam {
                                lr: b.real(0),
                                beta1: b.real(1),
                                beta2: b.real(2),
                            }
                        }
                        None => ok = false,
                    }
                }
                s @ ("batch" | "epochs" | "seed") => {
                    let range = if s == "seed" { NonNegative } else { Positive };
                    let sname: &'static str = match s {
                        "batch" => "batch",
                        "epochs" => "epochs",
                        _ => "seed",
                    };
                    let spec = p(
                        sname,
                        Ty::Int,
                        REQ,
                        range,
                        if s == "seed" {
                            "seeds are non-negative integers"
                        } else {
                            SIZE
                        },
                    );
                    match self
                        .eval(value, &Env::new())
                        .and_then(|v| self.typed(v, &spec, value.span, s))
                    {
                        Some(Value::Int(v)) => match s {
                            "batch" => t.batch = v,
                            "epochs" => t.epochs = v,
                            _ => t.seed = v,
                        },
                        _ => ok = false,
                    }
                }
                other => {
                    self.err(
                        Diag::error(
                            Code::UnknownSetting,
                            format!("unknown training setting `{other}`"),
                        )
                        .label(name.span, "not a setting")
                        .help(unknown_help(other, "settings", SETTINGS)),
                    );
                    ok = false;
                }
            }
        }
        if t.batch < 2 && ok {
            let span = seen.get("batch").copied().unwrap_or(cl.keyword);
            self.err(
                Diag::error(Code::InvalidValue, "a batch needs at least 2 examples")
                    .label(span, "too small")
                    .help("the latent penalty compares a batch of codes with a batch of prior samples"),
            );
            ok = false;
        }
        ok.then_some(t)
    }

    // ---- pipelines -----------------------------------------------------------------------------

    fn pipeline(&mut self, p: &Pipeline, input: Option<Shape>) -> Flow {
        let mut flow = Flow {
            shape: input,
            layers: vec![],
            spans: vec![],
            origin: vec![],
            stack: vec![],
        };
        self.expand(p, &Env::new(), &mut flow, None);
        if p.layers.is_empty() {
            self.err(
                Diag::error(Code::MissingClause, "this pipeline has no layers")
                    .label(p.span, "empty")
                    .help("write at least one layer, e.g. `linear(8)`"),
            );
            flow.shape = None;
        }
        flow
    }

    /// Expands a pipeline into layers, following nets; `site` is the outermost call's span.
    fn expand(&mut self, p: &Pipeline, env: &Env, flow: &mut Flow, site: Option<Span>) {
        for call in &p.layers {
            let at = site.unwrap_or(call.span);
            let name = name_of(call);
            if LAYERS.iter().any(|(n, _)| *n == name) {
                self.layer(call, env, flow, at);
                continue;
            }
            let Some(net) = self.nets.get(name).copied() else {
                let mut cands = names(LAYERS);
                let nets: Vec<String> = self.nets.keys().cloned().collect();
                cands.extend(nets.iter().map(String::as_str));
                cands.sort();
                let help = stdlib_hint("net", name)
                    .unwrap_or_else(|| unknown_help(name, "layers and nets", &cands));
                self.err(
                    Diag::error(Code::UnknownLayer, format!("unknown layer or net `{name}`"))
                        .label(call.name.span, "not a layer")
                        .help(help),
                );
                flow.shape = None;
                continue;
            };
            if flow.stack.iter().any(|n| n == name) {
                self.err(
                    Diag::error(Code::RecursiveNet, format!("net `{name}` uses itself"))
                        .label(call.span, "recursive use")
                        .help(format!("a net expands into layers, so it cannot contain itself; chain: {} -> {name}", flow.stack.join(" -> "))),
                );
                flow.shape = None;
                continue;
            }
            let Some(inner_env) = self.bind_net(call, net, env) else {
                flow.shape = None;
                continue;
            };
            flow.stack.push(name.to_string());
            flow.origin.push(name.to_string());
            self.expand(&net.body, &inner_env, flow, Some(at));
            flow.origin.pop();
            flow.stack.pop();
        }
    }

    fn bind_net(&mut self, call: &Call, net: &NetDef, env: &Env) -> Option<Env> {
        let names: Vec<&str> = net.params.iter().map(|p| p.name.name.as_str()).collect();
        let required: Vec<bool> = net.params.iter().map(|p| p.default.is_none()).collect();
        let sig = format!(
            "{}({})",
            net.name.name,
            net.params
                .iter()
                .map(|p| if p.default.is_some() {
                    format!("{} = ...", p.name.name)
                } else {
                    p.name.name.clone()
                })
                .collect::<Vec<_>>()
                .join(", ")
        );
        let slots = self.match_args(call, &names, &required, &sig, "net")?;
        let mut out = Env::new();
        let mut ok = true;
        for (i, slot) in slots.iter().enumerate() {
            let v = match slot {
                Some(arg) => self.eval(&arg.value, env),
                None => net.params[i]
                    .default
                    .as_ref()
                    .and_then(|e| self.eval(e, &out)),
            };
            match v {
                Some(v) => {
                    out.insert(names[i].to_string(), v);
                }
                None => ok = false,
            }
        }
        ok.then_some(out)
    }

    /// `select(c)`, `place(c, size)` (generator) and `crop(c, size)` (encoder): layers that read
    /// the latent component `c`.
    fn component_layer(&mut self, call: &Call, env: &Env, flow: &mut Flow, at: Span) {
        let name = name_of(call);
        let usage = match name {
            "select" => "select(COMPONENT)",
            "place" => "place(COMPONENT, size = 64, shift = 0.3, zoom = 0.2)",
            _ => "crop(COMPONENT, size = 28, shift = 0.3, zoom = 0.2)",
        };
        let comp = match call.args.first() {
            Some(Arg {
                name: None,
                value:
                    Expr {
                        kind: ExprKind::Call(c),
                        ..
                    },
                ..
            }) if !c.parens => c.name.clone(),
            _ => {
                self.err(
                    Diag::error(
                        Code::MissingArgument,
                        format!("`{name}` needs a latent component first"),
                    )
                    .label(call.span, "no component named")
                    .help(format!("write `{usage}`")),
                );
                flow.shape = None;
                return;
            }
        };
        let rest = Call {
            args: call.args[1..].to_vec(),
            ..call.clone()
        };
        let params = if name == "select" { &[][..] } else { PLACEMENT };
        let Some(b) = self.bind(&rest, params, env) else {
            flow.shape = None;
            return;
        };
        if self.role == Role::Library {
            flow.shape = None;
            return;
        }
        let index = self.components.iter().position(|(n, ..)| *n == comp.name);
        let Some(index) = index else {
            self.unknown_component(&comp, "not a component");
            flow.shape = None;
            return;
        };
        let (cname, space, lspan) = self.components[index].clone();
        let offset: i64 = self.components[..index]
            .iter()
            .map(|(_, s, _)| s.dim())
            .sum();
        let wrong_place = match (&self.role, name) {
            (Role::Generator, "select" | "place") => None,
            (Role::Encoder(done), "crop") if done.contains(&cname) => None,
            (Role::Encoder(_), "crop") => Some(format!(
                "`crop({cname})` needs `{cname}` encoded first: put `encoder {cname} {{ ... }}` before this encoder"
            )),
            (_, "crop") => Some("`crop` cuts a window out of the data in an encoder".to_string()),
            _ => Some(format!("`{name}` reads the code, so it belongs in the generator")),
        };
        if let Some(help) = wrong_place {
            self.err(
                Diag::error(
                    Code::LayerInput,
                    format!("`{name}({cname})` cannot be used here"),
                )
                .label(at, "here")
                .help(help),
            );
            flow.shape = None;
            return;
        }
        if name != "select" && space.dim() != 3 {
            self.err(
                Diag::error(
                    Code::LatentShape,
                    format!("`{name}` needs a component of 3 coordinates (x, y, log-scale); `{cname}` has {}", space.dim()),
                )
                .label(comp.span, "not a position")
                .label(lspan, format!("{space}")),
            );
            flow.shape = None;
            return;
        }
        let Some(input) = flow.shape.clone() else {
            return;
        };
        let (op, output) = match name {
            "select" => (
                LayerOp::Select {
                    component: cname,
                    offset,
                    len: space.dim(),
                },
                vec![space.dim()],
            ),
            _ => {
                if input.len() != 3 {
                    self.err(
                        Diag::error(
                            Code::LayerInput,
                            format!(
                                "`{name}` needs an image [channels, height, width], but gets {}",
                                shape_str(&input)
                            ),
                        )
                        .label(at, format!("input {}", shape_str(&input)))
                        .help("reshape to an image before it"),
                    );
                    flow.shape = None;
                    return;
                }
                let size = b.int(0);
                let op = if name == "place" {
                    LayerOp::Place {
                        component: cname,
                        offset,
                        size,
                        shift: b.real(1),
                        zoom: b.real(2),
                    }
                } else {
                    LayerOp::Crop {
                        component: cname,
                        index,
                        size,
                        shift: b.real(1),
                        zoom: b.real(2),
                    }
                };
                (op, vec![input[0], size, size])
            }
        };
        flow.layers.push(ir::Layer {
            op,
            input,
            output: output.clone(),
            params: 0,
            origin: flow.origin.clone(),
        });
        flow.spans.push(at);
        flow.shape = Some(output);
    }

    fn layer(&mut self, call: &Call, env: &Env, flow: &mut Flow, at: Span) {
        let name = name_of(call);
        if matches!(name, "select" | "place" | "crop") {
            self.component_layer(call, env, flow, at);
            return;
        }
        let op = if name == "reshape" || name == "unflatten" {
            let mut dims = vec![];
            for a in &call.args {
                if let Some(n) = &a.name {
                    self.err(
                        Diag::error(
                            Code::UnknownParameter,
                            format!("`{name}` takes sizes only, not `{}`", n.name),
                        )
                        .label(n.span, "named argument")
                        .help(format!("write the sizes in order, e.g. `{name}(64, 7, 7)`")),
                    );
                    flow.shape = None;
                    return;
                }
                let spec = p("size", Ty::Int, REQ, Positive, SIZE);
                match self
                    .eval(&a.value, env)
                    .and_then(|v| self.typed(v, &spec, a.value.span, name))
                {
                    Some(Value::Int(d)) => dims.push(d),
                    _ => {
                        flow.shape = None;
                        return;
                    }
                }
            }
            if dims.is_empty() {
                self.err(
                    Diag::error(
                        Code::MissingArgument,
                        format!("`{name}` needs the target sizes"),
                    )
                    .label(call.span, "no sizes")
                    .help(format!("e.g. `{name}(64, 7, 7)`")),
                );
                flow.shape = None;
                return;
            }
            LayerOp::Reshape { shape: dims }
        } else {
            let params = LAYERS
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, p)| *p)
                .unwrap_or(&[]);
            let Some(b) = self.bind(call, params, env) else {
                flow.shape = None;
                return;
            };
            let op = match name {
                "linear" => LayerOp::Linear {
                    input: 0,
                    output: b.int(0),
                    bias: b.bool(1),
                },
                "conv2d" => LayerOp::Conv2d {
                    input: 0,
                    output: b.int(0),
                    kernel: b.int(1),
                    stride: b.int(2),
                    padding: b.int(3),
                    bias: b.bool(4),
                },
                "conv_transpose2d" => LayerOp::ConvTranspose2d {
                    input: 0,
                    output: b.int(0),
                    kernel: b.int(1),
                    stride: b.int(2),
                    padding: b.int(3),
                    output_padding: b.int(4),
                    bias: b.bool(5),
                },
                "batch_norm" => LayerOp::BatchNorm { features: 0 },
                "relu" => LayerOp::Relu,
                "leaky_relu" => LayerOp::LeakyRelu { slope: b.real(0) },
                "tanh" => LayerOp::Tanh,
                "sigmoid" => LayerOp::Sigmoid,
                "softmax" => LayerOp::Softmax,
                "flatten" => LayerOp::Flatten,
                "gaussian" => LayerOp::Gaussian {
                    input: 0,
                    output: b.int(0),
                },
                _ => LayerOp::Normalize,
            };
            op
        };
        let Some(input) = flow.shape.clone() else {
            return;
        };
        match infer(op, &input) {
            Ok((op, output, params)) => {
                flow.layers.push(ir::Layer {
                    op,
                    input,
                    output: output.clone(),
                    params,
                    origin: flow.origin.clone(),
                });
                flow.spans.push(at);
                flow.shape = Some(output);
            }
            Err((msg, help, code)) => {
                let msg = match flow.origin.last() {
                    Some(net) => format!("{msg} (in net `{net}`)"),
                    None => msg,
                };
                let mut d =
                    Diag::error(code, msg).label(at, format!("input {}", shape_str(&input)));
                if at != call.span && at.file == call.span.file {
                    d = d.label(call.span, "this layer of the net");
                }
                self.err(d.help(help));
                flow.shape = None;
            }
        }
    }

    // ---- arguments -----------------------------------------------------------------------------

    fn lookup(
        &mut self,
        call: &Call,
        table: &[(&'static str, &'static [P])],
        code: Code,
        what: &str,
    ) -> Option<&'static [P]> {
        let name = name_of(call);
        if let Some((_, ps)) = table.iter().find(|(n, _)| *n == name) {
            return Some(ps);
        }
        let cands = names(table);
        let singular = match what {
            "penalties" => "penalty",
            w => w.strip_suffix('s').unwrap_or(w),
        };
        self.err(
            Diag::error(code, format!("unknown {singular} `{name}`"))
                .label(call.name.span, format!("not a known {singular}"))
                .help(unknown_help(name, what, &cands)),
        );
        None
    }

    /// Matches a call's arguments to parameter slots: count, names, duplicates, required ones.
    fn match_args<'c>(
        &mut self,
        call: &'c Call,
        names: &[&str],
        required: &[bool],
        sig: &str,
        kind: &str,
    ) -> Option<Vec<Option<&'c Arg>>> {
        let mut slots: Vec<Option<&Arg>> = vec![None; names.len()];
        let mut ok = true;
        let fname = name_of(call);
        let mut positional = 0usize;
        for a in &call.args {
            let idx = match &a.name {
                None => {
                    let i = positional;
                    positional += 1;
                    if i >= names.len() {
                        self.err(
                            Diag::error(
                                Code::ArgCount,
                                format!(
                                    "`{fname}` takes {} argument{}, got {}",
                                    if names.is_empty() {
                                        "no".to_string()
                                    } else {
                                        format!("at most {}", names.len())
                                    },
                                    if names.len() == 1 { "" } else { "s" },
                                    call.args.len()
                                ),
                            )
                            .label(a.span, "extra argument")
                            .help(format!("the {kind} is `{sig}`")),
                        );
                        ok = false;
                        continue;
                    }
                    i
                }
                Some(n) => match names.iter().position(|x| *x == n.name) {
                    Some(i) => i,
                    None => {
                        self.err(
                            Diag::error(
                                Code::UnknownParameter,
                                format!("`{fname}` has no parameter `{}`", n.name),
                            )
                            .label(n.span, "unknown parameter")
                            .help(format!(
                                "{}; the {kind} is `{sig}`",
                                unknown_help(&n.name, "parameters", names)
                            )),
                        );
                        ok = false;
                        continue;
                    }
                },
            };
            if let Some(prev) = slots[idx] {
                self.err(
                    Diag::error(
                        Code::DuplicateArgument,
                        format!("`{}` is given twice", names[idx]),
                    )
                    .label(a.span, "given again here")
                    .label(prev.span, "first given here")
                    .help(format!("the {kind} is `{sig}`")),
                );
                ok = false;
                continue;
            }
            slots[idx] = Some(a);
        }
        for (i, s) in slots.iter().enumerate() {
            if s.is_none() && required[i] {
                self.err(
                    Diag::error(
                        Code::MissingArgument,
                        format!("`{fname}` needs `{}`", names[i]),
                    )
                    .label(call.span, format!("`{}` missing", names[i]))
                    .help(format!("the {kind} is `{sig}`")),
                );
                ok = false;
            }
        }
        ok.then_some(slots)
    }

    /// Binds a call to a built-in's parameters, evaluating and validating every value.
    fn bind(&mut self, call: &Call, params: &[P], env: &Env) -> Option<Bound> {
        let names: Vec<&str> = params.iter().map(|p| p.name).collect();
        let required: Vec<bool> = params.iter().map(|p| matches!(p.default, REQ)).collect();
        let sig = signature(name_of(call), params);
        let slots = self.match_args(call, &names, &required, &sig, "signature")?;
        let mut values = vec![];
        let mut spans = vec![];
        let mut ok = true;
        for (i, spec) in params.iter().enumerate() {
            let (v, span) = match slots[i] {
                Some(arg) => match self
                    .eval(&arg.value, env)
                    .and_then(|v| self.typed(v, spec, arg.value.span, name_of(call)))
                {
                    Some(v) => (v, arg.value.span),
                    None => {
                        ok = false;
                        continue;
                    }
                },
                None => (
                    match spec.default {
                        I(i) => Value::Int(i),
                        R(r) => Value::Real(r),
                        B(b) => Value::Bool(b),
                        S(s) => Value::Str(s.into()),
                        REQ => Value::Int(0),
                    },
                    call.span,
                ),
            };
            values.push(v);
            spans.push(span);
        }
        ok.then_some(Bound { values, spans })
    }

    /// Checks a value's type and range against a parameter.
    fn typed(&mut self, v: Value, spec: &P, span: Span, owner: &str) -> Option<Value> {
        let v = match (spec.ty, v) {
            (Ty::Int, Value::Int(i)) => Value::Int(i),
            (Ty::Int, Value::Real(r)) if r.is_finite() && r == r.trunc() && r.abs() < 9e15 => {
                Value::Int(r as i64)
            }
            (Ty::Int, Value::Real(r)) if r.is_infinite() || r.abs() >= 9e15 => {
                self.err(
                    Diag::error(
                        Code::TooLarge,
                        format!("`{}` of `{owner}` is too large", spec.name),
                    )
                    .label(span, "far beyond what fits in memory")
                    .help(format!(
                        "sizes above {} elements are rejected before anything is allocated",
                        ir::thousands(MAX_ELEMENTS as u64)
                    )),
                );
                return None;
            }
            (Ty::Real | Ty::Reals, Value::Int(i)) => Value::Real(i as f64),
            (Ty::Real | Ty::Reals, Value::Real(r)) => Value::Real(r),
            (Ty::Reals, Value::List(items)) if items.iter().all(|x| x.as_f64().is_some()) => {
                let inner = P {
                    ty: Ty::Real,
                    ..*spec
                };
                let mut out = vec![];
                for x in items {
                    out.push(self.typed(x, &inner, span, owner)?);
                }
                return Some(Value::List(out));
            }
            (Ty::Bool, Value::Bool(b)) => Value::Bool(b),
            (Ty::Str, Value::Str(s)) => Value::Str(s),
            (ty, v) => {
                let want = match ty {
                    Ty::Int => "an integer",
                    Ty::Real => "a number",
                    Ty::Bool => "`true` or `false`",
                    Ty::Str => "a string in quotes",
                    Ty::Reals => "a number or a list of numbers",
                };
                let help = match (&v, ty) {
                    (Value::Real(_), Ty::Int) => "sizes and counts are whole numbers".to_string(),
                    (_, Ty::Str) => format!(
                        "write it in quotes, e.g. `{} = \"{}\"`",
                        spec.name,
                        match spec.range {
                            OneOf(opts) => opts[0],
                            _ => "...",
                        }
                    ),
                    _ => format!("`{}` of `{owner}` is {want}", spec.name),
                };
                self.err(
                    Diag::error(
                        Code::ArgType,
                        format!(
                            "`{}` of `{owner}` must be {want}, found {}",
                            spec.name,
                            v.type_name()
                        ),
                    )
                    .label(span, format!("{} here", v.type_name()))
                    .help(help),
                );
                return None;
            }
        };
        let bad = match (&spec.range, &v) {
            (Positive, v) => v.as_f64().is_some_and(|x| !(x > 0.0)),
            (NonNegative, v) => v.as_f64().is_some_and(|x| !(x >= 0.0)),
            (AtLeast(m), v) => v.as_f64().is_some_and(|x| !(x >= *m)),
            (Fraction, v) => v.as_f64().is_some_and(|x| !(0.0..1.0).contains(&x)),
            (OneOf(opts), Value::Str(s)) => !opts.contains(&s.as_str()),
            _ => false,
        };
        if bad {
            let shown = match &v {
                Value::Int(i) => i.to_string(),
                Value::Real(r) => ir::num(*r),
                Value::Str(s) => format!("\"{s}\""),
                _ => String::new(),
            };
            let need = match spec.range {
                Positive => "> 0".to_string(),
                NonNegative => ">= 0".to_string(),
                AtLeast(m) => format!(">= {}", ir::num(m)),
                Fraction => "in [0, 1)".to_string(),
                OneOf(opts) => format!(
                    "one of {}",
                    opts.iter()
                        .map(|o| format!("\"{o}\""))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                Range::Any => String::new(),
            };
            self.err(
                Diag::error(
                    Code::InvalidValue,
                    format!("`{}` of `{owner}` must be {need}, found {shown}", spec.name),
                )
                .label(span, format!("must be {need}"))
                .help(spec.why),
            );
            return None;
        }
        Some(v)
    }

    fn eval(&mut self, e: &Expr, env: &Env) -> Option<Value> {
        match &e.kind {
            ExprKind::Int(i) => Some(Value::Int(*i)),
            ExprKind::Real(r) => Some(Value::Real(*r)),
            ExprKind::Str(s) => Some(Value::Str(s.clone())),
            ExprKind::Bool(b) => Some(Value::Bool(*b)),
            ExprKind::List(items) => {
                let mut out = vec![];
                for x in items {
                    out.push(self.eval(x, env)?);
                }
                Some(Value::List(out))
            }
            ExprKind::Call(c) => {
                if !c.parens {
                    if let Some(v) = env.get(&c.name.name) {
                        return Some(v.clone());
                    }
                    let mut known: Vec<&str> = env.keys().map(String::as_str).collect();
                    known.sort();
                    let help = if known.is_empty() {
                        "only a net's parameters can be used as names here; write a number, or a string in quotes".to_string()
                    } else {
                        unknown_help(&c.name.name, "names here", &known)
                    };
                    self.err(
                        Diag::error(Code::UnknownName, format!("unknown name `{}`", c.name.name))
                            .label(c.name.span, "not defined here")
                            .help(help),
                    );
                } else {
                    self.err(
                        Diag::error(
                            Code::ArgType,
                            format!("`{}(...)` is not a value", c.name.name),
                        )
                        .label(c.span, "a call where a value is expected")
                        .help("write a number, a string, `true`/`false` or a list"),
                    );
                }
                None
            }
            ExprKind::Index(list, i) => {
                let l = self.eval(list, env)?;
                let k = self.eval(i, env)?;
                match (l, k) {
                    (Value::List(items), Value::Int(k)) if k >= 0 && (k as usize) < items.len() => {
                        Some(items[k as usize].clone())
                    }
                    (Value::List(items), Value::Int(k)) => {
                        self.err(
                            Diag::error(
                                Code::InvalidValue,
                                format!("index {k} is out of range 0..{}", items.len()),
                            )
                            .label(i.span, "out of range"),
                        );
                        None
                    }
                    (l, k) => {
                        self.err(
                            Diag::error(
                                Code::ArgType,
                                format!("cannot index {} with {}", l.type_name(), k.type_name()),
                            )
                            .label(e.span, "here")
                            .help("index a list with an integer: `sizes[0]`"),
                        );
                        None
                    }
                }
            }
            ExprKind::Neg(x) => match self.eval(x, env)? {
                Value::Int(i) => Some(
                    i.checked_neg()
                        .map(Value::Int)
                        .unwrap_or(Value::Real(-(i as f64))),
                ),
                Value::Real(r) => Some(Value::Real(-r)),
                v => self.not_numeric(&v, x.span),
            },
            ExprKind::Binary(op, a, b) => {
                let va = self.eval(a, env)?;
                let vb = self.eval(b, env)?;
                let (Some(x), Some(y)) = (va.as_f64(), vb.as_f64()) else {
                    let (v, s) = if va.as_f64().is_none() {
                        (&va, a.span)
                    } else {
                        (&vb, b.span)
                    };
                    return self.not_numeric(&v.clone(), s);
                };
                if let (Value::Int(i), Value::Int(j)) = (&va, &vb) {
                    let exact = match op {
                        BinOp::Add => i.checked_add(*j),
                        BinOp::Sub => i.checked_sub(*j),
                        BinOp::Mul => i.checked_mul(*j),
                        BinOp::Div => (*j != 0 && i % j == 0).then(|| i / j),
                        BinOp::Pow => u32::try_from(*j).ok().and_then(|j| i.checked_pow(j)),
                    };
                    if let Some(r) = exact {
                        return Some(Value::Int(r));
                    }
                }
                if *op == BinOp::Div && y == 0.0 {
                    self.err(
                        Diag::error(Code::InvalidValue, "division by zero")
                            .label(b.span, "zero")
                            .help("divide by a non-zero number"),
                    );
                    return None;
                }
                Some(Value::Real(match op {
                    BinOp::Add => x + y,
                    BinOp::Sub => x - y,
                    BinOp::Mul => x * y,
                    BinOp::Div => x / y,
                    BinOp::Pow => x.powf(y),
                }))
            }
        }
    }

    fn not_numeric(&mut self, v: &Value, span: Span) -> Option<Value> {
        self.err(
            Diag::error(
                Code::ArgType,
                format!("arithmetic needs numbers, found {}", v.type_name()),
            )
            .label(span, "not a number"),
        );
        None
    }
}

/// "`NAME` is defined in the standard library: ..." when a stdlib file defines `KIND NAME(`.
fn stdlib_hint(kind: &str, name: &str) -> Option<String> {
    crate::load::STDLIB
        .iter()
        .find(|(_, text)| text.contains(&format!("{kind} {name}(")))
        .map(|(file, _)| {
            format!("`{name}` is defined in the standard library: add `import \"std/{file}\"`")
        })
}

fn name_of(c: &Call) -> &str {
    c.name.name.as_str()
}

/// Shape inference for one layer: the resolved op, its output shape and its parameter count.
fn infer(op: LayerOp, input: &Shape) -> Result<(LayerOp, Shape, u64), (String, String, Code)> {
    let s = shape_str(input);
    let flat_needed = |name: &str| {
        (
            format!("`{name}` needs a flat input, but gets {s}"),
            format!("insert `flatten` before `{name}`"),
            Code::LayerInput,
        )
    };
    let image_needed = |name: &str| {
        (
            format!("`{name}` needs an input of shape [channels, height, width], but gets {s}"),
            "insert `reshape(C, H, W)` before it".to_string(),
            Code::LayerInput,
        )
    };
    let too_large = |what: &str| {
        (
            format!("this layer would need {what}, more than this tool allows"),
            format!(
                "tensors and parameter counts above {} elements are rejected before allocation",
                ir::thousands(MAX_ELEMENTS as u64)
            ),
            Code::TooLarge,
        )
    };
    let numel = |s: &[i64]| s.iter().map(|&d| d as i128).product::<i128>();
    let out = match op {
        LayerOp::Linear { output, bias, .. } => {
            if input.len() != 1 {
                return Err(flat_needed("linear"));
            }
            let n = input[0];
            let params = (n as i128) * (output as i128) + if bias { output as i128 } else { 0 };
            if params > MAX_ELEMENTS || output as i128 > MAX_ELEMENTS {
                return Err(too_large(&format!("{params} parameters")));
            }
            (
                LayerOp::Linear {
                    input: n,
                    output,
                    bias,
                },
                vec![output],
                params as u64,
            )
        }
        LayerOp::Conv2d {
            output,
            kernel,
            stride,
            padding,
            bias,
            ..
        } => {
            if input.len() != 3 {
                return Err(image_needed("conv2d"));
            }
            let (c, h, w) = (input[0], input[1], input[2]);
            let oh = (h + 2 * padding - kernel).div_euclid(stride) + 1;
            let ow = (w + 2 * padding - kernel).div_euclid(stride) + 1;
            if h + 2 * padding < kernel || w + 2 * padding < kernel || oh < 1 || ow < 1 {
                return Err((
                    format!("`conv2d` with kernel {kernel} does not fit an input of {h}x{w} pixels (padding {padding})"),
                    "use a smaller kernel, more padding, or fewer down-sampling layers before it".into(),
                    Code::LayerInput,
                ));
            }
            let params = (output as i128) * (c as i128) * (kernel as i128).pow(2)
                + if bias { output as i128 } else { 0 };
            let out = vec![output, oh, ow];
            if params > MAX_ELEMENTS || numel(&out) > MAX_ELEMENTS {
                return Err(too_large("that many elements"));
            }
            (
                LayerOp::Conv2d {
                    input: c,
                    output,
                    kernel,
                    stride,
                    padding,
                    bias,
                },
                out,
                params as u64,
            )
        }
        LayerOp::ConvTranspose2d {
            output,
            kernel,
            stride,
            padding,
            output_padding,
            bias,
            ..
        } => {
            if input.len() != 3 {
                return Err(image_needed("conv_transpose2d"));
            }
            if output_padding >= stride {
                return Err((
                    format!("`output_padding` {output_padding} must be smaller than the stride {stride}"),
                    "output_padding only resolves the ambiguity of a strided transposed convolution".into(),
                    Code::InvalidValue,
                ));
            }
            let (c, h, w) = (input[0], input[1], input[2]);
            let oh = (h - 1) * stride - 2 * padding + kernel + output_padding;
            let ow = (w - 1) * stride - 2 * padding + kernel + output_padding;
            if oh < 1 || ow < 1 {
                return Err((
                    format!(
                        "`conv_transpose2d` gives an empty output ({oh}x{ow}) from {h}x{w} pixels"
                    ),
                    "reduce the padding".into(),
                    Code::LayerInput,
                ));
            }
            let params = (output as i128) * (c as i128) * (kernel as i128).pow(2)
                + if bias { output as i128 } else { 0 };
            let out = vec![output, oh, ow];
            if params > MAX_ELEMENTS || numel(&out) > MAX_ELEMENTS {
                return Err(too_large("that many elements"));
            }
            (
                LayerOp::ConvTranspose2d {
                    input: c,
                    output,
                    kernel,
                    stride,
                    padding,
                    output_padding,
                    bias,
                },
                out,
                params as u64,
            )
        }
        LayerOp::BatchNorm { .. } => {
            if input.len() != 1 && input.len() != 3 {
                return Err((
                    format!(
                        "`batch_norm` works on [features] or [channels, height, width], not {s}"
                    ),
                    "flatten or reshape first".into(),
                    Code::LayerInput,
                ));
            }
            (
                LayerOp::BatchNorm { features: input[0] },
                input.clone(),
                2 * input[0] as u64,
            )
        }
        LayerOp::Softmax | LayerOp::Normalize => {
            if input.len() != 1 {
                return Err(flat_needed(if op == LayerOp::Softmax {
                    "softmax"
                } else {
                    "normalize"
                }));
            }
            (op, input.clone(), 0)
        }
        LayerOp::Flatten => (op, vec![input.iter().product()], 0),
        LayerOp::Gaussian { output, .. } => {
            if input.len() != 1 {
                return Err(flat_needed("gaussian"));
            }
            let n = input[0];
            let params = 2 * ((n as i128) * (output as i128) + output as i128);
            if params > MAX_ELEMENTS {
                return Err(too_large(&format!("{params} parameters")));
            }
            (
                LayerOp::Gaussian { input: n, output },
                vec![output],
                params as u64,
            )
        }
        LayerOp::Reshape { ref shape } => {
            let have: i64 = input.iter().product();
            let want = numel(shape);
            if want != have as i128 {
                return Err((
                    format!(
                        "cannot reshape {s} ({have} values) to {} ({want} values)",
                        shape_str(shape)
                    ),
                    format!("the sizes must multiply to {have}"),
                    Code::LayerInput,
                ));
            }
            let out = shape.clone();
            (op, out, 0)
        }
        op => (op, input.clone(), 0),
    };
    Ok(out)
}
