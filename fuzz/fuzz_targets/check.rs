//! Fuzz target: any bytes, decoded lossily, go through the whole front end
//! and the renderer. It must never panic, hang or overflow the stack.
//! Run with `cargo fuzz run check` from the repository root.

#![no_main]

use libfuzzer_sys::fuzz_target;
use nmodl_frontend::source::SourceMap;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut sources = SourceMap::new();
    let result = nmodl_frontend::check_source(&mut sources, "fuzz.mod", &text);
    for d in &result.diagnostics {
        let file = sources.file(d.span.file);
        assert!(d.span.start <= d.span.end && d.span.end as usize <= file.text.len());
    }
    let _ = nmodl_frontend::render::render(&sources, &result.diagnostics, false);
});
