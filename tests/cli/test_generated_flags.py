"""Issue #30 item 2: a search's flags are generated from its typed config, so every setting is spelled once.

Every field of every registered search's config has its flag (or is marked as set from YAML/Python only), the
help lists each flag once with the config's default, and flags not given stay absent (the config's default
applies)."""

from __future__ import annotations

import argparse
import dataclasses

import pytest

from raynas.cli.config_flags import flag_of
from raynas.cli.main import main
from raynas.cli.search_cmd import method_parser
from raynas.search.registry import SEARCHES


def _options(parser: argparse.ArgumentParser) -> list[str]:
    return [s for a in parser._actions for s in a.option_strings]


@pytest.mark.parametrize("method", SEARCHES.names())
def test_every_config_field_has_its_flag(method):
    cls = SEARCHES.get(method).config_class()
    options = _options(method_parser(method))
    assert len(options) == len(set(options)), "a flag is defined twice"
    no_flag = []
    for f in dataclasses.fields(cls):
        cli = f.metadata.get("cli", True)
        if cli is True:
            assert flag_of(f) in options, f"{method}: {f.name} has no flag"
        elif cli == "training":  # the training oracle's own configs give these flags
            assert "--epochs" in options and "--max-train" in options
        else:
            assert cli is False and flag_of(f) not in options
            no_flag.append(f.name)
    # the settings a user sets from YAML or Python only are few and named
    assert set(no_flag) <= {"t_bounds", "c_bounds", "top_k", "asha_epochs", "grace_period", "reduction_factor",
                            "cpus_per_trial", "gpus_per_trial"}


@pytest.mark.parametrize("method", ["robot", "linucb", "hnas"])
def test_help_shows_each_setting_once_with_the_configs_default(method, capsys):
    with pytest.raises(SystemExit) as e:
        main(["search", method, "--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    cls = SEARCHES.get(method).config_class()
    budget = next(f for f in dataclasses.fields(cls) if f.name == "budget").default
    lines = [ln.strip() for ln in out.splitlines()]
    assert sum(ln.startswith("--budget ") for ln in lines) == 1
    assert f"(default: {budget})" in " ".join(out.split())
    assert "where the queries run" in out and f"{method} settings" in out


def test_flags_not_given_are_absent_so_the_config_default_applies():
    ns = method_parser("robot").parse_args(["--scores", "s", "--out", "o"])
    assert vars(ns) == {"scores": "s", "out": "o", "no_progress": False}
    ns = method_parser("robot").parse_args(["--scores", "s", "--out", "o", "--bo-patience", "none", "--q", "2"])
    assert ns.bo_patience is None and ns.q == 2


def test_a_bad_flag_value_is_exit_2_before_any_work(capsys):
    with pytest.raises(SystemExit) as e:
        main(["search", "robot", "--scores", "s", "--out", "o", "--n-init", "0"])
    assert e.value.code == 2 and "--n-init" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        main(["search", "hnas", "--scores", "s", "--out", "o", "--scale", "mean"])
    assert e.value.code == 2
