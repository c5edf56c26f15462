"""A voltage-clamp step (SEClamp) on an HH soma, with the ionic currents."""
import json

from neuron import h

h.load_file("stdrun.hoc")

soma = h.Section(name="soma")
soma.L = 10
soma.diam = 10
soma.insert("hh")

clamp = h.SEClamp(soma(0.5))
clamp.rs = 1
clamp.dur1, clamp.amp1 = 2, -65
clamp.dur2, clamp.amp2 = 5, 0
clamp.dur3, clamp.amp3 = 3, -65

rec = {
    "t": h._ref_t,
    "soma(0.5).v": soma(0.5)._ref_v,
    "soma(0.5).hh.m": soma(0.5).hh._ref_m,
    "soma(0.5).hh.h": soma(0.5).hh._ref_h,
    "soma(0.5).hh.n": soma(0.5).hh._ref_n,
    "soma(0.5).ina": soma(0.5)._ref_ina,
    "soma(0.5).ik": soma(0.5)._ref_ik,
    "clamp.i": clamp._ref_i,
    "clamp.vc": clamp._ref_vc,
}
vecs = {name: h.Vector().record(ref) for name, ref in rec.items()}

h.finitialize(-65)
h.continuerun(10)

print(json.dumps({"traces": {k: vec.to_python() for k, vec in vecs.items()}, "spikes": {}}))
