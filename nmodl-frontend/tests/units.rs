//! Unit evaluation checked against NEURON 9.0.2.
//!
//! Every expected number below came from nocmodl 9.0.2's output: we translated a mod
//! file whose UNITS block holds the definitions listed here (in this order) and read
//! the `static double NAME = <hex float>;` lines of the generated C++. The hex
//! literals are copied from that output, so the comparison is bit for bit.

use nmodl_frontend::units::{conversion_factor, parse_unit, Mode, UnitDb, UnitError};

/// Parses a C99 hex float such as `0x1.78e555060882cp+16`.
fn hex_float(s: &str) -> f64 {
    let s = s.strip_prefix("0x").expect("hex float");
    let (mant, exp) = s.split_once('p').expect("exponent");
    let (int, frac) = mant.split_once('.').unwrap_or((mant, ""));
    let mut bits: u64 = u64::from_str_radix(int, 16).unwrap();
    for c in frac.chars() {
        bits = bits * 16 + c.to_digit(16).unwrap() as u64;
    }
    let exp: i32 = exp.parse().unwrap();
    bits as f64 * 2f64.powi(exp - 4 * frac.len() as i32)
}

/// The UNITS-block unit definitions of the reference mod file, applied first.
const DEFINITIONS: &[(&str, &str)] = &[
    ("mV", "millivolt"),
    ("mA", "milliamp"),
    ("nA", "nanoamp"),
    ("uS", "microsiemens"),
    ("S", "siemens"),
    ("molar", "1/liter"),
    ("mM", "millimolar"),
    ("um", "micron"),
];

/// `(name, from, to, nocmodl 9.0.2 value)`: the mod line was `NAME = (from) (to)`.
const FACTORS: &[(&str, &str, &str, &str)] = &[
    ("FARADAY", "faraday", "coulomb", "0x1.78e555060882cp+16"),
    (
        "FARADAY_10000",
        "faraday",
        "10000 coulomb",
        "0x1.34c0c8b92a9b7p+3",
    ),
    (
        "FARADAY_KC",
        "faraday",
        "kilocoulombs",
        "0x1.81f0fae775425p+6",
    ),
    ("R_JDEGC", "k-mole", "joule/degC", "0x1.0a1013e8990bep+3"),
    ("R_GAS", "gasconstant", "joule/degC", "0x1.0a1013e8990bep+3"),
    ("R_R", "R", "joule/K", "0x1.0a1013e8990bep+3"),
    ("PI", "pi", "1", "0x1.921fb54442d18p+1"),
    ("E_CHARGE", "e", "coulomb", "0x1.7a4da290c1653p-63"),
    ("KBOLTZ", "k", "joule/degC", "0x1.0b0e6d55e647cp-76"),
    ("MOLE", "mole", "1", "0x1.fe185ca57c517p+78"),
    ("MV_TO_V", "mV", "volt", "0x1.0624dd2f1a9fcp-10"),
    ("ONE_MV", "1", "mV", "0x1.f4p+9"),
    ("CURDENS", "mA/cm2", "mM um/ms", "0x1.3880000000001p+13"),
    ("CONC", "mM", "1/m3", "0x1.ffffffffffffep-1"),
    ("HOUR_MS", "hour", "ms", "0x1.b774p+21"),
    // NEURON puts everything after `/` in the denominator: mA/(cm2 um2).
    ("NA_CM2", "nA", "mA/cm2 um2", "0x1.e392010175ee6p-74"),
    ("US_CM2", "uS/um2", "S/cm2", "0x1.9p+6"),
    ("HALF", "1|2 m", "m", "0x1p-1"),
    ("ATM_PA", "atm", "pascal", "0x1.8bcdp+16"),
    ("CAL_J", "kcal", "joule", "0x1.05acccccccccdp+12"),
    ("EV_J", "eV", "joule", "0x1.7a4da290c1653p-63"),
    ("MHO", "mho/cm2", "S/cm2", "0x1p+0"),
    ("LITRE", "litre", "cc", "0x1.f400000000001p+9"),
    ("ANG", "angstrom", "m", "0x1.b7cdfd9d7bdbcp-34"),
    ("MEGOHM", "megohm", "ohm", "0x1.e848p+19"),
    ("PF", "pf", "farad", "0x1.19799812dea11p-40"),
    ("HBAR", "hbar", "joule sec", "0x1.185a7057c690dp-113"),
    ("VOLTS", "volts", "mV", "0x1.f4p+9"),
    // NEURON reads `1e-3` as 1 times the elementary charge `e` (and ignores the
    // stray 3); mod line `X5 = (1e-3) (1)`. The resolver warns about it (W0310).
    ("X5", "1e-3", "1", "0x1.7a4da290c1653p-63"),
    // A second reference file (no unit definitions needed), lines `A1 = (erg) (joule)` …
    ("A1", "erg", "joule", "0x1.ad7f29abcaf49p-24"),
    ("A2", "dyne", "newton", "0x1.4f8b588e368f1p-17"),
    ("A3", "torr", "pascal", "0x1.0aa4dd2f1a9fcp+7"),
    ("A4", "ft", "cm", "0x1.e7ae147ae147bp+4"),
    ("A5", "inch", "micron", "0x1.8ce0000000001p+14"),
];

fn neuron_db_with_definitions() -> UnitDb {
    let mut db = UnitDb::new(Mode::Neuron);
    for (name, def) in DEFINITIONS {
        db.define(name, def)
            .unwrap_or_else(|e| panic!("({name}) = ({def}): {e}"));
    }
    db
}

#[test]
fn units_block_factors_match_nocmodl_bit_for_bit() {
    let db = neuron_db_with_definitions();
    let mut failures = Vec::new();
    for (name, from, to, expected) in FACTORS {
        let expected = hex_float(expected);
        match db.factor(from, to) {
            Ok(got) if got.to_bits() == expected.to_bits() => {}
            Ok(got) => failures.push(format!("{name}: got {got:e}, nocmodl {expected:e}")),
            Err(e) => failures.push(format!("{name}: {e}")),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn printed_codata_values() {
    // NEURON 9.0.2 prints FARADAY = 96485.3321233100184 and R = 8.3144626181532395;
    // `h.FARADAY` and `h.R` are the doubles 0x1.78e555060882cp+16 and
    // 0x1.0a1013e8990bep+3 (read with float.hex in NEURON's Python), the same
    // doubles nocmodl writes for `(faraday) (coulomb)` and `(k-mole) (joule/degC)`.
    let db = UnitDb::new(Mode::Neuron);
    let faraday = db.factor("faraday", "coulomb").unwrap();
    let r = db.factor("k-mole", "joule/degC").unwrap();
    assert_eq!(
        faraday.to_bits(),
        "96485.3321233100184".parse::<f64>().unwrap().to_bits()
    );
    assert_eq!(
        r.to_bits(),
        "8.3144626181532395".parse::<f64>().unwrap().to_bits()
    );
    assert_eq!(
        faraday.to_bits(),
        hex_float("0x1.78e555060882cp+16").to_bits()
    );
    assert_eq!(r.to_bits(), hex_float("0x1.0a1013e8990bep+3").to_bits());
}

#[test]
fn redefining_a_table_name_is_an_error_like_nocmodl() {
    // nocmodl 9.0.2 on `UNITS { (ms) = (millisec) }`: "Error: Units redefinition".
    let mut db = UnitDb::new(Mode::Neuron);
    assert!(matches!(
        db.define("ms", "millisec"),
        Err(UnitError::Redefinition { .. })
    ));
    // And on `(mV) = (millivolt)` given twice.
    db.define("mV", "millivolt").unwrap();
    assert!(matches!(
        db.define("mV", "millivolt"),
        Err(UnitError::Redefinition { .. })
    ));
}

#[test]
fn undeclared_short_names_are_unknown_to_neuron() {
    // nocmodl 9.0.2 on `UNITS { X = (um) (m) }`: "Cannot recognize the units: um".
    let db = UnitDb::new(Mode::Neuron);
    assert_eq!(
        db.parse("um"),
        Err(UnitError::Unknown { name: "um".into() })
    );
}

#[test]
fn conventional_units_parse() {
    let check = |text: &str, factor: f64, dims: &str| {
        let u = parse_unit(text).unwrap_or_else(|e| panic!("{text}: {e}"));
        let rel = (u.factor - factor).abs() / factor.abs();
        assert!(rel < 1e-12, "{text}: factor {} want {factor}", u.factor);
        assert_eq!(u.dims_string(), dims, "{text}");
    };
    check("mA/cm2", 1e-3 / 1e-4, "C/m2-s");
    check("/ms", 1e3, "/s");
    check("1/ms", 1e3, "/s");
    check("mV ms", 1e-6, "m2-kg/s-C");
    check("k-mole", 8.31446261815324, "m2-kg/s2-K");
    check("joule/degC", 1.0, "m2-kg/s2-K");
    check("1e-3", 1e-3, "");
    check("S/cm2", 1e4, "s-C2/m4-kg");
    check("um2", 1e-12, "m2");
    check("mM-cm2/mA", 1e-4 / 1e-3, "s/m-C");
    check("degC", 1.0, "K");
    check("1", 1.0, "");
    check("mV", 1e-3, "m2-kg/s2-C");
    check("mM", 1.0, "/m3");
    check("uM", 1e-3, "/m3");
    check("nA", 1e-9, "C/s");
    check("uS", 1e-6, "s-C2/m2-kg");
    check("pS/um2", 1e-12 / 1e-12, "s-C2/m4-kg");
    check("µm", 1e-6, "m");
    check("ohm cm", 1e-2, "m3-kg/s-C2");
    check("MOhm", 1e6, "m2-kg/s-C2");
    check("uF/cm2", 1e-6 / 1e-4, "s2-C2/m4-kg");
    check("l", 1e-3, "m3");
    check("min", 60.0, "s");
}

#[test]
fn conversion_checks_dimensions() {
    let mv = parse_unit("mV").unwrap();
    let v = parse_unit("volt").unwrap();
    assert!((conversion_factor(&mv, &v).unwrap() - 1e-3).abs() < 1e-18);
    let ms = parse_unit("ms").unwrap();
    assert!(matches!(
        conversion_factor(&mv, &ms),
        Err(UnitError::Incompatible { .. })
    ));
    assert!(matches!(
        parse_unit("furlongz"),
        Err(UnitError::Unknown { .. })
    ));
}
