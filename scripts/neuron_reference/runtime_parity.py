# Reference values from NEURON 9.0.2 for runtime/tests/neuron_parity.rs.
# Regenerate with:
#   .venv-neuron/bin/python scripts/neuron_reference/runtime_parity.py tests/data/neuron/core/runtime_parity.json
# (.venv-neuron: python3 -m venv .venv-neuron && .venv-neuron/bin/pip install neuron==9.0.2)
# The output is committed, so the tests never need NEURON.
from neuron import h
import json, sys
h.load_file("stdrun.hoc")
out = {}
# geometry case
soma = h.Section(name="soma"); soma.L=20; soma.diam=20; soma.nseg=1
axon = h.Section(name="axon"); axon.nseg=5; axon.L=200; axon.diam=1; axon.Ra=100
axon.connect(soma(1), 0)
dend = h.Section(name="dend"); dend.nseg=3
h.pt3dadd(0,0,0,3, sec=dend); h.pt3dadd(10,0,0,2, sec=dend); h.pt3dadd(10,17,3,1.5, sec=dend); h.pt3dadd(30,20,3,1, sec=dend)
dend.connect(soma(0), 0)
d2 = h.Section(name="d2"); d2.nseg=2; d2.connect(soma(0.5), 1)
geo=[]
for sec in [soma, axon, dend, d2]:
    for seg in sec:
        geo.append([sec.name(), seg.x, seg.area(), seg.ri(), seg.volume(), seg.diam])
    geo.append([sec.name(), 1.0, sec(1).area(), sec(1).ri(), 0, 0])
    geo.append([sec.name(), 0.0, sec(0).area(), sec(0).ri(), 0, 0])
    geo.append([sec.name(), -1, sec.L])
out["geo"]=geo



def run(case, so):
    for s in list(h.allsec()): h.delete_section(sec=s)
    h.usetable_hh = 0
    if case == "single":
        s = h.Section(name="soma"); s.L = 18.8; s.diam = 18.8; s.insert("hh")
        stim = h.IClamp(s(0.5)); stim.delay = 1; stim.dur = 5; stim.amp = 0.3
        rec = s(0.5)
    else:
        s = h.Section(name="axon"); s.nseg = 101; s.L = 1000; s.diam = 2; s.Ra = 100; s.insert("hh")
        stim = h.IClamp(s(0)); stim.delay = 1; stim.dur = 1; stim.amp = 0.5
        rec = s(0.9)
    h.secondorder = so
    v = h.Vector().record(rec._ref_v)
    nc = h.NetCon(rec._ref_v, None, sec=s); sp = h.Vector(); nc.record(sp)
    h.finitialize(-65); h.continuerun(20)
    return {"v": list(v), "spikes": list(sp)}
hh = {f"{c}_{so}": run(c, so) for c in ["single", "axon"] for so in [0, 2]}


out["hh"] = hh
json.dump(out, open(sys.argv[1], "w"))
