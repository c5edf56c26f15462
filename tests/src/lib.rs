//! Integration and NEURON-parity suites live in tests/tests/.
