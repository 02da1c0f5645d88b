//! The IR's readable form: what `sae-dsl graph` prints and what graph snapshots show.

use std::fmt;

use super::*;

impl fmt::Display for Transform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Transform::Canvas { size, shift, zoom } => write!(
                f,
                "canvas(size = {size}, shift = {}, zoom = {})",
                num(*shift),
                num(*zoom)
            ),
            Transform::Salt { p } => write!(f, "salt(p = {})", num(*p)),
        }
    }
}

impl fmt::Display for Space {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Space::Euclidean { dim } => write!(f, "R^{dim}"),
            Space::Sphere { dim } => write!(f, "S^{} (unit sphere in R^{dim})", dim - 1),
            Space::Simplex { dim } => write!(f, "simplex({dim}) ({dim} vertices)"),
            Space::Torus { k } => write!(f, "T^{k} (torus of {k} circles in R^{})", 2 * k),
            Space::Ball { dim, c } => write!(f, "ball({dim}, curvature = {})", num(c)),
        }
    }
}

impl fmt::Display for ParamInit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // One number when all are equal, else the first few.
        let v = |x: &[f64]| {
            if x.iter().all(|a| *a == x[0]) {
                num(x[0])
            } else {
                let shown: Vec<String> = x.iter().take(4).map(|a| num(*a)).collect();
                let more = if x.len() > 4 { ", ..." } else { "" };
                format!("[{}{more}]", shown.join(", "))
            }
        };
        match self {
            ParamInit::Const(x) => write!(f, "= {}", v(x)),
            ParamInit::Normal { mean, std } => write!(f, "~ normal({}, {})", v(mean), v(std)),
            ParamInit::Uniform { low, high } => write!(f, "~ uniform({}, {})", v(low), v(high)),
        }
    }
}

impl fmt::Display for Program {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let r = |i: &usize| format!("%{i}");
        let list = |v: &[usize]| v.iter().map(r).collect::<Vec<_>>().join(", ");
        for p in &self.params {
            writeln!(
                f,
                "  param {} {} {} (learnable)",
                p.name,
                shape_str(&p.shape),
                p.init
            )?;
        }
        for (i, ins) in self.instrs.iter().enumerate() {
            let op = match &ins.op {
                Op::Const(v) => {
                    let shown: Vec<String> = v.iter().take(8).map(|x| num(*x)).collect();
                    if ins.shape.is_empty() {
                        shown.join("")
                    } else if v.len() > 8 {
                        format!("[{}, ... {} values]", shown.join(", "), v.len())
                    } else {
                        format!("[{}]", shown.join(", "))
                    }
                }
                Op::Draw(p, args) => format!("{}({})", p.name(), list(args)),
                Op::Apply(func, a) => format!("{}({})", func.name(), r(a)),
                Op::Neg(a) => format!("-{}", r(a)),
                Op::MatMul(a, b) => format!("{} @ {}", r(a), r(b)),
                Op::Where(c, a, b) => format!("if {} then {} else {}", r(c), r(a), r(b)),
                Op::Binary(op, a, b) if op.is_call() => {
                    format!("{}({}, {})", op.symbol(), r(a), r(b))
                }
                Op::Binary(op, a, b) => format!("{} {} {}", r(a), op.symbol(), r(b)),
                Op::Index(a, b) => format!("{}[{}]", r(a), r(b)),
                Op::Slice(a, lo, hi) => format!("{}[{lo}:{hi}]", r(a)),
                Op::Concat(v) => format!("concat({})", list(v)),
                Op::Stack(v) => format!("stack({})", list(v)),
                Op::Param(k) => format!(
                    "param {}",
                    self.params.get(*k).map_or("?", |p| p.name.as_str())
                ),
            };
            let ty = if ins.int { " int" } else { "" };
            let draw = if matches!(ins.op, Op::Draw(..)) {
                " ~ "
            } else {
                " = "
            };
            writeln!(
                f,
                "  %{i:<2} {:<8} {}{ty}{draw}{op}",
                ins.name,
                shape_str(&ins.shape)
            )?;
        }
        write!(f, "  return %{}", self.result)
    }
}

impl fmt::Display for Prior {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Prior::Normal { mean, std } => {
                write!(f, "normal(mean = {}, std = {})", num(*mean), num(*std))
            }
            Prior::Uniform { low, high } => {
                write!(f, "uniform(low = {}, high = {})", num(*low), num(*high))
            }
            Prior::UniformSphere => write!(f, "uniform_sphere()"),
            Prior::Dirichlet { alpha } => {
                if alpha.iter().all(|a| *a == alpha[0]) {
                    write!(f, "dirichlet(alpha = {})", num(alpha[0]))
                } else {
                    let a: Vec<String> = alpha.iter().map(|a| num(*a)).collect();
                    write!(f, "dirichlet(alpha = [{}])", a.join(", "))
                }
            }
            Prior::Program(p) => {
                let learned = match p.params.len() {
                    0 => String::new(),
                    1 => ", 1 learnable parameter".to_string(),
                    k => format!(", {k} learnable parameters"),
                };
                let draws = match p.draws() {
                    1 => "1 random draw".to_string(),
                    k => format!("{k} random draws"),
                };
                write!(f, "{} {PROGRAM_NOTE}: {draws} per sample{learned})", p.call)
            }
        }
    }
}

/// What follows a prior program's call in its readable form, "(a prior program: 2 random draws
/// per sample)": tools that show the call alone cut there.
pub const PROGRAM_NOTE: &str = "(a prior program";

/// ", dilation d, groups g" where they are not 1.
fn spread(dilation: i64, groups: i64) -> String {
    let mut s = String::new();
    if dilation != 1 {
        s += &format!(", dilation {dilation}");
    }
    if groups != 1 {
        s += &format!(", groups {groups}");
    }
    s
}

impl fmt::Display for LayerOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = |bias: &bool| if *bias { "" } else { ", no bias" };
        match self {
            LayerOp::Linear { input, output, bias } => write!(f, "linear({input} -> {output}{})", b(bias)),
            LayerOp::Conv2d { input, output, kernel, stride, padding, bias, dilation, groups } => write!(
                f,
                "conv2d({input} -> {output}, kernel {kernel}, stride {stride}, padding {padding}{}{})",
                spread(*dilation, *groups),
                b(bias)
            ),
            LayerOp::ConvTranspose2d { input, output, kernel, stride, padding, output_padding, bias, dilation, groups } => {
                write!(f, "conv_transpose2d({input} -> {output}, kernel {kernel}, stride {stride}, padding {padding}")?;
                if *output_padding != 0 {
                    write!(f, ", output_padding {output_padding}")?;
                }
                write!(f, "{}{})", spread(*dilation, *groups), b(bias))
            }
            LayerOp::BatchNorm { features } => write!(f, "batch_norm({features})"),
            LayerOp::Relu => write!(f, "relu"),
            LayerOp::LeakyRelu { slope } => write!(f, "leaky_relu({})", num(*slope)),
            LayerOp::Tanh => write!(f, "tanh"),
            LayerOp::Sigmoid => write!(f, "sigmoid"),
            LayerOp::Softmax => write!(f, "softmax"),
            LayerOp::Flatten => write!(f, "flatten"),
            LayerOp::Identity => write!(f, "identity"),
            LayerOp::Gelu => write!(f, "gelu"),
            LayerOp::Silu => write!(f, "silu"),
            LayerOp::Elu { alpha } => write!(f, "elu({})", num(*alpha)),
            LayerOp::Softplus { beta, threshold } => write!(f, "softplus(beta {}, threshold {})", num(*beta), num(*threshold)),
            LayerOp::Dropout { p } => write!(f, "dropout({})", num(*p)),
            LayerOp::LayerNorm { shape } => {
                let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
                write!(f, "layer_norm([{}])", dims.join(", "))
            }
            LayerOp::GroupNorm { groups, channels } => write!(f, "group_norm({groups} groups of {channels} channels)"),
            LayerOp::AvgPool2d { kernel, stride, padding } => write!(f, "avg_pool2d(kernel {kernel}, stride {stride}, padding {padding})"),
            LayerOp::MaxPool2d { kernel, stride, padding } => write!(f, "max_pool2d(kernel {kernel}, stride {stride}, padding {padding})"),
            LayerOp::AdaptiveAvgPool2d { size } => write!(f, "adaptive_avg_pool2d({size}x{size})"),
            LayerOp::Upsample { scale, mode } => write!(f, "upsample(x{scale}, {})", mode.name()),
            LayerOp::Interpolate { size, mode } => write!(f, "interpolate({size}x{size}, {})", mode.name()),
            LayerOp::Residual { body, projection } => {
                let n = body.len();
                let layers = if n == 1 { "layer" } else { "layers" };
                let skip = if projection.is_some() { "projected input" } else { "input" };
                write!(f, "residual({n} {layers} + {skip})")
            }
            LayerOp::Concat { branches } => write!(f, "concat({} branches)", branches.len()),
            LayerOp::Reshape { shape } => {
                let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
                write!(f, "reshape({})", dims.join(", "))
            }
            LayerOp::Normalize => write!(f, "normalize"),
            LayerOp::Torus => write!(f, "torus"),
            LayerOp::Expmap0 { c } => write!(f, "expmap0(curvature = {})", num(*c)),
            LayerOp::Gaussian { input, output } => write!(f, "gaussian({input} -> {output}, mean and log-variance heads)"),
            LayerOp::Select { component, len, .. } => write!(f, "select({component}, {len} coordinates)"),
            LayerOp::Place { component, size, shift, zoom, .. } => {
                write!(f, "place(at {component}, canvas {size}, shift {}, zoom {})", num(*shift), num(*zoom))
            }
            LayerOp::Crop { component, size, shift, zoom, .. } => {
                write!(f, "crop(at {component}, window {size}, shift {}, zoom {})", num(*shift), num(*zoom))
            }
        }
    }
}

impl fmt::Display for ReconCost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ReconCost::SquaredL2 => "squared_l2",
            ReconCost::L1 => "l1",
            ReconCost::Bce => "bce",
            ReconCost::Expr { text, .. } => text,
        })
    }
}

impl fmt::Display for LatentCost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LatentCost::Euclidean { p } => write!(f, "|z - w|^{}", num(*p)),
            LatentCost::Geodesic { p } => write!(f, "arccos(<z, w>)^{}", num(*p)),
            LatentCost::FisherRao { p } => write!(f, "(2 arccos(sum sqrt(z w)))^{}", num(*p)),
            LatentCost::Torus { p } => {
                write!(f, "(sum of squared circle angles)^{}", num(*p / 2.0))
            }
            LatentCost::Hyperbolic { p, c } => {
                write!(
                    f,
                    "hyperbolic distance (curvature -{})^{}",
                    num(*c),
                    num(*p)
                )
            }
        }
    }
}

impl fmt::Display for Penalty {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} * ", num(self.weight))?;
        match &self.kind {
            PenaltyKind::Sinkhorn {
                epsilon,
                iterations,
                cost,
                debiased,
                envelope,
                tolerance,
                scaling,
                factors,
            } => {
                write!(
                    f,
                    "sinkhorn(epsilon = {}, iterations = {iterations}",
                    num(*epsilon)
                )?;
                if *tolerance > 0.0 {
                    write!(f, " at most, tolerance = {}", num(*tolerance))?;
                }
                if *scaling < 1.0 {
                    write!(f, ", scaling = {}", num(*scaling))?;
                }
                write!(
                    f,
                    ", {} gradient{})",
                    if *envelope { "envelope" } else { "unrolled" },
                    if *debiased { ", debiased" } else { "" }
                )?;
                if factors.is_empty() {
                    return write!(f, " on {}, cost {cost}", self.on);
                }
                // One joint problem: the weighted sum of the components' costs.
                let terms: Vec<String> = factors
                    .iter()
                    .map(|q| format!("{} x [{}: {}]", num(q.weight), q.name, q.cost))
                    .collect();
                write!(f, " jointly on the product, cost {}", terms.join(" + "))
            }
            PenaltyKind::Mmd { imq, sigma, scale } => write!(
                f,
                "mmd({} kernel, sigma = {}, C = {} x 0.1..10, unbiased) on {}",
                if *imq { "imq" } else { "rbf" },
                num(*sigma),
                num(*scale),
                self.on
            ),
            PenaltyKind::Gan { discriminator, opt } => {
                writeln!(
                    f,
                    "gan(adam {}, non-saturating) on {}",
                    opt.describe(),
                    self.on
                )?;
                let mut text = String::new();
                write_network(&mut text, "  discriminator", discriminator)?;
                f.write_str(text.trim_end())
            }
            PenaltyKind::Sliced { projections, p } => write!(
                f,
                "sliced(projections = {projections}, p = {}) on {}",
                num(*p),
                self.on
            ),
            PenaltyKind::Exact { cost } => {
                write!(f, "exact(hungarian matching) on {}, cost {cost}", self.on)
            }
            PenaltyKind::Kl { mean, std } => write!(
                f,
                "kl(gaussian encoder || normal(mean = {}, std = {})) on {}",
                num(*mean),
                num(*std),
                self.on
            ),
        }
    }
}

impl fmt::Display for DataSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DataSource::Idx { dir, split, limit } => {
                write!(f, "{dir} (IDX, split {split}")?;
                if *limit > 0 {
                    write!(f, ", first {limit}")?;
                }
                write!(f, ")")
            }
            DataSource::Rings { n, k, noise } => {
                write!(f, "rings(n = {n}, k = {k}, noise = {})", num(*noise))
            }
            DataSource::GaussianGrid { n, k, std } => {
                write!(f, "gaussian_grid(n = {n}, k = {k}, std = {})", num(*std))
            }
            DataSource::SwissRoll { n, noise } => {
                write!(f, "swiss_roll(n = {n}, noise = {})", num(*noise))
            }
            DataSource::Tree {
                n,
                depth,
                branching,
                dim,
                noise,
                tree_seed,
            } => write!(
                f,
                "tree(n = {n}, depth = {depth}, branching = {branching}, dim = {dim}, noise = {}, tree_seed = {tree_seed})",
                num(*noise)
            ),
            DataSource::Donut { n, noise } => {
                write!(f, "donut(n = {n}, noise = {})", num(*noise))
            }
            DataSource::Images {
                path,
                channels,
                size,
                crop,
                split,
                skip_bad,
            } => {
                write!(f, "images {path:?} ({channels} x {size} x {size}")?;
                if *crop > 0 {
                    write!(f, ", crop {crop}")?;
                }
                write!(f, "{split}")?;
                if *skip_bad {
                    write!(f, ", bad files skipped")?;
                }
                write!(f, ")")
            }
            DataSource::Arrays {
                path,
                key,
                labels,
                test_key,
                test_labels,
                shape,
                split,
            } => {
                write!(f, "arrays {path:?}")?;
                for (what, k) in [
                    ("key", key),
                    ("labels", labels),
                    ("test_key", test_key),
                    ("test_labels", test_labels),
                ] {
                    if !k.is_empty() {
                        write!(f, " {what} {k:?}")?;
                    }
                }
                let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
                write!(f, " ([{}]", dims.join(", "))?;
                if test_key.is_empty() {
                    write!(f, "{split}")?;
                } else if split.limit > 0 {
                    write!(f, ", first {}", split.limit)?;
                }
                write!(f, ")")
            }
            DataSource::Cifar10 { split, limit } => {
                write!(f, "cifar10 (split {split}")?;
                if *limit > 0 {
                    write!(f, ", first {limit}")?;
                }
                write!(f, ")")
            }
            DataSource::Shapes { n, size, seed } => {
                write!(f, "shapes(n = {n}, size = {size}, seed = {seed})")
            }
        }
    }
}

impl fmt::Display for Split {
    /// The split as a continuation of a data source's description: ", test 0.1 (seed 0)".
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.limit > 0 {
            write!(f, ", first {}", self.limit)?;
        }
        write!(f, ", test {} (seed {})", num(self.test_fraction), self.seed)
    }
}

impl fmt::Display for Model {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "model {}", self.name)?;
        if !self.constants.is_empty() {
            let c: Vec<String> = self
                .constants
                .iter()
                .map(|(n, v)| format!("{n} = {v}"))
                .collect();
            writeln!(f, "let       {}", c.join(", "))?;
        }
        let scaling = if self.data.is_image() {
            ", scaled to [0, 1]"
        } else {
            ""
        };
        let binarised = if self.data.binarize {
            ", binarised per batch"
        } else {
            ""
        };
        let transforms: String = self
            .data
            .transforms
            .iter()
            .map(|t| format!(" -> {t}"))
            .collect();
        writeln!(
            f,
            "data      {}{transforms} {}{scaling}{binarised}",
            self.data.source,
            shape_str(&self.data.shape)
        )?;
        for l in &self.latents {
            writeln!(f, "latent    {}: {} ~ {}", l.name, l.space, l.prior)?;
            if let Prior::Program(p) = &l.prior {
                writeln!(f, "{p}")?;
            }
        }
        for e in &self.encoders {
            match &e.component {
                None => write_network(f, "encoder  ", &e.net)?,
                Some(c) => write_network(f, &format!("encoder   {c}:"), &e.net)?,
            }
        }
        write_network(f, "generator", &self.generator)?;
        let how = match self.cost {
            ReconCost::Expr { .. } => "one number per example, mean over the batch",
            _ => "summed over features, mean over the batch",
        };
        writeln!(f, "cost      {} ({how})", self.cost)?;
        for p in &self.penalties {
            writeln!(f, "penalty   {p}")?;
        }
        let t = &self.train;
        writeln!(
            f,
            "train     adam({}), batch {}, epochs {}, seed {}, init {}",
            t.optimizer.describe(),
            t.batch,
            t.epochs,
            t.seed,
            t.init.name()
        )?;
        if t.schedule != LrSchedule::default() {
            writeln!(f, "          schedule {}", t.schedule.describe())?;
        }
        if let Some(v) = &t.validation {
            writeln!(
                f,
                "          validation on {}% of the training examples (seed {}) every {} epochs, best by {}{}",
                num(v.fraction * 100.0),
                v.seed,
                v.every,
                v.metric,
                if v.patience > 0 {
                    format!(", patience {}", v.patience)
                } else {
                    String::new()
                }
            )?;
        }
        if t.images_every != 5 {
            writeln!(
                f,
                "          TensorBoard images every {} epochs",
                t.images_every
            )?;
        }
        if t.precision != Precision::Float32 {
            writeln!(f, "          precision {}", t.precision.name())?;
        }
        writeln!(f, "{}", self.total_line())
    }
}

impl Model {
    /// `total     120,169 parameters (160 in learnable priors)`.
    fn total_line(&self) -> String {
        let prior = self.prior_params();
        let learned = if prior > 0 {
            format!(" ({} in learnable priors)", thousands(prior))
        } else {
            String::new()
        };
        format!(
            "total     {} parameters{learned}",
            thousands(self.encoder_params() + self.generator.params() + prior)
        )
    }
}
