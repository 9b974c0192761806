"""TE-NAS supernet pruning: no candidate pool and no oracle, the supernet is pruned edge by edge by NTK condition
number and linear-region count (:mod:`raynas.pruning.tenas`; the CLI stage in :mod:`raynas.pruning.run`)."""
