//! The math built-ins as `extern "C"` functions. The interpreter calls them
//! directly and the JIT registers their addresses as symbols, so both back ends
//! compute bit-identical results.

use crate::ir::MathFn;

macro_rules! unary {
    ($($name:ident => $body:expr;)*) => {
        $(
            #[doc = concat!("The `", stringify!($name), "` built-in.")]
            pub extern "C" fn $name(x: f64) -> f64 {
                let f: fn(f64) -> f64 = $body;
                f(x)
            }
        )*
    };
}

macro_rules! binary {
    ($($name:ident => $body:expr;)*) => {
        $(
            #[doc = concat!("The `", stringify!($name), "` built-in.")]
            pub extern "C" fn $name(x: f64, y: f64) -> f64 {
                let f: fn(f64, f64) -> f64 = $body;
                f(x, y)
            }
        )*
    };
}

unary! {
    nrn_exp => f64::exp;
    nrn_log => f64::ln;
    nrn_log10 => f64::log10;
    nrn_sqrt => f64::sqrt;
    nrn_fabs => f64::abs;
    nrn_sin => f64::sin;
    nrn_cos => f64::cos;
    nrn_tan => f64::tan;
    nrn_tanh => f64::tanh;
    nrn_sinh => f64::sinh;
    nrn_cosh => f64::cosh;
    nrn_asin => f64::asin;
    nrn_acos => f64::acos;
    nrn_atan => f64::atan;
    nrn_floor => f64::floor;
    nrn_ceil => f64::ceil;
    nrn_expm1 => f64::exp_m1;
    nrn_log1p => f64::ln_1p;
    nrn_erf => libm::erf;
    nrn_erfc => libm::erfc;
    nrn_exprelr => |x| if 1.0 + x == 1.0 { 1.0 } else { x / x.exp_m1() };
}

binary! {
    nrn_pow => f64::powf;
    nrn_atan2 => f64::atan2;
    nrn_fmod => |x, y| x % y;
    nrn_fmin => f64::min;
    nrn_fmax => f64::max;
}

/// A built-in's implementation, by arity.
#[derive(Clone, Copy)]
pub enum MathImpl {
    /// One argument.
    Unary(extern "C" fn(f64) -> f64),
    /// Two arguments.
    Binary(extern "C" fn(f64, f64) -> f64),
}

impl MathImpl {
    /// The function's address, for JIT symbol registration.
    pub fn address(self) -> *const u8 {
        match self {
            MathImpl::Unary(f) => f as *const u8,
            MathImpl::Binary(f) => f as *const u8,
        }
    }
}

/// The JIT symbol name of `fun`: `nrnrs_math_<name>`.
pub fn symbol_name(fun: MathFn) -> String {
    format!("nrnrs_math_{}", fun.name())
}

/// The implementation of `fun`.
pub fn implementation(fun: MathFn) -> MathImpl {
    use MathFn::*;
    use MathImpl::{Binary as B, Unary as U};
    match fun {
        Exp => U(nrn_exp),
        Log => U(nrn_log),
        Log10 => U(nrn_log10),
        Sqrt => U(nrn_sqrt),
        Pow => B(nrn_pow),
        Fabs => U(nrn_fabs),
        Sin => U(nrn_sin),
        Cos => U(nrn_cos),
        Tan => U(nrn_tan),
        Tanh => U(nrn_tanh),
        Sinh => U(nrn_sinh),
        Cosh => U(nrn_cosh),
        Asin => U(nrn_asin),
        Acos => U(nrn_acos),
        Atan => U(nrn_atan),
        Atan2 => B(nrn_atan2),
        Floor => U(nrn_floor),
        Ceil => U(nrn_ceil),
        Fmod => B(nrn_fmod),
        Fmin => B(nrn_fmin),
        Fmax => B(nrn_fmax),
        Exprelr => U(nrn_exprelr),
        Expm1 => U(nrn_expm1),
        Log1p => U(nrn_log1p),
        Erf => U(nrn_erf),
        Erfc => U(nrn_erfc),
    }
}

/// Evaluates `fun` on `args` (the interpreter's path).
pub fn eval(fun: MathFn, args: &[f64]) -> f64 {
    match implementation(fun) {
        MathImpl::Unary(f) => f(args[0]),
        MathImpl::Binary(f) => f(args[0], args[1]),
    }
}
