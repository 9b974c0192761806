from dataclasses import dataclass, field

import pytest

from raynas.config import from_dict, load_yaml, to_dict
from raynas.errors import ConfigError, UnknownNameError
from raynas.registry import Registry


@dataclass(frozen=True)
class Inner:
    a: int = 1


@dataclass(frozen=True)
class Outer:
    name: str
    rate: float = 0.5
    tags: tuple[str, ...] = ()
    inner: Inner = field(default_factory=Inner)
    maybe: int | None = None


def test_from_dict_builds_nested_and_coerces():
    cfg = from_dict(Outer, {"name": "x", "rate": 1, "tags": ["a", "b"], "inner": {"a": 3}, "maybe": 4})
    assert cfg == Outer("x", 1.0, ("a", "b"), Inner(3), 4)
    assert to_dict(cfg) == {"name": "x", "rate": 1.0, "tags": ["a", "b"], "inner": {"a": 3}, "maybe": 4}


def test_unknown_key_rejected_with_allowed_list():
    with pytest.raises(ConfigError, match=r"unknown config key\(s\) 'rat'.*allowed: inner, maybe, name, rate, tags"):
        from_dict(Outer, {"name": "x", "rat": 1})
    with pytest.raises(ConfigError, match="unknown config key"):
        from_dict(Outer, {"name": "x", "inner": {"b": 1}})


def test_wrong_types_and_missing_keys():
    with pytest.raises(ConfigError, match="expected str"):
        from_dict(Outer, {"name": 3})
    with pytest.raises(ConfigError, match="expected float"):
        from_dict(Outer, {"name": "x", "rate": True})
    with pytest.raises(ConfigError, match="missing"):
        from_dict(Outer, {})


def test_load_yaml(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("name: x\nrate: 0.1\n")
    assert load_yaml(p) == {"name": "x", "rate": 0.1}
    p.write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_yaml(p)
    p.write_text("a: [1,\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_yaml(p)
    with pytest.raises(ConfigError, match="cannot read"):
        load_yaml(tmp_path / "missing.yaml")


def test_registry_close_matches():
    r: Registry[int] = Registry("metric")
    r.add("synflow", 1)
    r.add("snip", 2)
    assert r.get("snip") == 2 and "synflow" in r and len(r) == 2
    with pytest.raises(UnknownNameError) as ei:
        r.get("synflw")
    assert "did you mean 'synflow'" in str(ei.value)
    assert isinstance(ei.value, KeyError) and isinstance(ei.value, ConfigError)
    with pytest.raises(ConfigError, match="registered twice"):
        r.add("snip", 3)


def test_section_given_a_scalar_is_a_config_error():
    with pytest.raises(ConfigError, match="inner must be a mapping of Inner settings"):
        from_dict(Outer, {"name": "x", "inner": 5})


def test_unknown_name_error_survives_pickling() -> None:
    # Ray hands an actor's exception back pickled: the typed error (and its close matches) must come back as itself
    import pickle

    from raynas.errors import UnknownNameError

    err = pickle.loads(pickle.dumps(UnknownNameError("metric", "fishr", ["fisher", "snip"])))
    assert type(err) is UnknownNameError and err.known == ["fisher", "snip"] and "did you mean 'fisher'" in str(err)
