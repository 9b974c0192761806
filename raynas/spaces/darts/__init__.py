"""DARTS (Liu et al., ICLR 2019) at CIFAR and ImageNet size: normal and reduction cells of 8 edges.

Importing the package registers what its modules define: ``space``."""

from raynas.spaces.darts import space  # noqa: F401  (registers)
