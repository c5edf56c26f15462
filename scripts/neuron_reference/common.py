"""Shared helpers for the NEURON 9.0.2 reference scripts.

A `Model` builds one protocol in NEURON, records traces every time step from
t = 0, runs a fixed number of fixed steps, and writes one JSON file whose
format is documented in tests/data/neuron/README.md. The `"model"` block of
that file is produced by reading the built NEURON objects back (not by
echoing what the script asked for), so it describes what NEURON simulated.

Everything here is deterministic: no random numbers, fixed step count.
"""
import contextlib
import io
import json
import math
import os
from pathlib import Path

from neuron import h

h.load_file("stdrun.hoc")

REPO = Path(__file__).resolve().parents[2]
DATA = REPO / "tests" / "data" / "neuron"
FORMAT_VERSION = 1


def rel_script(path):
    """The path of a script relative to the repository root, with forward slashes."""
    return Path(path).resolve().relative_to(REPO).as_posix()


def reset_neuron():
    """Delete every section and reset the globals the protocols touch to NEURON's defaults."""
    for sec in list(h.allsec()):
        h.delete_section(sec=sec)
    h.cvode_active(0)
    h.secondorder = 0
    h.celsius = 6.3
    h.dt = 0.025
    h.usetable_hh = 1


def capture_stdout(fn):
    """Run fn() and return what NEURON printed (NEURON 9 routes printf through Python's sys.stdout)."""
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        fn()
    return buf.getvalue()


def mech_names(kind):
    """Names of all mechanisms of one kind (0 = density, 1 = point process) NEURON knows."""
    mt = h.MechanismType(kind)
    out = []
    for i in range(int(mt.count())):
        r = h.ref("")
        mt.select(i)
        mt.selected(r)
        out.append(r[0])
    return out


def mech_var_names(mech, vartype):
    """Variable names of a mechanism for vartype 1 (PARAMETER), 2 (ASSIGNED) or 3 (STATE), as NEURON spells them.

    For density mechanisms the names carry the `_<suffix>` NEURON appends.
    Array variables are returned as (name, size).
    """
    ms = h.MechanismStandard(mech, vartype)
    out = []
    for i in range(int(ms.count())):
        r = h.ref("")
        size = int(ms.name(r, i))
        out.append((r[0], size))
    return out


def strip_suffix(name, suffix):
    """`gnabar_hh` -> `gnabar` for suffix `hh`; other names unchanged."""
    tail = "_" + suffix
    return name[: -len(tail)] if name.endswith(tail) else name


def uniform_or_list(values):
    """A single float when all values are equal, else the list."""
    if all(v == values[0] for v in values):
        return values[0]
    return values


def fmt_x(x):
    """The location string used in trace names: Python's repr of the float x."""
    return repr(float(x))


def node_x(sec, x):
    """The x of the node NEURON uses for location x (a segment centre, or 0 / 1 for the ends).

    Found by NEURON's own rule: a temporary IClamp is placed at x and asked get_loc().
    """
    probe = h.IClamp(sec(x))
    loc = probe.get_loc()
    h.pop_section()
    del probe
    return loc


def check_finite(name, values):
    """Raise ValueError naming the trace if any value is NaN or infinite."""
    for i, v in enumerate(values):
        if not math.isfinite(v):
            raise ValueError(f"trace {name}: non-finite value {v} at index {i}")


class Model:
    """One protocol: its NEURON objects, recordings, run settings and output."""

    def __init__(self, protocol, script, tstop, dt=0.025, celsius=6.3, v_init=-65.0,
                 secondorder=0, usetable_hh=1, notes=None):
        reset_neuron()
        self.protocol = protocol
        self.script = rel_script(script)
        self.tstop = float(tstop)
        self.dt = float(dt)
        self.celsius = float(celsius)
        self.v_init = float(v_init)
        self.secondorder = int(secondorder)
        self.usetable_hh = usetable_hh
        self.notes = notes or []
        self.sections = {}          # name -> Section, in creation order
        self.geometry_kind = {}     # name -> "cylinder" | "seg_diam" | "pt3d"
        self.points = {}            # name -> point process or artificial cell
        self.point_info = {}        # name -> dict(type, section, x, artificial)
        self.netcons = []           # dicts with the NetCon object and source/target descriptions
        self.records = []           # (trace name, Vector)
        self.samplers = []          # (trace name, function of no arguments, list)
        self.spike_vecs = {}        # source name -> Vector
        self.extra = {}
        self.ions_after_init = {}

    # ---- building -------------------------------------------------------
    def section(self, name, nseg=1, L=None, diam=None, Ra=None, cm=None, parent=None,
                parent_x=1.0, child_x=0.0, pt3d=None, seg_diam=None):
        """Create a section; geometry from L/diam, per-segment seg_diam, or pt3d points [(x, y, z, d), ...]."""
        sec = h.Section(name=name)
        if pt3d is not None:
            h.pt3dclear(sec=sec)
            for (x, y, z, d) in pt3d:
                h.pt3dadd(x, y, z, d, sec=sec)
            self.geometry_kind[name] = "pt3d"
        else:
            if L is not None:
                sec.L = L
            if diam is not None:
                sec.diam = diam
            self.geometry_kind[name] = "cylinder"
        sec.nseg = nseg
        if seg_diam is not None:
            assert pt3d is None and len(seg_diam) == nseg
            for seg, d in zip(sec, seg_diam):
                seg.diam = d
            self.geometry_kind[name] = "seg_diam"
        if Ra is not None:
            sec.Ra = Ra
        if cm is not None:
            sec.cm = cm
        if parent is not None:
            sec.connect(self.sections[parent](parent_x), child_x)
        self.sections[name] = sec
        return sec

    def insert(self, secname, mech, **params):
        """Insert a density mechanism and set uniform parameters (names without the suffix)."""
        sec = self.sections[secname]
        sec.insert(mech)
        for k, v in params.items():
            for seg in sec:
                setattr(getattr(seg, mech), k, v)

    def point(self, name, ptype, secname, x, **params):
        """Create a point process at sec(x) and set its parameters (NEURON names; `del` allowed)."""
        pp = getattr(h, ptype)(self.sections[secname](x))
        for k, v in params.items():
            setattr(pp, k, v)
        self.points[name] = pp
        self.point_info[name] = {"type": ptype, "section": secname, "x": float(x), "artificial": False}
        return pp

    def artcell(self, name, ptype, **params):
        """Create an artificial cell (NetStim, IntFire1, ...) and set its parameters."""
        obj = getattr(h, ptype)()
        for k, v in params.items():
            setattr(obj, k, v)
        self.points[name] = obj
        self.point_info[name] = {"type": ptype, "section": None, "x": None, "artificial": True}
        return obj

    def _source(self, source):
        """Resolve a source spec: "sec(x)" -> (voltage ref, sec, description) or a point name."""
        if source in self.points:
            return self.points[source], None, {"kind": "object", "name": source}
        secname, rest = source.split("(")
        x = float(rest.rstrip(")"))
        sec = self.sections[secname]
        return sec(x)._ref_v, sec, {"kind": "voltage", "section": secname, "x": x,
                                     "node_x": node_x(sec, x)}

    def netcon(self, name, source, target, threshold=None, delay=None, weight=None):
        """Create a NetCon from source ("sec(x)" voltage or a point name) to target (point name or None)."""
        src, sec, desc = self._source(source)
        tgt = self.points[target] if target is not None else None
        if sec is not None:
            nc = h.NetCon(src, tgt, sec=sec)
        else:
            nc = h.NetCon(src, tgt)
        if threshold is not None:
            nc.threshold = threshold
        if delay is not None:
            nc.delay = delay
        if weight is not None:
            for i, w in enumerate(weight):
                nc.weight[i] = w
        self.netcons.append({"name": name, "nc": nc, "source": desc, "target": target})
        return nc

    def spikes(self, source, threshold=None):
        """Record spike times of a source with a NetCon to nothing; the key is the source string."""
        nc = self.netcon(f"spikes:{source}", source, None, threshold=threshold)
        vec = h.Vector()
        nc.record(vec)
        self.spike_vecs[source] = vec

    # ---- recording ------------------------------------------------------
    def record(self, trace, ref):
        """Record a NEURON pointer every step (Vector.record with the default, i.e. every dt)."""
        vec = h.Vector()
        vec.record(ref)
        self.records.append((trace, vec))

    def rec_v(self, secname, x):
        self.record(f"{secname}({fmt_x(x)}).v", self.sections[secname](x)._ref_v)

    def rec_mech(self, secname, x, mech, var):
        seg = self.sections[secname](x)
        self.record(f"{secname}({fmt_x(x)}).{mech}.{var}", getattr(getattr(seg, mech), "_ref_" + var))

    def rec_seg(self, secname, x, var):
        """A segment variable such as ina, ik, ica, v."""
        seg = self.sections[secname](x)
        self.record(f"{secname}({fmt_x(x)}).{var}", getattr(seg, "_ref_" + var))

    def rec_point(self, name, var):
        """Record a point-process variable; artificial cells' variables are sampled each step instead
        (Vector.record of an artificial cell's pointer records nothing when no section exists)."""
        pp = self.points[name]
        if self.point_info[name]["artificial"]:
            self.sample(f"{name}.{var}", lambda: getattr(pp, var))
        else:
            self.record(f"{name}.{var}", getattr(pp, "_ref_" + var))

    def sample(self, trace, fn):
        """Call fn() after finitialize and after every fadvance (for values with no pointer, e.g. IntFire1 M())."""
        self.samplers.append((trace, fn, []))

    # ---- running --------------------------------------------------------
    def run(self):
        """Set the globals, finitialize(v_init), then fadvance round(tstop/dt) times."""
        h.cvode_active(0)
        h.dt = self.dt
        h.celsius = self.celsius
        h.secondorder = self.secondorder
        h.usetable_hh = self.usetable_hh
        if self.sections:
            t = h.Vector()
            t.record(h._ref_t)
            self.t_vec = t
        else:
            # Vector.record(&t) needs a section; with only artificial cells, sample t instead
            # (the same values: h.t after finitialize and after each fadvance).
            self.t_vec = []
            self.samplers.insert(0, ("t", lambda: h.t, self.t_vec))
        h.finitialize(self.v_init)
        self._snapshot_ions()
        for _, fn, out in self.samplers:
            out.append(float(fn()))
        self.nsteps = int(round(self.tstop / self.dt))
        for _ in range(self.nsteps):
            h.fadvance()
            for _, fn, out in self.samplers:
                out.append(float(fn()))

    def _snapshot_ions(self):
        ions = [m[: -len("_ion")] for m in mech_names(0) if m.endswith("_ion")]
        for name, sec in self.sections.items():
            d = {}
            for ion in ions:
                if h.ismembrane(ion + "_ion", sec=sec):
                    vals = {}
                    for var in (f"e{ion}", f"{ion}i", f"{ion}o"):
                        vals[var] = uniform_or_list([getattr(seg, var) for seg in sec])
                    d[ion] = vals
            self.ions_after_init[name] = d

    # ---- describing -----------------------------------------------------
    def describe_section(self, name):
        sec = self.sections[name]
        segs = list(sec)
        d = {
            "name": name,
            "nseg": sec.nseg,
            "L": sec.L,
            "Ra": sec.Ra,
            "cm": uniform_or_list([seg.cm for seg in segs]),
            "geometry": self.geometry_kind[name],
            "diam": uniform_or_list([seg.diam for seg in segs]),
        }
        if self.geometry_kind[name] == "pt3d":
            d["pt3d"] = [[h.x3d(i, sec=sec), h.y3d(i, sec=sec), h.z3d(i, sec=sec), h.diam3d(i, sec=sec)]
                         for i in range(int(h.n3d(sec=sec)))]
        ps = sec.parentseg()
        if ps is None:
            d["parent"] = None
            d["parent_x"] = None
            d["child_x"] = None
        else:
            d["parent"] = ps.sec.name()
            d["parent_x"] = ps.x
            d["child_x"] = h.section_orientation(sec=sec)
        mechs = {}
        for m in segs[0]:
            mname = m.name()
            if mname.endswith("_ion"):
                continue
            params = {}
            for pname, size in mech_var_names(mname, 1):
                short = strip_suffix(pname, mname)
                if size == 1:
                    params[short] = uniform_or_list([getattr(getattr(seg, mname), short) for seg in segs])
                else:
                    params[short] = [[getattr(getattr(seg, mname), short)[i] for i in range(size)] for seg in segs]
            mechs[mname] = params
        d["mechanisms"] = mechs
        d["ions_after_init"] = self.ions_after_init.get(name, {})
        return d

    def describe_point(self, name):
        pp = self.points[name]
        info = dict(self.point_info[name])
        params = {}
        for pname, size in mech_var_names(info["type"], 1):
            if size == 1:
                params[pname] = getattr(pp, pname)
            else:
                params[pname] = [getattr(pp, pname)[i] for i in range(size)]
        info["name"] = name
        info["params"] = params
        if not info["artificial"]:
            info["node_x"] = pp.get_loc()
            h.pop_section()
        return info

    def describe(self):
        return {
            "sections": [self.describe_section(n) for n in self.sections],
            "point_processes": [self.describe_point(n) for n in self.points
                                if not self.point_info[n]["artificial"]],
            "artificial_cells": [self.describe_point(n) for n in self.points
                                 if self.point_info[n]["artificial"]],
            "netcons": [{
                "name": c["name"],
                "source": c["source"],
                "target": c["target"],
                "threshold": c["nc"].threshold,
                "delay": c["nc"].delay,
                "weight": [c["nc"].weight[i] for i in range(int(c["nc"].wcnt()))],
            } for c in self.netcons],
            "globals": {"usetable_hh": h.usetable_hh},
        }

    # ---- output ---------------------------------------------------------
    def result_unchecked(self):
        """The result without the length and finiteness checks (non-finite values become null)."""
        return self.result(check=False)

    def result(self, check=True):
        """The JSON object for this protocol; raises ValueError on a short or non-finite trace."""
        traces = {"t": list(self.t_vec)}
        for name, vec in self.records:
            traces[name] = list(vec)
        for name, _, out in self.samplers:
            if name != "t":
                traces[name] = out
        n = self.nsteps + 1
        for name, vals in traces.items():
            if not check:
                traces[name] = [v if math.isfinite(v) else None for v in vals]
                continue
            if len(vals) != n:
                raise ValueError(f"{self.protocol}: trace {name} has {len(vals)} points, expected {n}")
            check_finite(name, vals)
        out = {
            "format_version": FORMAT_VERSION,
            "protocol": self.protocol,
            "neuron_version": h.nrnversion(),
            "script": self.script,
            "dt": self.dt,
            "tstop": self.tstop,
            "nsteps": self.nsteps,
            "secondorder": self.secondorder,
            "celsius": self.celsius,
            "v_init": self.v_init,
            "model": self.describe(),
            "traces": traces,
            "spikes": {k: list(v) for k, v in self.spike_vecs.items()},
        }
        if self.notes:
            out["notes"] = self.notes
        out.update(self.extra)
        return out

    def write(self, relpath=None):
        """Write the result to tests/data/neuron/<protocol>.json (or relpath under tests/data/neuron)."""
        path = DATA / (relpath or f"{self.protocol}.json")
        write_json(path, self.result())
        return path


def write_json(path, obj):
    """Write obj as compact JSON (floats as Python repr, NaN rejected) with a trailing newline."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(obj, allow_nan=False, separators=(",", ":"))
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text + "\n")
    os.replace(tmp, path)
    print(f"wrote {path.relative_to(REPO)} ({len(text) + 1} bytes)")
