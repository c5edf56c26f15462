//! Quick check of a single-section reference protocol (dev tool).
use runtime::*;
fn main() {
    let path = std::env::args().nth(1).unwrap();
    let extra: Vec<String> = std::env::args().skip(2).collect();
    let d: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let mut m = mechanisms::new_model().unwrap();
    for f in &extra {
        let c =
            codegen::load::compile_file(std::path::Path::new(f)).unwrap_or_else(|e| panic!("{e}"));
        if !c.warnings.is_empty() {
            eprintln!("{}", c.warnings);
        }
        m.register(c.spec).unwrap();
    }
    let model = &d["model"];
    let mut secs = std::collections::HashMap::new();
    for s in model["sections"].as_array().unwrap() {
        let name = s["name"].as_str().unwrap();
        let id = m.create_section(name).unwrap();
        m.set_nseg(id, s["nseg"].as_u64().unwrap() as usize)
            .unwrap();
        m.set_length(id, s["L"].as_f64().unwrap()).unwrap();
        m.set_diam(id, s["diam"].as_f64().unwrap()).unwrap();
        m.set_ra(id, s["Ra"].as_f64().unwrap()).unwrap();
        for (mech, params) in s["mechanisms"].as_object().unwrap() {
            m.insert(id, mech).unwrap();
            for (k, v) in params.as_object().unwrap() {
                if let Some(v) = v.as_f64() {
                    let _ = m.set_range(id, 0.5, &format!("{k}_{mech}"), v);
                }
            }
        }
        secs.insert(name.to_string(), id);
    }
    let mut pts = std::collections::HashMap::new();
    for p in model["point_processes"].as_array().unwrap() {
        let id = m
            .point_process(
                p["type"].as_str().unwrap(),
                secs[p["section"].as_str().unwrap()],
                p["x"].as_f64().unwrap(),
            )
            .unwrap();
        for (k, v) in p["params"].as_object().unwrap() {
            m.set_point(id, k, v.as_f64().unwrap()).unwrap();
        }
        pts.insert(p["name"].as_str().unwrap().to_string(), id);
    }
    if let Some(ps) = d["pointers"].as_array() {
        for p in ps {
            let t = p["target"].as_str().unwrap();
            let (sec, x) = t
                .trim_end_matches(".v")
                .trim_end_matches(')')
                .split_once('(')
                .unwrap();
            m.set_pointer(
                pts[p["point"].as_str().unwrap()],
                p["pointer"].as_str().unwrap(),
                PointerTarget::V(secs[sec], x.parse().unwrap()),
            )
            .unwrap();
        }
    }
    let mut recs = Vec::new();
    for (name, _) in d["traces"].as_object().unwrap() {
        if name == "t" {
            continue;
        }
        let probe = if let Some((pre, var)) = name.split_once(").") {
            let (sec, x) = pre.split_once('(').unwrap();
            let (sec, x) = (secs[sec], x.parse::<f64>().unwrap());
            if var == "v" {
                Probe::V(sec, x)
            } else if let Some((mech, v)) = var.split_once('.') {
                let (b, idx) = match v.split_once('[') {
                    Some((b, i)) => (b.to_string(), format!("[{i}")),
                    None => (v.to_string(), String::new()),
                };
                Probe::Range(sec, x, format!("{b}_{mech}{idx}"))
            } else {
                Probe::Range(sec, x, var.to_string())
            }
        } else {
            let (p, var) = name.split_once('.').unwrap();
            Probe::Point(pts[p], var.to_string())
        };
        recs.push((name.clone(), m.record(probe, Sampling::EveryStep).unwrap()));
    }
    m.finitialize(d["v_init"].as_f64().unwrap()).unwrap();
    for _ in 0..d["nsteps"].as_u64().unwrap() {
        m.fadvance().unwrap();
    }
    for (name, r) in recs {
        let ours = m.recorded(r).unwrap();
        let theirs: Vec<f64> = d["traces"][&name]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap())
            .collect();
        let (mut maxd, mut at) = (0.0f64, 0);
        for (k, (a, b)) in ours.iter().zip(&theirs).enumerate() {
            if (a - b).abs() > maxd {
                maxd = (a - b).abs();
                at = k;
            }
        }
        let first = ours
            .iter()
            .zip(&theirs)
            .position(|(a, b)| (a - b).abs() > 1e-12 * b.abs().max(1e-3));
        println!("{name:30} max|diff| {maxd:.3e} at step {at} (ours {} theirs {}) first>1e-12rel at {first:?}", ours[at], theirs[at]);
        if let Some(f) = first {
            if std::env::var("SHOW").is_ok() {
                for k in f..(f + 4).min(ours.len()) {
                    println!("   {k}: {} {}", ours[k], theirs[k]);
                }
            }
        }
    }
}
