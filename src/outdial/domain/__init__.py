"""Pure rules of outdial: no I/O, no framework, no clock reads (now is passed in)."""
