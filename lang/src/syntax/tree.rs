//! The syntax tree: what a model file says, with the byte span of every part.

use crate::diag::{FileId, Span};

/// Most arithmetic operators in one expression: operator chains recurse in the parser and
/// evaluator.
pub const MAX_OPERATORS: usize = 256;

/// Most user-function calls nested in one another while constants or a prior program are
/// expanded (each level recurses in the checker).
pub const MAX_CALL_DEPTH: usize = 200;

/// Most user-function calls in all, per constant or prior program: a function that calls the
/// previous one twice, 40 deep, would otherwise expand 2^40 times.
pub const MAX_CALLS: usize = 100_000;

/// A name with its location.
#[derive(Clone, Debug, PartialEq)]
pub struct Ident {
    pub name: String,
    pub span: Span,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
    Pow,
    /// `a @ b`: matrix-vector, vector-matrix or matrix-matrix product.
    MatMul,
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
    Ne,
}

impl BinOp {
    /// Whether the operator compares (its result is 1 or 0, or true or false).
    pub fn compares(self) -> bool {
        matches!(
            self,
            BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge | BinOp::Eq | BinOp::Ne
        )
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum ExprKind {
    Int(i64),
    Real(f64),
    Str(String),
    Bool(bool),
    /// A bare name, or a call written without parentheses.
    Call(Call),
    Neg(Box<Expr>),
    Binary(BinOp, Box<Expr>, Box<Expr>),
    List(Vec<Expr>),
    /// `xs[i]`: an element of a list or vector.
    Index(Box<Expr>, Box<Expr>),
    /// `xs[a:b]`: elements (or rows) a to b - 1; a bound left out is the start or the end.
    Slice(Box<Expr>, Option<Box<Expr>>, Option<Box<Expr>>),
    /// `if c then a else b`.
    If(Box<Expr>, Box<Expr>, Box<Expr>),
    /// `[body for var in source]`.
    Comprehension(Box<Expr>, Ident, Box<Expr>),
}

#[derive(Clone, Debug, PartialEq)]
pub struct Expr {
    pub kind: ExprKind,
    pub span: Span,
}

/// `name` or `name(args)`.
#[derive(Clone, Debug, PartialEq)]
pub struct Call {
    pub name: Ident,
    pub args: Vec<Arg>,
    /// Whether parentheses were written (`relu` vs `relu()`).
    pub parens: bool,
    pub span: Span,
}

/// A positional (`16`) or named (`stride = 2`) argument.
#[derive(Clone, Debug, PartialEq)]
pub struct Arg {
    pub name: Option<Ident>,
    pub value: Expr,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Param {
    pub name: Ident,
    pub default: Option<Expr>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Pipeline {
    pub layers: Vec<Call>,
    pub span: Span,
}

/// `fn name(params) = body`: expanded where it is called (constants, prior programs).
#[derive(Clone, Debug, PartialEq)]
pub struct FnDef {
    pub name: Ident,
    pub params: Vec<Param>,
    pub body: Expr,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub struct NetDef {
    pub name: Ident,
    pub params: Vec<Param>,
    pub body: Pipeline,
    pub span: Span,
}

/// A parameter of a prior program: `k: int = 3`.
#[derive(Clone, Debug, PartialEq)]
pub struct PriorParam {
    pub name: Ident,
    /// `int` or `real` as written, if given.
    pub ty: Option<Ident>,
    pub default: Option<Expr>,
}

/// One statement of a prior program.
#[derive(Clone, Debug, PartialEq)]
pub enum StmtKind {
    /// `x ~ normal(0, 1)`: a draw from a distribution.
    Draw(Ident, Expr),
    /// `x = 2 * y`: a deterministic binding.
    Let(Ident, Expr),
    /// `return x`.
    Return(Expr),
    /// `param w ~ normal(0, 1)` (initial value drawn once) or `param w = zeros(3)`: a learnable
    /// parameter, trained with the model; `true` for the `~` form.
    Param(Ident, Expr, bool),
}

#[derive(Clone, Debug, PartialEq)]
pub struct Stmt {
    pub kind: StmtKind,
    pub span: Span,
}

/// `prior NAME(params) on SPACE { statements }`: a prior as a program that draws one sample.
#[derive(Clone, Debug, PartialEq)]
pub struct PriorDef {
    pub name: Ident,
    pub params: Vec<PriorParam>,
    pub space: SpaceExpr,
    pub body: Vec<Stmt>,
    pub span: Span,
    /// The span of the closing brace (where a missing `return` is reported).
    pub end: Span,
}

/// The latent space as written: `R^16`, `S^9` or `simplex(16)`.
#[derive(Clone, Debug, PartialEq)]
pub enum SpaceExpr {
    Pow {
        base: Ident,
        exponent: Expr,
        span: Span,
    },
    Call(Call),
}

impl SpaceExpr {
    pub fn span(&self) -> Span {
        match self {
            SpaceExpr::Pow { span, .. } => *span,
            SpaceExpr::Call(c) => c.span,
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum ClauseKind {
    /// The data set and the transforms applied to it, in order.
    Data(Call, Vec<Call>),
    Latent {
        name: Option<Ident>,
        space: SpaceExpr,
        prior: Call,
    },
    /// An encoder of the whole code, or (with a name) of one latent component.
    Encoder(Option<Ident>, Pipeline),
    Generator(Pipeline),
    /// `cost squared_l2` (a named cost, as a bare call) or an expression of `x` and `y`.
    Cost(Expr),
    Penalty {
        weight: Option<Expr>,
        call: Call,
        on: Option<Ident>,
    },
    Train(Vec<(Ident, Expr)>),
}

#[derive(Clone, Debug, PartialEq)]
pub struct Clause {
    pub kind: ClauseKind,
    /// The span of the keyword that opens the clause.
    pub keyword: Span,
    pub span: Span,
}

impl Clause {
    /// The clause keyword as written.
    pub fn keyword_name(&self) -> &'static str {
        match self.kind {
            ClauseKind::Data(..) => "data",
            ClauseKind::Latent { .. } => "latent",
            ClauseKind::Encoder(..) => "encoder",
            ClauseKind::Generator(_) => "generator",
            ClauseKind::Cost(_) => "cost",
            ClauseKind::Penalty { .. } => "penalty",
            ClauseKind::Train(_) => "train",
        }
    }
}

/// `let NAME = expr`: a file-level constant.
#[derive(Clone, Debug, PartialEq)]
pub struct LetDef {
    pub name: Ident,
    pub value: Expr,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Import {
    pub path: String,
    pub span: Span,
}

/// One parsed file.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Module {
    pub file: FileId,
    pub imports: Vec<Import>,
    /// File-level constants, in order.
    pub lets: Vec<LetDef>,
    pub nets: Vec<NetDef>,
    pub priors: Vec<PriorDef>,
    /// User functions (`fn name(params) = expr`).
    pub fns: Vec<FnDef>,
    pub clauses: Vec<Clause>,
}

/// Clause keywords, for "did you mean" on a misspelt one.
pub const CLAUSE_KEYWORDS: &[&str] = &[
    "import",
    "let",
    "net",
    "prior",
    "data",
    "latent",
    "encoder",
    "generator",
    "cost",
    "penalty",
    "train",
];
