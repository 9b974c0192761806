"""NAS-Bench-101 (Ying et al., ICML 2019): 423,624 unique cells of up to 7 nodes and 9 edges.

Importing the package registers what its modules define: ``space``, ``benchmark``."""

from raynas.spaces.nb101 import space  # noqa: F401  (registers)
from raynas.spaces.nb101 import benchmark  # noqa: F401  (registers)
