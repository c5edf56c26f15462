//! Cable geometry exactly as NEURON 9.0.2 computes it (`treeset.cpp`
//! `nrn_area_ri`, `diam_from_list`, `connection_coef`; `cabcode.cpp`;
//! `nrnpy_nrn.cpp` `seg_volume`), restated in our own words. The functions here
//! are pure: they run whenever the model's geometry is rebuilt and touch only
//! their arguments. Every formula keeps NEURON's order of floating-point
//! operations so that results agree bit for bit.

/// π as NEURON's `treeset.cpp` defines it.
pub const PI: f64 = std::f64::consts::PI; // NEURON spells it 3.14159265358979323846: the same double

/// NEURON's default section length [µm].
pub const DEF_L: f64 = 100.0;
/// NEURON's default diameter [µm].
pub const DEF_DIAM: f64 = 500.0;
/// NEURON's default axial resistivity [Ω·cm].
pub const DEF_RA: f64 = 35.4;
/// NEURON's default specific capacitance [µF/cm²].
pub const DEF_CM: f64 = 1.0;
/// The area NEURON gives the zero-area end nodes (and root nodes), in the
/// dimensionless units that make their equations read in nA and µS.
pub const END_NODE_AREA: f64 = 100.0;

/// One 3-D point. NEURON stores the coordinates and diameter as `float`; so do
/// we, so that arc lengths round the same way.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pt3d {
    /// x [µm].
    pub x: f32,
    /// y [µm].
    pub y: f32,
    /// z [µm].
    pub z: f32,
    /// Diameter [µm].
    pub d: f32,
    /// Arc length from the first point [µm].
    pub arc: f64,
}

/// Recomputes arc lengths from point `i0` on (NEURON's `nrn_pt3dmodified`).
/// The coordinate differences are taken in single precision, as NEURON does.
pub(crate) fn recompute_arcs(pts: &mut [Pt3d], i0: usize) {
    if pts.is_empty() {
        return;
    }
    let mut start = i0;
    if start == 0 {
        pts[0].arc = 0.0;
        start = 1;
    }
    for i in start..pts.len() {
        let p = pts[i - 1];
        let t1 = f64::from(pts[i].x - p.x);
        let t2 = f64::from(pts[i].y - p.y);
        let t3 = f64::from(pts[i].z - p.z);
        pts[i].arc = p.arc + (t1 * t1 + t2 * t2 + t3 * t3).sqrt();
    }
}

/// NEURON's `section_length`: the stored length, never below 1e-9 µm.
pub(crate) fn clamp_length(l: f64) -> f64 {
    if l <= 1e-9 {
        1e-9
    } else {
        l
    }
}

/// Areas and inverse axial resistances of one section's nodes.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SectionGeometry {
    /// Area of each segment node [µm²]; the end node's area is [`END_NODE_AREA`].
    pub area: Vec<f64>,
    /// 1/ri of each node (nseg segment nodes, then the end node) [µS].
    pub rinv: Vec<f64>,
}

/// Right circular cylinders, one per segment (no 3-D points).
/// `diam` is indexed by node (NEURON's `pnode` order).
pub(crate) fn cylinder_geometry(length: f64, diam: &[f64], ra: f64) -> SectionGeometry {
    let nseg = diam.len();
    let dx = length / (nseg as f64);
    let mut rright = 0.0;
    let mut area = Vec::with_capacity(nseg);
    let mut rinv = Vec::with_capacity(nseg + 1);
    for &d in diam {
        area.push(PI * d * dx); // [µm²]
        let rleft = 1e-2 * ra * (dx / 2.0) / (PI * d * d / 4.0); // [MΩ]
        rinv.push(1.0 / (rleft + rright)); // [µS]
        rright = rleft;
    }
    rinv.push(1.0 / rright);
    SectionGeometry { area, rinv }
}

/// Trapezoidal integration over 3-D points (NEURON's `diam_from_list`), for
/// sections with at least two points. Frusta are split at the segment
/// boundaries and at segment centres (for the left and right half
/// resistances). Updates `diam` (by node) with the segment's mean diameter
/// when it differs from the stored one by more than 1e-9 µm, as NEURON does.
pub(crate) fn pt3d_geometry(pts: &[Pt3d], diam: &mut [f64], ra: f64) -> SectionGeometry {
    let nseg = diam.len();
    let npt = pts.len();
    debug_assert!(npt >= 2);
    let ds = pts[npt - 1].arc / (nseg as f64);
    let mut j = 0usize;
    let mut x1 = pts[0].arc;
    let mut y1 = f64::from(pts[0].d.abs());
    let mut rparent = 0.0;
    let mut area = Vec::with_capacity(nseg);
    let mut rinv = Vec::with_capacity(nseg + 1);
    for (inode, seg_diam) in diam.iter_mut().enumerate() {
        let mut si = (inode as f64) * ds;
        let mut dsum = 0.0;
        let mut asum = 0.0;
        let mut rleft = 0.0;
        let mut rright = 0.0;
        for ihalf in 0..2 {
            let mut ri = 0.0;
            let sip = si + ds / 2.0;
            loop {
                let jp = j + 1;
                let xj = pts[j].arc;
                let xjp = pts[jp].arc;
                let dj = f64::from(pts[j].d.abs());
                let djp = f64::from(pts[jp].d.abs());
                let (x2, y2, jnext);
                if xjp > sip || jp == npt - 1 {
                    let frac = if (xjp - xj).abs() < 1e-10 {
                        1.0
                    } else {
                        (sip - xj) / (xjp - xj)
                    };
                    x2 = sip;
                    y2 = (1.0 - frac) * dj + frac * djp;
                    jnext = j;
                } else {
                    x2 = xjp;
                    y2 = djp;
                    jnext = jp;
                }
                let mut delta = x2 - x1;
                dsum += (y2 + y1) * delta;
                if delta < 1e-15 {
                    delta = 1e-15;
                }
                let mut temp = y2 * y1 / delta;
                if temp == 0.0 {
                    temp = 1e-15;
                }
                ri += 1.0 / temp;
                temp = 0.5 * (y2 - y1);
                temp = (delta * delta + temp * temp).sqrt();
                asum += (y2 + y1) * temp;
                x1 = x2;
                y1 = y2;
                if j == jnext {
                    break;
                }
                j = jnext;
            }
            let r = ri * ra / PI * (4.0 * 0.01); // [MΩ]
            if ihalf == 0 {
                rleft = r;
            } else {
                rright = r;
            }
            si = sip;
        }
        rinv.push(1.0 / (rparent + rleft));
        dsum *= 0.5 / ds;
        if (dsum - *seg_diam).abs() > 1e-9 || dsum < 1e-5 {
            *seg_diam = dsum; // [µm]
        }
        area.push(asum * 0.5 * PI); // [µm²]
        rparent = rright;
    }
    rinv.push(1.0 / rparent);
    SectionGeometry { area, rinv }
}

/// The volume of segment `iseg` [µm³] (NEURON's Python `seg.volume()`):
/// frusta between 3-D points, interpolated at the segment ends, or a cylinder
/// of the segment's diameter when the section has fewer than two points.
pub(crate) fn segment_volume(
    pts: &[Pt3d],
    length: f64,
    nseg: usize,
    iseg: usize,
    seg_diam: f64,
) -> f64 {
    let seg_len = length / (nseg as f64);
    if pts.len() > 1 {
        let left_arc0 = (iseg as f64) * seg_len;
        let right_arc = ((iseg + 1) as f64) * seg_len;
        let n = pts.len();
        // The last index whose arc is below `left_arc0` (bisection as NEURON does).
        let (mut lo, mut hi) = (0usize, n);
        while hi - lo > 1 {
            let mid = (lo + hi) / 2;
            if pts[mid].arc < left_arc0 {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        let i_left = lo;
        let interpolate = |x0: f64, x1: f64, y0: f64, y1: f64, x: f64| {
            if x1 == x0 {
                y0
            } else {
                y0 + (y1 - y0) * (x - x0) / (x1 - x0)
            }
        };
        let frustum = |l: f64, d0: f64, d1: f64| l * (d0 * d0 + d0 * d1 + d1 * d1);
        let mut left_diam = f64::from(pts[i_left].d.abs());
        let mut right_diam = f64::from(pts[i_left + 1].d.abs());
        let mut left_arc = left_arc0;
        left_diam = interpolate(
            pts[i_left].arc,
            pts[i_left + 1].arc,
            left_diam,
            right_diam,
            left_arc,
        );
        let mut a = 0.0;
        let mut i = i_left + 1;
        while i < n && pts[i].arc < right_arc {
            right_diam = f64::from(pts[i].d.abs());
            a += frustum(pts[i].arc - left_arc, left_diam, right_diam);
            left_arc = pts[i].arc;
            left_diam = right_diam;
            i += 1;
        }
        if i < n {
            right_diam = interpolate(
                left_arc,
                pts[i].arc,
                left_diam,
                f64::from(pts[i].d.abs()),
                right_arc,
            );
            a += frustum(right_arc - left_arc, left_diam, right_diam);
        }
        a * std::f64::consts::PI / 12.0
    } else {
        std::f64::consts::PI * seg_diam * seg_diam / 4.0 * seg_len
    }
}

/// NEURON's `node_index`: the segment (in node order) that contains `x`.
/// `reversed` is true for a section connected by its 1 end.
pub(crate) fn node_index(nseg: usize, x: f64, reversed: bool) -> usize {
    let n = nseg as f64;
    let mut i = (n * x) as usize;
    if i == nseg {
        i = nseg - 1;
    }
    if reversed {
        i = nseg - i - 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cylinder_area_is_pi_d_dx() {
        let g = cylinder_geometry(100.0, &[10.0, 10.0], 100.0);
        assert_eq!(g.area, vec![PI * 10.0 * 50.0; 2]);
        // Half a segment of 25 µm, 10 µm diameter, 100 Ω·cm: 1e-2·100·25/(π·25) MΩ.
        let half = 1e-2 * 100.0 * 25.0 / (PI * 10.0 * 10.0 / 4.0);
        assert_eq!(g.rinv[0], 1.0 / half);
        assert_eq!(g.rinv[1], 1.0 / (half + half));
        assert_eq!(g.rinv[2], 1.0 / half);
    }

    #[test]
    fn pt3d_cylinder_matches_analytic_cylinder() {
        let mut pts = vec![
            Pt3d {
                x: 0.0,
                y: 0.0,
                z: 0.0,
                d: 4.0,
                arc: 0.0,
            },
            Pt3d {
                x: 30.0,
                y: 0.0,
                z: 0.0,
                d: 4.0,
                arc: 0.0,
            },
            Pt3d {
                x: 40.0,
                y: 0.0,
                z: 0.0,
                d: 4.0,
                arc: 0.0,
            },
        ];
        recompute_arcs(&mut pts, 0);
        let mut diam = vec![500.0; 3];
        let g = pt3d_geometry(&pts, &mut diam, 35.4);
        for (k, a) in g.area.iter().enumerate() {
            assert!((a - PI * 4.0 * 40.0 / 3.0).abs() < 1e-10, "seg {k}: {a}");
            assert!((diam[k] - 4.0).abs() < 1e-12);
        }
        let v = segment_volume(&pts, 40.0, 3, 1, diam[1]);
        assert!((v - std::f64::consts::PI * 4.0 * 40.0 / 3.0).abs() < 1e-9);
    }

    #[test]
    fn node_index_clamps_and_reverses() {
        assert_eq!(node_index(3, 1.0, false), 2);
        assert_eq!(node_index(3, 0.0, false), 0);
        assert_eq!(node_index(3, 0.5, false), 1);
        assert_eq!(node_index(3, 0.1, true), 2);
    }
}
