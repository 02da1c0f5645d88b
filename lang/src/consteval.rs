//! Constant arithmetic, the one set of rules for the whole language: the checker's constants
//! (net parameters, clause arguments) and the constant folding of prior programs both compute
//! through [`binary`] and [`neg`], so `7 / 2`, `2 ^ 3` or `-x` mean the same everywhere.
//!
//! Rules: integers stay integers under `+`, `-`, `*`, under `/` when the division is exact and
//! under `^` with a non-negative exponent, as long as the result fits in an `i64`; otherwise the
//! result is real. Division by zero is an error (the only one).

use crate::diag::messages as msg;
use crate::diag::{Diag, Span};
use crate::ir::Arith;
use crate::syntax::BinOp;

/// A constant number.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Num {
    Int(i64),
    Real(f64),
}

impl Num {
    /// The value as a real number.
    pub fn as_f64(self) -> f64 {
        match self {
            Num::Int(i) => i as f64,
            Num::Real(r) => r,
        }
    }

    /// A number from a real value and whether it is known to be an integer (the form prior
    /// programs keep their constants in).
    pub fn from_f64(x: f64, int: bool) -> Num {
        if int && x.fract() == 0.0 && x.abs() < 9.0e15 {
            Num::Int(x as i64)
        } else {
            Num::Real(x)
        }
    }

    /// Whether the number is an integer.
    pub fn is_int(self) -> bool {
        matches!(self, Num::Int(_))
    }
}

/// Why a constant operation has no value.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ConstError {
    DivisionByZero,
    /// `@` between two numbers.
    MatMulOfNumbers,
}

impl ConstError {
    /// The diagnostic, at the operand that made the operation fail; the one wording of this
    /// error for the checker and prior programs alike.
    pub fn diag(self, at: Span) -> Diag {
        match self {
            ConstError::DivisionByZero => msg::invalid_value("a divisor", "non-zero", "0")
                .label(at, "zero")
                .help("divide by a non-zero number"),
            ConstError::MatMulOfNumbers => msg::arg_type(
                "an operand of `@`",
                "a matrix or a vector",
                "a number",
            )
            .label(at, "a number")
            .help("`@` multiplies matrices and vectors (in prior programs); write `*` for numbers"),
        }
    }
}

/// `a op b` under the language's rules.
pub fn binary(op: BinOp, a: Num, b: Num) -> Result<Num, ConstError> {
    if op == BinOp::Div && b.as_f64() == 0.0 {
        return Err(ConstError::DivisionByZero);
    }
    let Some(arith) = arith(op) else {
        return Err(ConstError::MatMulOfNumbers);
    };
    if op.compares() {
        return Ok(Num::Int(arith.apply(a.as_f64(), b.as_f64()) as i64));
    }
    if let (Num::Int(i), Num::Int(j)) = (a, b) {
        let exact = match op {
            BinOp::Add => i.checked_add(j),
            BinOp::Sub => i.checked_sub(j),
            BinOp::Mul => i.checked_mul(j),
            BinOp::Div => (i % j == 0).then(|| i / j),
            BinOp::Pow => u32::try_from(j).ok().and_then(|j| i.checked_pow(j)),
            _ => None, // `@` and comparisons returned above
        };
        if let Some(r) = exact {
            return Ok(Num::Int(r));
        }
    }
    Ok(Num::Real(arith.apply(a.as_f64(), b.as_f64())))
}

/// The elementwise operation of an operator; None for `@`, which is not elementwise.
pub fn arith(op: BinOp) -> Option<Arith> {
    Some(match op {
        BinOp::Add => Arith::Add,
        BinOp::Sub => Arith::Sub,
        BinOp::Mul => Arith::Mul,
        BinOp::Div => Arith::Div,
        BinOp::Pow => Arith::Pow,
        BinOp::Lt => Arith::Lt,
        BinOp::Le => Arith::Le,
        BinOp::Gt => Arith::Gt,
        BinOp::Ge => Arith::Ge,
        BinOp::Eq => Arith::Eq,
        BinOp::Ne => Arith::Ne,
        BinOp::MatMul => return None,
    })
}

/// `-a`; the one integer without a negation in `i64` becomes real.
pub fn neg(a: Num) -> Num {
    match a {
        Num::Int(i) => i.checked_neg().map_or(Num::Real(-(i as f64)), Num::Int),
        Num::Real(r) => Num::Real(-r),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use BinOp::*;
    use Num::{Int, Real};

    #[test]
    fn integers_stay_integers_when_exact() {
        assert_eq!(binary(Add, Int(2), Int(3)), Ok(Int(5)));
        assert_eq!(binary(Div, Int(8), Int(2)), Ok(Int(4)));
        assert_eq!(binary(Div, Int(7), Int(2)), Ok(Real(3.5)));
        assert_eq!(binary(Pow, Int(2), Int(10)), Ok(Int(1024)));
        assert_eq!(binary(Pow, Int(2), Int(-1)), Ok(Real(0.5)));
        assert_eq!(
            binary(Mul, Int(i64::MAX), Int(2)),
            Ok(Real(i64::MAX as f64 * 2.0))
        );
        assert_eq!(binary(Add, Int(1), Real(0.5)), Ok(Real(1.5)));
    }

    #[test]
    fn division_by_zero_is_the_only_error() {
        assert_eq!(binary(Div, Int(1), Int(0)), Err(ConstError::DivisionByZero));
        assert_eq!(
            binary(Div, Real(1.0), Real(0.0)),
            Err(ConstError::DivisionByZero)
        );
        assert_eq!(neg(Int(i64::MIN)), Real(9.223372036854776e18));
        assert_eq!(neg(Int(3)), Int(-3));
    }

    #[test]
    fn prior_constants_round_trip_through_num() {
        assert_eq!(Num::from_f64(3.0, true), Int(3));
        assert_eq!(Num::from_f64(3.0, false), Real(3.0));
        assert_eq!(Num::from_f64(2.5, true), Real(2.5));
    }
}

/// The range `a..b` that `[a:b]` selects from `len` elements (a bound left out is 0 or `len`), or
/// the message's (expected, found) when the bounds do not satisfy 0 <= a <= b <= len.
pub fn slice_range(
    lo: Option<i64>,
    hi: Option<i64>,
    len: i64,
) -> Result<std::ops::Range<usize>, (String, String)> {
    let (a, b) = (lo.unwrap_or(0), hi.unwrap_or(len));
    if 0 <= a && a <= b && b <= len {
        Ok(a as usize..b as usize)
    } else {
        Err((
            format!("within 0..{len}, its start not after its end"),
            format!("[{a}:{b}]"),
        ))
    }
}
