"""NEURON's Python scripting interface on the nrnivmodl-rs simulator.

Change one line of a NEURON script::

    from nrnrs import h          # instead of: from neuron import h

and it runs on nrnrs: sections, ``insert``, point processes, ``h.Vector``
recording, ``h.NetCon``, ``h.finitialize`` / ``h.continuerun`` / ``h.run``.
NEURON's built-in mechanisms (hh, pas, IClamp, ExpSyn, Exp2Syn, AlphaSynapse,
SEClamp, NetStim, IntFire1, IntFire2) are always available; more mechanisms
come from ``load_mechanisms(folder)``, which JIT-compiles a folder of .mod
files directly, or from ``h.nrn_load_dll(path)`` for a library built by
``nrnivmodl-rs``. As with NEURON, the working directory's
``<arch>/libnrnmech.so`` (what ``nrnivmodl-rs`` builds there) is loaded at
import; ``libraries()`` lists the libraries loaded. The built-ins are native
code compiled ahead of time when the package was built (``builtin_backend()``
says so; ``NRNRS_BUILTINS=jit`` in the environment before the import makes
them JIT-compiled instead, to the same bits).
"""

from ._nrnrs import builtin_backend, h, libraries, load_mechanisms, mechanism_names
from . import units

__all__ = ["builtin_backend", "h", "libraries", "load_mechanisms", "mechanism_names", "units"]
