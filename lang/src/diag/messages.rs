//! The wording of every diagnostic: one constructor per code, so that a code always reads the
//! same. Stages pass the names, shapes and values; the sentence around them is written here.
//!
//! Labels and help lines are added at the site (they point at the user's text and name the
//! remedy that fits there); the message, which is what lists and logs show, never varies.
//! `Diag::error` and `Diag::warning` are private to this module tree, so no other file can
//! write a message of its own.

use super::{Code, Diag};

/// "{what} must be {expected}, found {found}": the one form of type, value and shape errors.
fn expected_found(code: Code, what: &str, expected: &str, found: &str) -> Diag {
    Diag::error(code, format!("{what} must be {expected}, found {found}"))
}

/// A token the grammar does not allow here.
pub fn syntax(expected: &str, found: &str) -> Diag {
    Diag::error(Code::Syntax, format!("expected {expected}, found {found}"))
}

/// A `/* */` comment, which the language does not have.
pub fn block_comment() -> Diag {
    Diag::error(
        Code::BlockComment,
        "`/* ... */` is not a comment in model files",
    )
}

/// A string whose closing quote is missing on its line.
pub fn unterminated_string() -> Diag {
    Diag::error(Code::UnterminatedString, "a string is not closed")
}

/// An opening bracket without its closer.
pub fn unclosed_bracket(open: char) -> Diag {
    Diag::error(Code::UnclosedBracket, format!("a `{open}` is not closed"))
}

/// A closing bracket without an opener.
pub fn unmatched_bracket(close: char) -> Diag {
    Diag::error(
        Code::UnmatchedBracket,
        format!("a `{close}` closes nothing"),
    )
}

/// `name: value` where an argument is named with `=`.
pub fn colon_argument(name: &str) -> Diag {
    Diag::error(
        Code::ColonArgument,
        format!("the argument `{name}` is named with `:`; arguments are named with `=`"),
    )
}

/// `batch = 64` in a `train` clause.
pub fn setting_with_equals(name: &str) -> Diag {
    Diag::error(
        Code::SettingWithEquals,
        format!("the training setting `{name}` takes its value without `=`"),
    )
}

/// What nests too deep: brackets or operators (for the parser), function calls (for the checker).
#[derive(Clone, Copy, Debug)]
pub enum Nesting {
    Brackets,
    Operators,
    Calls,
}

/// More nesting than the parser's recursion allows.
pub fn nesting_too_deep(what: Nesting, limit: usize) -> Diag {
    let what = match what {
        Nesting::Brackets => "levels of nested brackets",
        Nesting::Operators => "operators in one expression",
        Nesting::Calls => "function calls nested in one another",
    };
    Diag::error(Code::NestingTooDeep, format!("more than {limit} {what}"))
}

/// An import that names no file.
pub fn import_not_found(path: &str) -> Diag {
    Diag::error(
        Code::ImportNotFound,
        format!("cannot find imported file `{path}`"),
    )
}

/// An import that leads back to a file being loaded; `chain` lists the files in order.
pub fn import_cycle(chain: &[String]) -> Diag {
    Diag::error(
        Code::ImportCycle,
        format!("import cycle: {}", chain.join(" -> ")),
    )
}

/// An imported file that is not UTF-8 text.
pub fn import_not_utf8(file: &str, value: u8, line: usize, column: usize, offset: usize) -> Diag {
    Diag::error(
        Code::ImportNotUtf8,
        format!("{file} is not UTF-8 text: byte 0x{value:02x} at line {line}, column {column} (byte {offset} of the file)"),
    )
}

/// Model clauses in an imported file, which only lends its nets and priors.
pub fn imported_clauses_ignored(count: usize) -> Diag {
    Diag::warning(
        Code::ImportedClausesIgnored,
        format!("the model clauses of the imported file are ignored ({count} of them)"),
    )
}

/// A file with nothing in it; `what` is "empty" or "only comments".
pub fn empty_file(what: &str) -> Diag {
    Diag::warning(
        Code::EmptyFile,
        format!("the file is {what}: it defines nothing"),
    )
}

/// Weights that do not sum to 1 and are divided by their sum.
pub fn weights_normalised(what: &str, sum: &str) -> Diag {
    Diag::warning(
        Code::WeightsNormalised,
        format!("{what} weights sum to {sum}; they are divided by their sum"),
    )
}

/// A batch larger than the training set.
pub fn batch_larger_than_data(batch: i64, n: usize) -> Diag {
    Diag::warning(
        Code::BatchLargerThanData,
        format!("batch {batch} is larger than the {n} training examples; each step uses all {n}"),
    )
}

/// A learning-rate schedule that raises the rate instead of lowering it.
pub fn schedule_rises(schedule: &str, how: &str) -> Diag {
    Diag::warning(
        Code::ScheduleRises,
        format!("`{schedule}` raises the learning rate: {how}"),
    )
}

/// A reconstruction cost that is never positive: minimising it makes reconstructions worse.
pub fn negative_cost() -> Diag {
    Diag::warning(
        Code::NegativeCost,
        "the reconstruction cost is never positive, so minimising it makes the reconstructions worse",
    )
}

/// An activation with non-negative outputs right before the projection onto the latent space.
pub fn codes_confined(activation: &str, projection: &str, space: &str) -> Diag {
    Diag::warning(
        Code::CodesConfined,
        format!("`{activation}` before `{projection}` confines the codes to the part of {space} where every coordinate is non-negative"),
    )
    .help(format!("remove `{activation}`, so that `{projection}` sees values of both signs"))
}

/// A discriminator that ends in a sigmoid although its loss takes a logit.
pub fn discriminator_sigmoid() -> Diag {
    Diag::warning(
        Code::DiscriminatorSigmoid,
        "the discriminator ends in `sigmoid`, but its loss applies the sigmoid itself: the output should be a logit",
    )
    .help("remove the final `sigmoid`; end the discriminator with `linear(1)`")
}

/// A generator whose last activation cannot produce the data's values.
pub fn generator_range(layer: &str, range: &str, data: &str) -> Diag {
    Diag::warning(
        Code::GeneratorRange,
        format!("the generator ends in `{layer}`, with outputs in {range}, which cannot cover the data, {data}"),
    )
}

/// The kinds of name that can be unknown, each with its own code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unknown {
    Layer,
    Prior,
    Space,
    Dataset,
    Transform,
    Name,
    Cost,
    Penalty,
    Optimizer,
    Schedule,
    Validation,
    Override,
    Setting,
    Distribution,
    Component,
}

impl Unknown {
    /// The code this kind of unknown name is reported under.
    pub fn code(self) -> Code {
        match self {
            Unknown::Layer => Code::UnknownLayer,
            Unknown::Prior => Code::UnknownPrior,
            Unknown::Space => Code::UnknownSpace,
            Unknown::Dataset => Code::UnknownDataset,
            Unknown::Transform => Code::UnknownTransform,
            Unknown::Name => Code::UnknownName,
            Unknown::Cost => Code::UnknownCost,
            Unknown::Penalty => Code::UnknownPenalty,
            Unknown::Optimizer => Code::UnknownOptimizer,
            Unknown::Schedule => Code::UnknownSchedule,
            Unknown::Validation => Code::UnknownValidation,
            Unknown::Override => Code::UnknownOverride,
            Unknown::Setting => Code::UnknownSetting,
            Unknown::Distribution => Code::UnknownDistribution,
            Unknown::Component => Code::UnknownComponent,
        }
    }
    /// The noun in "unknown NOUN `name`".
    pub fn noun(self) -> &'static str {
        match self {
            Unknown::Layer => "layer or net",
            Unknown::Prior => "prior",
            Unknown::Space => "latent space",
            Unknown::Dataset => "data set",
            Unknown::Transform => "data transform",
            Unknown::Name => "name",
            Unknown::Cost => "reconstruction cost",
            Unknown::Penalty => "penalty",
            Unknown::Optimizer => "optimizer",
            Unknown::Schedule => "learning-rate schedule",
            Unknown::Validation => "validation",
            Unknown::Override => "constant or training setting",
            Unknown::Setting => "training setting",
            Unknown::Distribution => "distribution or function",
            Unknown::Component => "latent component",
        }
    }
}

/// A name that is not defined: the one wording of every `unknown_*` code.
pub fn unknown(kind: Unknown, name: &str) -> Diag {
    Diag::error(kind.code(), format!("unknown {} `{name}`", kind.noun()))
}

/// A named argument that the callee does not have.
pub fn unknown_parameter(callee: &str, name: &str) -> Diag {
    Diag::error(
        Code::UnknownParameter,
        format!("`{callee}` has no parameter `{name}`"),
    )
}

/// How many arguments a callee takes.
#[derive(Clone, Copy, Debug)]
pub enum Takes {
    Exactly(usize),
    AtMost(usize),
    AtLeast(usize),
}

/// Too many or too few arguments.
pub fn arg_count(callee: &str, takes: Takes, found: usize) -> Diag {
    let (how, n) = match takes {
        Takes::AtMost(0) => ("", 0),
        Takes::Exactly(n) => ("", n),
        Takes::AtMost(n) => ("at most ", n),
        Takes::AtLeast(n) => ("at least ", n),
    };
    let count = if n == 0 {
        "no".to_string()
    } else {
        n.to_string()
    };
    let s = if n == 1 { "" } else { "s" };
    Diag::error(
        Code::ArgCount,
        format!("`{callee}` takes {how}{count} argument{s}, found {found}"),
    )
}

/// A value of the wrong kind: "{what} must be {expected}, found {found}".
pub fn arg_type(what: &str, expected: &str, found: &str) -> Diag {
    expected_found(Code::ArgType, what, expected, found)
}

/// A value of the right kind outside its range: "{what} must be {expected}, found {found}".
pub fn invalid_value(what: &str, expected: &str, found: &str) -> Diag {
    expected_found(Code::InvalidValue, what, expected, found)
}

/// Shapes that do not fit together: "{what} must be {expected}, found {found}".
pub fn shape_mismatch(what: &str, expected: &str, found: &str) -> Diag {
    expected_found(Code::ShapeMismatch, what, expected, found)
}

/// A required argument left out; `what` is "`name`" or a short description.
pub fn missing_argument(callee: &str, what: &str) -> Diag {
    Diag::error(Code::MissingArgument, format!("`{callee}` needs {what}"))
}

/// An argument given twice.
pub fn duplicate_argument(name: &str) -> Diag {
    Diag::error(Code::DuplicateArgument, format!("`{name}` is given twice"))
}

/// Something required that is not there: "{owner} has no {what}".
pub fn missing_clause(owner: &str, what: &str) -> Diag {
    Diag::error(Code::MissingClause, format!("{owner} has no {what}"))
}

/// Two clauses where one is allowed: "the model has two {what}".
pub fn duplicate_clause(what: &str) -> Diag {
    Diag::error(Code::DuplicateClause, format!("the model has two {what}"))
}

/// A name defined again: "`{name}` is already {what}".
pub fn duplicate_definition(name: &str, what: &str) -> Diag {
    Diag::error(
        Code::DuplicateDefinition,
        format!("`{name}` is already {what}"),
    )
}

/// A definition that takes the name of a built-in or of an imported definition: it is used in
/// its place (so that adding a built-in never breaks a model file).
pub fn shadows(name: &str, hidden: &str) -> Diag {
    Diag::warning(Code::Shadows, format!("`{name}` hides {hidden}")).help(format!(
        "this file's `{name}` is used in its place; rename it to use both"
    ))
}

/// A form of an earlier version, still read: "{what}".
pub fn deprecated(what: &str) -> Diag {
    Diag::warning(Code::Deprecated, what.to_string())
}

/// A net whose expansion reaches itself.
pub fn recursive_net(name: &str) -> Diag {
    Diag::error(Code::RecursiveNet, format!("net `{name}` uses itself"))
}

/// A cost written as an expression that cannot be compiled: `problem` says why.
pub fn cost_expression(problem: &str) -> Diag {
    Diag::error(
        Code::CostExpression,
        format!("the cost expression {problem}"),
    )
}

/// A cost expression that does not mention the reconstruction `y`.
pub fn cost_without_reconstruction() -> Diag {
    Diag::warning(
        Code::CostWithoutReconstruction,
        "the cost does not depend on the reconstruction `y`: it trains neither the encoder nor the generator",
    )
    .help("write the cost in terms of the data `x` and its reconstruction `y`, e.g. `sum((x - y)^2)`")
}

/// A learnable parameter whose initial value is not a constant or a draw of constants.
pub fn param_init(name: &str, found: &str) -> Diag {
    Diag::error(
        Code::ParamInit,
        format!("the initial value of learnable parameter `{name}` must be a constant, or `normal(...)` or `uniform(...)` of constants; found {found}"),
    )
    .help(format!(
        "e.g. `param {name} = zeros(3)` or `param {name} ~ normal(zeros(k, d), 1)`; a parameter's shape is its initial value's"
    ))
}

/// A learnable parameter that reaches an operand no gradient flows through.
pub fn not_differentiable(param: &str, dist: &str, why: &str) -> Diag {
    Diag::error(
        Code::NotDifferentiable,
        format!("learnable parameter `{param}` cannot be trained through `{dist}`: {why}"),
    )
    .help("learnable parameters train through reparameterised draws: the operands of normal, uniform, laplace, exponential, gamma, beta and dirichlet, and any arithmetic on them; learn a mixture's component means and scales, not its weights")
}

/// A prior with learnable parameters on a component no sample-comparing penalty trains.
pub fn untrained_param(latent: &str, why: &str) -> Diag {
    Diag::error(
        Code::UntrainedParam,
        format!("the learnable parameters of the prior of `{latent}` would never change: {why}"),
    )
    .help("a learnable prior trains through the gradient of a penalty that compares codes with prior samples: sinkhorn, mmd, sliced or exact; or make the parameters constants (`=` without `param`)")
}

/// A prior program that calls itself.
/// A function whose body calls itself, directly or through others; `chain` lists the
/// functions being expanded, outermost first.
pub fn recursive_function(name: &str, chain: &[String]) -> Diag {
    Diag::error(
        Code::RecursiveFunction,
        format!("function `{name}` calls itself"),
    )
    .help(format!(
        "a function is expanded where it is called, so it cannot call itself; chain: {} -> {name}",
        chain.join(" -> ")
    ))
}

pub fn recursive_prior(name: &str) -> Diag {
    Diag::error(Code::RecursivePrior, format!("prior `{name}` calls itself"))
}

/// A layer that cannot take its input: "`{layer}` needs {need}, but gets {got}".
pub fn layer_input(layer: &str, need: &str, got: &str) -> Diag {
    Diag::error(
        Code::LayerInput,
        format!("`{layer}` needs {need}, but gets {got}"),
    )
}

/// Coordinates that do not fit a latent space or component.
pub fn latent_shape(what: &str, expected: &str, found: &str) -> Diag {
    expected_found(Code::LatentShape, what, expected, found)
}

/// A net's output that does not fit what consumes it.
pub fn output_shape(what: &str, expected: &str, found: &str) -> Diag {
    expected_found(Code::OutputShape, what, expected, found)
}

/// A prior whose samples lie elsewhere than the latent space.
pub fn prior_space(prior: &str, lives_on: &str, space: &str) -> Diag {
    Diag::error(
        Code::PriorSpace,
        format!("prior `{prior}` lives on {lives_on}, but the latent space is {space}"),
    )
}

/// An encoder whose codes cannot lie on the latent space.
pub fn encoder_space(ends_in: &str, space: &str) -> Diag {
    Diag::error(
        Code::EncoderSpace,
        format!("the encoder ends in {ends_in}, which does not map onto {space}"),
    )
}

/// A projection added to the end of an encoder.
pub fn projection_inserted(name: &str) -> Diag {
    Diag::warning(
        Code::ProjectionInserted,
        format!("inserted `{name}` at the end of the encoder"),
    )
}

/// A reconstruction cost that does not suit the data or the generator.
pub fn cost_output(cost: &str, need: &str, found: &str) -> Diag {
    Diag::error(
        Code::CostOutput,
        format!("{cost} needs {need}, found {found}"),
    )
}

/// A penalty or metric that does not suit the latent space, prior or encoder.
pub fn penalty_space(penalty: &str, need: &str, found: &str) -> Diag {
    Diag::error(
        Code::PenaltySpace,
        format!("{penalty} needs {need}, not {found}"),
    )
}

/// A Gaussian head outside the end of an encoder onto R^d; `problem` says where it is.
pub fn gaussian_placement(problem: &str) -> Diag {
    Diag::error(
        Code::GaussianPlacement,
        format!("a Gaussian head {problem}"),
    )
}

/// A size beyond what the tool allocates: "{what}, more than this tool allows".
pub fn too_large(what: &str) -> Diag {
    Diag::error(
        Code::TooLarge,
        format!("{what}, more than this tool allows"),
    )
}

/// A prior program that does not end in one `return`: "prior `{name}` {problem}".
pub fn prior_return(name: &str, problem: &str) -> Diag {
    Diag::error(Code::PriorReturn, format!("prior `{name}` {problem}"))
}

/// A prior's result that cannot be a latent code.
pub fn prior_result(name: &str, problem: &str) -> Diag {
    Diag::error(
        Code::PriorResult,
        format!("the result of `{name}` {problem}"),
    )
}

/// A binding in a prior program that nothing reads.
pub fn unused_variable(what: &str, name: &str) -> Diag {
    Diag::warning(
        Code::UnusedVariable,
        format!("{what} `{name}` is never used"),
    )
}
