//! The units database and the evaluator for NMODL unit expressions.
//!
//! NEURON 9 evaluates the UNITS block of a mod file (and nothing else: nocmodl
//! never checks the units of declarations) against its units table, a GNU-units
//! derived file with CODATA 2018 constants. This module restates the subset of
//! that table that mod files use, together with NEURON's evaluation rules, so that
//! `FARADAY = (faraday) (coulomb)` gives bit-for-bit the number nocmodl 9.0.2
//! writes into its generated C++.
//!
//! The rules, as NEURON applies them:
//! - A unit expression is an optional leading number, then names separated by
//!   spaces or `-` (both multiply). Everything after the first `/` is in the
//!   denominator. A digit 2–9 right after a name raises it to that power
//!   (`cm2`, `um3`). A leading number may use `|` for division (`1|2`) and `+`/`-`
//!   for a decimal exponent (`2+3` is 2000).
//! - A name is looked up in the table; if absent, a long prefix (`milli`,
//!   `micro`, `kilo`, …) is stripped and the rest looked up again; if still absent,
//!   a trailing plural `s` is stripped.
//! - `mole` is the dimensionless count 6.02214076e23, so `faraday = e-mole` is in
//!   coulombs and `R = k-mole` in joule/kelvin. `degC` is the same unit as `K`
//!   (no offset).
//! - Names such as `mV`, `mA`, `um`, `mM` and `S` are *not* in NEURON's table; mod
//!   files declare them in their UNITS block (`(mV) = (millivolt)`). Declaring a
//!   name that the table already holds (`(ms) = (millisec)`) is an error in NEURON.
//!
//! Two lookup modes exist. [`Mode::Neuron`] sees only NEURON's table and long
//! prefixes; the resolver uses it for UNITS-block definitions so that we accept and
//! reject exactly what nocmodl does. [`Mode::Conventional`] additionally knows the
//! names mod files use without declaring them (`mV`, `mA`, `S`, `um`, `mM`, `l`,
//! `M` = molar, `A`, `F`, `mol`), the short SI prefixes (`m`, `u`, `µ`, `n`, `k`,
//! `M`, …) and ordinary `1e-3` float syntax; [`parse_unit`] uses it for the unit
//! strings of declarations. Molar is `1/liter` (not `mole/liter`), because NEURON's
//! `mole` is a pure number and every mod file defines `(mM) = (milli/liter)`.

use std::collections::HashMap;
use std::fmt;
use std::sync::OnceLock;

/// Number of base dimensions: metre, kilogram, second, coulomb, kelvin, candela.
pub const NDIM: usize = 6;

/// Names of the base dimensions, in the order of [`Unit::dims`].
pub const DIM_NAMES: [&str; NDIM] = ["m", "kg", "s", "C", "K", "cd"];

/// A unit: a scale factor relative to the SI base units and the exponent of each
/// base dimension (in the order of [`DIM_NAMES`]).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Unit {
    /// The size of this unit in base units (millivolt = 1e-3).
    pub factor: f64,
    /// Exponent of each base dimension.
    pub dims: [i8; NDIM],
}

impl Unit {
    /// The dimensionless unit with factor 1.
    pub const ONE: Unit = Unit {
        factor: 1.0,
        dims: [0; NDIM],
    };

    fn base(i: usize) -> Unit {
        let mut dims = [0; NDIM];
        dims[i] = 1;
        Unit { factor: 1.0, dims }
    }

    /// True when the unit has no dimension (it may still have a factor ≠ 1).
    pub fn is_dimensionless(&self) -> bool {
        self.dims.iter().all(|&d| d == 0)
    }

    /// Dimensions as text in NEURON's style, e.g. `m2-kg/s3-C` (empty when
    /// dimensionless).
    pub fn dims_string(&self) -> String {
        let part = |sign: i8| -> String {
            let mut out = Vec::new();
            for (i, &d) in self.dims.iter().enumerate() {
                let d = d * sign;
                if d > 0 {
                    if d == 1 {
                        out.push(DIM_NAMES[i].to_string());
                    } else {
                        out.push(format!("{}{}", DIM_NAMES[i], d));
                    }
                }
            }
            out.join("-")
        };
        let num = part(1);
        let den = part(-1);
        match (num.is_empty(), den.is_empty()) {
            (_, true) => num,
            (true, false) => format!("/{den}"),
            (false, false) => format!("{num}/{den}"),
        }
    }
}

impl fmt::Display for Unit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let dims = self.dims_string();
        if dims.is_empty() {
            write!(f, "{:e}", self.factor)
        } else {
            write!(f, "{:e} {}", self.factor, dims)
        }
    }
}

/// Why a unit expression could not be evaluated or converted.
#[derive(Debug, Clone, PartialEq)]
pub enum UnitError {
    /// A name in the expression is neither in the table nor a prefixed or plural
    /// form of a name in it.
    Unknown { name: String },
    /// The expression has a character or shape the unit syntax does not allow.
    Syntax { text: String, reason: String },
    /// Two units of different dimensions were compared or converted.
    Incompatible { from: Unit, to: Unit },
    /// A UNITS-block definition `(name) = (…)` names a unit that already exists.
    Redefinition { name: String, existing: Unit },
}

impl fmt::Display for UnitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UnitError::Unknown { name } => write!(f, "unknown unit `{name}`"),
            UnitError::Syntax { text, reason } => {
                write!(f, "cannot read the unit `{text}`: {reason}")
            }
            UnitError::Incompatible { from, to } => write!(
                f,
                "units are not conformable: `{}` versus `{}`",
                display_dims(from),
                display_dims(to)
            ),
            UnitError::Redefinition { name, existing } => {
                write!(f, "the unit `{name}` is already defined (as {existing})")
            }
        }
    }
}

fn display_dims(u: &Unit) -> String {
    let d = u.dims_string();
    if d.is_empty() {
        "dimensionless".to_string()
    } else {
        d
    }
}

impl std::error::Error for UnitError {}

/// Which names a lookup may see.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Only NEURON's own table and long prefixes, NEURON's number syntax (in which
    /// `1e-3` reads as 1 × the elementary charge, then a stray 3).
    Neuron,
    /// NEURON's table plus conventional NMODL names, short SI prefixes and
    /// ordinary float syntax.
    Conventional,
}

/// Long prefixes in NEURON's search order (the first that starts the name wins).
const LONG_PREFIXES: &[(&str, f64)] = &[
    ("atto", 1e-18),
    ("femto", 1e-15),
    ("pico", 1e-12),
    ("nano", 1e-9),
    ("micro", 1e-6),
    ("milli", 1e-3),
    ("centi", 1e-2),
    ("deci", 1e-1),
    ("deka", 1e1),
    ("hecta", 1e2),
    ("hecto", 1e2),
    ("kilo", 1e3),
    ("mega", 1e6),
    ("meg", 1e6),
    ("giga", 1e9),
    ("tera", 1e12),
];

/// Short SI prefixes, tried (in [`Mode::Conventional`] only) after the long ones.
const SHORT_PREFIXES: &[(&str, f64)] = &[
    ("da", 1e1),
    ("Y", 1e24),
    ("Z", 1e21),
    ("E", 1e18),
    ("P", 1e15),
    ("T", 1e12),
    ("G", 1e9),
    ("M", 1e6),
    ("k", 1e3),
    ("h", 1e2),
    ("d", 1e-1),
    ("c", 1e-2),
    ("m", 1e-3),
    ("u", 1e-6),
    ("µ", 1e-6),
    ("μ", 1e-6),
    ("n", 1e-9),
    ("p", 1e-12),
    ("f", 1e-15),
    ("a", 1e-18),
    ("z", 1e-21),
    ("y", 1e-24),
];

/// NEURON's table, restated: `(name, definition)` evaluated in order with the
/// rules in the module docs. Constants are CODATA 2018 as in NEURON 9.
/// A definition of `""` marks a primitive (its index in [`DIM_NAMES`] is given by
/// [`PRIMITIVES`]).
const NEURON_TABLE: &[(&str, &str)] = &[
    // Pure numbers and exact constants.
    ("fuzz", "1"),
    ("two", "2"),
    ("pi", "3.14159265358979323846"),
    ("c", "2.99792458+8 m/sec fuzz"),
    ("g", "9.80665 m/sec2"),
    ("mole", "6.02214076+23 fuzz"),
    ("e", "1.602176634-19 coul fuzz"),
    // Time.
    ("second", "sec"),
    ("s", "sec"),
    ("minute", "60 sec"),
    ("min", "minute"),
    ("hour", "60 min"),
    ("hr", "hour"),
    ("day", "24 hr"),
    ("da", "day"),
    ("ms", "millisec"),
    ("us", "microsec"),
    ("ns", "nanosec"),
    // Mass.
    ("gram", "millikg"),
    ("gm", "gram"),
    ("mg", "milligram"),
    ("gramme", "gram"),
    // Length, area, volume.
    ("meter", "m"),
    ("metre", "meter"),
    ("cm", "centimeter"),
    ("mm", "millimeter"),
    ("km", "kilometer"),
    ("nm", "nanometer"),
    ("micron", "micrometer"),
    ("angstrom", "decinanometer"),
    ("cc", "cm3"),
    ("liter", "kilocc"),
    ("litre", "liter"),
    ("ml", "milliliter"),
    ("inch", "2.54 cm"),
    ("in", "inch"),
    ("foot", "12 in"),
    ("ft", "foot"),
    // Mechanics and energy.
    ("newton", "kg-m/sec2"),
    ("nt", "newton"),
    ("N", "newton"),
    ("joule", "nt-m"),
    ("cal", "4.1868 joule"),
    ("calorie", "cal"),
    ("kcal", "kilocal"),
    ("pascal", "nt/m2"),
    ("erg", "cm2-gm/sec2"),
    ("dyne", "cm-gm/sec2"),
    ("mercury", "1.33322+5 kg/m2-sec2"),
    ("hg", "mercury"),
    ("torr", "mm hg"),
    ("atmosphere", "1.01325+5 nt/m2"),
    ("atm", "atmosphere"),
    // Electricity.
    ("coulomb", "coul"),
    ("C", "coul"),
    ("ampere", "coul/sec"),
    ("amp", "ampere"),
    ("watt", "joule/sec"),
    ("volt", "watt/amp"),
    ("V", "volt"),
    ("ohm", "volt/amp"),
    ("mho", "/ohm"),
    ("siemens", "/ohm"),
    ("farad", "coul/volt"),
    ("pf", "picofarad"),
    ("henry", "sec2/farad"),
    ("weber", "volt-sec"),
    ("tesla", "weber/m2"),
    ("kilohm", "kiloohm"),
    ("megohm", "megaohm"),
    ("hertz", "/sec"),
    ("Hz", "hertz"),
    ("hz", "/sec"),
    // Light.
    ("cd", "candela"),
    // Physical constants.
    ("faraday", "e-mole"),
    ("boltzmann", "1.380649-23 joule/K"),
    ("k", "boltzmann"),
    ("gasconstant", "k-mole"),
    ("R", "gasconstant"),
    ("planck", "6.62607015-34 joule-sec"),
    ("hbar", "planck/two-pi"),
    ("electronvolt", "e-volt"),
    ("ev", "e-volt"),
    ("eV", "e V"),
    // Temperature (degC has no offset in NEURON).
    ("degC", "K"),
    ("kelvin", "K"),
];

/// The primitive names of NEURON's table and the base dimension each stands for.
const PRIMITIVES: &[(&str, usize)] = &[
    ("m", 0),
    ("kg", 1),
    ("sec", 2),
    ("coul", 3),
    ("K", 4),
    ("candela", 5),
];

/// Names mod files use without declaring them; known only in
/// [`Mode::Conventional`].
const CONVENTIONAL_TABLE: &[(&str, &str)] = &[
    ("A", "ampere"),
    ("S", "siemens"),
    ("F", "farad"),
    ("Ohm", "ohm"),
    ("l", "liter"),
    ("L", "liter"),
    ("molar", "1/liter"),
    ("M", "molar"),
    ("mol", "mole"),
    ("avogadro", "mole"),
    ("N_A", "mole"),
    ("degK", "K"),
];

/// A units table: NEURON's built-in names plus any definitions from a mod file's
/// UNITS block. Created once per resolved file; [`UnitDb::define`] mutates it.
#[derive(Debug, Clone)]
pub struct UnitDb {
    mode: Mode,
    /// NEURON's table plus user definitions.
    neuron: HashMap<String, Unit>,
    /// Conventional extras (consulted after `neuron` in conventional mode).
    conventional: HashMap<String, Unit>,
}

impl UnitDb {
    /// A fresh table holding NEURON's built-in units, looked up in `mode`.
    pub fn new(mode: Mode) -> UnitDb {
        let mut db = builtin().clone();
        db.mode = mode;
        db
    }

    /// The lookup mode of this table.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// Evaluates a unit expression (without the surrounding parentheses).
    pub fn parse(&self, text: &str) -> Result<Unit, UnitError> {
        eval(self, text.trim())
    }

    /// Applies a UNITS-block definition `(name) = (definition)`. Like NEURON, it
    /// is an error when `name` is already in NEURON's table or was defined before;
    /// a conventional name (e.g. `mV`) is simply replaced.
    pub fn define(&mut self, name: &str, definition: &str) -> Result<Unit, UnitError> {
        let name = name.trim();
        if let Some(existing) = self.neuron.get(name) {
            return Err(UnitError::Redefinition {
                name: name.to_string(),
                existing: *existing,
            });
        }
        let unit = self.parse(definition)?;
        self.neuron.insert(name.to_string(), unit);
        Ok(unit)
    }

    /// Evaluates a UNITS-block factor `NAME = (from) (to)` or `NAME = (from) ->
    /// (to)`: the size of one `from` in `to`, as nocmodl computes it. Like nocmodl,
    /// this does not require the dimensions to agree (it divides the factors); use
    /// [`UnitDb::factor_checked`] to learn whether they do.
    pub fn factor(&self, from: &str, to: &str) -> Result<f64, UnitError> {
        let f = self.parse(from)?;
        let t = self.parse(to)?;
        Ok(f.factor / t.factor)
    }

    /// Like [`UnitDb::factor`], but also returns both evaluated units so that the
    /// caller can report a dimension mismatch (which nocmodl silently accepts).
    pub fn factor_checked(&self, from: &str, to: &str) -> Result<(f64, Unit, Unit), UnitError> {
        let f = self.parse(from)?;
        let t = self.parse(to)?;
        Ok((f.factor / t.factor, f, t))
    }

    fn lookup_exact(&self, name: &str) -> Option<Unit> {
        // A bare prefix (`milli` in `milli/liter`) leaves the empty name, which
        // NEURON's table defines as the number 1.
        if name.is_empty() {
            return Some(Unit::ONE);
        }
        if let Some(u) = self.neuron.get(name) {
            return Some(*u);
        }
        if self.mode == Mode::Conventional {
            return self.conventional.get(name).copied();
        }
        None
    }

    /// Finds `name`, stripping prefixes and a plural `s` as NEURON does. Returns
    /// the table entry and the accumulated prefix factor.
    fn lookup(&self, name: &str) -> Option<(Unit, f64)> {
        let mut e = 1.0;
        let mut rest = name;
        loop {
            if let Some(u) = self.lookup_exact(rest) {
                return Some((u, e));
            }
            if let Some((p, f)) = LONG_PREFIXES.iter().find(|(p, _)| rest.starts_with(p)) {
                e *= f;
                rest = &rest[p.len()..];
                continue;
            }
            if self.mode == Mode::Conventional {
                // A short prefix only counts when the rest is a known name, so that
                // `mM` is milli-molar while `min` stays minutes.
                for (p, f) in SHORT_PREFIXES {
                    if let Some(tail) = rest.strip_prefix(p) {
                        if !tail.is_empty() {
                            if let Some(u) = self.lookup_exact(tail) {
                                return Some((u, e * f));
                            }
                        }
                    }
                }
            }
            if rest.len() > 1 && rest.ends_with('s') {
                rest = &rest[..rest.len() - 1];
                continue;
            }
            return None;
        }
    }
}

fn builtin() -> &'static UnitDb {
    static DB: OnceLock<UnitDb> = OnceLock::new();
    DB.get_or_init(|| {
        let mut db = UnitDb {
            mode: Mode::Neuron,
            neuron: HashMap::new(),
            conventional: HashMap::new(),
        };
        for (name, i) in PRIMITIVES {
            db.neuron.insert(name.to_string(), Unit::base(*i));
        }
        for (name, def) in NEURON_TABLE {
            let u = eval(&db, def)
                .unwrap_or_else(|e| panic!("built-in unit `{name}` = `{def}` is invalid: {e}"));
            db.neuron.insert(name.to_string(), u);
        }
        db.mode = Mode::Conventional;
        for (name, def) in CONVENTIONAL_TABLE {
            let u = eval(&db, def)
                .unwrap_or_else(|e| panic!("built-in unit `{name}` = `{def}` is invalid: {e}"));
            db.conventional.insert(name.to_string(), u);
        }
        db.mode = Mode::Neuron;
        db
    })
}

/// Evaluates a unit expression with the conventional table (NEURON's names plus
/// `mV`, `mA`, `S`, `um`, `mM`, short prefixes, …). Runs on demand; touches only a
/// lazily built, shared, read-only table.
pub fn parse_unit(text: &str) -> Result<Unit, UnitError> {
    static DB: OnceLock<UnitDb> = OnceLock::new();
    DB.get_or_init(|| UnitDb::new(Mode::Conventional))
        .parse(text)
}

/// The number by which a value in `from` is multiplied to express it in `to`.
/// Fails when the dimensions differ.
pub fn conversion_factor(from: &Unit, to: &Unit) -> Result<f64, UnitError> {
    if from.dims != to.dims {
        return Err(UnitError::Incompatible {
            from: *from,
            to: *to,
        });
    }
    Ok(from.factor / to.factor)
}

/// Reads NEURON's leading number: digits and `.`, then `+`/`-` digits as a decimal
/// exponent, then optionally `|` and another such number as a divisor. In
/// conventional mode `e`/`E` followed by an optional sign and a digit is also an
/// exponent. Returns the value (0 when there is no number) and the bytes used.
fn leading_number(text: &str, mode: Mode) -> (f64, usize) {
    let b = text.as_bytes();
    let mut i = 0;
    while i < b.len() && (b[i] == b' ' || b[i] == b'\t') {
        i += 1;
    }
    let start = i;
    while i < b.len() && (b[i].is_ascii_digit() || b[i] == b'.') {
        i += 1;
    }
    let mantissa = &text[start..i];
    let mut exponent = String::new();
    if i > start {
        if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
            exponent.push(b[i] as char);
            i += 1;
            while i < b.len() && b[i].is_ascii_digit() {
                exponent.push(b[i] as char);
                i += 1;
            }
        } else if mode == Mode::Conventional && i < b.len() && (b[i] == b'e' || b[i] == b'E') {
            let mut j = i + 1;
            let mut exp = String::new();
            if j < b.len() && (b[j] == b'+' || b[j] == b'-') {
                exp.push(b[j] as char);
                j += 1;
            }
            if j < b.len() && b[j].is_ascii_digit() {
                while j < b.len() && b[j].is_ascii_digit() {
                    exp.push(b[j] as char);
                    j += 1;
                }
                exponent = exp;
                i = j;
            }
        }
    }
    // Like C's atof: an empty or partial number reads as far as it is valid.
    let mut value = parse_prefix_f64(mantissa);
    if !exponent.is_empty() {
        if let Ok(full) = format!("{mantissa}e{exponent}").parse::<f64>() {
            value = full;
        }
    }
    if i < b.len() && b[i] == b'|' {
        let (d, used) = leading_number(&text[i + 1..], mode);
        return (value / d, i + 1 + used);
    }
    (value, i)
}

fn parse_prefix_f64(s: &str) -> f64 {
    let mut end = s.len();
    while end > 0 {
        if let Ok(v) = s[..end].parse::<f64>() {
            return v;
        }
        end -= 1;
    }
    0.0
}

fn is_separator(c: char) -> bool {
    matches!(c, '1'..='9' | '-' | '/' | ' ' | '\t' | '\n' | '\r')
}

/// NEURON's evaluation loop: leading number, then names multiplied (or divided
/// after `/`) in order, each raised by a following digit.
fn eval(db: &UnitDb, text: &str) -> Result<Unit, UnitError> {
    let (mut factor, used) = leading_number(text, db.mode);
    if factor == 0.0 {
        factor = 1.0;
    }
    let mut unit = Unit {
        factor,
        dims: [0; NDIM],
    };
    let rest = &text[used..];
    let mut den = false;
    let mut name = String::new();
    let mut chars = rest.chars().peekable();
    loop {
        let c = chars.next();
        match c {
            Some(c) if !is_separator(c) => {
                if matches!(c, '(' | ')' | '*' | '^' | ',' | ';') {
                    return Err(UnitError::Syntax {
                        text: text.to_string(),
                        reason: format!("unexpected `{c}`"),
                    });
                }
                name.push(c);
            }
            _ => {
                if !name.is_empty() {
                    let power = match c {
                        Some(d @ '2'..='9') => d as u32 - '0' as u32,
                        _ => 1,
                    };
                    let (u, e) = db
                        .lookup(&name)
                        .ok_or_else(|| UnitError::Unknown { name: name.clone() })?;
                    for _ in 0..power {
                        let step = u.factor * e;
                        if den {
                            unit.factor /= step;
                        } else {
                            unit.factor *= step;
                        }
                        for k in 0..NDIM {
                            if den {
                                unit.dims[k] -= u.dims[k];
                            } else {
                                unit.dims[k] += u.dims[k];
                            }
                        }
                    }
                    name.clear();
                }
                match c {
                    None => break,
                    Some('/') => den = true,
                    _ => {}
                }
            }
        }
    }
    Ok(unit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dims_string_reads_like_neuron() {
        let v = parse_unit("mV").unwrap();
        assert_eq!(v.dims_string(), "m2-kg/s2-C");
        assert_eq!(parse_unit("/ms").unwrap().dims_string(), "/s");
    }

    #[test]
    fn neuron_mode_hides_conventional_names() {
        let db = UnitDb::new(Mode::Neuron);
        assert!(matches!(db.parse("um"), Err(UnitError::Unknown { .. })));
        assert!(db.parse("micron").is_ok());
    }
}
