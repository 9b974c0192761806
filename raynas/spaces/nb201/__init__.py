"""NAS-Bench-201 (Dong & Yang, ICLR 2020): 15,625 cells of 6 edges x 5 ops in the benchmark's macro.

Importing the package registers what its modules define: ``space``, ``benchmark``; its measured metric costs are
``metric_costs.json`` (:mod:`raynas.spaces.costs`)."""

from raynas.spaces.nb201 import space  # noqa: F401  (registers)
from raynas.spaces.nb201 import benchmark  # noqa: F401  (registers)
