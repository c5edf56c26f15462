"""A NetStim drives an ExpSyn on an HH soma."""
import json

from neuron import h

h.load_file("stdrun.hoc")

soma = h.Section(name="soma")
soma.L = soma.diam = 10
soma.insert("hh")

syn = h.ExpSyn(soma(0.5))
syn.tau = 5
syn.e = 0

ns = h.NetStim()
ns.interval = 5
ns.number = 5
ns.start = 2
ns.noise = 0

nc = h.NetCon(ns, syn)
nc.delay = 1
nc.weight[0] = 0.01

ns_times = h.Vector()
ns_rec = h.NetCon(ns, None)
ns_rec.record(ns_times)
soma_times = h.Vector()
soma_rec = h.NetCon(soma(0.5)._ref_v, None, sec=soma)
soma_rec.threshold = 10
soma_rec.record(soma_times)

t = h.Vector().record(h._ref_t)
v = h.Vector().record(soma(0.5)._ref_v)
m = h.Vector().record(soma(0.5).hh._ref_m)
hh_h = h.Vector().record(soma(0.5).hh._ref_h)
n = h.Vector().record(soma(0.5).hh._ref_n)
g = h.Vector().record(syn._ref_g)
i = h.Vector().record(syn._ref_i)

h.finitialize(-65)
h.continuerun(40)

print(json.dumps({
    "traces": {"t": list(t), "soma(0.5).v": list(v), "soma(0.5).hh.m": list(m),
               "soma(0.5).hh.h": list(hh_h), "soma(0.5).hh.n": list(n),
               "syn.g": list(g), "syn.i": list(i)},
    "spikes": {"ns": list(ns_times), "soma(0.5)": list(soma_times)},
}))
