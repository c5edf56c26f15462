"""NEURON's Python scripting interface on the nrnivmodl-rs simulator.

Change one line of a NEURON script::

    from nrnrs import h          # instead of: from neuron import h

and it runs on nrnrs: sections, ``insert``, point processes, ``h.Vector``
recording, ``h.NetCon``, ``h.finitialize`` / ``h.continuerun`` / ``h.run``.
NEURON's built-in mechanisms (hh, pas, IClamp, ExpSyn, Exp2Syn, AlphaSynapse,
SEClamp, NetStim, IntFire1, IntFire2) are always available; more mechanisms
come from ``load_mechanisms(folder)``, which JIT-compiles a folder of .mod
files directly, or from ``h.nrn_load_dll(path)`` for a library built by
``nrnivmodl-rs``.
"""

from ._nrnrs import h, load_mechanisms, mechanism_names
from . import units

__all__ = ["h", "load_mechanisms", "mechanism_names", "units"]
