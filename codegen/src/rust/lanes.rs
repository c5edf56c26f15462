//! Four instances at a time: lane-wise bodies for the per-step kernels.
//!
//! The division is the bound of the hh kernels (14 per compartment-step,
//! none of which may become a multiplication if results are to stay
//! NEURON's). One `vdivpd` on four lanes costs what one scalar `divsd`
//! costs, so a body that runs four instances side by side, each with the
//! same IEEE operations as the scalar body, computes the same bits in about
//! a quarter of the divider time. The generated lane code calls small
//! helpers (`vdiv`, `vsel`, `vexp`, …) on lane values: 256-bit vectors with
//! one AVX2 instruction per helper where the unit is compiled with AVX2
//! (as nrnivmodl-rs does on such machines), `[f64; 4]` arrays elsewhere.
//! `vexp` is the C library's table-driven `exp` on four lanes, operation for
//! operation, so it too gives each lane the scalar result.
//!
//! The lane body is speculative; it has no side effects until all four lanes
//! are known to have run the way the scalar body would:
//! - locals and stored fields live in lane values and are written back at
//!   the end;
//! - accumulations into `rhs`, `d` and ion currents are applied at the end,
//!   lane 0 first and each lane's in statement order, which is the order the
//!   scalar loop applies them;
//! - branches run under a lane mask, are skipped when no lane takes them,
//!   and keep the old value of what they assign in the lanes that do not;
//! - whatever the lanes cannot do without side effects of their own (a call
//!   of a FUNCTION or PROCEDURE, a loop, `return`, an error, a TABLE index
//!   out of range, an accumulation inside a branch) marks the lanes that
//!   reach it as failed.
//!
//! When a lane failed, the lane body returns `false` having written
//! nothing, and the kernel runs the scalar body for the four instances,
//! which also reports any error for the right instance. [`supported`] admits
//! only bodies whose unconditional statements the lanes can all run.

use std::collections::HashSet;

use super::{ion_ptr, lit, math_call, Mech, Out};
use crate::ir::*;

/// The number of lanes (instances per lane body).
pub const WIDTH: usize = 4;

/// Whether the per-instance kernel `body` can run [`WIDTH`] instances at a
/// time: it has no local arrays, stores only to the instance's own scalar
/// fields, draws no random numbers, reads no ion current it adds to, and
/// every statement outside a branch is one the lanes run (assignments,
/// field stores, accumulations, branches) on expressions they evaluate.
pub fn supported(body: &Body) -> bool {
    if !body.arrays.is_empty() {
        return false;
    }
    let top_level_ok = body.block.iter().all(|s| match s {
        Statement::Assign { value, .. } => lane_expression(body, *value),
        Statement::Store {
            place: Place::Field { index: None, .. },
            value,
        } => lane_expression(body, *value),
        Statement::Accumulate { value, .. } => lane_expression(body, *value),
        Statement::If { condition, .. } => lane_expression(body, *condition),
        _ => false,
    });
    if !top_level_ok {
        return false;
    }
    let mut ok = true;
    let mut accumulated_ions = HashSet::new();
    each_statement(&body.block, &mut |s| match s {
        Statement::Store { place, .. } => {
            ok &= matches!(place, Place::Field { index: None, .. });
        }
        Statement::Accumulate {
            target: AccumTarget::IonCur(ion) | AccumTarget::IonDcurDv(ion),
            ..
        } => {
            accumulated_ions.insert(*ion);
        }
        _ => {}
    });
    for (_, e) in body.expressions.iter() {
        match e {
            Expression::RandomUniform => ok = false,
            Expression::Load(Place::Ion {
                ion,
                var: IonVar::Cur | IonVar::DcurDv,
            }) => ok &= !accumulated_ions.contains(ion),
            _ => {}
        }
    }
    ok
}

/// Whether the lanes evaluate `h` without failing: no calls of FUNCTIONs, no
/// random numbers, and loads only from places with a per-lane address.
fn lane_expression(body: &Body, h: Handle<Expression>) -> bool {
    let child = |c: Handle<Expression>| lane_expression(body, c);
    match &body.expressions[h] {
        Expression::Constant(_)
        | Expression::Bool(_)
        | Expression::Local(_)
        | Expression::Env(_) => true,
        Expression::Load(place) => match place {
            Place::Field { index, .. } => index.is_none(),
            Place::Global { index, .. } => index.is_none_or(child),
            Place::NodeV
            | Place::NodeArea
            | Place::NodeDiam
            | Place::Ion { .. }
            | Place::IonValence(_) => true,
            Place::Pointer(_) | Place::LocalArray { .. } | Place::Weight(_) => false,
        },
        Expression::Unary { arg, .. } => child(*arg),
        Expression::Binary { left, right, .. } => child(*left) && child(*right),
        Expression::Select {
            condition,
            accept,
            reject,
        } => child(*condition) && child(*accept) && child(*reject),
        Expression::Math { args, .. } => args.iter().all(|a| child(*a)),
        Expression::BoolToF64(a) | Expression::F64ToBool(a) => child(*a),
        Expression::Call { .. } | Expression::RandomUniform => false,
    }
}

/// The lane helpers every source with lane bodies starts with (after
/// `exp`, which `vexp` uses).
pub const PREAMBLE: &str = r#"
/// Lane values: one f64 (`V`) or truth value (`B`) per instance of a lane
/// body. With AVX2 they are 256-bit vectors and each helper one or two
/// instructions; elsewhere arrays, operated on lane by lane. Either way each
/// lane gets exactly the IEEE operation the scalar body performs.
#[cfg(all(target_arch = "x86_64", target_feature = "avx2"))]
mod lane {
    use core::arch::x86_64::*;
    pub type V = __m256d;
    /// All ones in a true lane, all zeros in a false one.
    pub type B = __m256d;

    #[inline(always)]
    pub fn vs(x: f64) -> V {
        unsafe { _mm256_set1_pd(x) }
    }
    #[inline(always)]
    pub fn vfrom(a: f64, b: f64, c: f64, d: f64) -> V {
        unsafe { _mm256_setr_pd(a, b, c, d) }
    }
    #[inline(always)]
    pub fn varray(a: V) -> [f64; 4] {
        let mut out = [0.0; 4];
        unsafe { _mm256_storeu_pd(out.as_mut_ptr(), a) };
        out
    }
    #[inline(always)]
    pub fn bconst(t: bool) -> B {
        unsafe { _mm256_castsi256_pd(_mm256_set1_epi64x(-(t as i64))) }
    }
    #[inline(always)]
    pub fn vadd(a: V, b: V) -> V {
        unsafe { _mm256_add_pd(a, b) }
    }
    #[inline(always)]
    pub fn vsub(a: V, b: V) -> V {
        unsafe { _mm256_sub_pd(a, b) }
    }
    #[inline(always)]
    pub fn vmul(a: V, b: V) -> V {
        unsafe { _mm256_mul_pd(a, b) }
    }
    #[inline(always)]
    pub fn vdiv(a: V, b: V) -> V {
        unsafe { _mm256_div_pd(a, b) }
    }
    #[inline(always)]
    pub fn vneg(a: V) -> V {
        unsafe { _mm256_xor_pd(a, _mm256_set1_pd(-0.0)) }
    }
    #[inline(always)]
    pub fn vlt(a: V, b: V) -> B {
        unsafe { _mm256_cmp_pd::<_CMP_LT_OQ>(a, b) }
    }
    #[inline(always)]
    pub fn vle(a: V, b: V) -> B {
        unsafe { _mm256_cmp_pd::<_CMP_LE_OQ>(a, b) }
    }
    #[inline(always)]
    pub fn vgt(a: V, b: V) -> B {
        unsafe { _mm256_cmp_pd::<_CMP_GT_OQ>(a, b) }
    }
    #[inline(always)]
    pub fn vge(a: V, b: V) -> B {
        unsafe { _mm256_cmp_pd::<_CMP_GE_OQ>(a, b) }
    }
    #[inline(always)]
    pub fn veq(a: V, b: V) -> B {
        unsafe { _mm256_cmp_pd::<_CMP_EQ_OQ>(a, b) }
    }
    /// `!=` is true when either side is NaN, as in C.
    #[inline(always)]
    pub fn vne(a: V, b: V) -> B {
        unsafe { _mm256_cmp_pd::<_CMP_NEQ_UQ>(a, b) }
    }
    #[inline(always)]
    pub fn band(a: B, b: B) -> B {
        unsafe { _mm256_and_pd(a, b) }
    }
    #[inline(always)]
    pub fn bor(a: B, b: B) -> B {
        unsafe { _mm256_or_pd(a, b) }
    }
    #[inline(always)]
    pub fn bnot(a: B) -> B {
        unsafe { _mm256_xor_pd(a, bconst(true)) }
    }
    #[inline(always)]
    pub fn any(a: B) -> bool {
        unsafe { _mm256_movemask_pd(a) != 0 }
    }
    /// `a` in the lanes of `m`, `b` in the others.
    #[inline(always)]
    pub fn vsel(m: B, a: V, b: V) -> V {
        unsafe { _mm256_blendv_pd(b, a, m) }
    }
    #[inline(always)]
    pub fn bsel(m: B, a: B, b: B) -> B {
        vsel(m, a, b)
    }
    #[inline(always)]
    pub fn vb2f(m: B) -> V {
        unsafe { _mm256_and_pd(m, _mm256_set1_pd(1.0)) }
    }
    /// Four consecutive elements from `p + i`.
    #[inline(always)]
    pub unsafe fn vld(p: *const f64, i: usize) -> V {
        _mm256_loadu_pd(p.add(i))
    }
    #[inline(always)]
    pub unsafe fn vst(p: *mut f64, i: usize, v: V) {
        _mm256_storeu_pd(p.add(i), v)
    }
}

#[cfg(not(all(target_arch = "x86_64", target_feature = "avx2")))]
mod lane {
    pub type V = [f64; 4];
    pub type B = [bool; 4];

    #[inline(always)]
    pub fn vs(x: f64) -> V {
        [x; 4]
    }
    #[inline(always)]
    pub fn vfrom(a: f64, b: f64, c: f64, d: f64) -> V {
        [a, b, c, d]
    }
    #[inline(always)]
    pub fn varray(a: V) -> [f64; 4] {
        a
    }
    #[inline(always)]
    pub fn bconst(t: bool) -> B {
        [t; 4]
    }
    #[inline(always)]
    fn zip(a: V, b: V, f: fn(f64, f64) -> f64) -> V {
        [f(a[0], b[0]), f(a[1], b[1]), f(a[2], b[2]), f(a[3], b[3])]
    }
    #[inline(always)]
    fn cmp(a: V, b: V, f: fn(f64, f64) -> bool) -> B {
        [f(a[0], b[0]), f(a[1], b[1]), f(a[2], b[2]), f(a[3], b[3])]
    }
    #[inline(always)]
    pub fn vadd(a: V, b: V) -> V {
        zip(a, b, |x, y| x + y)
    }
    #[inline(always)]
    pub fn vsub(a: V, b: V) -> V {
        zip(a, b, |x, y| x - y)
    }
    #[inline(always)]
    pub fn vmul(a: V, b: V) -> V {
        zip(a, b, |x, y| x * y)
    }
    #[inline(always)]
    pub fn vdiv(a: V, b: V) -> V {
        zip(a, b, |x, y| x / y)
    }
    #[inline(always)]
    pub fn vneg(a: V) -> V {
        [-a[0], -a[1], -a[2], -a[3]]
    }
    #[inline(always)]
    pub fn vlt(a: V, b: V) -> B {
        cmp(a, b, |x, y| x < y)
    }
    #[inline(always)]
    pub fn vle(a: V, b: V) -> B {
        cmp(a, b, |x, y| x <= y)
    }
    #[inline(always)]
    pub fn vgt(a: V, b: V) -> B {
        cmp(a, b, |x, y| x > y)
    }
    #[inline(always)]
    pub fn vge(a: V, b: V) -> B {
        cmp(a, b, |x, y| x >= y)
    }
    #[inline(always)]
    pub fn veq(a: V, b: V) -> B {
        cmp(a, b, |x, y| x == y)
    }
    #[inline(always)]
    pub fn vne(a: V, b: V) -> B {
        cmp(a, b, |x, y| x != y)
    }
    #[inline(always)]
    pub fn band(a: B, b: B) -> B {
        [a[0] & b[0], a[1] & b[1], a[2] & b[2], a[3] & b[3]]
    }
    #[inline(always)]
    pub fn bor(a: B, b: B) -> B {
        [a[0] | b[0], a[1] | b[1], a[2] | b[2], a[3] | b[3]]
    }
    #[inline(always)]
    pub fn bnot(a: B) -> B {
        [!a[0], !a[1], !a[2], !a[3]]
    }
    #[inline(always)]
    pub fn any(a: B) -> bool {
        a[0] | a[1] | a[2] | a[3]
    }
    #[inline(always)]
    pub fn vsel(m: B, a: V, b: V) -> V {
        [
            if m[0] { a[0] } else { b[0] },
            if m[1] { a[1] } else { b[1] },
            if m[2] { a[2] } else { b[2] },
            if m[3] { a[3] } else { b[3] },
        ]
    }
    #[inline(always)]
    pub fn bsel(m: B, a: B, b: B) -> B {
        [
            if m[0] { a[0] } else { b[0] },
            if m[1] { a[1] } else { b[1] },
            if m[2] { a[2] } else { b[2] },
            if m[3] { a[3] } else { b[3] },
        ]
    }
    #[inline(always)]
    pub fn vb2f(m: B) -> V {
        vsel(m, vs(1.0), vs(0.0))
    }
    #[inline(always)]
    pub unsafe fn vld(p: *const f64, i: usize) -> V {
        [*p.add(i), *p.add(i + 1), *p.add(i + 2), *p.add(i + 3)]
    }
    #[inline(always)]
    pub unsafe fn vst(p: *mut f64, i: usize, v: V) {
        *p.add(i) = v[0];
        *p.add(i + 1) = v[1];
        *p.add(i + 2) = v[2];
        *p.add(i + 3) = v[3];
    }
}

use lane::*;

/// `f` of each lane (a function pointer, so one copy of this compiles).
#[inline(always)]
fn vmap(a: V, f: fn(f64) -> f64) -> V {
    let a = varray(a);
    vfrom(f(a[0]), f(a[1]), f(a[2]), f(a[3]))
}
#[inline(always)]
fn vmap2(a: V, b: V, f: fn(f64, f64) -> f64) -> V {
    let (a, b) = (varray(a), varray(b));
    vfrom(f(a[0], b[0]), f(a[1], b[1]), f(a[2], b[2]), f(a[3], b[3]))
}
/// Lane `l` of `a`.
#[inline(always)]
fn vlane(a: V, l: usize) -> f64 {
    varray(a)[l]
}
/// Element `k` of the array at `p` (of `len` elements) in each lane, and
/// whether `k` was in range (`-1 < k < len`, then truncated, as `idx`); a
/// lane out of range reads element 0.
#[inline(always)]
unsafe fn vgather(p: *const f64, k: V, len: u32) -> (V, B) {
    let ok = band(vgt(k, vs(-1.0)), vlt(k, vs(len as f64)));
    let (k, okl) = (varray(k), varray(vb2f(ok)));
    let at = |l: usize| *p.add(if okl[l] != 0.0 { k[l] as usize } else { 0 });
    (vfrom(at(0), at(1), at(2), at(3)), ok)
}
/// `exp` in each lane: the C library's table-driven computation on all four
/// lanes at once when every lane is in its range, else `exp` lane by lane.
#[inline(always)]
unsafe fn vexp(x: V) -> V {
    #[cfg(all(target_arch = "x86_64", target_feature = "fma", target_feature = "avx2"))]
    {
        if let Some(y) = vexp_table_driven(x) {
            return y;
        }
    }
    vexp_lanewise(x)
}
/// `exp` lane by lane (out of line: it is rarely needed).
#[inline(never)]
fn vexp_lanewise(x: V) -> V {
    vmap(x, |y| unsafe { exp(y) })
}
/// `exp_table_driven` on four lanes with AVX2: the same operations in the
/// same order per lane (the table read with gathers), so each lane's bits
/// are the scalar function's; `None` when a lane is outside its range.
#[cfg(all(target_arch = "x86_64", target_feature = "fma", target_feature = "avx2"))]
#[inline(always)]
unsafe fn vexp_table_driven(xv: V) -> Option<V> {
    use core::arch::x86_64::*;
    let c = |v: f64| _mm256_set1_pd(v);
    let bits = _mm256_castpd_si256(xv);
    let abstop = _mm256_and_si256(_mm256_srli_epi64::<52>(bits), _mm256_set1_epi64x(0x7ff));
    let d = _mm256_sub_epi64(abstop, _mm256_set1_epi64x(EXP_TOP_MIN as i64));
    let below = _mm256_cmpgt_epi64(_mm256_setzero_si256(), d);
    let above = _mm256_cmpgt_epi64(d, _mm256_set1_epi64x(EXP_TOP_SPAN as i64));
    if _mm256_movemask_pd(_mm256_castsi256_pd(_mm256_or_si256(below, above))) != 0 {
        return None;
    }
    let kd = _mm256_fmadd_pd(xv, c(EXP_INV_LN2_N), c(EXP_SHIFT));
    let ki = _mm256_castpd_si256(kd);
    let kd = _mm256_sub_pd(kd, c(EXP_SHIFT));
    let r = _mm256_fmadd_pd(kd, c(EXP_NEG_LN2_HI_N), xv);
    let r = _mm256_fmadd_pd(kd, c(EXP_NEG_LN2_LO_N), r);
    let idx = _mm256_slli_epi64::<1>(_mm256_and_si256(ki, _mm256_set1_epi64x(127)));
    let table = EXP_TABLE.as_ptr() as *const i64;
    let tail = _mm256_castsi256_pd(_mm256_i64gather_epi64::<8>(table, idx));
    let sbase = _mm256_i64gather_epi64::<8>(table.add(1), idx);
    let sbits = _mm256_add_epi64(sbase, _mm256_slli_epi64::<45>(ki));
    let r2 = _mm256_mul_pd(r, r);
    let low = _mm256_fmadd_pd(r, c(EXP_C3), c(EXP_C2));
    let high = _mm256_fmadd_pd(r, c(EXP_C5), c(EXP_C4));
    let inner = _mm256_fmadd_pd(low, r2, _mm256_add_pd(tail, r));
    let tmp = _mm256_fmadd_pd(_mm256_mul_pd(r2, r2), high, inner);
    let scale = _mm256_castsi256_pd(sbits);
    Some(_mm256_fmadd_pd(scale, tmp, scale))
}
"#;

/// Emits the lane body of one kernel, `unsafe fn {name}(cx, i) -> bool`,
/// which runs instances `i .. i + WIDTH` and returns whether it did (or
/// `false`, having written nothing, when the scalar body must run them).
pub(super) fn emit_body(mech: &Mech, out: &mut Out, kernel: &Kernel, name: &str) {
    let body = &kernel.body;
    let mut e = Lanes {
        mech,
        body,
        stored: Vec::new(),
        temps: std::cell::Cell::new(0),
        accumulations: std::cell::RefCell::new(Vec::new()),
    };
    e.stored = e.stored_columns();
    out.line("#[inline(always)]");
    out.open(&format!(
        "unsafe fn {name}(cx: &{}, i: u32) -> bool {{",
        mech.cx_type()
    ));
    out.line("let iu = i as usize;");
    out.line("let mut fail: B = bconst(false);");
    for (h, l) in body.locals.iter() {
        let (ty, zero) = match l.ty {
            Type::F64 => ("V", "vs(0.0)"),
            Type::Bool => ("B", "bconst(false)"),
        };
        out.line(&format!("let mut {}: {ty} = {zero};", e.local(h)));
    }
    for &c in &e.stored {
        if e.old_value_used(c) {
            out.line(&format!("let mut s{c}: V = vld(cx.cols[{c}], iu);"));
        } else {
            // Written on every path that commits before anything reads it.
            out.line(&format!("let mut s{c}: V = vs(0.0);"));
        }
    }
    e.block(out, &body.block, None);
    out.line("if any(fail) { return false; }");
    for c in &e.stored {
        out.line(&format!("vst(cx.cols[{c}], iu, s{c});"));
    }
    let accumulations = e.accumulations.borrow();
    if !accumulations.is_empty() {
        out.open("for l in 0..4 {");
        for (target, op, value) in accumulations.iter() {
            let p = match target {
                AccumTarget::NodeRhs => "cx.rhs.add(cx.node(iu + l))".to_string(),
                AccumTarget::NodeD => "cx.d.add(cx.node(iu + l))".to_string(),
                AccumTarget::IonCur(ion) => ion_ptr(*ion, IonVar::Cur, "iu + l"),
                AccumTarget::IonDcurDv(ion) => ion_ptr(*ion, IonVar::DcurDv, "iu + l"),
            };
            let op = match op {
                AccumOp::Add => '+',
                AccumOp::Sub => '-',
            };
            out.line(&format!(
                "{{ let k_p: *mut f64 = {p}; *k_p = *k_p {op} vlane({value}, l); }}"
            ));
        }
        out.close("}");
    }
    out.line("true");
    out.close("}");
}

struct Lanes<'a> {
    mech: &'a Mech<'a>,
    body: &'a Body,
    /// The scalar field columns the body stores to ([`Self::stored_columns`]),
    /// each held in a lane value `s{column}` until the end.
    stored: Vec<usize>,
    temps: std::cell::Cell<usize>,
    /// (target, operator, lane value name) of each top-level accumulation.
    accumulations: std::cell::RefCell<Vec<(AccumTarget, AccumOp, String)>>,
}

impl Lanes<'_> {
    fn local(&self, l: Handle<Local>) -> String {
        format!("l{l}", l = l.index())
    }

    /// The scalar field columns the body stores to, in column order.
    fn stored_columns(&self) -> Vec<usize> {
        let mut columns = Vec::new();
        each_statement(&self.body.block, &mut |s| {
            if let Statement::Store {
                place: Place::Field { field, index: None },
                ..
            } = s
            {
                columns.push(self.mech.vm.field_column(*field));
            }
        });
        columns.sort_unstable();
        columns.dedup();
        columns
    }

    /// Whether the body can read, or keep, the value column `c` had before
    /// it ran: not when the first top-level statement touching `c` stores
    /// it on every path that does not fail, without reading it first.
    fn old_value_used(&self, c: usize) -> bool {
        for s in &self.body.block {
            let (reads, stores) = self.touches(std::slice::from_ref(s), c);
            if reads {
                return true;
            }
            if stores {
                return !self.always_stores(std::slice::from_ref(s), c);
            }
        }
        true
    }

    /// Whether `block` reads column `c` anywhere, and whether it stores it
    /// anywhere.
    fn touches(&self, block: &[Statement], c: usize) -> (bool, bool) {
        let vm = self.mech.vm;
        let is_c = |p: &Place| matches!(p, Place::Field { field, index: None } if vm.field_column(*field) == c);
        let mut stores = false;
        let mut roots = Vec::new();
        each_statement(block, &mut |s| match s {
            Statement::Assign { value, .. } | Statement::Accumulate { value, .. } => {
                roots.push(*value)
            }
            Statement::Store { place, value } => {
                stores |= is_c(place);
                roots.push(*value);
            }
            Statement::If { condition, .. } | Statement::While { condition, .. } => {
                roots.push(*condition)
            }
            Statement::ForRange { start, end, .. } => roots.extend([*start, *end]),
            // The lanes fail on the rest: what they read does not matter.
            _ => {}
        });
        let reads = roots.into_iter().any(|h| self.reads(h, &is_c));
        (reads, stores)
    }

    /// Whether expression `h` loads from a place `is_c` accepts.
    fn reads(&self, h: Handle<Expression>, is_c: &dyn Fn(&Place) -> bool) -> bool {
        let r = |x: Handle<Expression>| self.reads(x, is_c);
        match &self.body.expressions[h] {
            Expression::Load(p) => {
                is_c(p)
                    || match p {
                        Place::Field { index: Some(x), .. }
                        | Place::Global { index: Some(x), .. } => r(*x),
                        Place::LocalArray { index, .. } => r(*index),
                        _ => false,
                    }
            }
            Expression::Unary { arg, .. }
            | Expression::BoolToF64(arg)
            | Expression::F64ToBool(arg) => r(*arg),
            Expression::Binary { left, right, .. } => r(*left) || r(*right),
            Expression::Select {
                condition,
                accept,
                reject,
            } => r(*condition) || r(*accept) || r(*reject),
            Expression::Math { args, .. } | Expression::Call { args, .. } => {
                args.iter().any(|a| r(*a))
            }
            _ => false,
        }
    }

    /// Whether every path through `block` that the lanes run to the end
    /// stores column `c` (a path through a statement they fail on counts).
    fn always_stores(&self, block: &[Statement], c: usize) -> bool {
        block.iter().any(|s| match s {
            Statement::Store {
                place: Place::Field { field, index: None },
                ..
            } => self.mech.vm.field_column(*field) == c,
            Statement::Store { .. } | Statement::Assign { .. } | Statement::Accumulate { .. } => {
                false
            }
            Statement::If { accept, reject, .. } => {
                self.always_stores(accept, c) && self.always_stores(reject, c)
            }
            _ => true,
        })
    }

    fn temp(&self) -> String {
        let n = self.temps.get();
        self.temps.set(n + 1);
        format!("t{n}")
    }

    /// Binds `value` (of lane type `ty`) to a fresh temporary.
    fn bind(&self, out: &mut Out, ty: &str, value: String) -> String {
        let t = self.temp();
        out.line(&format!("let {t}: {ty} = {value};"));
        t
    }

    /// `mask & c`, or `c` when every lane is active.
    fn and(&self, out: &mut Out, mask: Option<&str>, c: &str) -> String {
        match mask {
            Some(m) => self.bind(out, "B", format!("band({m}, {c})")),
            None => c.to_string(),
        }
    }

    /// Marks as failed the lanes of `mask` (all of them when `None`).
    fn fail(&self, out: &mut Out, mask: Option<&str>) {
        match mask {
            Some(m) => out.line(&format!("fail = bor(fail, {m});")),
            None => out.line("fail = bconst(true);"),
        }
    }

    fn block(&self, out: &mut Out, block: &[Statement], mask: Option<&str>) {
        for s in block {
            self.statement(out, s, mask);
        }
    }

    fn statement(&self, out: &mut Out, s: &Statement, mask: Option<&str>) {
        match s {
            Statement::Assign { local, value } => {
                let v = self.expr(out, *value, mask);
                let l = self.local(*local);
                match (mask, self.body.locals[*local].ty) {
                    (None, _) => out.line(&format!("{l} = {v};")),
                    (Some(m), Type::F64) => out.line(&format!("{l} = vsel({m}, {v}, {l});")),
                    (Some(m), Type::Bool) => out.line(&format!("{l} = bsel({m}, {v}, {l});")),
                }
            }
            Statement::Store {
                place: Place::Field { field, index: None },
                value,
            } => {
                let v = self.expr(out, *value, mask);
                let s = format!("s{}", self.mech.vm.field_column(*field));
                match mask {
                    None => out.line(&format!("{s} = {v};")),
                    Some(m) => out.line(&format!("{s} = vsel({m}, {v}, {s});")),
                }
            }
            Statement::Accumulate { target, op, value } if mask.is_none() => {
                // A copy: a local named here may be assigned again later.
                let v = self.expr(out, *value, None);
                let v = self.bind(out, "V", v);
                self.accumulations.borrow_mut().push((*target, *op, v));
            }
            Statement::If {
                condition,
                accept,
                reject,
            } => {
                let c = self.expr(out, *condition, mask);
                let yes = self.and(out, mask, &c);
                let not_c = self.bind(out, "B", format!("bnot({c})"));
                let no = self.and(out, mask, &not_c);
                if !accept.is_empty() {
                    out.open(&format!("if any({yes}) {{"));
                    self.block(out, accept, Some(&yes));
                    out.close("}");
                }
                if !reject.is_empty() {
                    out.open(&format!("if any({no}) {{"));
                    self.block(out, reject, Some(&no));
                    out.close("}");
                }
            }
            // Calls, loops, events, `return`, errors, stores elsewhere and
            // accumulations in a branch are left to the scalar body.
            _ => self.fail(out, mask),
        }
    }

    /// Whether `h` is a truth value.
    fn is_bool(&self, h: Handle<Expression>) -> bool {
        match &self.body.expressions[h] {
            Expression::Bool(_) | Expression::F64ToBool(_) => true,
            Expression::Local(l) => self.body.locals[*l].ty == Type::Bool,
            Expression::Unary { op, .. } => *op == UnaryOp::Not,
            Expression::Binary { op, .. } => op.types().1 == Type::Bool,
            Expression::Select { accept, .. } => self.is_bool(*accept),
            _ => false,
        }
    }

    /// Evaluates `h` into `let` lines (lanes outside `mask` may compute
    /// anything, but never fail); returns the name holding the lane value.
    fn expr(&self, out: &mut Out, h: Handle<Expression>, mask: Option<&str>) -> String {
        let vm = self.mech.vm;
        match &self.body.expressions[h] {
            Expression::Constant(x) => self.bind(out, "V", format!("vs({})", lit(*x))),
            Expression::Bool(b) => self.bind(out, "B", format!("bconst({b})")),
            Expression::Local(l) => self.local(*l),
            Expression::Load(place) => match place {
                Place::Field { field, index: None } => {
                    let c = vm.field_column(*field);
                    if self.stored.contains(&c) {
                        format!("s{c}")
                    } else {
                        self.bind(out, "V", format!("vld(cx.cols[{c}], iu)"))
                    }
                }
                Place::Global {
                    global,
                    index: Some(ix),
                } => {
                    let k = self.expr(out, *ix, mask);
                    let slot = vm.global_slot(*global);
                    let len = vm.module().layout.globals[*global].array_len;
                    let t = self.temp();
                    out.line(&format!(
                        "let ({t}, {t}_ok) = vgather(cx.globals.add({slot}), {k}, {len});"
                    ));
                    let bad = self.bind(out, "B", format!("bnot({t}_ok)"));
                    let bad = self.and(out, mask, &bad);
                    out.line(&format!("fail = bor(fail, {bad});"));
                    t
                }
                Place::Global {
                    global,
                    index: None,
                } => self.bind(
                    out,
                    "V",
                    format!("vs(*cx.globals.add({}))", vm.global_slot(*global)),
                ),
                Place::NodeV => self.node(out, "v"),
                Place::NodeArea => self.node(out, "area"),
                Place::NodeDiam => self.node(out, "diam"),
                Place::Ion { ion, var } => {
                    let p = |l: usize| format!("*{}", ion_ptr(*ion, *var, &format!("iu + {l}")));
                    self.bind(
                        out,
                        "V",
                        format!("vfrom({}, {}, {}, {})", p(0), p(1), p(2), p(3)),
                    )
                }
                Place::IonValence(ion) => {
                    self.bind(out, "V", format!("vs(cx.ions[{}].valence)", ion.index()))
                }
                Place::Field { index: Some(_), .. }
                | Place::Pointer(_)
                | Place::LocalArray { .. }
                | Place::Weight(_) => {
                    self.fail(out, mask);
                    self.bind(out, "V", "vs(0.0)".into())
                }
            },
            Expression::Env(var) => {
                let x = match var {
                    EnvVar::T => "cx.t",
                    EnvVar::Dt => "cx.dt",
                    EnvVar::Celsius => "cx.celsius",
                    EnvVar::SecondOrder => "(cx.secondorder as f64)",
                    EnvVar::Flag => unreachable!("validated: `flag` only in NET_RECEIVE"),
                };
                self.bind(out, "V", format!("vs({x})"))
            }
            Expression::Unary { op, arg } => {
                let a = self.expr(out, *arg, mask);
                match op {
                    UnaryOp::Neg => self.bind(out, "V", format!("vneg({a})")),
                    UnaryOp::Not => self.bind(out, "B", format!("bnot({a})")),
                }
            }
            Expression::Binary {
                op: op @ (BinaryOp::And | BinaryOp::Or),
                left,
                right,
            } => {
                // The right operand counts only in the lanes where the
                // scalar `&&` / `||` evaluates it.
                let x = self.expr(out, *left, mask);
                let needed = if *op == BinaryOp::And {
                    x.clone()
                } else {
                    self.bind(out, "B", format!("bnot({x})"))
                };
                let m = self.and(out, mask, &needed);
                let y = self.expr(out, *right, Some(&m));
                let f = if *op == BinaryOp::And { "band" } else { "bor" };
                self.bind(out, "B", format!("{f}({x}, {y})"))
            }
            Expression::Binary { op, left, right } => {
                let x = self.expr(out, *left, mask);
                let y = self.expr(out, *right, mask);
                let cmp = |f: &str| format!("{f}({x}, {y})");
                match op {
                    BinaryOp::Add => self.bind(out, "V", format!("vadd({x}, {y})")),
                    BinaryOp::Sub => self.bind(out, "V", format!("vsub({x}, {y})")),
                    BinaryOp::Mul => self.bind(out, "V", format!("vmul({x}, {y})")),
                    BinaryOp::Div => self.bind(out, "V", format!("vdiv({x}, {y})")),
                    BinaryOp::Pow => self.bind(
                        out,
                        "V",
                        format!("vmap2({x}, {y}, |a, b| unsafe {{ cm::pow(a, b) }})"),
                    ),
                    BinaryOp::Lt => self.bind(out, "B", cmp("vlt")),
                    BinaryOp::Le => self.bind(out, "B", cmp("vle")),
                    BinaryOp::Gt => self.bind(out, "B", cmp("vgt")),
                    BinaryOp::Ge => self.bind(out, "B", cmp("vge")),
                    BinaryOp::Eq => self.bind(out, "B", cmp("veq")),
                    BinaryOp::Ne => self.bind(out, "B", cmp("vne")),
                    BinaryOp::And | BinaryOp::Or => unreachable!("handled above"),
                }
            }
            Expression::Select {
                condition,
                accept,
                reject,
            } => {
                let c = self.expr(out, *condition, mask);
                let yes = self.and(out, mask, &c);
                let a = self.expr(out, *accept, Some(&yes));
                let not_c = self.bind(out, "B", format!("bnot({c})"));
                let no = self.and(out, mask, &not_c);
                let r = self.expr(out, *reject, Some(&no));
                if self.is_bool(*accept) {
                    self.bind(out, "B", format!("bsel({c}, {a}, {r})"))
                } else {
                    self.bind(out, "V", format!("vsel({c}, {a}, {r})"))
                }
            }
            Expression::Math { fun, args } => {
                let a: Vec<String> = args.iter().map(|x| self.expr(out, *x, mask)).collect();
                let value = if *fun == MathFn::Exp {
                    format!("vexp({})", a[0])
                } else if fun.arity() == 1 {
                    let call = math_call(*fun, vec!["y".into()]);
                    format!("vmap({}, |y| unsafe {{ {call} }})", a[0])
                } else {
                    let call = math_call(*fun, vec!["y".into(), "z".into()]);
                    format!("vmap2({}, {}, |y, z| unsafe {{ {call} }})", a[0], a[1])
                };
                self.bind(out, "V", value)
            }
            Expression::BoolToF64(a) => {
                let m = self.expr(out, *a, mask);
                self.bind(out, "V", format!("vb2f({m})"))
            }
            Expression::F64ToBool(a) => {
                let x = self.expr(out, *a, mask);
                self.bind(out, "B", format!("vne({x}, vs(0.0))"))
            }
            Expression::Call { .. } | Expression::RandomUniform => {
                self.fail(out, mask);
                self.bind(out, "V", "vs(0.0)".into())
            }
        }
    }

    /// `[*col.add(node(i)), …]` for node column `col`.
    fn node(&self, out: &mut Out, col: &str) -> String {
        let p = |l: usize| format!("*cx.{col}.add(cx.node(iu + {l}))");
        self.bind(
            out,
            "V",
            format!("vfrom({}, {}, {}, {})", p(0), p(1), p(2), p(3)),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(k: usize) -> Place {
        Place::Field {
            field: Handle::from_index(k),
            index: None,
        }
    }

    /// `x = v / 2; if x > 0 { f0 = x } else { <inner> }`, with `inner` as
    /// given, then `rhs += x`.
    fn body_with(inner: impl FnOnce(&mut Body) -> Statement) -> Body {
        let mut body = Body::default();
        let x = body.local("x", Type::F64);
        let v = body.load(Place::NodeV);
        let two = body.constant(2.0);
        let half = body.binary(BinaryOp::Div, v, two);
        let read = body.read(x);
        let zero = body.constant(0.0);
        let positive = body.binary(BinaryOp::Gt, read, zero);
        let other = inner(&mut body);
        body.block = vec![
            Statement::Assign {
                local: x,
                value: half,
            },
            Statement::If {
                condition: positive,
                accept: vec![Statement::Store {
                    place: field(0),
                    value: read,
                }],
                reject: vec![other],
            },
            Statement::Accumulate {
                target: AccumTarget::NodeRhs,
                op: AccumOp::Add,
                value: read,
            },
        ];
        body
    }

    /// What the lanes run unconditionally decides; what they cannot run
    /// (calls, errors) may sit in a branch, where it sends the instances to
    /// the scalar body; stores to globals, random numbers and local arrays
    /// are refused anywhere.
    #[test]
    fn which_bodies_run_in_lanes() {
        let error = |_: &mut Body| Statement::Error { status: 4 };
        assert!(supported(&body_with(error)));
        let call = |_: &mut Body| Statement::Call {
            function: Handle::from_index(0),
            args: vec![],
        };
        assert!(supported(&body_with(call)));

        let mut top_call = body_with(error);
        let s = call(&mut top_call);
        top_call.block.push(s);
        assert!(!supported(&top_call));

        let global_store = |b: &mut Body| Statement::Store {
            place: Place::Global {
                global: Handle::from_index(0),
                index: None,
            },
            value: b.constant(1.0),
        };
        assert!(!supported(&body_with(global_store)));

        let random = |b: &mut Body| Statement::Store {
            place: field(1),
            value: b.expr(Expression::RandomUniform),
        };
        assert!(!supported(&body_with(random)));

        let mut with_array = body_with(error);
        with_array.array("a", 3);
        assert!(!supported(&with_array));

        // Reading an ion current the body also adds to would see the
        // other lanes' additions in the scalar order only.
        let mut reads_current = body_with(error);
        let ion = Handle::from_index(0);
        let ina = reads_current.load(Place::Ion {
            ion,
            var: IonVar::Cur,
        });
        reads_current.block.push(Statement::Accumulate {
            target: AccumTarget::IonCur(ion),
            op: AccumOp::Add,
            value: ina,
        });
        assert!(!supported(&reads_current));
    }
}
