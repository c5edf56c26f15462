// The bundled sources: (file name, text), in registration order (NEURON
// registers pas and hh before the point processes). Included by the crate
// and by its build script, which compiles them ahead of time.

/// The bundled sources: (file name, text), in registration order.
pub const SOURCES: &[(&str, &str)] = &[
    ("pas.mod", include_str!("../mod/pas.mod")),
    ("hh.mod", include_str!("../mod/hh.mod")),
    ("stim.mod", include_str!("../mod/stim.mod")),
    ("alphasyn.mod", include_str!("../mod/alphasyn.mod")),
    ("expsyn.mod", include_str!("../mod/expsyn.mod")),
    ("exp2syn.mod", include_str!("../mod/exp2syn.mod")),
    ("svclmp.mod", include_str!("../mod/svclmp.mod")),
    ("netstim.mod", include_str!("../mod/netstim.mod")),
    ("intfire1.mod", include_str!("../mod/intfire1.mod")),
    ("intfire2.mod", include_str!("../mod/intfire2.mod")),
];

/// The name of the entry symbol of the built-ins compiled ahead of time.
pub const AOT_ENTRY: &str = "nrnrs_builtin_mechanism_table";
