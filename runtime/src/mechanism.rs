//! Mechanism types as the runtime sees them: owned metadata
//! ([`MechanismSpec`], built from an `abi::NrnMechanism` by
//! `plugin::spec_from_abi` or directly by Rust code) and the
//! structure-of-arrays storage of their instances ([`MechStore`]).

use crate::abi;

/// Whether a mechanism is a density mechanism, a point process or an artificial cell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MechKind {
    /// `SUFFIX`: inserted in whole sections, currents in mA/cm².
    Density,
    /// `POINT_PROCESS`: sits at one location, currents in nA.
    PointProcess,
    /// `ARTIFICIAL_CELL`: no voltage, driven by events only.
    ArtificialCell,
}

impl MechKind {
    /// The `abi::KIND_*` value.
    pub fn to_abi(self) -> u32 {
        match self {
            MechKind::Density => abi::KIND_DENSITY,
            MechKind::PointProcess => abi::KIND_POINT_PROCESS,
            MechKind::ArtificialCell => abi::KIND_ARTIFICIAL_CELL,
        }
    }
}

/// One RANGE field or GLOBAL of a mechanism.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldSpec {
    /// The NMODL name (`gnabar`).
    pub name: String,
    /// The units (`S/cm2`), empty when none.
    pub units: String,
    /// One of `abi::FIELD_*`.
    pub kind: u32,
    /// 1 for scalars, N for arrays.
    pub array_len: u32,
    /// The default value.
    pub default_value: f64,
}

impl FieldSpec {
    /// A scalar field with a default.
    pub fn new(name: &str, kind: u32, default_value: f64) -> FieldSpec {
        FieldSpec {
            name: name.to_string(),
            units: String::new(),
            kind,
            array_len: 1,
            default_value,
        }
    }
}

/// How a mechanism uses one ion.
#[derive(Debug, Clone, PartialEq)]
pub struct IonUse {
    /// The ion name (`na`).
    pub name: String,
    /// The declared valence, if any.
    pub valence: Option<f64>,
    /// `abi::ION_*` flags.
    pub flags: u32,
}

impl IonUse {
    /// The ion-style "concentration" level NEURON's `nrn_promote` receives:
    /// 0 unused, 1 read, 3 written.
    pub(crate) fn conc_level(&self) -> u32 {
        if self.flags & (abi::ION_WRITE_CI | abi::ION_WRITE_CO) != 0 {
            3
        } else if self.flags & (abi::ION_READ_CI | abi::ION_READ_CO) != 0 {
            1
        } else {
            0
        }
    }

    /// The ion-style reversal-potential level: 0 unused, 1 read, 3 written.
    pub(crate) fn rev_level(&self) -> u32 {
        if self.flags & abi::ION_WRITE_E != 0 {
            3
        } else if self.flags & abi::ION_READ_E != 0 {
            1
        } else {
            0
        }
    }
}

/// Everything the runtime needs to know about a mechanism type.
#[derive(Debug, Clone)]
pub struct MechanismSpec {
    /// SUFFIX or POINT_PROCESS name.
    pub name: String,
    /// The kind.
    pub kind: MechKind,
    /// `abi::MECH_*` flags.
    pub flags: u32,
    /// RANGE fields in column order.
    pub fields: Vec<FieldSpec>,
    /// GLOBALs in storage order.
    pub globals: Vec<FieldSpec>,
    /// Ions in pack order.
    pub ions: Vec<IonUse>,
    /// POINTER names in pack order.
    pub pointers: Vec<String>,
    /// The kernels.
    pub kernels: abi::NrnKernels,
    /// Whatever owns the code behind `kernels` (a JIT module, a loaded
    /// library). The model keeps it alive for as long as it holds the spec,
    /// so the kernel pointers never dangle.
    pub keepalive: Option<KeepAlive>,
    /// The number of NET_RECEIVE arguments (the length of a NetCon's weight
    /// vector to this mechanism); 0 without NET_RECEIVE.
    pub n_weights: u32,
    /// The namespace of a mechanism from a loaded library (see
    /// `Model::load_library`): it is also reachable as `namespace::name`.
    /// `None` for built-ins and JIT-compiled mechanisms.
    pub library: Option<String>,
}

/// A shared owner of kernel code, held by a [`MechanismSpec`].
#[derive(Clone)]
pub struct KeepAlive(pub std::sync::Arc<dyn std::any::Any + Send + Sync>);

impl std::fmt::Debug for KeepAlive {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeepAlive(..)")
    }
}

impl MechanismSpec {
    /// The name a model registers it under: `name`, or `namespace::name`
    /// for a library's mechanism.
    pub fn key(&self) -> String {
        match &self.library {
            Some(ns) => format!("{ns}::{}", self.name),
            None => self.name.clone(),
        }
    }

    /// An empty spec of the given kind, to be filled in by the caller.
    pub fn new(name: &str, kind: MechKind) -> MechanismSpec {
        MechanismSpec {
            name: name.to_string(),
            kind,
            flags: 0,
            fields: Vec::new(),
            globals: Vec::new(),
            ions: Vec::new(),
            pointers: Vec::new(),
            kernels: abi::NrnKernels::default(),
            keepalive: None,
            n_weights: 0,
            library: None,
        }
    }

    /// Adds a scalar RANGE field and returns `self` (builder style).
    pub fn field(mut self, name: &str, kind: u32, default_value: f64) -> Self {
        self.fields.push(FieldSpec::new(name, kind, default_value));
        self
    }

    /// Adds a scalar GLOBAL.
    pub fn global(mut self, name: &str, default_value: f64) -> Self {
        self.globals
            .push(FieldSpec::new(name, abi::FIELD_PARAMETER, default_value));
        self
    }

    /// Adds an ion use.
    pub fn ion(mut self, name: &str, flags: u32, valence: Option<f64>) -> Self {
        self.ions.push(IonUse {
            name: name.to_string(),
            valence,
            flags,
        });
        self
    }

    /// Sets the `abi::MECH_*` flags.
    pub fn flags(mut self, flags: u32) -> Self {
        self.flags = flags;
        self
    }

    /// Sets the kernels.
    pub fn kernels(mut self, kernels: abi::NrnKernels) -> Self {
        self.kernels = kernels;
        self
    }

    /// The number of columns (array fields take one per element).
    pub fn n_columns(&self) -> usize {
        self.fields.iter().map(|f| f.array_len as usize).sum()
    }

    /// The first column of field `name`, and its length.
    pub fn column_of(&self, name: &str) -> Option<(usize, usize)> {
        let mut col = 0;
        for f in &self.fields {
            if f.name == name {
                return Some((col, f.array_len as usize));
            }
            col += f.array_len as usize;
        }
        None
    }

    /// The first global of `name`, and its length.
    pub fn global_of(&self, name: &str) -> Option<(usize, usize)> {
        let mut g = 0;
        for f in &self.globals {
            if f.name == name {
                return Some((g, f.array_len as usize));
            }
            g += f.array_len as usize;
        }
        None
    }

    pub(crate) fn validate(&self) -> crate::Result<()> {
        let bad = |reason: String| {
            Err(crate::Error::BadMechanism {
                name: self.name.clone(),
                reason,
            })
        };
        if self.name.is_empty()
            || !self
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            return bad("the name must be a non-empty identifier".into());
        }
        let mut seen = std::collections::HashSet::new();
        for f in self.fields.iter().chain(self.globals.iter()) {
            if f.array_len == 0 {
                return bad(format!("field `{}` has array length 0", f.name));
            }
            if !seen.insert(f.name.as_str()) {
                return bad(format!("field `{}` is declared twice", f.name));
            }
        }
        for ion in &self.ions {
            if ion.valence.is_some_and(|z| !z.is_finite()) {
                return bad(format!("ion `{}` has a non-finite valence", ion.name));
            }
        }
        Ok(())
    }
}

/// One 64-byte block of a column: eight f64s, so a column of chunks is
/// 64-byte aligned and padded to [`abi::COLUMN_PADDING`] without any unsafe.
#[derive(Debug, Clone, Copy, Default)]
#[repr(C, align(64))]
pub(crate) struct Chunk(pub [f64; abi::COLUMN_PADDING]);

/// One SoA column, 64-byte aligned, padded to a multiple of
/// [`abi::COLUMN_PADDING`] values.
///
/// Large columns are allocated by the system allocator on fresh pages, so
/// every column of a mechanism would start at the same offset within a
/// 4 KiB page. A kernel reading twenty columns at one instance index would
/// then hit one L1 cache set twenty times (the set is picked by the address
/// bits below 4 KiB) and evict its own data. Each column therefore starts
/// `skew` chunks (64-byte lines) into its allocation, a different number for
/// successive columns, which spreads the columns over the cache sets.
#[derive(Debug, Clone)]
pub(crate) struct Column {
    /// `skew` unused leading chunks, then the column's values.
    chunks: Vec<Chunk>,
    skew: usize,
}

/// The next column's skew, in chunks: successive columns take successive
/// values modulo [`SKEW_SETS`].
static NEXT_SKEW: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// The number of different skews: 4 KiB / 64-byte lines.
const SKEW_SETS: usize = 64;

/// The next skew in chunks (see [`Column`]), shared by columns and node vectors.
pub(crate) fn next_skew() -> usize {
    NEXT_SKEW.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % SKEW_SETS
}

impl Default for Column {
    /// An empty column with the next skew.
    fn default() -> Column {
        let skew = next_skew();
        Column {
            chunks: vec![Chunk::default(); skew],
            skew,
        }
    }
}

impl Column {
    pub(crate) fn get(&self, i: usize) -> f64 {
        self.chunks[self.skew + i / abi::COLUMN_PADDING].0[i % abi::COLUMN_PADDING]
    }

    pub(crate) fn set(&mut self, i: usize, v: f64) {
        self.chunks[self.skew + i / abi::COLUMN_PADDING].0[i % abi::COLUMN_PADDING] = v;
    }

    /// Makes room for `n` values (padding filled with zeros).
    pub(crate) fn ensure_len(&mut self, n: usize) {
        let chunks = self.skew + n.div_ceil(abi::COLUMN_PADDING);
        if self.chunks.len() < chunks {
            self.chunks.resize(chunks, Chunk::default());
        }
    }

    /// The padded capacity in values.
    pub(crate) fn padded_len(&self) -> usize {
        (self.chunks.len() - self.skew) * abi::COLUMN_PADDING
    }

    pub(crate) fn as_mut_ptr(&mut self) -> *mut f64 {
        self.chunks[self.skew..].as_mut_ptr().cast::<f64>()
    }
}

/// A node vector (v, rhs, d, ...) that starts at a skewed offset into its
/// allocation, for the same reason as [`Column`]: the node vectors of a large
/// model would otherwise all start at one offset within a page, and a store
/// to `rhs[k]` followed by a load of `d[k]` would falsely depend on each
/// other (4 KiB aliasing). Dereferences to the `[f64]` of its nodes.
#[derive(Debug, Clone, Default)]
pub(crate) struct NodeVec {
    /// `skew` unused leading values, then the nodes.
    data: Vec<f64>,
    skew: usize,
}

impl NodeVec {
    /// `n` nodes set to `value`.
    pub(crate) fn filled(value: f64, n: usize) -> NodeVec {
        let skew = next_skew() * abi::COLUMN_PADDING;
        let mut data = vec![0.0; skew + n];
        data[skew..].fill(value);
        NodeVec { data, skew }
    }
}

impl FromIterator<f64> for NodeVec {
    fn from_iter<I: IntoIterator<Item = f64>>(iter: I) -> NodeVec {
        let skew = next_skew() * abi::COLUMN_PADDING;
        let mut data = vec![0.0; skew];
        data.extend(iter);
        NodeVec { data, skew }
    }
}

impl std::ops::Deref for NodeVec {
    type Target = [f64];
    fn deref(&self) -> &[f64] {
        &self.data[self.skew..]
    }
}

impl std::ops::DerefMut for NodeVec {
    fn deref_mut(&mut self) -> &mut [f64] {
        &mut self.data[self.skew..]
    }
}

/// Who owns an instance: a segment of a section, or a point process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Owner {
    /// Density mechanism at node `seg` (NEURON node order) of section slot `sec`.
    Segment { sec: u32, seg: u32 },
    /// Point process slot.
    Point { slot: u32 },
}

/// The storage of all instances of one mechanism type.
#[derive(Debug)]
pub(crate) struct MechStore {
    pub spec: MechanismSpec,
    pub cols: Vec<Column>,
    pub globals: Vec<f64>,
    pub count: usize,
    pub owners: Vec<Owner>,
    /// Instance → node, rebuilt when the model is compiled.
    pub node_index: Vec<u32>,
    /// Per ion use: instance → ion instance, rebuilt when compiled.
    pub ion_index: Vec<Vec<u32>>,
    /// Per ion use: the runtime's ion type index.
    pub ion_type: Vec<usize>,
    /// Per POINTER: the target of each instance (None when unset).
    pub pointer_targets: Vec<Vec<Option<crate::model::PointerTarget>>>,
}

impl MechStore {
    pub(crate) fn new(spec: MechanismSpec, ion_type: Vec<usize>) -> MechStore {
        let ncol = spec.n_columns();
        let mut globals = Vec::new();
        for g in &spec.globals {
            for _ in 0..g.array_len {
                globals.push(g.default_value);
            }
        }
        let n_ions = spec.ions.len();
        let n_ptr = spec.pointers.len();
        MechStore {
            spec,
            cols: (0..ncol).map(|_| Column::default()).collect(),
            globals,
            count: 0,
            owners: Vec::new(),
            node_index: Vec::new(),
            ion_index: vec![Vec::new(); n_ions],
            ion_type,
            pointer_targets: vec![Vec::new(); n_ptr],
        }
    }

    /// Appends an instance with default values and returns its index.
    pub(crate) fn push(&mut self, owner: Owner) -> usize {
        let i = self.count;
        self.count += 1;
        let mut col = 0;
        for f in &self.spec.fields {
            for _ in 0..f.array_len {
                self.cols[col].ensure_len(self.count);
                self.cols[col].set(i, f.default_value);
                col += 1;
            }
        }
        self.owners.push(owner);
        self.node_index.push(0);
        for idx in &mut self.ion_index {
            idx.push(0);
        }
        for p in &mut self.pointer_targets {
            p.push(None);
        }
        i
    }

    /// Removes instance `i` by moving the last instance into its place.
    /// Returns the owner of the moved instance (now at `i`), if any moved.
    pub(crate) fn swap_remove(&mut self, i: usize) -> Option<Owner> {
        let last = self.count - 1;
        for c in &mut self.cols {
            let v = c.get(last);
            c.set(i, v);
            c.set(last, 0.0);
        }
        self.owners.swap_remove(i);
        self.node_index.swap_remove(i);
        for idx in &mut self.ion_index {
            idx.swap_remove(i);
        }
        for p in &mut self.pointer_targets {
            p.swap_remove(i);
        }
        self.count = last;
        if i < last {
            Some(self.owners[i])
        } else {
            None
        }
    }

    /// Reorders the instances: new instance `k` is old instance `order[k]`.
    pub(crate) fn permute(&mut self, order: &[usize]) {
        for c in &mut self.cols {
            let vals: Vec<f64> = order.iter().map(|&o| c.get(o)).collect();
            for (k, v) in vals.into_iter().enumerate() {
                c.set(k, v);
            }
        }
        self.owners = order.iter().map(|&o| self.owners[o]).collect();
        self.node_index = order.iter().map(|&o| self.node_index[o]).collect();
        for idx in &mut self.ion_index {
            *idx = order.iter().map(|&o| idx[o]).collect();
        }
        for p in &mut self.pointer_targets {
            *p = order.iter().map(|&o| p[o].clone()).collect();
        }
    }

    /// All column values of instance `i`.
    pub(crate) fn row(&self, i: usize) -> Vec<f64> {
        self.cols.iter().map(|c| c.get(i)).collect()
    }

    pub(crate) fn set_row(&mut self, i: usize, row: &[f64]) {
        for (c, &v) in self.cols.iter_mut().zip(row) {
            c.set(i, v);
        }
    }
}
