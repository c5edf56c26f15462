"""NEURON's classic HH demo: a soma with hh, four IClamps, spike times from a NetCon."""
import json

from neuron import h

h.load_file("stdrun.hoc")

soma = h.Section(name="soma")
soma.insert("hh")

stims = []
for delay in (2, 13, 27, 40):
    stim = h.IClamp(soma(0.5))
    stim.delay = delay
    stim.dur = 0.5
    stim.amp = 50
    stims.append(stim)

t = h.Vector().record(h._ref_t)
v = h.Vector().record(soma(0.5)._ref_v)
m = h.Vector().record(soma(0.5).hh._ref_m)
hgate = h.Vector().record(soma(0.5).hh._ref_h)
n = h.Vector().record(soma(0.5).hh._ref_n)

nc = h.NetCon(soma(0.5)._ref_v, None, sec=soma)
nc.threshold = 10
spike_times = h.Vector()
nc.record(spike_times)

h.finitialize(-65)
h.continuerun(49.5)

print(json.dumps({
    "traces": {"t": list(t), "soma(0.5).v": list(v), "soma(0.5).hh.m": list(m),
               "soma(0.5).hh.h": list(hgate), "soma(0.5).hh.n": list(n)},
    "spikes": {"soma(0.5)": list(spike_times)},
}))
