//! Prior samplers: the built-in priors and prior programs, batched (no per-sample loop).

use tch::{Device, Kind, Tensor};

use crate::ir;
use crate::runtime::dist;
use crate::runtime::tensor::normalize;

/// Draws `n` samples of the prior on `device`, as one batched tensor operation; `params` are the
/// program's learnable parameters (see [`initial_params`]), empty for other priors.
pub fn sample_prior(
    prior: &ir::Prior,
    params: &[Tensor],
    n: i64,
    dim: i64,
    device: Device,
) -> Tensor {
    let opts = (Kind::Float, device);
    match prior {
        ir::Prior::Normal { mean, std } => Tensor::randn([n, dim], opts) * *std + *mean,
        ir::Prior::Uniform { low, high } => Tensor::rand([n, dim], opts) * (*high - *low) + *low,
        ir::Prior::UniformSphere => normalize(&Tensor::randn([n, dim], opts)),
        ir::Prior::Dirichlet { alpha } => {
            let a = Tensor::from_slice(&alpha.iter().map(|&a| a as f32).collect::<Vec<_>>())
                .to_device(device);
            let a = a.unsqueeze(0).expand([n, dim], false).contiguous();
            dirichlet(&a)
        }
        ir::Prior::Program(p) => sample_program(p, params, n, device),
    }
}

/// The initial values of a program's learnable parameters, one tensor of each parameter's shape
/// (drawn from the global generator for `param w ~ ...`, so `tch::manual_seed` fixes them).
pub fn initial_params(p: &ir::Program, device: Device) -> Vec<Tensor> {
    let t = |v: &[f64], shape: &[i64]| {
        Tensor::from_slice(&v.iter().map(|&x| x as f32).collect::<Vec<_>>())
            .reshape(shape)
            .to_device(device)
    };
    p.params
        .iter()
        .map(|q| {
            let shape = q.shape.as_slice();
            match &q.init {
                ir::ParamInit::Const(v) => t(v, shape),
                ir::ParamInit::Normal { mean, std } => {
                    t(mean, shape) + Tensor::randn(shape, (Kind::Float, device)) * t(std, shape)
                }
                ir::ParamInit::Uniform { low, high } => {
                    let (lo, hi) = (t(low, shape), t(high, shape));
                    Tensor::rand(shape, (Kind::Float, device)) * (&hi - &lo) + lo
                }
            }
        })
        .collect()
}

/// Runs a prior program once for a batch of `n`: each register is a tensor `[n, ...shape]`
/// (constants and learnable parameters `[1, ...shape]`, broadcast), so there is no per-sample
/// loop. Returns `[n, d]`, differentiable in `params` through reparameterised draws.
pub fn sample_program(p: &ir::Program, params: &[Tensor], n: i64, device: Device) -> Tensor {
    run_program(p, params, n, device, |_, _| {})
}

/// The statement of a prior program whose values are first not finite in a batch of `n` draws:
/// the variable it binds (`y`), to name it in the error. Registers without a name of the user's
/// (temporaries such as the inner `exp` of `exp(exp(x))`) are attributed to the next statement
/// that has one.
pub fn first_non_finite(
    p: &ir::Program,
    params: &[Tensor],
    n: i64,
    device: Device,
) -> Option<String> {
    let mut first = None;
    let _ = tch::no_grad(|| {
        run_program(p, params, n, device, |i, t| {
            let finite = t.isfinite().all().int64_value(&[]) == 1;
            if first.is_none() && !finite {
                first = Some(i);
            }
        })
    });
    const TEMPORARIES: &[&str] = &[
        "components",
        "concat",
        "const",
        "element",
        "index",
        "list",
        "neg",
        "weights",
        "result",
    ];
    let user = |name: &str| {
        !TEMPORARIES.contains(&name)
            && !crate::prior::reserved(name)
            && name.chars().all(|c| c.is_alphanumeric() || c == '_')
    };
    let i = first?;
    p.instrs[i..]
        .iter()
        .map(|ins| ins.name.as_str())
        .find(|name| user(name))
        .map(str::to_string)
        .or_else(|| Some(p.instrs[i].name.clone()))
}

/// [`sample_program`], calling `inspect` with each register once computed.
// long: one arm per instruction of the prior-program IR, executed batched.
fn run_program(
    p: &ir::Program,
    params: &[Tensor],
    n: i64,
    device: Device,
    mut inspect: impl FnMut(usize, &Tensor),
) -> Tensor {
    use ir::{Op as I, Prim};
    let opts = (Kind::Float, device);
    let mut regs: Vec<Tensor> = Vec::with_capacity(p.instrs.len());
    // A register with trailing axes added up to `rank` (a scalar [n] against a vector [n, d]).
    let at = |regs: &Vec<Tensor>, i: usize, rank: usize| -> Tensor {
        let mut t = regs[i].shallow_clone();
        for _ in p.instrs[i].shape.len()..rank {
            t = t.unsqueeze(-1);
        }
        t
    };
    for ins in &p.instrs {
        let mut full = vec![n];
        full.extend(&ins.shape);
        let rank = ins.shape.len();
        let arg = |regs: &Vec<Tensor>, i: usize| -> Tensor {
            at(regs, i, rank)
                .expand(full.as_slice(), false)
                .contiguous()
        };
        let t = match &ins.op {
            I::Const(v) => {
                let mut shape = vec![1i64];
                shape.extend(&ins.shape);
                Tensor::from_slice(&v.iter().map(|&x| x as f32).collect::<Vec<_>>())
                    .to_device(device)
                    .reshape(shape.as_slice())
            }
            I::Draw(prim, a) => match prim {
                Prim::Normal => {
                    Tensor::randn(full.as_slice(), opts) * arg(&regs, a[1]) + arg(&regs, a[0])
                }
                Prim::Uniform => {
                    let (lo, hi) = (arg(&regs, a[0]), arg(&regs, a[1]));
                    Tensor::rand(full.as_slice(), opts) * (&hi - &lo) + lo
                }
                Prim::UniformSphere => normalize(&Tensor::randn(full.as_slice(), opts)),
                Prim::Dirichlet => dist::dirichlet(&arg(&regs, a[0])),
                Prim::Gamma => dist::gamma(&arg(&regs, a[0])) / arg(&regs, a[1]),
                Prim::Beta => dist::beta(&arg(&regs, a[0]), &arg(&regs, a[1])),
                Prim::Categorical => {
                    let w = &regs[a[0]];
                    let k = w.size()[1];
                    let probs = w.expand([n, k], false).contiguous();
                    probs
                        .multinomial(1, true)
                        .squeeze_dim(1)
                        .to_kind(Kind::Float)
                }
                Prim::Bernoulli => dist::bernoulli(&arg(&regs, a[0])),
                Prim::Laplace => dist::laplace(&arg(&regs, a[0]), &arg(&regs, a[1])),
                Prim::Exponential => dist::exponential(&arg(&regs, a[0])),
                Prim::VonMisesFisher => {
                    let mu = regs[a[0]].squeeze_dim(0);
                    let kappa = regs[a[1]].double_value(&[0]);
                    dist::von_mises_fisher(&mu, kappa, n)
                }
                Prim::VonMises => {
                    let kappa = regs[a[1]].double_value(&[0]);
                    let count: i64 = full.iter().product();
                    let t = dist::von_mises(kappa, count, device).reshape(full.as_slice())
                        + arg(&regs, a[0]);
                    // Back into (-pi, pi] after the shift by loc.
                    t.sin().atan2(&t.cos())
                }
            },
            I::Apply(f, a) => apply_func(*f, &regs[*a]),
            I::Neg(a) => -&regs[*a],
            // Axis 0 is the batch (1 for constants), so axis 1 is the first of the value's.
            I::Slice(a, lo, hi) => regs[*a].narrow(1, *lo, hi - lo),
            // A parameter missing from `params` (a caller's bug) reads as zeros, not a panic.
            I::Param(k) => match params.get(*k) {
                Some(t) => t.unsqueeze(0),
                None => {
                    let mut shape = vec![1i64];
                    shape.extend(&ins.shape);
                    Tensor::zeros(shape.as_slice(), opts)
                }
            },
            I::Where(c, a, b) => {
                let cond = arg(&regs, *c).ne(0.0);
                arg(&regs, *a).where_self(&cond, &arg(&regs, *b))
            }
            I::MatMul(a, b) => {
                // Registers are [1 or n, ...]: matmul broadcasts the batch axis.
                let (x, y) = (&regs[*a], &regs[*b]);
                match (p.instrs[*a].shape.len(), p.instrs[*b].shape.len()) {
                    (2, 1) => x.matmul(&y.unsqueeze(-1)).squeeze_dim(-1),
                    (1, 2) => x.unsqueeze(-2).matmul(y).squeeze_dim(-2),
                    _ => x.matmul(y),
                }
            }
            I::Binary(op, a, b) => {
                let (x, y) = (at(&regs, *a, rank), at(&regs, *b, rank));
                match op {
                    ir::Arith::Add => x + y,
                    ir::Arith::Sub => x - y,
                    ir::Arith::Mul => x * y,
                    ir::Arith::Div => x / y,
                    ir::Arith::Pow => x.pow(&y),
                    ir::Arith::Minimum => x.minimum(&y),
                    ir::Arith::Maximum => x.maximum(&y),
                    ir::Arith::Atan2 => x.atan2(&y),
                    ir::Arith::Lt => x.lt_tensor(&y).to_kind(Kind::Float),
                    ir::Arith::Le => x.le_tensor(&y).to_kind(Kind::Float),
                    ir::Arith::Gt => x.gt_tensor(&y).to_kind(Kind::Float),
                    ir::Arith::Ge => x.ge_tensor(&y).to_kind(Kind::Float),
                    ir::Arith::Eq => x.eq_tensor(&y).to_kind(Kind::Float),
                    ir::Arith::Ne => x.ne_tensor(&y).to_kind(Kind::Float),
                }
            }
            I::Index(src, idx) => {
                let s = &regs[*src];
                let sshape = &p.instrs[*src].shape;
                let k = sshape[0];
                let i = regs[*idx]
                    .to_kind(Kind::Int64)
                    .clamp(0, k - 1)
                    .expand([n], false);
                if sshape.len() == 1 {
                    s.expand([n, k], false)
                        .gather(1, &i.unsqueeze(1), false)
                        .squeeze_dim(1)
                } else {
                    let m = sshape[1];
                    let i = i.view([n, 1, 1]).expand([n, 1, m], false);
                    s.expand([n, k, m], false)
                        .gather(1, &i, false)
                        .squeeze_dim(1)
                }
            }
            I::Concat(parts) => {
                let cols: Vec<Tensor> = parts
                    .iter()
                    .map(|&i| {
                        let t = at(&regs, i, 1);
                        let w = t.size()[1];
                        t.expand([n, w], false)
                    })
                    .collect();
                Tensor::cat(&cols, 1)
            }
            I::Stack(parts) => {
                let rows: Vec<Tensor> = parts
                    .iter()
                    .map(|&i| {
                        let mut f = vec![n];
                        f.extend(&p.instrs[i].shape);
                        regs[i].expand(f.as_slice(), false)
                    })
                    .collect();
                Tensor::stack(&rows, 1)
            }
        };
        inspect(regs.len(), &t);
        regs.push(t);
    }
    let out = &regs[p.result];
    let out = if out.dim() == 1 {
        out.unsqueeze(1)
    } else {
        out.shallow_clone()
    };
    let d = out.size()[1];
    // float32, or float64 when float64 learnable parameters made it so (their gradients keep it).
    let kind = if out.kind() == Kind::Double {
        Kind::Double
    } else {
        Kind::Float
    };
    out.expand([n, d], false).to_kind(kind).contiguous()
}

/// A function of prior programs (and cost expressions) on a tensor: elementwise, or along the
/// last axis for the reducing ones.
pub fn apply_func(f: ir::Func, x: &Tensor) -> Tensor {
    use ir::Func;
    match f {
        Func::Exp => x.exp(),
        Func::Log => x.log(),
        Func::Sin => x.sin(),
        Func::Cos => x.cos(),
        Func::Sqrt => x.sqrt(),
        Func::Abs => x.abs(),
        Func::Tanh => x.tanh(),
        Func::Sigmoid => x.sigmoid(),
        Func::Floor => x.floor(),
        Func::Softmax => x.softmax(-1, x.kind()),
        Func::Normalize => normalize(x),
        Func::Sum => x.sum_dim_intlist(-1, false, x.kind()),
        Func::Log1p => x.log1p(),
        Func::Expm1 => x.expm1(),
        Func::Erf => x.erf(),
        Func::Logsumexp => x.logsumexp(-1, false),
        Func::Norm => x.square().sum_dim_intlist(-1, false, x.kind()).sqrt(),
        Func::Cumsum => x.cumsum(-1, x.kind()),
        Func::Torus => {
            // Angles [.., k] -> [.., 2k]: (cos t, sin t) per angle.
            let pairs = Tensor::stack(&[x.cos(), x.sin()], -1);
            let mut shape = x.size();
            let k = shape.pop().unwrap_or(1);
            shape.push(2 * k);
            if x.dim() == 1 {
                // A scalar angle per row ([n]) gives [n, 2].
                return pairs;
            }
            pairs.reshape(shape.as_slice())
        }
        Func::Expmap0 => crate::runtime::tensor::expmap0(x, 1.0),
        Func::Max => x.amax(-1, false),
        Func::Min => x.amin(-1, false),
    }
}

/// Dirichlet samples, one row per row of concentrations (see [`dist::dirichlet`]).
pub fn dirichlet(alpha: &Tensor) -> Tensor {
    dist::dirichlet(alpha)
}
