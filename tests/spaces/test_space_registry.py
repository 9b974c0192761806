"""The space registry: create_space / list_spaces and close-match errors."""

from __future__ import annotations

import pytest

from raynas.errors import ConfigError, UnknownNameError
from raynas.spaces import SPACES, SearchSpace, create_space, list_spaces


def test_nb201_is_registered() -> None:
    assert "nb201" in list_spaces()
    space = create_space("nb201")
    assert isinstance(space, SearchSpace) and space.name == "nb201" and space.size == 15625
    assert space.describe()["ops"][3] == "nor_conv_3x3"


def test_unknown_space_suggests_close_match() -> None:
    with pytest.raises(UnknownNameError) as e:
        create_space("nb210")
    assert "unknown space 'nb210'" in str(e.value) and "did you mean 'nb201'" in str(e.value)
    assert isinstance(e.value, ConfigError)  # the CLI maps the whole family to one clean line


def test_duplicate_registration_is_an_error() -> None:
    with pytest.raises(ConfigError, match="registered twice"):
        SPACES.add("nb201", lambda **kw: create_space("nb201", **kw))


def test_listing_and_tiny_fake() -> None:
    import torch

    from raynas.api import describe_registry
    from raynas_tests.nb201 import tiny_nb201

    assert any(line.startswith("nb201") and "size=15625" in line for line in describe_registry("spaces"))
    model = tiny_nb201(num_classes=3)
    assert tuple(model(torch.randn(2, 3, 8, 8)).shape) == (2, 3)
    # hand count: stem 116 + cells 18480 + reduction blocks 4576 + head 83
    assert sum(p.numel() for p in model.parameters()) == 23_255
