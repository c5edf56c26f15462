"""An AlphaSynapse on a passive soma."""
import json

from neuron import h

h.load_file("stdrun.hoc")

soma = h.Section(name="soma")
soma.L = 10
soma.diam = 10
soma.insert("pas")
for seg in soma:
    seg.pas.g = 0.001
    seg.pas.e = -70

syn = h.AlphaSynapse(soma(0.5))
syn.onset = 20
syn.tau = 0.1
syn.gmax = 1
syn.e = 0

t = h.Vector().record(h._ref_t)
v = h.Vector().record(soma(0.5)._ref_v)
ipas = h.Vector().record(soma(0.5).pas._ref_i)
isyn = h.Vector().record(syn._ref_i)

h.finitialize(-65)
h.continuerun(40)

print(json.dumps({
    "traces": {"t": list(t), "soma(0.5).v": list(v), "soma(0.5).pas.i": list(ipas),
               "syn.i": list(isyn)},
    "spikes": {},
}))
