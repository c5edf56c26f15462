//! `nrnivmodl-rs demo`: compile the bundled mechanisms, run the seed example
//! of NEURON's scripting tutorial, and write its voltage trace.
//!
//! The model is NEURON's default section (L 100 µm, diam 500 µm, nseg 1,
//! Ra 35.4 Ω·cm, cm 1 µF/cm²) with `hh`, four IClamps at 0.5 (50 nA for
//! 0.5 ms at 2, 13, 27 and 40 ms) and a spike detector (a NetCon on v at 0.5,
//! threshold 10 mV). It runs as `tests/data/neuron/demo.json` was made with
//! NEURON 9.0.2: `finitialize(-65)` then exactly 1980 `fadvance()` calls of
//! dt 0.025 ms, celsius 6.3 °C, secondorder 0.
//!
//! The command writes `demo_voltage.csv` and `demo_voltage.png` into the
//! output folder (created if missing) and nothing else. It replaces those
//! two files only when they look like an earlier demo's output (the CSV's
//! header line, the PNG's size); any other file of that name is left alone
//! and the command stops with exit code 2.
//!
//! Exit codes: 0 on success, 1 when the simulation or writing fails, 2 for
//! a bad `--out` (a file instead of a folder, or a foreign file in the way).

use crate::DemoArgs;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use runtime::{NetSource, Probe, Sampling};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::OnceLock;
use std::time::Instant;

/// Time step [ms].
const DT: f64 = 0.025;
/// End time [ms]; the run is exactly [`NSTEPS`] steps.
const TSTOP: f64 = 49.5;
/// Number of `fadvance` calls: round(TSTOP / DT).
const NSTEPS: usize = 1980;
/// [mV]
const V_INIT: f64 = -65.0;
/// [°C]
const CELSIUS: f64 = 6.3;
/// Onsets of the four current pulses [ms].
const STIM_DELAYS: [f64; 4] = [2.0, 13.0, 27.0, 40.0];
/// [ms]
const STIM_DUR: f64 = 0.5;
/// [nA]
const STIM_AMP: f64 = 50.0;
/// Spike detector threshold [mV] (NEURON's NetCon default).
const THRESHOLD: f64 = 10.0;

/// The CSV file name inside the output folder.
const CSV_NAME: &str = "demo_voltage.csv";
/// The PNG file name inside the output folder.
const PNG_NAME: &str = "demo_voltage.png";
/// The CSV header line (also how an earlier demo's CSV is recognised).
const CSV_HEADER: &str = "t [ms],soma(0.5).v [mV]";
/// The plot size in pixels (also how an earlier demo's PNG is recognised).
const PNG_SIZE: (u32, u32) = (900, 500);
/// The NEURON reference, relative to the repository root.
const REFERENCE: &str = "tests/data/neuron/demo.json";

/// Why the demo stopped: a usage problem (exit 2) or a failure (exit 1).
#[derive(Debug)]
enum DemoError {
    Usage(String),
    Failure(String),
}

/// What one simulation produced.
struct Run {
    /// Recorded t [ms], NSTEPS + 1 samples.
    t: Vec<f64>,
    /// Recorded v at soma(0.5) [mV].
    v: Vec<f64>,
    /// Spike times [ms] (NetCon.record semantics).
    spikes: Vec<f64>,
    /// The CSV text from `Model::write_csv`.
    csv: Vec<u8>,
    /// Seconds spent compiling the bundled mechanisms.
    compile_s: f64,
    /// Seconds spent in finitialize + fadvance.
    run_s: f64,
}

/// The plot's axes, for the printed description.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Axes {
    x: (f64, f64, f64),
    y: (f64, f64, f64),
}

/// The result of comparing with NEURON's reference file.
struct Comparison {
    version: String,
    max_dv: f64,
    max_dv_t: f64,
    ref_spikes: Vec<f64>,
}

/// Runs `demo` and returns the process exit code. Writes only the two
/// output files (see the module docs) and prints a summary on stdout.
pub fn run(args: &DemoArgs) -> ExitCode {
    match demo(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(DemoError::Usage(m)) => {
            eprintln!("nrnivmodl-rs demo: error: {m}");
            ExitCode::from(2)
        }
        Err(DemoError::Failure(m)) => {
            eprintln!("nrnivmodl-rs demo: error: {m}");
            ExitCode::from(1)
        }
    }
}

fn demo(args: &DemoArgs) -> Result<(), DemoError> {
    let out = &args.out;
    let csv_path = out.join(CSV_NAME);
    let png_path = out.join(PNG_NAME);
    // Check the destination before spending time on the run.
    check_out_dir(out)?;
    check_replaceable(&csv_path, looks_like_our_csv)?;
    check_replaceable(&png_path, looks_like_our_png)?;

    let run = simulate().map_err(DemoError::Failure)?;
    let labels = font_registered();
    let (png, axes) = render_png(&run.t, &run.v, labels).map_err(DemoError::Failure)?;

    std::fs::create_dir_all(out)
        .map_err(|e| DemoError::Failure(format!("cannot create folder {}: {e}", out.display())))?;
    // Re-check right before writing: the run took a moment.
    check_replaceable(&csv_path, looks_like_our_csv)?;
    check_replaceable(&png_path, looks_like_our_png)?;
    std::fs::write(&csv_path, &run.csv)
        .map_err(|e| DemoError::Failure(format!("cannot write {}: {e}", csv_path.display())))?;
    std::fs::write(&png_path, &png)
        .map_err(|e| DemoError::Failure(format!("cannot write {}: {e}", png_path.display())))?;

    print_summary(&run, &axes, labels, &csv_path, &png_path);
    Ok(())
}

/// Builds the tutorial model, runs it, and renders the CSV in memory.
fn simulate() -> Result<Run, String> {
    let t0 = Instant::now();
    let mut m = mechanisms::new_model().map_err(|e| e.to_string())?;
    let compile_s = t0.elapsed().as_secs_f64();
    let rt = |e: runtime::Error| format!("simulation failed: {e}");

    m.set_dt(DT).map_err(rt)?;
    m.set_celsius(CELSIUS).map_err(rt)?;
    m.set_secondorder(0).map_err(rt)?;
    let soma = m.create_section("soma").map_err(rt)?;
    m.set_nseg(soma, 1).map_err(rt)?;
    m.set_length(soma, 100.0).map_err(rt)?; // [µm]
    m.set_diam(soma, 500.0).map_err(rt)?; // [µm]
    m.set_ra(soma, 35.4).map_err(rt)?; // [Ω·cm]
    m.set_cm(soma, 1.0).map_err(rt)?; // [µF/cm²]
    m.insert(soma, "hh").map_err(rt)?;
    for delay in STIM_DELAYS {
        let stim = m.point_process("IClamp", soma, 0.5).map_err(rt)?;
        m.set_point(stim, "del", delay).map_err(rt)?;
        m.set_point(stim, "dur", STIM_DUR).map_err(rt)?;
        m.set_point(stim, "amp", STIM_AMP).map_err(rt)?;
    }
    // NEURON's `NetCon(soma(0.5)._ref_v, None)`: delay 1, weight 0.
    let nc = m
        .netcon(NetSource::Voltage(soma, 0.5), None, THRESHOLD, 1.0, &[0.0])
        .map_err(rt)?;
    let rec_t = m.record(Probe::T, Sampling::EveryStep).map_err(rt)?;
    let rec_v = m
        .record(Probe::V(soma, 0.5), Sampling::EveryStep)
        .map_err(rt)?;

    let t1 = Instant::now();
    m.finitialize(V_INIT).map_err(rt)?;
    for _ in 0..NSTEPS {
        m.fadvance().map_err(rt)?;
    }
    let run_s = t1.elapsed().as_secs_f64();

    let mut csv = Vec::new();
    let (t_name, v_name) = CSV_HEADER.split_once(',').expect("two columns");
    m.write_csv(&mut csv, &[(t_name, rec_t), (v_name, rec_v)])
        .map_err(rt)?;
    let got = |id| m.recorded(id).map(<[f64]>::to_vec).map_err(rt);
    let (t, v) = (got(rec_t)?, got(rec_v)?);
    if let Some(k) = v.iter().position(|x| !x.is_finite()) {
        return Err(format!(
            "simulation failed: v is not finite at t = {} ms",
            t[k]
        ));
    }
    Ok(Run {
        t,
        v,
        spikes: m.spikes(nc).map_err(rt)?.to_vec(),
        csv,
        compile_s,
        run_s,
    })
}

/// Refuses an `--out` that exists and is not a folder (exit 2).
fn check_out_dir(out: &Path) -> Result<(), DemoError> {
    match std::fs::metadata(out) {
        Ok(md) if !md.is_dir() => Err(DemoError::Usage(format!(
            "--out {}: exists and is not a folder; the demo writes {CSV_NAME} and {PNG_NAME} \
             into a folder (created if missing)",
            out.display()
        ))),
        _ => Ok(()),
    }
}

/// Refuses to replace `path` unless it is missing or a regular file that
/// `ours` recognises as an earlier demo's output (exit 2).
fn check_replaceable(path: &Path, ours: fn(&[u8]) -> bool) -> Result<(), DemoError> {
    let md = match std::fs::symlink_metadata(path) {
        Ok(md) => md,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => {
            return Err(DemoError::Failure(format!(
                "cannot inspect {}: {e}",
                path.display()
            )))
        }
    };
    let foreign = |what: &str| {
        DemoError::Usage(format!(
            "{} {what}; it is left alone. Move it away or choose another folder with --out DIR",
            path.display()
        ))
    };
    if !md.is_file() {
        return Err(foreign("exists and is not a regular file"));
    }
    let head = read_head(path, 64)
        .map_err(|e| DemoError::Failure(format!("cannot read {}: {e}", path.display())))?;
    if ours(&head) {
        Ok(())
    } else {
        Err(foreign("exists and was not written by `nrnivmodl-rs demo`"))
    }
}

/// The first `n` bytes of a file (fewer if it is shorter).
fn read_head(path: &Path, n: u64) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut head = Vec::new();
    std::fs::File::open(path)?.take(n).read_to_end(&mut head)?;
    Ok(head)
}

/// An earlier demo CSV starts with exactly our header line.
fn looks_like_our_csv(head: &[u8]) -> bool {
    head.strip_prefix(CSV_HEADER.as_bytes())
        .is_some_and(|rest| rest.starts_with(b"\n"))
}

/// An earlier demo PNG is a PNG of exactly our size (the IHDR chunk, which
/// the format requires first, holds width and height at bytes 16..24).
fn looks_like_our_png(head: &[u8]) -> bool {
    const SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";
    let be = |r: std::ops::Range<usize>| {
        head.get(r)
            .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    };
    head.starts_with(SIGNATURE)
        && head.get(12..16) == Some(b"IHDR".as_slice())
        && be(16..20) == Some(PNG_SIZE.0)
        && be(20..24) == Some(PNG_SIZE.1)
}

/// Fonts that commonly exist at these paths (Debian/Ubuntu, Fedora, Arch,
/// openSUSE, macOS, Windows). None is shipped with nrnivmodl-rs.
const FONT_CANDIDATES: &[&str] = &[
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu-sans-fonts/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
    "/usr/share/fonts/liberation-sans/LiberationSans-Regular.ttf",
    "/usr/share/fonts/truetype/freefont/FreeSans.ttf",
    "/System/Library/Fonts/Supplemental/Arial.ttf",
    "/Library/Fonts/Arial.ttf",
    "C:\\Windows\\Fonts\\arial.ttf",
];

/// Looks for a system font once per process and registers the first one
/// that parses as plotters' `sans-serif`. Returns whether text can be drawn.
/// The font bytes are kept for the life of the process (plotters needs a
/// `'static` slice).
fn font_registered() -> bool {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    *REGISTERED.get_or_init(|| {
        FONT_CANDIDATES.iter().any(|p| {
            let Ok(bytes) = std::fs::read(p) else {
                return false;
            };
            let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
            plotters::style::register_font("sans-serif", FontStyle::Normal, bytes).is_ok()
        })
    })
}

/// Axis range and tick step covering `[lo, hi]` with ticks every `step`.
fn axis(lo: f64, hi: f64, step: f64) -> (f64, f64, f64) {
    ((lo / step).floor() * step, (hi / step).ceil() * step, step)
}

/// Draws v against t into an RGB buffer and encodes it as PNG. Axes, grid,
/// ticks, the threshold line and stimulus marks are drawn always; tick
/// labels, axis names and a title only when `labels` (a font is registered).
fn render_png(t: &[f64], v: &[f64], labels: bool) -> Result<(Vec<u8>, Axes), String> {
    let (w, h) = PNG_SIZE;
    let vmin = v.iter().copied().fold(f64::INFINITY, f64::min);
    let vmax = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let tmax = t.last().copied().unwrap_or(TSTOP);
    let axes = Axes {
        x: axis(0.0, tmax, 10.0),
        y: axis(vmin.min(THRESHOLD), vmax.max(THRESHOLD), 20.0),
    };
    let mut rgb = vec![0u8; (w * h * 3) as usize];
    draw(&mut rgb, t, v, &axes, labels).map_err(|e| format!("cannot draw the plot: {e}"))?;

    let mut png_bytes = Vec::new();
    let mut enc = png::Encoder::new(&mut png_bytes, w, h);
    enc.set_color(png::ColorType::Rgb);
    enc.set_depth(png::BitDepth::Eight);
    let encode = |e: png::EncodingError| format!("cannot encode the PNG: {e}");
    let mut writer = enc.write_header().map_err(encode)?;
    writer.write_image_data(&rgb).map_err(encode)?;
    writer.finish().map_err(encode)?;
    Ok((png_bytes, axes))
}

fn draw(
    rgb: &mut [u8],
    t: &[f64],
    v: &[f64],
    axes: &Axes,
    labels: bool,
) -> Result<(), Box<dyn std::error::Error>> {
    let root = BitMapBackend::with_buffer(rgb, PNG_SIZE).into_drawing_area();
    root.fill(&WHITE)?;
    let (x0, x1, dx) = axes.x;
    let (y0, y1, dy) = axes.y;
    let chart = ChartBuilder::on(&root)
        .margin_left(80)
        .margin_right(25)
        .margin_top(if labels { 45 } else { 20 })
        .margin_bottom(60)
        .build_cartesian_2d(x0..x1, y0..y1)?;
    let px = |x: f64, y: f64| chart.backend_coord(&(x, y));
    let grid = RGBColor(225, 225, 225);
    let line = |a: (i32, i32), b: (i32, i32), c: RGBColor| PathElement::new(vec![a, b], c);

    let xticks: Vec<f64> = ticks(x0, x1, dx);
    let yticks: Vec<f64> = ticks(y0, y1, dy);
    for &x in &xticks {
        root.draw(&line(px(x, y0), px(x, y1), grid))?;
        let (bx, by) = px(x, y0);
        root.draw(&line((bx, by), (bx, by + 6), BLACK))?;
    }
    for &y in &yticks {
        root.draw(&line(px(x0, y), px(x1, y), grid))?;
        let (bx, by) = px(x0, y);
        root.draw(&line((bx - 6, by), (bx, by), BLACK))?;
    }
    // The spike threshold and the stimulus onsets.
    let red = RGBColor(214, 39, 40);
    root.draw(&line(
        px(x0, THRESHOLD),
        px(x1, THRESHOLD),
        RGBColor(240, 170, 170),
    ))?;
    for d in STIM_DELAYS {
        let (bx, by) = px(d, y0);
        root.draw(&line((bx, by - 12), (bx, by), red))?;
    }
    // The frame.
    let (l, b) = px(x0, y0);
    let (r, top) = px(x1, y1);
    root.draw(&PathElement::new(
        vec![(l, top), (r, top), (r, b), (l, b), (l, top)],
        BLACK,
    ))?;
    let blue = RGBColor(31, 119, 180);
    root.draw(&PathElement::new(
        t.iter().zip(v).map(|(&a, &b)| px(a, b)).collect::<Vec<_>>(),
        blue.stroke_width(2),
    ))?;

    if labels {
        let font = |size: f64, pos: Pos| {
            TextStyle::from(("sans-serif", size).into_font())
                .color(&BLACK)
                .pos(pos)
        };
        let below = font(15.0, Pos::new(HPos::Center, VPos::Top));
        let left = font(15.0, Pos::new(HPos::Right, VPos::Center));
        for &x in &xticks {
            let (bx, by) = px(x, y0);
            root.draw(&Text::new(format!("{x}"), (bx, by + 9), below.clone()))?;
        }
        for &y in &yticks {
            let (bx, by) = px(x0, y);
            root.draw(&Text::new(format!("{y}"), (bx - 9, by), left.clone()))?;
        }
        let (cx, _) = px(0.5 * (x0 + x1), y0);
        root.draw(&Text::new("t (ms)", (cx, b + 32), below.clone()))?;
        let (_, cy) = px(x0, 0.5 * (y0 + y1));
        let vertical =
            font(15.0, Pos::new(HPos::Center, VPos::Bottom)).transform(FontTransform::Rotate270);
        root.draw(&Text::new("soma(0.5).v (mV)", (l - 45, cy), vertical))?;
        root.draw(&Text::new(
            "nrnivmodl-rs demo: hh soma, four 50 nA pulses (red marks), threshold 10 mV",
            (l, 14),
            font(16.0, Pos::new(HPos::Left, VPos::Top)),
        ))?;
    }
    root.present()?;
    Ok(())
}

/// `lo, lo + step, ..., hi` (computed by index, so no roundoff creep).
fn ticks(lo: f64, hi: f64, step: f64) -> Vec<f64> {
    let n = ((hi - lo) / step).round() as usize;
    (0..=n).map(|k| lo + k as f64 * step).collect()
}

/// Where the NEURON reference is, if present: under the current folder,
/// else under the source tree this binary was built from.
fn find_reference() -> Option<PathBuf> {
    let here = PathBuf::from(REFERENCE);
    if here.is_file() {
        return Some(here);
    }
    let built = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(REFERENCE);
    built.is_file().then_some(built)
}

/// Compares the run with NEURON's trace and spikes in `path`.
fn compare(path: &Path, run: &Run) -> Result<Comparison, String> {
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    let d: serde_json::Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
    let floats = |v: &serde_json::Value, what: &str| -> Result<Vec<f64>, String> {
        v.as_array()
            .and_then(|a| a.iter().map(serde_json::Value::as_f64).collect())
            .ok_or_else(|| format!("`{what}` is not a list of numbers"))
    };
    if d["nsteps"].as_u64() != Some(NSTEPS as u64) || d["dt"].as_f64() != Some(DT) {
        return Err(format!(
            "it describes another run (nsteps {}, dt {}), not this demo's",
            d["nsteps"], d["dt"]
        ));
    }
    let v_ref = floats(&d["traces"]["soma(0.5).v"], "traces.soma(0.5).v")?;
    if v_ref.len() != run.v.len() {
        return Err(format!(
            "its trace has {} samples, ours {}",
            v_ref.len(),
            run.v.len()
        ));
    }
    let (mut max_dv, mut at) = (0.0f64, 0);
    for (k, (a, b)) in run.v.iter().zip(&v_ref).enumerate() {
        if (a - b).abs() > max_dv {
            (max_dv, at) = ((a - b).abs(), k);
        }
    }
    let version = d["neuron_version"]
        .as_str()
        .map(|s| match s.split_once("VERSION ") {
            Some((_, rest)) => rest.split_whitespace().next().unwrap_or(rest).to_string(),
            None => s.to_string(),
        })
        .unwrap_or_else(|| "(unknown version)".into());
    Ok(Comparison {
        version,
        max_dv,
        max_dv_t: run.t[at],
        ref_spikes: floats(&d["spikes"]["soma(0.5)"], "spikes.soma(0.5)")?,
    })
}

/// The step index a spike time falls on.
fn step_of(t: f64) -> i64 {
    (t / DT).round() as i64
}

fn print_summary(run: &Run, axes: &Axes, labels: bool, csv: &Path, png: &Path) {
    let list = |xs: &[f64]| {
        xs.iter()
            .map(|x| x.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let delays = STIM_DELAYS.map(|d| d.to_string()).join(", ");
    println!("nrnivmodl-rs demo: the seed example of NEURON's scripting tutorial");
    println!("  model: soma with hh; L 100 µm, diam 500 µm, nseg 1, Ra 35.4 Ω·cm, cm 1 µF/cm²");
    println!("         IClamp at soma(0.5): {STIM_AMP} nA for {STIM_DUR} ms at {delays} ms");
    println!(
        "  run:   finitialize({V_INIT}), then {NSTEPS} fadvance() of dt {DT} ms (to {TSTOP} ms), \
         celsius {CELSIUS} °C, secondorder 0"
    );
    let how = match mechanisms::backend() {
        (mechanisms::Backend::Aot, _) => "compiled ahead of time, loaded".to_string(),
        (mechanisms::Backend::Jit, why) => {
            format!("JIT-compiled ({})", why.unwrap_or("by request"))
        }
    };
    println!(
        "  {} bundled mechanisms {how} in {:.1} ms; simulated in {:.1} ms",
        mechanisms::SOURCES.len(),
        run.compile_s * 1e3,
        run.run_s * 1e3
    );
    println!(
        "spikes [ms]: {}",
        if run.spikes.is_empty() {
            "none".to_string()
        } else {
            list(&run.spikes)
        }
    );
    println!("  (v at soma(0.5) crossing {THRESHOLD} mV, as NEURON's NetCon.record stores them)");
    let (k, vmax) = run
        .v
        .iter()
        .copied()
        .enumerate()
        .fold(
            (0, f64::NEG_INFINITY),
            |a, (k, x)| if x > a.1 { (k, x) } else { a },
        );
    println!("peak v: {vmax:.4} mV at t = {:.3} ms", run.t[k]);
    println!(
        "wrote {} ({} rows + header: t [ms], soma(0.5).v [mV])",
        csv.display(),
        run.v.len()
    );
    println!(
        "wrote {} ({}×{} px: v from {} to {} mV, ticks every {} mV, against t from {} to {} ms, \
         ticks every {} ms; red marks: stimulus onsets; pink line: threshold{})",
        png.display(),
        PNG_SIZE.0,
        PNG_SIZE.1,
        axes.y.0,
        axes.y.1,
        axes.y.2,
        axes.x.0,
        axes.x.1,
        axes.x.2,
        if labels {
            ""
        } else {
            "; no text: no system font found"
        }
    );
    let Some(path) = find_reference() else {
        println!(
            "(NEURON reference {REFERENCE} not found: run from the repository root to compare)"
        );
        return;
    };
    match compare(&path, run) {
        Ok(c) => {
            let same_steps = c.ref_spikes.len() == run.spikes.len()
                && c.ref_spikes
                    .iter()
                    .zip(&run.spikes)
                    .all(|(a, b)| step_of(*a) == step_of(*b));
            let dv = if c.max_dv == 0.0 {
                "0 mV (bit-identical)".to_string()
            } else {
                format!("{:.2e} mV (at t = {:.3} ms)", c.max_dv, c.max_dv_t)
            };
            let shown = std::fs::canonicalize(&path).unwrap_or(path);
            println!(
                "NEURON {} ({}): max |ΔV| = {dv} over {} samples",
                c.version,
                shown.display(),
                run.v.len()
            );
            if same_steps {
                println!(
                    "  spikes on the same steps as NEURON's ({})",
                    list(&c.ref_spikes)
                );
            } else {
                println!(
                    "  WARNING: spikes differ from NEURON's: ours [{}], NEURON [{}]",
                    list(&run.spikes),
                    list(&c.ref_spikes)
                );
            }
        }
        Err(e) => println!("(cannot compare with {}: {e})", path.display()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nsteps_is_tstop_over_dt() {
        assert_eq!(NSTEPS, (TSTOP / DT).round() as usize);
    }

    #[test]
    fn axes_cover_the_data_on_round_ticks() {
        assert_eq!(axis(0.0, 49.5, 10.0), (0.0, 50.0, 10.0));
        assert_eq!(axis(-77.2, 41.3, 20.0), (-80.0, 60.0, 20.0));
        assert_eq!(ticks(-80.0, 60.0, 20.0).len(), 8);
    }

    #[test]
    fn recognises_only_our_own_outputs() {
        assert!(looks_like_our_csv(b"t [ms],soma(0.5).v [mV]\n0,1\n"));
        assert!(!looks_like_our_csv(b"t [ms],soma(0.5).v [mV],x\n"));
        assert!(!looks_like_our_csv(b"my notes\n"));
        let (png, _) = render_png(&[0.0, 1.0], &[-65.0, 20.0], false).unwrap();
        assert!(looks_like_our_png(&png[..64]));
        let mut other = png[..64].to_vec();
        other[19] ^= 1; // another width
        assert!(!looks_like_our_png(&other));
        assert!(!looks_like_our_png(b"\x89PNG\r\n"));
    }

    /// Decodes a PNG and returns (width, height, RGB bytes).
    fn decode(bytes: &[u8]) -> (u32, u32, Vec<u8>) {
        let mut reader = png::Decoder::new(std::io::Cursor::new(bytes))
            .read_info()
            .unwrap();
        let mut buf = vec![0; reader.output_buffer_size().unwrap()];
        let info = reader.next_frame(&mut buf).unwrap();
        assert_eq!(info.color_type, png::ColorType::Rgb);
        buf.truncate(info.buffer_size());
        (info.width, info.height, buf)
    }

    /// Counts pixels of one exact colour.
    fn count(rgb: &[u8], c: [u8; 3]) -> usize {
        rgb.chunks(3).filter(|p| *p == c).count()
    }

    #[test]
    fn plot_without_a_font_has_axes_and_trace_but_no_text() {
        let t: Vec<f64> = (0..=100).map(|k| k as f64 * 0.5).collect();
        let v: Vec<f64> = t
            .iter()
            .map(|x| -65.0 + 100.0 * (x / 10.0).sin().max(0.0))
            .collect();
        let (png, axes) = render_png(&t, &v, false).unwrap();
        assert_eq!(axes.y, (-80.0, 40.0, 20.0));
        let (w, h, rgb) = decode(&png);
        assert_eq!((w, h), PNG_SIZE);
        assert!(count(&rgb, [31, 119, 180]) > 500, "trace missing");
        assert!(count(&rgb, [0, 0, 0]) > 1000, "frame and ticks missing");
        assert!(count(&rgb, [255, 255, 255]) > (w * h / 2) as usize);
    }

    #[test]
    fn plot_with_a_system_font_draws_text_if_one_exists() {
        let t = [0.0, 49.5];
        let v = [-65.0, 30.0];
        let (plain, _) = render_png(&t, &v, false).unwrap();
        if font_registered() {
            let (text, _) = render_png(&t, &v, true).unwrap();
            let (_, _, a) = decode(&plain);
            let (_, _, b) = decode(&text);
            // Anti-aliased glyphs add grey pixels the plain plot lacks.
            let grey = |rgb: &[u8]| {
                rgb.chunks(3)
                    .filter(|p| p[0] == p[1] && p[1] == p[2] && p[0] > 0 && p[0] < 200)
                    .count()
            };
            assert!(grey(&b) > grey(&a) + 200, "no text drawn");
        } else {
            // FIXME: CI without fonts only exercises the label-free path.
            assert!(FONT_CANDIDATES.iter().all(|p| !Path::new(p).is_file()));
        }
    }
}
