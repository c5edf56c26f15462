//! Ions as NEURON 9.0.2 handles them (`eion.cpp`, `membdef.h`): one ion
//! "mechanism" per ion name with `e<ion>`, `<ion>i`, `<ion>o`, `i<ion>` and
//! `di<ion>_dv_` per segment, NEURON's defaults, the Nernst potential with the
//! CODATA 2018 constants, and the ion-style bitmap that decides when the
//! reversal potential is recomputed.

use crate::mechanism::{Column, Owner};

/// Elementary charge [C] (CODATA 2018, exact).
pub const ELECTRON_CHARGE: f64 = 1.602176634e-19;
/// Avogadro's number [1/mol] (CODATA 2018, exact).
pub const AVOGADRO: f64 = 6.02214076e+23;
/// Boltzmann's constant [J/K] (CODATA 2018, exact).
pub const BOLTZMANN: f64 = 1.380649e-23;
/// Faraday's constant [C/mol], computed as NEURON's `nrnunits.h` does.
pub const FARADAY: f64 = ELECTRON_CHARGE * AVOGADRO;
/// The gas constant [J/(mol·K)], computed as NEURON's `nrnunits.h` does.
pub const GAS_CONSTANT: f64 = BOLTZMANN * AVOGADRO;

/// `ktf = 1000·R·(celsius + 273.15)/F` [mV], in NEURON's order of operations.
pub fn ktf(celsius: f64) -> f64 {
    1000.0 * GAS_CONSTANT * (celsius + 273.15) / FARADAY
}

/// NEURON's `nrn_nernst`: the reversal potential [mV] for concentrations
/// `ci`, `co` [mM] and valence `z`; 0 for z = 0, +1e6 when ci ≤ 0, −1e6 when co ≤ 0.
pub fn nernst(ci: f64, co: f64, z: f64, celsius: f64) -> f64 {
    if z == 0.0 {
        return 0.0;
    }
    if ci <= 0.0 {
        1e6
    } else if co <= 0.0 {
        -1e6
    } else {
        ktf(celsius) / z * (co / ci).ln()
    }
}

/// Default (erev, ci, co, valence) of an ion as NEURON registers it; ions other
/// than na, k and ca get e = 0, ci = co = 1 and no valence.
pub(crate) fn ion_defaults(name: &str) -> (f64, f64, f64, Option<f64>) {
    const VREST: f64 = -65.0;
    match name {
        "na" => (115.0 + VREST, 10.0, 140.0, Some(1.0)),
        "k" => (-12.0 + VREST, 54.4, 2.5, Some(1.0)),
        "ca" => (12.5 * (2.0f64 / 5.0e-5).ln(), 5.0e-5, 2.0, Some(2.0)),
        _ => (0.0, 1.0, 1.0, None),
    }
}

// The ion-style bitmap (eion.cpp).
/// Concentration used: 1 constant, 2 dependent, 3 state.
pub(crate) const STYLE_CONC_MASK: u32 = 0o3;
/// Initialise concentrations from the `<ion>i0_<ion>_ion` globals at finitialize.
pub(crate) const STYLE_CINIT: u32 = 0o4;
/// Compute the reversal potential at finitialize.
pub(crate) const STYLE_EINIT: u32 = 0o40;
/// Compute the reversal potential every step.
pub(crate) const STYLE_EADVANCE: u32 = 0o100;

/// NEURON's `nrn_promote`: merges one mechanism's use (`conc`, `rev` levels:
/// 0 unused, 1 read, 3 written) into an ion instance's style.
pub(crate) fn promote(style: u32, conc: u32, rev: u32) -> u32 {
    let mut oldconc = style & STYLE_CONC_MASK;
    let mut oldrev = (style & 0o30) >> 3;
    oldconc = oldconc.max(conc);
    oldrev = oldrev.max(rev);
    if oldconc > 0 && oldrev < 2 {
        oldrev = 2;
    }
    let mut it = style & !0o177;
    it += oldconc + 0o10 * oldrev;
    if oldconc == 3 {
        it += STYLE_CINIT;
        if oldrev == 2 {
            it += STYLE_EADVANCE;
        }
    }
    if oldconc > 0 && oldrev == 2 {
        it += STYLE_EINIT;
    }
    it
}

/// All instances of one ion type (one per segment of every section where a
/// mechanism uses the ion).
#[derive(Debug)]
pub(crate) struct IonStore {
    pub name: String,
    pub valence: Option<f64>,
    /// `<ion>i0_<ion>_ion` and `<ion>o0_<ion>_ion`.
    pub ci0: f64,
    pub co0: f64,
    pub default_erev: f64,
    pub erev: Column,
    pub ci: Column,
    pub co: Column,
    pub cur: Column,
    pub dcurdv: Column,
    pub style: Vec<u32>,
    pub owners: Vec<Owner>,
    pub node_index: Vec<u32>,
    pub count: usize,
}

impl IonStore {
    pub(crate) fn new(name: &str) -> IonStore {
        let (e, ci, co, z) = ion_defaults(name);
        IonStore {
            name: name.to_string(),
            valence: z,
            ci0: ci,
            co0: co,
            default_erev: e,
            erev: Column::default(),
            ci: Column::default(),
            co: Column::default(),
            cur: Column::default(),
            dcurdv: Column::default(),
            style: Vec::new(),
            owners: Vec::new(),
            node_index: Vec::new(),
            count: 0,
        }
    }

    pub(crate) fn columns_mut(&mut self) -> [&mut Column; 5] {
        [
            &mut self.erev,
            &mut self.ci,
            &mut self.co,
            &mut self.cur,
            &mut self.dcurdv,
        ]
    }

    pub(crate) fn push(&mut self, owner: Owner) -> usize {
        let i = self.count;
        self.count += 1;
        let defaults = [self.default_erev, self.ci0, self.co0, 0.0, 0.0];
        let n = self.count;
        for (c, v) in self.columns_mut().into_iter().zip(defaults) {
            c.ensure_len(n);
            c.set(i, v);
        }
        self.style.push(0);
        self.owners.push(owner);
        self.node_index.push(0);
        i
    }

    pub(crate) fn swap_remove(&mut self, i: usize) -> Option<Owner> {
        let last = self.count - 1;
        for c in self.columns_mut() {
            let v = c.get(last);
            c.set(i, v);
            c.set(last, 0.0);
        }
        self.style.swap_remove(i);
        self.owners.swap_remove(i);
        self.node_index.swap_remove(i);
        self.count = last;
        (i < last).then(|| self.owners[i])
    }

    /// Reorders the instances: new instance `k` is old instance `order[k]`.
    pub(crate) fn permute(&mut self, order: &[usize]) {
        for c in self.columns_mut() {
            let vals: Vec<f64> = order.iter().map(|&o| c.get(o)).collect();
            for (k, v) in vals.into_iter().enumerate() {
                c.set(k, v);
            }
        }
        self.style = order.iter().map(|&o| self.style[o]).collect();
        self.owners = order.iter().map(|&o| self.owners[o]).collect();
        self.node_index = order.iter().map(|&o| self.node_index[o]).collect();
    }

    pub(crate) fn row(&self, i: usize) -> [f64; 5] {
        [
            self.erev.get(i),
            self.ci.get(i),
            self.co.get(i),
            self.cur.get(i),
            self.dcurdv.get(i),
        ]
    }

    pub(crate) fn set_row(&mut self, i: usize, row: [f64; 5]) {
        for (c, v) in self.columns_mut().into_iter().zip(row) {
            c.set(i, v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codata_constants() {
        assert!((FARADAY - 96485.33212).abs() < 1e-5);
        assert!((GAS_CONSTANT - 8.314462618).abs() < 1e-8);
    }

    #[test]
    fn nernst_edge_cases() {
        assert_eq!(nernst(0.0, 1.0, 1.0, 6.3), 1e6);
        assert_eq!(nernst(1.0, 0.0, 1.0, 6.3), -1e6);
        assert_eq!(nernst(1.0, 2.0, 0.0, 6.3), 0.0);
        // RT/F ln 10 at 6.3 °C is about 55.4 mV.
        let e = nernst(1.0, 10.0, 1.0, 6.3);
        assert!((e - 55.45).abs() < 0.1, "{e}");
    }

    #[test]
    fn promote_matches_neuron_bitmap() {
        // Reading e only: erev is a constant parameter, nothing computed.
        assert_eq!(promote(0, 0, 1), 0o10);
        // Reading a concentration: erev computed at init.
        assert_eq!(promote(0, 1, 0), 1 + 0o20 + 0o40);
        // Writing a concentration: cinit, einit, eadvance.
        assert_eq!(promote(0, 3, 0), 3 + 0o20 + 0o4 + 0o100 + 0o40);
        // Writing erev wins over computing it.
        assert_eq!(promote(0, 3, 3), 3 + 0o30 + 0o4);
    }
}
