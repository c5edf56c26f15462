"""Two HH cells: a spike in cell 1 drives an ExpSyn on cell 2 through a NetCon."""
import json

from neuron import h
from neuron.units import ms, mV

h.load_file("stdrun.hoc")


class Cell:
    def __init__(self, name):
        self.soma = h.Section(name=name, cell=None)
        self.soma.L = self.soma.diam = 10
        self.soma.insert(h.hh)


cell1 = Cell("soma1")
cell2 = Cell("soma2")

stim = h.IClamp(cell1.soma(0.5))
stim.delay = 1 * ms
stim.dur = 0.1 * ms
stim.amp = 1

syn = h.ExpSyn(cell2.soma(0.5))
syn.tau = 0.1 * ms
syn.e = 0 * mV

nc = h.NetCon(cell1.soma(0.5)._ref_v, syn, sec=cell1.soma)
nc.threshold = 10 * mV
nc.delay = 1 * ms
nc.weight[0] = 5

spikes = {}
recorders = []
for name, cell in (("soma1(0.5)", cell1), ("soma2(0.5)", cell2)):
    rec = h.NetCon(cell.soma(0.5)._ref_v, None, sec=cell.soma)
    rec.threshold = 10
    spikes[name] = h.Vector()
    rec.record(spikes[name])
    recorders.append(rec)

t = h.Vector().record(h._ref_t)
v1 = h.Vector().record(cell1.soma(0.5)._ref_v)
v2 = h.Vector().record(cell2.soma(0.5)._ref_v)
g = h.Vector().record(syn._ref_g)
i = h.Vector().record(syn._ref_i)
istim = h.Vector().record(stim._ref_i)

h.finitialize(-65 * mV)
h.continuerun(20 * ms)

print(json.dumps({
    "traces": {"t": list(t), "soma1(0.5).v": list(v1), "soma2(0.5).v": list(v2),
               "syn.g": list(g), "syn.i": list(i), "stim.i": list(istim)},
    "spikes": {k: list(vec) for k, vec in spikes.items()},
}))
