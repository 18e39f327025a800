"""Layer 0: errors, the validation gate, init schemes and weight streams, resources (memory,
threads), devices, atomic I/O and run metadata. Imports nothing else from actspec."""
