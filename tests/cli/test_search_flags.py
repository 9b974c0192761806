"""The BO settings of ``raynas search robot|hnas`` reach the typed configs: each flag, the ``none`` spelling of
"no limit" (a config value of None, not the default), and bad values refused before any score is read."""

from __future__ import annotations

import pytest

from raynas.cli.main import build_parser, main
from raynas.cli.search_cmd import _config
from raynas.search.registry import SEARCHES


def typed(argv):
    args = build_parser().parse_args(argv)
    return SEARCHES.get(args.method).make_config(_config(args.method, args))


def test_robot_flags_reach_the_config():
    c = typed(["search", "robot", "--scores", "s", "--out", "o", "--n-init", "5", "--acquisition", "logei",
               "--bo-patience", "4", "--gp-max-points", "64", "--kernel", "matern_iso", "--transform", "signed_log",
               "--tie-break", "earliest"])
    assert (c.n_init, c.acquisition, c.bo_patience, c.gp_max_points, c.tie_break) == (5, "logei", 4, 64, "earliest")
    assert (c.kernel, c.transform) == ("matern_iso", "signed_log")


def test_robot_defaults_are_the_searchs():
    from raynas.search.robot import RoBoTConfig

    c, r = typed(["search", "robot", "--scores", "s", "--out", "o"]), RoBoTConfig()
    assert (c.n_init, c.acquisition, c.bo_patience, c.gp_max_points, c.tie_break) == (
        r.n_init, r.acquisition, r.bo_patience, r.gp_max_points, r.tie_break)


def test_none_means_no_limit_not_the_default():
    c = typed(["search", "robot", "--scores", "s", "--out", "o", "--bo-patience", "none", "--gp-max-points", "off"])
    assert c.bo_patience is None and c.gp_max_points is None
    h = typed(["search", "hnas", "--scores", "s", "--out", "o", "--patience", "none"])
    assert h.patience is None and h.gp_max_points == 256


def test_hnas_flags_reach_the_search():
    h = typed(["search", "hnas", "--scores", "s", "--out", "o", "--no-exclude-queried", "--max-iters", "7",
               "--n-init", "2", "--acquisition", "logei", "--scale", "median", "--patience", "3",
               "--gp-max-points", "32"])
    kw = h.search_kwargs()
    assert kw["exclude_queried"] is False and kw["max_iters"] == 7 and kw["n_init"] == 2
    assert (kw["acquisition"], kw["scale"], kw["patience"], kw["gp_max_points"]) == ("logei", "median", 3, 32)
    assert typed(["search", "hnas", "--scores", "s", "--out", "o", "--exclude-queried"]).exclude_queried is True
    assert typed(["search", "hnas", "--scores", "s", "--out", "o"]).exclude_queried is True


@pytest.mark.parametrize("argv", [
    ["search", "robot", "--bo-patience", "0"],
    ["search", "robot", "--gp-max-points", "1"],
    ["search", "robot", "--n-init", "0"],
    ["search", "robot", "--acquisition", "ei"],
    ["search", "robot", "--tie-break", "random"],
    ["search", "hnas", "--patience", "x"],
    ["search", "hnas", "--scale", "mean"],
])
def test_bad_values_exit_2(tmp_path, argv, capsys):
    with pytest.raises(SystemExit) as e:  # argparse refuses it, with its usage line
        main(argv[:2] + ["--scores", str(tmp_path / "none"), "--out", str(tmp_path / "o")] + argv[2:])
    assert e.value.code == 2 and "error: argument" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_configs_check_the_search_settings_before_reading_scores():
    from raynas.errors import ConfigError
    from raynas.search.hnas_run import HNASSearchConfig
    from raynas.search.runner import RobotSearchConfig

    with pytest.raises(ConfigError, match="acquisition"):
        RobotSearchConfig(scores="missing", out="o", acquisition="ei")
    with pytest.raises(ConfigError, match="transform"):
        RobotSearchConfig(scores="missing", out="o", transform="log")
    with pytest.raises(ConfigError, match="tie_break"):
        RobotSearchConfig(scores="missing", out="o", tie_break="first")
    with pytest.raises(ConfigError, match="patience"):
        HNASSearchConfig(scores="missing", out="o", patience=0)
    with pytest.raises(ConfigError, match="acquisition"):
        HNASSearchConfig(scores="missing", out="o", acquisition="ei")
