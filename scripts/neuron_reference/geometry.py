"""Issue 3 geometry reference: L, area, ri, volume and diam of every node, plus a tree's topology.

Writes tests/data/neuron/geometry.json. Nothing is simulated; the values are
what NEURON 9.0.2 computes from the geometry. Run with the NEURON 9.0.2
venv's python (see README.md).
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import DATA, Model, capture_stdout, write_json  # noqa: E402
from neuron import h  # noqa: E402

# Unconnected sections, one per geometry case.
CYLINDERS = [
    dict(name="cyl_a", nseg=5, L=100, diam=2, Ra=100),
    dict(name="cyl_b", nseg=7, L=37.3, diam=0.7, Ra=35.4),
    dict(name="cyl_c", nseg=1, L=500, diam=5.5, Ra=210),
    dict(name="cyl_d", nseg=3, L=1, diam=1, Ra=1),
    dict(name="cyl_e", nseg=11, L=1234.5, diam=0.25, Ra=150, cm=2.5),
]
SEG_DIAM = [
    dict(name="segdiam", nseg=4, L=50, seg_diam=[3.0, 2.5, 1.2, 0.8], Ra=80),
]
PT3D = [
    # one tapered frustum spanning all 3 segments
    dict(name="taper", nseg=3, Ra=100, pt3d=[(0, 0, 0, 4), (30, 0, 0, 1)]),
    # a 3-D path with many points per segment and varying diameter
    dict(name="zigzag", nseg=2, Ra=50, pt3d=[
        (0, 0, 0, 2), (3, 1, 0, 2.5), (6, 0, 1, 1.5), (9, -1, 1, 1.8), (12, 0, 2, 1.1),
        (15, 2, 2, 0.9), (18, 2, 3, 1.3), (21, 1, 4, 0.7), (25, 0, 4, 0.6)]),
    # uneven spacing: some segments hold no interior point
    dict(name="uneven", nseg=5, Ra=120, pt3d=[(0, 0, 0, 3), (2, 0, 0, 2), (40, 0, 0, 1), (41, 0, 0, 0.5)]),
    # a diameter step: two points at the same place with different diameters
    dict(name="step", nseg=4, Ra=70, pt3d=[(0, 0, 0, 2), (10, 0, 0, 2), (10, 0, 0, 1), (20, 0, 0, 1)]),
    # one segment covering several frusta
    dict(name="soma3d", nseg=1, Ra=35.4, pt3d=[(0, 0, 0, 5), (5, 0, 0, 15), (10, 0, 0, 18), (15, 0, 0, 12),
                                                (20, 0, 0, 2)]),
]
# The branched tree the brief asks for (creation order matters for NEURON's node order).
TREE = [
    dict(name="soma", nseg=1, L=20, diam=20),
    dict(name="dend1", nseg=5, L=200, diam=2, Ra=100, parent="soma", parent_x=1.0, child_x=0.0),
    dict(name="dend2", nseg=3, L=150, diam=1.5, Ra=100, parent="soma", parent_x=1.0, child_x=0.0),
    dict(name="dend1_child", nseg=4, L=80, diam=0.8, Ra=100, parent="dend1", parent_x=1.0, child_x=0.0),
    dict(name="axon", nseg=9, L=500, diam=1, Ra=150, parent="soma", parent_x=0.0, child_x=0.0),
]
# A second tree: a child attached at an interior point by its 1 end.
TREE_B = [
    dict(name="trunk", nseg=4, L=100, diam=3, Ra=100),
    dict(name="oblique", nseg=2, L=50, diam=1, Ra=100, parent="trunk", parent_x=0.3, child_x=1.0),
]


def seg_table(sec):
    """x, area(), ri(), volume(), diam for every node in sec.allseg() (x = 0 and 1 included)."""
    return [{"x": seg.x, "area": seg.area(), "ri": seg.ri(), "volume": seg.volume(), "diam": seg.diam}
            for seg in sec.allseg()]


def build(m, specs):
    for spec in specs:
        m.section(**spec)


def describe_all(m):
    out = []
    for name, sec in m.sections.items():
        d = m.describe_section(name)
        d.pop("ions_after_init")
        d["segments"] = seg_table(sec)
        out.append(d)
    return out


def main():
    m = Model("geometry", __file__, tstop=0)
    build(m, CYLINDERS + SEG_DIAM + PT3D)
    sections = describe_all(m)

    trees = []
    for tname, specs in (("tree", TREE), ("tree_b", TREE_B)):
        t = Model("geometry", __file__, tstop=0)
        build(t, specs)
        tree = {
            "name": tname,
            "sections": describe_all(t),
            "topology": capture_stdout(h.topology),
            "psection": {n: capture_stdout(lambda s=s: h.psection(sec=s)) for n, s in t.sections.items()},
        }
        trees.append(tree)

    out = {
        "format_version": 1,
        "protocol": "geometry",
        "neuron_version": h.nrnversion(),
        "script": m.script,
        "dt": h.dt,
        "tstop": 0.0,
        "nsteps": 0,
        "secondorder": 0,
        "celsius": h.celsius,
        "v_init": -65.0,
        "model": {"sections": [{k: v for k, v in s.items() if k != "segments"} for s in sections],
                  "point_processes": [], "artificial_cells": [], "netcons": [],
                  "globals": {}},
        "geometry": {"sections": sections, "trees": trees},
        "traces": {},
        "spikes": {},
    }
    write_json(DATA / "geometry.json", out)


if __name__ == "__main__":
    main()
