"""``make_oracle``: the default oracle is the scored space's benchmark table; a table answers only its own space."""

from __future__ import annotations

import pytest

from raynas.errors import ConfigError, UnknownNameError
from raynas.oracles.base import BenchmarkTableOracle
from raynas.search.hnas_run import HNASSearchConfig
from raynas.search.runner import RobotSearchConfig, make_oracle


def test_default_oracle_is_the_scored_spaces_benchmark_table(nb201_table_path):
    o = make_oracle(None, {"space": "nb201"}, 0)
    assert isinstance(o, BenchmarkTableOracle) and o.benchmark.name == "nb201" and o.path == nb201_table_path
    assert isinstance(make_oracle(None, {}, 0), BenchmarkTableOracle)  # no space stored: the default space
    assert isinstance(make_oracle("nb201", {"space": "nb201"}, 0), BenchmarkTableOracle)


def test_a_space_without_a_benchmark_or_another_spaces_table_is_refused():
    with pytest.raises(ConfigError, match="cannot answer for space 'darts_cifar'.*--oracle train"):
        make_oracle(None, {"space": "darts_cifar"}, 0)
    with pytest.raises(ConfigError, match="the nb201 table oracle cannot answer for space 'darts_cifar'"):
        make_oracle("nb201", {"space": "darts_cifar"}, 0)
    with pytest.raises(ConfigError, match="takes no options"):
        make_oracle(None, {"space": "nb201"}, 0, {"epochs": 1})
    with pytest.raises(UnknownNameError, match="did you mean 'nb201'"):
        make_oracle("nb2o1", {"space": "nb201"}, 0)


def test_search_configs_default_to_the_spaces_table():
    assert RobotSearchConfig(scores="s", out="o").oracle is None
    assert HNASSearchConfig(scores="s", out="o").oracle is None
