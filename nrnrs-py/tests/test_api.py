"""The NEURON Python API surface, checked against NEURON 9.0.2's reference
data where numbers are involved (tests/data/neuron/geometry.json)."""
import io
import json
import contextlib
import platform
import subprocess
import sys

import pytest

import nrnrs
from nrnrs import h, units
from engines import REFERENCE

GEOMETRY = json.loads((REFERENCE / "geometry.json").read_text())["geometry"]


def build(spec, secs):
    """Builds one section of geometry.json the way its reference script did."""
    sec = h.Section(name=spec["name"])
    if spec["geometry"] == "pt3d":
        for x, y, z, d in spec["pt3d"]:
            sec.pt3dadd(x, y, z, d)
    else:
        sec.L = spec["L"]
        if spec["geometry"] == "cylinder":
            sec.diam = spec["diam"]
    sec.nseg = spec["nseg"]
    if spec["geometry"] == "seg_diam":
        for seg, d in zip(sec, spec["diam"]):
            seg.diam = d
    sec.Ra = spec["Ra"]
    sec.cm = spec["cm"]
    if spec.get("parent"):
        sec.connect(secs[spec["parent"]](spec["parent_x"]), spec["child_x"])
    secs[spec["name"]] = sec
    return sec


def check_segments(sec, expected):
    got = list(sec.allseg())
    assert [s.x for s in got] == pytest.approx([e["x"] for e in expected], rel=1e-15)
    for seg, e in zip(got, expected):
        for key, value in (("area", seg.area()), ("ri", seg.ri()), ("volume", seg.volume()),
                           ("diam", seg.diam)):
            assert value == pytest.approx(e[key], rel=1e-12, abs=1e-12), (sec, seg.x, key)


@pytest.mark.parametrize("spec", GEOMETRY["sections"], ids=lambda s: s["name"])
def test_section_geometry_matches_neuron(spec):
    sec = build(spec, {})
    assert sec.L == pytest.approx(spec["L"], rel=1e-12)
    check_segments(sec, spec["segments"])


@pytest.mark.parametrize("tree", GEOMETRY["trees"], ids=lambda t: t["name"])
def test_tree_geometry_and_topology_match_neuron(tree):
    secs = {}
    for spec in tree["sections"]:
        build(spec, secs)
    for spec in tree["sections"]:
        check_segments(secs[spec["name"]], spec["segments"])
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert h.topology() == 1
    assert out.getvalue() == tree["topology"]
    root = secs[tree["sections"][0]["name"]]
    assert {s.name() for s in root.wholetree()} == set(secs)
    assert {s.name() for s in h.allsec()} >= set(secs)


def test_section_and_segment_basics():
    cell = "Cell[0]"
    s = h.Section(name="soma", cell=cell)
    assert s.name() == "Cell[0].soma" and str(s) == "Cell[0].soma" and s.cell() == cell
    assert (s.L, s.diam, s.nseg, s.Ra, s.cm) == (100, 500, 1, 35.4, 1)  # NEURON's defaults
    s.nseg = 4
    assert [seg.x for seg in s] == [0.125, 0.375, 0.625, 0.875]
    assert [seg.x for seg in s.allseg()] == [0, 0.125, 0.375, 0.625, 0.875, 1]
    assert s(0.3).sec == s and s(0.3) == s(0.3) and len(s) == 4
    d = h.Section(name="d")
    assert d.connect(s(1)) is d and d.parentseg().sec == s and s.children() == [d]
    assert d.parentseg().x == 1 and set(s.subtree()) == {s, d}
    d.disconnect()
    assert d.parentseg() is None


def test_builtins_are_compiled_ahead_of_time_unless_asked_otherwise():
    import os

    if os.environ.get("NRNRS_BUILTINS") == "jit":
        assert nrnrs.builtin_backend() == ("jit", "NRNRS_BUILTINS=jit")
    else:
        assert nrnrs.builtin_backend() == ("aot", None)
    # Either way, in another process the variable selects the JIT.
    code = "import nrnrs; print(nrnrs.builtin_backend())"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=dict(os.environ, NRNRS_BUILTINS="jit"), check=True).stdout
    assert out.strip() == "('jit', 'NRNRS_BUILTINS=jit')"


def test_mechanisms_every_spelling():
    a, b, c = (h.Section(name=n) for n in "abc")
    a.insert("hh")
    b.insert(h.hh)
    h.pas.insert([c])
    assert a.has_membrane("hh") and b.has_membrane("hh") and c.has_membrane("pas")
    assert a(0.5).hh.gnabar == 0.12 and a(0.5).gnabar_hh == 0.12 and a.gnabar_hh == 0.12
    a(0.5).hh.gkbar = 0.05
    assert a(0.5).gkbar_hh == 0.05
    a.gl_hh = 1e-4
    assert all(seg.hh.gl == 1e-4 for seg in a)
    assert [m.name() for m in a(0.5)] == ["hh"]
    assert a(0.5).ena == 50 and a(0.5).ek == -77 and a(0.5).nai == 10
    assert "hh" in a.psection()["density_mechs"]
    a.uninsert("hh")
    assert not a.has_membrane("hh")


def test_point_processes_and_globals():
    s = h.Section(name="s")
    s.nseg = 3
    stim = h.IClamp(s(0.4))
    stim.delay = 3  # IClamp's `del`
    assert stim.delay == 3 and stim.get_loc() == 0.5 and stim.get_segment() == s(0.5)
    assert stim.hname().startswith("IClamp[")
    ns = h.NetStim()
    assert ns.get_segment() is None and ns.interval == 10
    h.usetable_hh = 0
    assert h.usetable_hh == 0
    h.usetable_hh = 1
    h.celsius = 6.3
    assert h.celsius == 6.3


def test_vector_api():
    np = pytest.importorskip("numpy")
    v = h.Vector([1, 2, 3.5])
    assert len(v) == 3 and v[-1] == 3.5 and v.x[0] == 1 and list(v) == [1, 2, 3.5]
    assert v.to_python() == [1, 2, 3.5] and v.max() == 3.5 and v.sum() == 6.5
    v[0] = 7
    assert v[0] == 7 and list(v[1:]) == [2, 3.5]
    assert list(h.Vector(3)) == [0, 0, 0]
    assert list(h.Vector(np.arange(3.0))) == [0, 1, 2]
    a = v.as_numpy()
    assert a.dtype == np.float64 and a.tolist() == [7, 2, 3.5]
    assert np.array(v).tolist() == [7, 2, 3.5]
    v.append(1, 2).resize(2)
    assert list(v) == [7, 2]


def test_recording_reads_the_simulator():
    s = h.Section(name="s")
    s.insert("pas")
    t = h.Vector().record(h._ref_t)
    v = h.Vector().record(s(0.5)._ref_v)
    h.finitialize(-70)
    h.continuerun(1)
    assert len(t) == len(v) == 41 and t[40] == pytest.approx(1)
    assert v[0] == -70 and s(0.5)._ref_v[0] == v[-1]
    with pytest.raises(RuntimeError, match="being filled by the simulator"):
        v[0] = 1
    c = v.c()
    c[0] = 1
    assert c[0] == 1


def test_units():
    assert units.ms == 1 and units.mV == 1 and units.um == units.µm == 1
    assert units.s == 1000 and units.uM == 1e-3 and units.mm == 1000


def test_load_mechanisms_jit_compiles_a_folder(tmp_path):
    (tmp_path / "leak2.mod").write_text(
        "NEURON { SUFFIX leak2 NONSPECIFIC_CURRENT i RANGE g, e }\n"
        "UNITS { (mA) = (milliamp) (mV) = (millivolt) }\n"
        "PARAMETER { g = 0.001 (S/cm2) e = -70 (mV) }\n"
        "ASSIGNED { v (mV) i (mA/cm2) }\n"
        "BREAKPOINT { i = g*(v - e) }\n"
    )
    assert nrnrs.load_mechanisms(tmp_path) == ["leak2"]
    assert nrnrs.load_mechanisms(tmp_path) == []  # loading again is a no-op
    s = h.Section(name="s")
    s.insert("leak2")
    assert s(0.5).leak2.g == 0.001
    h.finitialize(-65)
    h.continuerun(50)
    # A leak alone relaxes to its reversal potential (analytic).
    assert s(0.5).v == pytest.approx(-70, abs=1e-6)


def test_threads_give_identical_results():
    def run(n):
        h.ParallelContext().nthread(n)
        cells = []
        for i in range(3):
            c = h.Section(name=f"c{i}")
            c.insert("hh")
            st = h.IClamp(c(0.5))
            st.amp, st.dur = 20 + 10 * i, 1
            cells.append((c, st))
        vs = [h.Vector().record(c(0.5)._ref_v) for c, _ in cells]
        h.finitialize(-65)
        h.continuerun(10)
        return [list(v) for v in vs]

    assert run(2) == run(1)
    h.ParallelContext().nthread(1)


def test_space_plot_path_is_the_tree_path():
    from nrnrs import plot

    soma = h.Section(name="soma")
    soma.L, soma.nseg = 20, 1
    d1, d2 = h.Section(name="d1"), h.Section(name="d2")
    for d in (d1, d2):
        d.L, d.nseg = 100, 2
        d.connect(soma(1))
    pts = plot.path(d1(1), d2(1))
    # d1: 1, 0.75, 0.25, 0 (100 µm); the junction node once; d2: 0.25, 0.75, 1.
    assert [round(d, 9) for d, _ in pts] == [0, 25, 75, 100, 125, 175, 200]
    assert pts[0][1] == d1(1) and pts[-1][1] == d2(1)


def test_plots_draw(tmp_path):
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    from nrnrs import plot

    s = h.Section(name="s")
    ax = plot.trace([0, 1, 2], [-65, -60, -62])
    assert len(ax.lines) == 1
    ax = plot.space(s(0), s(1))
    assert ax.get_ylabel() == "v"


def test_psection_shows_neurons_range_variables():
    s = h.Section(name="s")
    s.insert("hh")
    s.insert("pas")
    got = {m: list(v) for m, v in s.psection()["density_mechs"].items()}
    # What NEURON 9.0.2's sec.psection() lists, in its order (no internal fields).
    assert got == {
        "hh": ["gnabar", "gkbar", "gl", "el", "gna", "gk", "il", "minf", "hinf", "ninf",
               "mtau", "htau", "ntau", "m", "h", "n"],
        "pas": ["g", "e", "i"],
    }


def test_a_vector_records_one_thing_and_dropped_vectors_stop():
    s = h.Section(name="s")
    s.insert("pas")
    v = h.Vector().record(s(0.5)._ref_v)
    assert v.record(h._ref_t) is v  # records t now, not v
    for _ in range(100):
        h.Vector().record(s(0.5)._ref_v)  # dropped at once: the recording stops
    h.finitialize(-70)
    h.continuerun(1)
    assert list(v) == pytest.approx([0.025 * i for i in range(41)], abs=1e-12)


def test_setting_t_continues_from_there():
    s = h.Section(name="s")
    t = h.Vector().record(h._ref_t)
    h.finitialize(-65)
    h.t = 5
    h.continuerun(6)
    assert h.t == pytest.approx(6) and len(t) == 41 and t[0] == 0 and t[1] == pytest.approx(5.025)
    del s


def _import_nrnrs_in(cwd):
    return subprocess.run(
        [sys.executable, "-c", "import nrnrs; print(nrnrs.libraries())"],
        cwd=cwd, capture_output=True, text=True,
    )


def _default_library(folder):
    """<folder>/<arch>/libnrnmech.so, where NEURON and nrnrs look at import."""
    arch = "arm64" if platform.machine() in ("arm64", "aarch64") else platform.machine()
    name = "libnrnmech.dylib" if sys.platform == "darwin" else "libnrnmech.so"
    return folder / arch / name


def test_import_without_a_library_in_the_working_directory(tmp_path):
    _default_library(tmp_path).parent.mkdir()  # the arch folder alone is not a library
    p = _import_nrnrs_in(tmp_path)
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == "[]"


def test_import_with_a_broken_library_fails_naming_it(tmp_path):
    lib = _default_library(tmp_path)
    lib.parent.mkdir()
    lib.write_text("not a shared library")
    p = _import_nrnrs_in(tmp_path)
    assert p.returncode != 0
    last = p.stderr.strip().splitlines()[-1]
    assert last.startswith("ImportError: cannot load the mechanism library") and str(lib) in last
