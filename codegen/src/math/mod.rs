//! The math built-ins as `extern "C"` functions. The interpreter calls them
//! directly and the JIT registers their addresses as symbols, so both back ends
//! compute bit-identical results. `exp`, the one the kernels of nearly every
//! channel call most, also exists as [`exp_table_driven`]: the C library's own
//! algorithm, which the JIT and the Rust back end compute inline (no call)
//! where [`table_exp_matches_libm`] holds.

use std::sync::OnceLock;

use crate::ir::MathFn;

mod exp_table;
pub use exp_table::EXP_TABLE;

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

/// The constants of the table-driven exp below: 128/ln 2, the rounding
/// shift 1.5·2^52, −ln 2/128 split into a high part (whose product with the
/// integer k is exact) and a low part, and the coefficients of the
/// polynomial for e^r − 1 on |r| ≤ ln 2/256.
pub mod exp_consts {
    /// 128/ln 2.
    pub const INV_LN2_N: f64 = f64::from_bits(0x4067_1547_652b_82fe);
    /// 1.5·2^52: adding it rounds to an integer held in the low bits.
    pub const SHIFT: f64 = f64::from_bits(0x4338_0000_0000_0000);
    /// −ln 2/128, high part.
    pub const NEG_LN2_HI_N: f64 = f64::from_bits(0xbf76_2e42_fefa_0000);
    /// −ln 2/128, low part.
    pub const NEG_LN2_LO_N: f64 = f64::from_bits(0xbd0c_f79a_bc9e_3b3a);
    /// Coefficients of r², r³, r⁴, r⁵.
    pub const C2: f64 = f64::from_bits(0x3fdf_ffff_ffff_fdbd);
    pub const C3: f64 = f64::from_bits(0x3fc5_5555_5555_543c);
    pub const C4: f64 = f64::from_bits(0x3fa5_5555_cf17_2b91);
    pub const C5: f64 = f64::from_bits(0x3f81_1111_67a4_d017);
    /// The argument range the table path covers: the biased exponent of
    /// |x| minus `TOP_MIN` must be at most `TOP_SPAN` (2^−54 ≤ |x| < 512).
    pub const TOP_MIN: u64 = 0x3c9;
    pub const TOP_SPAN: u64 = 0x3e;
}

/// e^x by the table-driven algorithm of the GNU C library's `exp` (glibc
/// 2.28 and later, from Arm's optimized-routines; Szabolcs Nagy), in the
/// form glibc runs on x86-64 processors with FMA: the same constants, the
/// same table (computed by `scripts/gen_exp_table.py`) and the same fused
/// multiply-adds. `None` outside 2^−54 ≤ |x| < 512 (and for NaN), where the
/// caller uses the C library's `exp` itself.
///
/// NEURON's generated C calls `exp`, so where this agrees with the C library
/// bit for bit (see [`table_exp_matches_libm`]) the JIT can inline it, with
/// no call, and still compute NEURON's numbers exactly.
pub fn exp_table_driven(x: f64) -> Option<f64> {
    use exp_consts::*;
    let abstop = (x.to_bits() >> 52) & 0x7ff;
    if abstop.wrapping_sub(TOP_MIN) > TOP_SPAN {
        return None;
    }
    let kd = x.mul_add(INV_LN2_N, SHIFT);
    let ki = kd.to_bits();
    let kd = kd - SHIFT;
    let r = kd.mul_add(NEG_LN2_HI_N, x);
    let r = kd.mul_add(NEG_LN2_LO_N, r);
    let idx = 2 * (ki & 127) as usize;
    let tail = f64::from_bits(EXP_TABLE[idx]);
    let sbits = EXP_TABLE[idx + 1].wrapping_add(ki << 45);
    let r2 = r * r;
    let low = r.mul_add(C3, C2);
    let high = r.mul_add(C5, C4);
    let tmp = (r2 * r2).mul_add(high, low.mul_add(r2, tail + r));
    let scale = f64::from_bits(sbits);
    Some(scale.mul_add(tmp, scale))
}

/// Whether [`exp_table_driven`] returns what this process's C library `exp`
/// returns, bit for bit, on 4,096 arguments spread over the table path's
/// range (checked once per process). True with glibc 2.28 or later on a
/// processor with FMA and AVX2; false elsewhere (another C library, or
/// glibc's non-FMA variant), and then the back ends call `exp`.
pub fn table_exp_matches_libm() -> bool {
    static MATCHES: OnceLock<bool> = OnceLock::new();
    *MATCHES.get_or_init(|| {
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        (0..4096).all(|i| {
            let unit = next_unit(&mut state);
            let x = match i % 4 {
                0 => (unit - 0.5) * 1000.0,
                1 => (unit - 0.5) * 2.0,
                2 => (unit - 0.5) * 1e-6,
                _ => (unit - 0.5) * 80.0,
            };
            exp_table_driven(x).is_none_or(|y| y.to_bits() == x.exp().to_bits())
        })
    })
}

/// A deterministic uniform deviate in [0, 1) (xorshift64), for spreading
/// test arguments.
fn next_unit(state: &mut u64) -> f64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    (*state >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Distance in units in the last place between two finite doubles of
    /// the same sign.
    fn ulps(a: f64, b: f64) -> u64 {
        (a.to_bits() as i64 - b.to_bits() as i64).unsigned_abs()
    }

    /// Over two million arguments (uniform over the table path's range,
    /// over hh's range, and tiny ones), the table-driven exp is the C
    /// library's exp bit for bit where [`table_exp_matches_libm`] says so
    /// (glibc on an FMA machine, as on this one), and within one ulp of
    /// it anywhere else; outside its range it declines.
    #[test]
    fn table_exp_agrees_with_the_c_library() {
        let exact = table_exp_matches_libm();
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        let mut worst = 0;
        let mut checked = 0;
        for i in 0..2_000_000 {
            let unit = next_unit(&mut state);
            let x = match i % 3 {
                0 => (unit - 0.5) * 1023.0,
                1 => (unit - 0.5) * 40.0,
                // 1e-15 to 1e-6, both signs.
                _ => (if i % 2 == 0 { 1e-15 } else { -1e-15 }) * 1e9f64.powf(unit),
            };
            let Some(y) = exp_table_driven(x) else {
                panic!("{x} is in the table path's range");
            };
            let d = ulps(y, x.exp());
            assert!(
                !exact || d == 0,
                "exp({x:e}): {y:e} but the C library gives {:e}",
                x.exp()
            );
            worst = worst.max(d);
            checked += 1;
        }
        assert_eq!(checked, 2_000_000);
        assert!(worst <= 1, "worst difference {worst} ulp");
        for x in [
            0.0,
            -0.0,
            1e-300,
            512.0,
            -512.0,
            709.0,
            -745.0,
            f64::NAN,
            f64::INFINITY,
        ] {
            assert_eq!(exp_table_driven(x), None, "{x}");
        }
        assert_eq!(
            exp_table_driven(1.0).map(f64::to_bits),
            Some(1f64.exp().to_bits())
        );
    }

    /// The generated table is what its definition says: entry 2k + 1 holds
    /// 2^(k/128) rounded, less k << 45, and entry 2k its relative rounding
    /// error, which is below half an ulp.
    #[test]
    fn exp_table_matches_its_definition() {
        for k in 0..128u64 {
            let h = f64::from_bits(EXP_TABLE[2 * k as usize + 1].wrapping_add(k << 45));
            let want = (k as f64 / 128.0).exp2();
            assert!(ulps(h, want) <= 1, "k = {k}: {h} against {want}");
            let t = f64::from_bits(EXP_TABLE[2 * k as usize]);
            assert!(t.abs() <= f64::EPSILON / 2.0, "k = {k}: tail {t}");
        }
    }
}
