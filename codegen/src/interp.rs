//! The reference interpreter: runs a [`ValidModule`]'s kernels over safe data
//! ([`MechData`]). It is the oracle the JIT is tested against, so it follows
//! the IR specification in `lib.rs` as plainly as possible.

use crate::ir::*;
use crate::math;
use crate::valid::{BodyInfo, ValidModule};
use runtime::abi::{COLUMN_PADDING, STATUS_MECHANISM_ERROR, STATUS_OK, STATUS_POINTER_UNSET};

/// One ion's columns, as the runtime stores them.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct IonData {
    /// Instance → ion-instance index (length `count`).
    pub index: Vec<u32>,
    /// `e<ion>` [mV].
    pub erev: Vec<f64>,
    /// `<ion>i` [mM].
    pub conc_i: Vec<f64>,
    /// `<ion>o` [mM].
    pub conc_o: Vec<f64>,
    /// `i<ion>` [mA/cm²].
    pub cur: Vec<f64>,
    /// `di<ion>/dv` [S/cm²].
    pub dcurdv: Vec<f64>,
    /// The valence.
    pub valence: f64,
}

/// One host callback made by a kernel, in call order.
#[derive(Clone, Debug, PartialEq)]
pub enum HostCall {
    /// `net_send(delay, flag)`; `has_weights` tells whether the weight vector
    /// pointer was non-null (true in NET_RECEIVE).
    NetSend {
        /// The sending instance.
        instance: u32,
        /// Whether a weight vector was passed.
        has_weights: bool,
        /// Delay [ms].
        delay: f64,
        /// Flag.
        flag: f64,
    },
    /// `net_event(t)`.
    NetEvent {
        /// The instance.
        instance: u32,
        /// Spike time [ms].
        t: f64,
    },
    /// `net_move(t)`.
    NetMove {
        /// The instance.
        instance: u32,
        /// New time [ms].
        t: f64,
    },
    /// `set_seed(seed)`.
    SetSeed {
        /// The seed.
        seed: f64,
    },
}

/// A host that records callbacks and draws deterministic uniform deviates.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RecordingHost {
    /// Every callback, in order.
    pub calls: Vec<HostCall>,
    /// The generator state (splitmix64).
    pub rng_state: u64,
}

impl RecordingHost {
    /// The next deviate in [0, 1).
    pub fn random_uniform(&mut self) -> f64 {
        self.rng_state = self.rng_state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.rng_state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        (z >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Reseeds the generator and records the call. The seed is truncated to
    /// an integer first (as scop_random does), so the state never depends on
    /// a NaN's payload bits, which IEEE arithmetic leaves unspecified (NaN and
    /// out-of-range seeds saturate).
    pub fn set_seed(&mut self, seed: f64) {
        self.rng_state = seed as i64 as u64;
        self.calls.push(HostCall::SetSeed { seed });
    }
}

/// Everything a kernel reads and writes, in safe vectors. The JIT's test
/// runners build a real `NrnMechPack` pointing into this struct.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MechData {
    /// The runtime's mechanism id (passed to host callbacks).
    pub mech_id: u32,
    /// The number of instances.
    pub count: usize,
    /// `secondorder`.
    pub secondorder: i32,
    /// `t` [ms].
    pub t: f64,
    /// `dt` [ms].
    pub dt: f64,
    /// `celsius` [degC].
    pub celsius: f64,
    /// Instance → node.
    pub node_index: Vec<u32>,
    /// Node voltages [mV].
    pub v: Vec<f64>,
    /// Node right-hand sides.
    pub rhs: Vec<f64>,
    /// Node diagonals.
    pub d: Vec<f64>,
    /// Node areas [µm²].
    pub area: Vec<f64>,
    /// Node diameters [µm].
    pub diam: Vec<f64>,
    /// One column per field element.
    pub fields: Vec<Vec<f64>>,
    /// The global slots.
    pub globals: Vec<f64>,
    /// One entry per ion.
    pub ions: Vec<IonData>,
    /// `pointers[p][i]`: the index in `pointer_pool` POINTER `p` of instance
    /// `i` refers to, or `None` when unset.
    pub pointers: Vec<Vec<Option<usize>>>,
    /// The storage POINTERs refer to.
    pub pointer_pool: Vec<f64>,
    /// The host.
    pub host: RecordingHost,
    /// Set when a kernel fails: the failing instance (`u32::MAX` for
    /// instance-less kernels).
    pub error_instance: u32,
}

/// Data that does not fit the module's layout (a caller bug, reported
/// instead of panicking or reading out of bounds).
#[derive(Clone, Debug, PartialEq)]
pub struct DataError(pub String);

impl std::fmt::Display for DataError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "mechanism data does not match the module: {}", self.0)
    }
}

impl std::error::Error for DataError {}

impl MechData {
    /// Zeroed data for `count` instances on `n_nodes` nodes, shaped for
    /// `module` (instance `i` sits on node `i % n_nodes`, and uses ion
    /// instance `i % n_nodes`).
    pub fn new(module: &ValidModule, count: usize, n_nodes: usize) -> Self {
        let layout = &module.module().layout;
        let n_nodes = n_nodes.max(1);
        let index: Vec<u32> = (0..count).map(|i| (i % n_nodes) as u32).collect();
        let column = || vec![0.0; n_nodes];
        MechData {
            mech_id: 0,
            count,
            secondorder: 0,
            t: 0.0,
            dt: 0.025,
            celsius: 6.3,
            node_index: index.clone(),
            v: column(),
            rhs: column(),
            d: column(),
            area: vec![100.0; n_nodes],
            diam: vec![1.0; n_nodes],
            fields: vec![vec![0.0; padded(count)]; layout.n_columns()],
            globals: vec![0.0; layout.n_global_slots()],
            ions: (0..layout.ions.len())
                .map(|_| IonData {
                    index: index.clone(),
                    erev: column(),
                    conc_i: column(),
                    conc_o: column(),
                    cur: column(),
                    dcurdv: column(),
                    valence: 1.0,
                })
                .collect(),
            pointers: vec![vec![None; count]; layout.pointers.len()],
            pointer_pool: Vec::new(),
            host: RecordingHost::default(),
            error_instance: 0,
        }
    }

    /// Checks that every vector is long enough and every index in range, so
    /// that kernels (the JIT's in particular) never read out of bounds.
    pub fn check(&self, module: &ValidModule) -> Result<(), DataError> {
        let layout = &module.module().layout;
        let count = self.count;
        let err = |s: String| Err(DataError(s));
        if u32::try_from(count).is_err() {
            return err("count does not fit u32".into());
        }
        if self.node_index.len() < count {
            return err("node_index shorter than count".into());
        }
        let n_nodes = self.v.len();
        for (name, col) in [
            ("rhs", &self.rhs),
            ("d", &self.d),
            ("area", &self.area),
            ("diam", &self.diam),
        ] {
            if col.len() != n_nodes {
                return err(format!("node column {name} has a different length than v"));
            }
        }
        if self.node_index[..count]
            .iter()
            .any(|&n| n as usize >= n_nodes)
        {
            return err("node_index out of range".into());
        }
        if self.fields.len() != layout.n_columns() {
            return err(format!(
                "{} field columns, the layout has {}",
                self.fields.len(),
                layout.n_columns()
            ));
        }
        if self.fields.iter().any(|c| c.len() < padded(count)) {
            return err("a field column is shorter than count padded to COLUMN_PADDING".into());
        }
        if self.globals.len() != layout.n_global_slots() {
            return err("global slot count differs from the layout".into());
        }
        if self.ions.len() != layout.ions.len() {
            return err("ion count differs from the layout".into());
        }
        for ion in &self.ions {
            let n = ion.erev.len();
            if [&ion.conc_i, &ion.conc_o, &ion.cur, &ion.dcurdv]
                .iter()
                .any(|c| c.len() != n)
            {
                return err("ion columns differ in length".into());
            }
            if ion.index.len() < count || ion.index[..count].iter().any(|&k| k as usize >= n) {
                return err("ion index missing or out of range".into());
            }
        }
        if self.pointers.len() != layout.pointers.len() {
            return err("pointer count differs from the layout".into());
        }
        for p in &self.pointers {
            if p.len() < count {
                return err("a pointer column is shorter than count".into());
            }
            if p[..count]
                .iter()
                .flatten()
                .any(|&k| k >= self.pointer_pool.len())
            {
                return err("a pointer refers past pointer_pool".into());
            }
        }
        Ok(())
    }
}

/// `count` rounded up to a multiple of `runtime::abi::COLUMN_PADDING`: the
/// minimum length of every field column.
pub fn padded(count: usize) -> usize {
    count.div_ceil(COLUMN_PADDING) * COLUMN_PADDING
}

/// Runs the per-instance or instance-less kernel of `phase` over `data`.
///
/// Returns the kernel's status (`STATUS_OK` when the module has no kernel for
/// `phase`); on failure `data.error_instance` names the failing instance.
/// Calling it for an event phase returns `STATUS_MECHANISM_ERROR`.
pub fn run_kernel(
    module: &ValidModule,
    phase: Phase,
    data: &mut MechData,
) -> Result<i32, DataError> {
    data.check(module)?;
    let Some(k) = module
        .module()
        .kernels
        .iter()
        .position(|k| k.phase == phase)
    else {
        return Ok(STATUS_OK);
    };
    let kernel = &module.module().kernels[k];
    let info = module.kernel_info(k);
    let mut interp = Interp {
        module,
        data,
        instance: u32::MAX,
        weights: Vec::new(),
        in_event: false,
        flag: 0.0,
    };
    match phase.shape() {
        Shape::Event => Ok(STATUS_MECHANISM_ERROR),
        Shape::Once => match interp.run_body(&kernel.body, info, &[]) {
            Ok(_) => Ok(STATUS_OK),
            Err(status) => {
                interp.data.error_instance = u32::MAX;
                Ok(status)
            }
        },
        Shape::PerInstance => {
            for i in 0..interp.data.count {
                interp.instance = i as u32;
                if let Err(status) = interp.run_body(&kernel.body, info, &[]) {
                    interp.data.error_instance = i as u32;
                    return Ok(status);
                }
            }
            Ok(STATUS_OK)
        }
    }
}

/// Runs the event kernel of `phase` (NET_RECEIVE or its INITIAL) for one
/// event at `instance`, with the NetCon's `weights` (which it may change)
/// and `flag`. Returns the status as [`run_kernel`] does.
pub fn run_event(
    module: &ValidModule,
    phase: Phase,
    data: &mut MechData,
    instance: u32,
    weights: &mut [f64],
    flag: f64,
) -> Result<i32, DataError> {
    data.check(module)?;
    if instance as usize >= data.count {
        return Err(DataError(format!("instance {instance} out of range")));
    }
    let Some(k) = module
        .module()
        .kernels
        .iter()
        .position(|k| k.phase == phase)
    else {
        return Ok(STATUS_OK);
    };
    if phase.shape() != Shape::Event {
        return Ok(STATUS_MECHANISM_ERROR);
    }
    let kernel = &module.module().kernels[k];
    let mut interp = Interp {
        module,
        data,
        instance,
        weights: weights.to_vec(),
        in_event: true,
        flag,
    };
    let result = interp.run_body(&kernel.body, module.kernel_info(k), &[]);
    weights.copy_from_slice(&interp.weights);
    match result {
        Ok(_) => Ok(STATUS_OK),
        Err(status) => {
            interp.data.error_instance = instance;
            Ok(status)
        }
    }
}

#[derive(Clone, Copy, Debug)]
enum Value {
    F(f64),
    B(bool),
}

impl Value {
    fn f(self) -> f64 {
        match self {
            Value::F(x) => x,
            Value::B(b) => f64::from(u8::from(b)),
        }
    }
    fn b(self) -> bool {
        match self {
            Value::B(b) => b,
            Value::F(x) => x != 0.0,
        }
    }
}

/// Why a block stopped early.
enum Flow {
    Return,
    Error(i32),
}

impl From<i32> for Flow {
    fn from(status: i32) -> Self {
        Flow::Error(status)
    }
}

struct Interp<'m, 'd> {
    module: &'m ValidModule,
    data: &'d mut MechData,
    instance: u32,
    weights: Vec<f64>,
    in_event: bool,
    flag: f64,
}

/// A resolved storage location.
#[derive(Clone, Copy)]
enum Loc {
    Field(usize, usize),
    Global(usize),
    V(usize),
    Area(usize),
    Diam(usize),
    Ion(Handle<IonDecl>, IonVar),
    Pool(usize),
    Weight(usize),
    Array(usize, usize),
    Valence(Handle<IonDecl>),
}

struct Frame<'b> {
    body: &'b Body,
    locals: Vec<Value>,
    arrays: Vec<Vec<f64>>,
}

/// Converts an f64 index to an element number in `0..len` as C's `(int)`
/// truncation would, or fails.
pub(crate) fn checked_index(k: f64, len: u32) -> Option<usize> {
    if k > -1.0 && k < f64::from(len) {
        Some(k as usize)
    } else {
        None
    }
}

impl<'m, 'd> Interp<'m, 'd> {
    /// Runs a body with fresh locals; returns its final locals.
    fn run_body(
        &mut self,
        body: &Body,
        _info: &BodyInfo,
        args: &[(Handle<Local>, f64)],
    ) -> Result<Vec<Value>, i32> {
        let mut frame = Frame {
            body,
            locals: body
                .locals
                .iter()
                .map(|(_, l)| match l.ty {
                    Type::F64 => Value::F(0.0),
                    Type::Bool => Value::B(false),
                })
                .collect(),
            arrays: body
                .arrays
                .iter()
                .map(|(_, a)| vec![0.0; a.len as usize])
                .collect(),
        };
        for &(l, x) in args {
            frame.locals[l.index()] = Value::F(x);
        }
        match self.block(&mut frame, &body.block) {
            Ok(()) | Err(Flow::Return) => Ok(frame.locals),
            Err(Flow::Error(s)) => Err(s),
        }
    }

    fn node(&self) -> usize {
        self.data.node_index[self.instance as usize] as usize
    }

    fn ion_slot(&mut self, ion: Handle<IonDecl>, var: IonVar) -> &mut f64 {
        let i = self.instance as usize;
        let data = &mut self.data.ions[ion.index()];
        let k = data.index[i] as usize;
        let col = match var {
            IonVar::Erev => &mut data.erev,
            IonVar::ConcI => &mut data.conc_i,
            IonVar::ConcO => &mut data.conc_o,
            IonVar::Cur => &mut data.cur,
            IonVar::DcurDv => &mut data.dcurdv,
        };
        &mut col[k]
    }

    /// Resolves a place to a location, evaluating its index (once) and
    /// checking bounds and POINTER links.
    fn resolve(&mut self, frame: &mut Frame, place: &Place) -> Result<Loc, i32> {
        let layout = &self.module.module().layout;
        let i = self.instance as usize;
        Ok(match place {
            Place::Field { field, index } => {
                let mut column = self.module.field_column(*field);
                if let Some(ix) = index {
                    let k = self.eval(frame, *ix)?.f();
                    column += checked_index(k, layout.fields[*field].array_len)
                        .ok_or(STATUS_MECHANISM_ERROR)?;
                }
                Loc::Field(column, i)
            }
            Place::Global { global, index } => {
                let mut slot = self.module.global_slot(*global);
                if let Some(ix) = index {
                    let k = self.eval(frame, *ix)?.f();
                    slot += checked_index(k, layout.globals[*global].array_len)
                        .ok_or(STATUS_MECHANISM_ERROR)?;
                }
                Loc::Global(slot)
            }
            Place::NodeV => Loc::V(self.node()),
            Place::NodeArea => Loc::Area(self.node()),
            Place::NodeDiam => Loc::Diam(self.node()),
            Place::Ion { ion, var } => Loc::Ion(*ion, *var),
            Place::IonValence(ion) => Loc::Valence(*ion),
            Place::LocalArray { array, index } => {
                let k = self.eval(frame, *index)?.f();
                let len = frame.body.arrays[*array].len;
                Loc::Array(
                    array.index(),
                    checked_index(k, len).ok_or(STATUS_MECHANISM_ERROR)?,
                )
            }
            Place::Pointer(p) => match self.data.pointers[p.index()][i] {
                Some(k) => Loc::Pool(k),
                None => return Err(STATUS_POINTER_UNSET),
            },
            Place::Weight(k) => {
                if (*k as usize) < self.weights.len() {
                    Loc::Weight(*k as usize)
                } else {
                    return Err(STATUS_MECHANISM_ERROR);
                }
            }
        })
    }

    fn slot<'f>(&'f mut self, frame: &'f mut Frame, loc: Loc) -> &'f mut f64 {
        match loc {
            Loc::Array(a, k) => &mut frame.arrays[a][k],
            Loc::Valence(ion) => &mut self.data.ions[ion.index()].valence,
            Loc::Field(c, i) => &mut self.data.fields[c][i],
            Loc::Global(k) => &mut self.data.globals[k],
            Loc::V(n) => &mut self.data.v[n],
            Loc::Area(n) => &mut self.data.area[n],
            Loc::Diam(n) => &mut self.data.diam[n],
            Loc::Ion(ion, var) => self.ion_slot(ion, var),
            Loc::Pool(k) => &mut self.data.pointer_pool[k],
            Loc::Weight(k) => &mut self.weights[k],
        }
    }

    fn eval(&mut self, frame: &mut Frame, h: Handle<Expression>) -> Result<Value, i32> {
        let body = frame.body;
        Ok(match &body.expressions[h] {
            Expression::Constant(x) => Value::F(*x),
            Expression::Bool(b) => Value::B(*b),
            Expression::Local(l) => frame.locals[l.index()],
            Expression::Load(place) => {
                let loc = self.resolve(frame, place)?;
                Value::F(*self.slot(frame, loc))
            }
            Expression::Env(var) => Value::F(match var {
                EnvVar::T => self.data.t,
                EnvVar::Dt => self.data.dt,
                EnvVar::Celsius => self.data.celsius,
                EnvVar::SecondOrder => f64::from(self.data.secondorder),
                EnvVar::Flag => self.flag,
            }),
            Expression::Unary { op, arg } => {
                let a = self.eval(frame, *arg)?;
                match op {
                    UnaryOp::Neg => Value::F(-a.f()),
                    UnaryOp::Not => Value::B(!a.b()),
                }
            }
            Expression::Binary { op, left, right } => {
                let a = self.eval(frame, *left)?;
                match op {
                    BinaryOp::And => {
                        return Ok(if a.b() {
                            Value::B(self.eval(frame, *right)?.b())
                        } else {
                            Value::B(false)
                        })
                    }
                    BinaryOp::Or => {
                        return Ok(if a.b() {
                            Value::B(true)
                        } else {
                            Value::B(self.eval(frame, *right)?.b())
                        })
                    }
                    _ => {}
                }
                let (x, y) = (a.f(), self.eval(frame, *right)?.f());
                match op {
                    BinaryOp::Add => Value::F(x + y),
                    BinaryOp::Sub => Value::F(x - y),
                    BinaryOp::Mul => Value::F(x * y),
                    BinaryOp::Div => Value::F(x / y),
                    BinaryOp::Pow => Value::F(math::nrn_pow(x, y)),
                    BinaryOp::Lt => Value::B(x < y),
                    BinaryOp::Le => Value::B(x <= y),
                    BinaryOp::Gt => Value::B(x > y),
                    BinaryOp::Ge => Value::B(x >= y),
                    BinaryOp::Eq => Value::B(x == y),
                    BinaryOp::Ne => Value::B(x != y),
                    BinaryOp::And | BinaryOp::Or => unreachable!("handled above"),
                }
            }
            Expression::Select {
                condition,
                accept,
                reject,
            } => {
                if self.eval(frame, *condition)?.b() {
                    self.eval(frame, *accept)?
                } else {
                    self.eval(frame, *reject)?
                }
            }
            Expression::Math { fun, args } => {
                let mut xs = [0.0; 2];
                for (slot, a) in xs.iter_mut().zip(args) {
                    *slot = self.eval(frame, *a)?.f();
                }
                Value::F(math::eval(*fun, &xs[..args.len()]))
            }
            Expression::Call { function, args } => Value::F(self.call(frame, *function, args)?),
            Expression::RandomUniform => Value::F(self.data.host.random_uniform()),
            Expression::BoolToF64(a) => Value::F(self.eval(frame, *a)?.f()),
            Expression::F64ToBool(a) => Value::B(self.eval(frame, *a)?.b()),
        })
    }

    fn call(
        &mut self,
        frame: &mut Frame,
        function: Handle<Function>,
        args: &[Handle<Expression>],
    ) -> Result<f64, i32> {
        let f = &self.module.module().functions[function];
        let mut bound = Vec::with_capacity(args.len());
        for (&p, &a) in f.params.iter().zip(args) {
            bound.push((p, self.eval(frame, a)?.f()));
        }
        let locals = self.run_body(&f.body, self.module.function_info(function), &bound)?;
        Ok(f.result.map_or(0.0, |r| locals[r.index()].f()))
    }

    fn block(&mut self, frame: &mut Frame, block: &[Statement]) -> Result<(), Flow> {
        for s in block {
            self.statement(frame, s)?;
        }
        Ok(())
    }

    fn statement(&mut self, frame: &mut Frame, s: &Statement) -> Result<(), Flow> {
        match s {
            Statement::Assign { local, value } => {
                frame.locals[local.index()] = self.eval(frame, *value)?;
            }
            Statement::Store { place, value } => {
                // The place (its index, bounds, POINTER link) is resolved
                // before the value is evaluated.
                let loc = self.resolve(frame, place)?;
                let x = self.eval(frame, *value)?.f();
                *self.slot(frame, loc) = x;
            }
            Statement::Accumulate { target, op, value } => {
                let x = self.eval(frame, *value)?.f();
                let n = self.node();
                let slot = match target {
                    AccumTarget::NodeRhs => &mut self.data.rhs[n],
                    AccumTarget::NodeD => &mut self.data.d[n],
                    AccumTarget::IonCur(ion) => self.ion_slot(*ion, IonVar::Cur),
                    AccumTarget::IonDcurDv(ion) => self.ion_slot(*ion, IonVar::DcurDv),
                };
                match op {
                    AccumOp::Add => *slot += x,
                    AccumOp::Sub => *slot -= x,
                }
            }
            Statement::If {
                condition,
                accept,
                reject,
            } => {
                if self.eval(frame, *condition)?.b() {
                    self.block(frame, accept)?;
                } else {
                    self.block(frame, reject)?;
                }
            }
            Statement::While {
                condition,
                body,
                max_iterations,
            } => {
                let mut iterations = 0u32;
                while self.eval(frame, *condition)?.b() {
                    if iterations == *max_iterations {
                        return Err(Flow::Error(STATUS_MECHANISM_ERROR));
                    }
                    iterations += 1;
                    self.block(frame, body)?;
                }
            }
            Statement::ForRange {
                var,
                start,
                end,
                step,
                body,
                max_iterations,
            } => {
                let x = self.eval(frame, *start)?;
                frame.locals[var.index()] = x;
                let end = self.eval(frame, *end)?.f();
                let mut iterations = 0u32;
                loop {
                    let v = frame.locals[var.index()].f();
                    let go = if *step > 0.0 { v <= end } else { v >= end };
                    if !go {
                        break;
                    }
                    if iterations == *max_iterations {
                        return Err(Flow::Error(STATUS_MECHANISM_ERROR));
                    }
                    iterations += 1;
                    self.block(frame, body)?;
                    let v = frame.locals[var.index()].f();
                    frame.locals[var.index()] = Value::F(v + step);
                }
            }
            Statement::Call { function, args } => {
                self.call(frame, *function, args)?;
            }
            Statement::NetSend { delay, flag } => {
                let delay = self.eval(frame, *delay)?.f();
                let flag = self.eval(frame, *flag)?.f();
                self.data.host.calls.push(HostCall::NetSend {
                    instance: self.instance,
                    has_weights: self.in_event,
                    delay,
                    flag,
                });
            }
            Statement::NetEvent { time } => {
                let t = self.eval(frame, *time)?.f();
                self.data.host.calls.push(HostCall::NetEvent {
                    instance: self.instance,
                    t,
                });
            }
            Statement::NetMove { time } => {
                let t = self.eval(frame, *time)?.f();
                self.data.host.calls.push(HostCall::NetMove {
                    instance: self.instance,
                    t,
                });
            }
            Statement::SetSeed { seed } => {
                let seed = self.eval(frame, *seed)?.f();
                self.data.host.set_seed(seed);
            }
            Statement::Return => return Err(Flow::Return),
            Statement::Error { status } => return Err(Flow::Error(*status)),
        }
        Ok(())
    }
}
