//! Hand-built IR for NEURON's `hh.mod` (nrn `src/nrnoc/hh.mod`): rates with
//! the `vtrap` guard, q10 = 3^((celsius − 6.3)/10), the cnexp update and the
//! currents at v + 0.001 and v, accumulated into the na and k ions. The TABLE
//! of `rates` is not built (NEURON's `usetable_hh = 0` behaviour).
#![allow(dead_code)]

use codegen::ir::*;

/// Field handles of the hh layout.
pub struct HhFields {
    pub gnabar: Handle<FieldDecl>,
    pub gkbar: Handle<FieldDecl>,
    pub gl: Handle<FieldDecl>,
    pub el: Handle<FieldDecl>,
    pub gna: Handle<FieldDecl>,
    pub gk: Handle<FieldDecl>,
    pub ina: Handle<FieldDecl>,
    pub ik: Handle<FieldDecl>,
    pub il: Handle<FieldDecl>,
    pub m: Handle<FieldDecl>,
    pub h: Handle<FieldDecl>,
    pub n: Handle<FieldDecl>,
}

fn field(f: Handle<FieldDecl>) -> Place {
    Place::Field {
        field: f,
        index: None,
    }
}

fn global(g: Handle<GlobalDecl>) -> Place {
    Place::Global {
        global: g,
        index: None,
    }
}

/// Small expression helpers over a body.
struct E<'a>(&'a mut Body);

impl E<'_> {
    fn c(&mut self, x: f64) -> Handle<Expression> {
        self.0.constant(x)
    }
    fn add(&mut self, a: Handle<Expression>, b: Handle<Expression>) -> Handle<Expression> {
        self.0.binary(BinaryOp::Add, a, b)
    }
    fn sub(&mut self, a: Handle<Expression>, b: Handle<Expression>) -> Handle<Expression> {
        self.0.binary(BinaryOp::Sub, a, b)
    }
    fn mul(&mut self, a: Handle<Expression>, b: Handle<Expression>) -> Handle<Expression> {
        self.0.binary(BinaryOp::Mul, a, b)
    }
    fn div(&mut self, a: Handle<Expression>, b: Handle<Expression>) -> Handle<Expression> {
        self.0.binary(BinaryOp::Div, a, b)
    }
    fn neg(&mut self, a: Handle<Expression>) -> Handle<Expression> {
        self.0.unary(UnaryOp::Neg, a)
    }
    fn exp(&mut self, a: Handle<Expression>) -> Handle<Expression> {
        self.0.math(MathFn::Exp, &[a])
    }
    fn load(&mut self, p: Place) -> Handle<Expression> {
        self.0.load(p)
    }
    fn read(&mut self, l: Handle<Local>) -> Handle<Expression> {
        self.0.read(l)
    }
    fn assign(&mut self, l: Handle<Local>, v: Handle<Expression>) {
        self.0.block.push(Statement::Assign { local: l, value: v });
    }
    fn store(&mut self, p: Place, v: Handle<Expression>) {
        self.0.block.push(Statement::Store { place: p, value: v });
    }
}

/// Builds the hh module; returns it with its field handles.
pub fn hh_module() -> (Module, HhFields) {
    let mut m = Module {
        name: "hh".into(),
        ..Module::default()
    };
    let mut fd = |name: &str| {
        m.layout.fields.append(FieldDecl {
            name: name.into(),
            array_len: 1,
        })
    };
    let f = HhFields {
        gnabar: fd("gnabar"),
        gkbar: fd("gkbar"),
        gl: fd("gl"),
        el: fd("el"),
        gna: fd("gna"),
        gk: fd("gk"),
        ina: fd("ina"),
        ik: fd("ik"),
        il: fd("il"),
        m: fd("m"),
        h: fd("h"),
        n: fd("n"),
    };
    let mut gd = |name: &str| {
        m.layout.globals.append(GlobalDecl {
            name: name.into(),
            array_len: 1,
        })
    };
    let (minf, hinf, ninf) = (gd("minf"), gd("hinf"), gd("ninf"));
    let (mtau, htau, ntau) = (gd("mtau"), gd("htau"), gd("ntau"));
    let na = m.layout.ions.append(IonDecl { name: "na".into() });
    let k = m.layout.ions.append(IonDecl { name: "k".into() });

    // FUNCTION vtrap(x, y) {
    //   if (fabs(x/y) < 1e-6) { vtrap = y*(1 - x/y/2) } else { vtrap = x/(exp(x/y) - 1) }
    // }
    let vtrap = {
        let mut body = Body::default();
        let x = body.local("x", Type::F64);
        let y = body.local("y", Type::F64);
        let r = body.local("vtrap", Type::F64);
        let mut e = E(&mut body);
        let (xe, ye) = (e.read(x), e.read(y));
        let xy = e.div(xe, ye);
        let a = e.0.math(MathFn::Fabs, &[xy]);
        let eps = e.c(1e-6);
        let cond = e.0.binary(BinaryOp::Lt, a, eps);
        // y*(1 - x/y/2)
        let (xe, ye) = (e.read(x), e.read(y));
        let xy = e.div(xe, ye);
        let two = e.c(2.0);
        let xy2 = e.div(xy, two);
        let one = e.c(1.0);
        let s = e.sub(one, xy2);
        let ye2 = e.read(y);
        let small = e.mul(ye2, s);
        // x/(exp(x/y) - 1)
        let (xe, ye) = (e.read(x), e.read(y));
        let xy = e.div(xe, ye);
        let ex = e.exp(xy);
        let one = e.c(1.0);
        let den = e.sub(ex, one);
        let xe = e.read(x);
        let large = e.div(xe, den);
        body.block.push(Statement::If {
            condition: cond,
            accept: vec![Statement::Assign {
                local: r,
                value: small,
            }],
            reject: vec![Statement::Assign {
                local: r,
                value: large,
            }],
        });
        m.functions.append(Function {
            name: "vtrap".into(),
            params: vec![x, y],
            result: Some(r),
            body,
        })
    };

    // PROCEDURE rates(v) (without its TABLE).
    let rates = {
        let mut body = Body::default();
        let v = body.local("v", Type::F64);
        let alpha = body.local("alpha", Type::F64);
        let beta = body.local("beta", Type::F64);
        let sum = body.local("sum", Type::F64);
        let q10 = body.local("q10", Type::F64);
        let mut e = E(&mut body);
        // q10 = 3^((celsius - 6.3)/10)
        let three = e.c(3.0);
        let cel = e.0.expr(Expression::Env(EnvVar::Celsius));
        let c63 = e.c(6.3);
        let d = e.sub(cel, c63);
        let ten = e.c(10.0);
        let ex = e.div(d, ten);
        let q = e.0.binary(BinaryOp::Pow, three, ex);
        e.assign(q10, q);
        // Shared tail: sum = alpha + beta; tau = 1/(q10*sum); inf = alpha/sum.
        let tail = |e: &mut E, tau: Handle<GlobalDecl>, inf: Handle<GlobalDecl>| {
            let (a, b) = (e.read(alpha), e.read(beta));
            let s = e.add(a, b);
            e.assign(sum, s);
            let one = e.c(1.0);
            let (q, s) = (e.read(q10), e.read(sum));
            let qs = e.mul(q, s);
            let t = e.div(one, qs);
            e.store(global(tau), t);
            let (a, s) = (e.read(alpha), e.read(sum));
            let i = e.div(a, s);
            e.store(global(inf), i);
        };
        // -(v + c) / d
        let vexp = |e: &mut E, c: f64, d: f64| {
            let ve = e.read(v);
            let cc = e.c(c);
            let s = e.add(ve, cc);
            let n = e.neg(s);
            let dd = e.c(d);
            e.div(n, dd)
        };
        // alpha = .1 * vtrap(-(v+40),10)
        let ve = e.read(v);
        let c40 = e.c(40.0);
        let s = e.add(ve, c40);
        let n = e.neg(s);
        let ten = e.c(10.0);
        let vt = e.0.call(vtrap, &[n, ten]);
        let p1 = e.c(0.1);
        let a = e.mul(p1, vt);
        e.assign(alpha, a);
        // beta = 4 * exp(-(v+65)/18)
        let x = vexp(&mut e, 65.0, 18.0);
        let ex = e.exp(x);
        let four = e.c(4.0);
        let b = e.mul(four, ex);
        e.assign(beta, b);
        tail(&mut e, mtau, minf);
        // alpha = .07 * exp(-(v+65)/20)
        let x = vexp(&mut e, 65.0, 20.0);
        let ex = e.exp(x);
        let c = e.c(0.07);
        let a = e.mul(c, ex);
        e.assign(alpha, a);
        // beta = 1 / (exp(-(v+35)/10) + 1)
        let x = vexp(&mut e, 35.0, 10.0);
        let ex = e.exp(x);
        let one = e.c(1.0);
        let den = e.add(ex, one);
        let one = e.c(1.0);
        let b = e.div(one, den);
        e.assign(beta, b);
        tail(&mut e, htau, hinf);
        // alpha = .01*vtrap(-(v+55),10)
        let ve = e.read(v);
        let c55 = e.c(55.0);
        let s = e.add(ve, c55);
        let n = e.neg(s);
        let ten = e.c(10.0);
        let vt = e.0.call(vtrap, &[n, ten]);
        let p01 = e.c(0.01);
        let a = e.mul(p01, vt);
        e.assign(alpha, a);
        // beta = .125*exp(-(v+65)/80)
        let x = vexp(&mut e, 65.0, 80.0);
        let ex = e.exp(x);
        let c = e.c(0.125);
        let b = e.mul(c, ex);
        e.assign(beta, b);
        tail(&mut e, ntau, ninf);
        m.functions.append(Function {
            name: "rates".into(),
            params: vec![v],
            result: None,
            body,
        })
    };

    // The BREAKPOINT current statements as nocmodl's _nrn_current(v):
    // gna = gnabar*m*m*m*h; ina = gna*(v - ena); gk = gkbar*n*n*n*n;
    // ik = gk*(v - ek); il = gl*(v - el); return ((0 + ina) + ik) + il.
    let current = {
        let mut body = Body::default();
        let v = body.local("v", Type::F64);
        let cur = body.local("_current", Type::F64);
        let mut e = E(&mut body);
        let g = e.load(field(f.gnabar));
        let mm = e.load(field(f.m));
        let g = e.mul(g, mm);
        let mm = e.load(field(f.m));
        let g = e.mul(g, mm);
        let mm = e.load(field(f.m));
        let g = e.mul(g, mm);
        let hh = e.load(field(f.h));
        let g = e.mul(g, hh);
        e.store(field(f.gna), g);
        let gna = e.load(field(f.gna));
        let ve = e.read(v);
        let ena = e.load(Place::Ion {
            ion: na,
            var: IonVar::Erev,
        });
        let dv = e.sub(ve, ena);
        let i = e.mul(gna, dv);
        e.store(field(f.ina), i);
        let g = e.load(field(f.gkbar));
        let mut g = g;
        for _ in 0..4 {
            let nn = e.load(field(f.n));
            g = e.mul(g, nn);
        }
        e.store(field(f.gk), g);
        let gk = e.load(field(f.gk));
        let ve = e.read(v);
        let ek = e.load(Place::Ion {
            ion: k,
            var: IonVar::Erev,
        });
        let dv = e.sub(ve, ek);
        let i = e.mul(gk, dv);
        e.store(field(f.ik), i);
        let gl = e.load(field(f.gl));
        let ve = e.read(v);
        let el = e.load(field(f.el));
        let dv = e.sub(ve, el);
        let i = e.mul(gl, dv);
        e.store(field(f.il), i);
        for x in [f.ina, f.ik, f.il] {
            let c = e.read(cur);
            let i = e.load(field(x));
            let s = e.add(c, i);
            e.assign(cur, s);
        }
        m.functions.append(Function {
            name: "_nrn_current".into(),
            params: vec![v],
            result: Some(cur),
            body,
        })
    };

    // INITIAL { rates(v) m = minf h = hinf n = ninf }
    {
        let mut body = Body::default();
        let mut e = E(&mut body);
        let v = e.load(Place::NodeV);
        e.0.block.push(Statement::Call {
            function: rates,
            args: vec![v],
        });
        for (s, g) in [(f.m, minf), (f.h, hinf), (f.n, ninf)] {
            let x = e.load(global(g));
            e.store(field(s), x);
        }
        m.kernels.push(Kernel {
            phase: Phase::Init,
            body,
        });
    }

    // nrn_cur: g = I(v+.001); dina = ina; dik = ik; rhs = I(v);
    // dinadv += (dina - ina)/.001; dikdv += (dik - ik)/.001; g = (g - rhs)/.001;
    // ina_ion += ina; ik_ion += ik; rhs[node] -= rhs; d[node] += g.
    {
        let mut body = Body::default();
        let vl = body.local("v", Type::F64);
        let g = body.local("g", Type::F64);
        let rhs = body.local("rhs", Type::F64);
        let dina = body.local("dina", Type::F64);
        let dik = body.local("dik", Type::F64);
        let mut e = E(&mut body);
        let v = e.load(Place::NodeV);
        e.assign(vl, v);
        let ve = e.read(vl);
        let dv = e.c(0.001);
        let vp = e.add(ve, dv);
        let i = e.0.call(current, &[vp]);
        e.assign(g, i);
        let x = e.load(field(f.ina));
        e.assign(dina, x);
        let x = e.load(field(f.ik));
        e.assign(dik, x);
        let ve = e.read(vl);
        let i = e.0.call(current, &[ve]);
        e.assign(rhs, i);
        for (ion, dl, fi) in [(na, dina, f.ina), (k, dik, f.ik)] {
            let d = e.read(dl);
            let i = e.load(field(fi));
            let s = e.sub(d, i);
            let c = e.c(0.001);
            let q = e.div(s, c);
            e.0.block.push(Statement::Accumulate {
                target: AccumTarget::IonDcurDv(ion),
                op: AccumOp::Add,
                value: q,
            });
        }
        let (gg, r) = (e.read(g), e.read(rhs));
        let s = e.sub(gg, r);
        let c = e.c(0.001);
        let q = e.div(s, c);
        e.assign(g, q);
        for (ion, fi) in [(na, f.ina), (k, f.ik)] {
            let i = e.load(field(fi));
            e.0.block.push(Statement::Accumulate {
                target: AccumTarget::IonCur(ion),
                op: AccumOp::Add,
                value: i,
            });
        }
        let r = e.read(rhs);
        e.0.block.push(Statement::Accumulate {
            target: AccumTarget::NodeRhs,
            op: AccumOp::Sub,
            value: r,
        });
        let gg = e.read(g);
        e.0.block.push(Statement::Accumulate {
            target: AccumTarget::NodeD,
            op: AccumOp::Add,
            value: gg,
        });
        m.kernels.push(Kernel {
            phase: Phase::Cur,
            body,
        });
    }

    // nrn_state: rates(v); s = s + (1 - exp(dt*((-1)/tau)))*(-(inf/tau)/((-1)/tau) - s)
    {
        let mut body = Body::default();
        let mut e = E(&mut body);
        let v = e.load(Place::NodeV);
        e.0.block.push(Statement::Call {
            function: rates,
            args: vec![v],
        });
        for (s, inf, tau) in [(f.m, minf, mtau), (f.h, hinf, htau), (f.n, ninf, ntau)] {
            let dt = e.0.expr(Expression::Env(EnvVar::Dt));
            let m1 = e.c(-1.0);
            let t = e.load(global(tau));
            let a = e.div(m1, t);
            let da = e.mul(dt, a);
            let ex = e.exp(da);
            let one = e.c(1.0);
            let fac = e.sub(one, ex);
            let i = e.load(global(inf));
            let t = e.load(global(tau));
            let b = e.div(i, t);
            let nb = e.neg(b);
            let m1 = e.c(-1.0);
            let t = e.load(global(tau));
            let a = e.div(m1, t);
            let sinf = e.div(nb, a);
            let sv = e.load(field(s));
            let diff = e.sub(sinf, sv);
            let step = e.mul(fac, diff);
            let sv = e.load(field(s));
            let new = e.add(sv, step);
            e.store(field(s), new);
        }
        m.kernels.push(Kernel {
            phase: Phase::State,
            body,
        });
    }
    (m, f)
}
