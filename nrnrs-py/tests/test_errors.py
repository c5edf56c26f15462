"""Misuse raises a Python exception a NEURON user understands; the
interpreter never crashes."""
import re

import pytest

import nrnrs
from nrnrs import h


def soma():
    s = h.Section(name="soma")
    s.insert("hh")
    return s


def test_unknown_mechanism():
    s = soma()
    with pytest.raises(ValueError, match="argument not a density mechanism name: 'nosuch'"):
        s.insert("nosuch")
    with pytest.raises(AttributeError, match="nosuch"):
        h.nosuch


def test_point_process_is_not_inserted():
    with pytest.raises(ValueError, match="IClamp is a point process"):
        soma().insert("IClamp")


def test_unknown_attribute():
    s = soma()
    with pytest.raises(AttributeError, match="'gnabar' is not a range variable of soma"):
        s(0.5).gnabar
    with pytest.raises(AttributeError, match="'hh' mechanism has no range variable 'nosuch'"):
        s(0.5).hh.nosuch = 1
    with pytest.raises(AttributeError, match="'pas' mechanism not inserted in section soma"):
        s(0.5).pas
    stim = h.IClamp(s(0.5))
    with pytest.raises(AttributeError, match="'IClamp' object has no attribute 'ampl'"):
        stim.ampl = 1


@pytest.mark.parametrize("x", [-0.1, 1.5, float("nan")])
def test_x_outside_0_1(x):
    s = soma()
    with pytest.raises(ValueError, match="segment position range is 0 <= x <= 1"):
        s(x)
    with pytest.raises(ValueError, match="0 <= x <= 1"):
        h.IClamp(x, sec=s)


@pytest.mark.parametrize("n", [0, -3, 2.5])
def test_bad_nseg(n):
    s = soma()
    with pytest.raises(ValueError, match="nseg must be"):
        s.nseg = n
    assert s.nseg == 1


def test_bad_geometry_values():
    s = soma()
    with pytest.raises(ValueError, match="L = -5"):
        s.L = -5
    with pytest.raises(ValueError, match="diam"):
        s.diam = 0
    with pytest.raises(TypeError, match="must be a number"):
        s.L = "long"


def test_deleted_section_in_use():
    s = soma()
    seg = s(0.5)
    h.delete_section(sec=s)
    with pytest.raises(ReferenceError, match="can't access a deleted section"):
        s.L
    with pytest.raises(ReferenceError, match="can't access a deleted section"):
        seg.v
    with pytest.raises(ReferenceError, match="can't access a deleted section"):
        s.nseg = 3
    with pytest.raises(ReferenceError, match="can't access a deleted section"):
        h.IClamp(seg)


def test_point_process_of_deleted_section():
    s = soma()
    stim = h.IClamp(s(0.5))
    h.delete_section(sec=s)
    with pytest.raises(ReferenceError, match=r"IClamp\[\d+\] was deleted"):
        stim.amp = 1


def test_netcon_to_deleted_target():
    pre, post = soma(), soma()
    syn = h.ExpSyn(post(0.5))
    nc = h.NetCon(pre(0.5)._ref_v, syn, sec=pre)
    del syn  # the last reference: NEURON deletes the point process too
    with pytest.raises(ReferenceError, match="target point process was deleted"):
        nc.weight[0] = 1
    assert not nc.valid()
    h.finitialize(-65)  # a run simply ignores the dead NetCon
    h.continuerun(1)


def test_netcon_target_without_net_receive():
    s = soma()
    stim = h.IClamp(s(0.5))
    with pytest.raises(ValueError, match="IClamp cannot be a NetCon target: it has no NET_RECEIVE"):
        h.NetCon(s(0.5)._ref_v, stim, sec=s)


def test_weight_index_out_of_range():
    s = soma()
    syn = h.ExpSyn(s(0.5))
    nc = h.NetCon(None, syn)
    with pytest.raises(IndexError, match="NET_RECEIVE has 1 arguments"):
        nc.weight[1] = 0.1


def test_hoc_is_not_supported(tmp_path):
    assert h.load_file("stdrun.hoc") == 1
    with pytest.raises(RuntimeError, match="HOC is not supported"):
        h.load_file("mycell.hoc")
    with pytest.raises(RuntimeError, match="HOC is not supported"):
        h("create soma")


def test_bad_run_arguments():
    with pytest.raises(ValueError, match="dt = 0"):
        h.dt = 0
    with pytest.raises(ValueError, match="secondorder"):
        h.secondorder = 3
    with pytest.raises(ValueError, match="t = NaN: must be finite"):
        h.t = float("nan")
    with pytest.raises(ValueError, match="nthread"):
        h.ParallelContext().nthread(0)
    assert h.dt == 0.025


def test_mod_file_errors_name_file_line_column(tmp_path):
    import nrnrs

    (tmp_path / "bad.mod").write_text("NEURON {\n  SUFFIX bad\n  RANGE g\n}\nPARAMETER { g = }\n")
    with pytest.raises(RuntimeError) as e:
        nrnrs.load_mechanisms(tmp_path)
    assert "bad.mod:5:" in str(e.value)


def test_missing_folder():
    import nrnrs

    with pytest.raises(ValueError, match="is not a folder"):
        nrnrs.load_mechanisms("/nonexistent/mods")


def test_nrn_load_dll_errors_name_the_file(tmp_path):
    missing = tmp_path / "x86_64" / "libnrnmech.so"
    with pytest.raises(RuntimeError, match=re.escape(f"nrn_load_dll({missing}): ")):
        h.nrn_load_dll(str(missing))
    fake = tmp_path / "libfake.so"
    fake.write_text("not a shared library")
    with pytest.raises(RuntimeError, match=re.escape(f"nrn_load_dll({fake}): ")):
        h.nrn_load_dll(str(fake))
    assert nrnrs.libraries() == []
