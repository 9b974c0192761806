"""Issue 29 (1): a resource request no node can meet is refused at once (pure check, no Ray)."""

from __future__ import annotations

import pytest

from raynas.errors import ConfigError
from raynas.parallel.resources import ResourceRequestError, check_request, fits

FLAGS = {"GPU": "--gpus-per-query {}", "CPU": "--cpus-per-query {}"}


def test_fits_one_node_and_ignores_what_is_not_asked() -> None:
    assert fits({"CPU": 1, "GPU": 0}, {"CPU": 2.0})  # no GPU entry at all: 0 GPUs asked is fine
    assert fits({"CPU": 1, "GPU": 0.5}, {"CPU": 1.0, "GPU": 1.0})
    assert fits({"GPU": 0.1 + 0.2}, {"GPU": 0.3})  # float slack
    assert not fits({"CPU": 1, "GPU": 1}, {"CPU": 64.0})
    assert not fits({"CPU": 4}, {"CPU": 2.0, "GPU": 8.0})


def test_a_request_some_node_meets_passes() -> None:
    nodes = [{"CPU": 8.0, "GPU": 0.0}, {"CPU": 4.0, "GPU": 1.0}]
    assert check_request({"CPU": 1, "GPU": 1}, nodes, who="a query task", flags=FLAGS) is None


def test_a_gpu_request_on_a_machine_without_gpus_says_what_exists_and_what_to_pass() -> None:
    with pytest.raises(ResourceRequestError) as e:
        check_request({"CPU": 1, "GPU": 1}, [{"CPU": 2.0}], who="a query task", flags=FLAGS,
                      where="this machine's local Ray", alternative="--address of a Ray cluster with such nodes")
    msg = str(e.value)
    assert isinstance(e.value, ConfigError) and "\n" not in msg  # exit 2, one line
    assert msg == ("a query task asks 1 CPU, 1 GPU, more than any node of this machine's local Ray has (1 node: "
                   "2 CPU, 0 GPU); it could never start: pass --gpus-per-query 0, or --address of a Ray cluster "
                   "with such nodes")


def test_a_request_must_fit_one_node_not_the_cluster_total() -> None:
    nodes = [{"CPU": 4.0, "GPU": 1.0}, {"CPU": 4.0, "GPU": 1.0}]
    with pytest.raises(ResourceRequestError, match=r"asks 1 CPU, 2 GPU.*2 nodes: 4 CPU, 1 GPU; 4 CPU, 1 GPU.*"
                                                   r"pass --gpus-per-query 1 or less"):
        check_request({"CPU": 1, "GPU": 2}, nodes, who="a query task", flags=FLAGS)


def test_resources_present_but_never_together_name_both_settings() -> None:
    nodes = [{"CPU": 16.0, "GPU": 0.0}, {"CPU": 1.0, "GPU": 1.0}]
    with pytest.raises(ResourceRequestError, match="pass --cpus-per-query 16 or less and --gpus-per-query 1 or less"):
        check_request({"CPU": 4, "GPU": 1}, nodes, who="a query task", flags=FLAGS)


def test_an_unknown_setting_is_said_in_words() -> None:
    with pytest.raises(ResourceRequestError, match="pass a request of 0 GPU"):
        check_request({"GPU": 1}, [{"CPU": 1.0}], who="an ASHA trial", flags={})


def test_an_autoscaler_that_can_add_a_fitting_node_only_warns() -> None:
    note = check_request({"CPU": 1, "GPU": 1}, [{"CPU": 8.0, "GPU": 0.0}], who="a scoring actor", flags=FLAGS,
                         addable=[{"CPU": 8.0, "GPU": 1.0}])
    assert note == ("no node of the Ray cluster can run a scoring actor (1 CPU, 1 GPU) now; waiting for its "
                    "autoscaler to add one")


def test_an_autoscaler_whose_node_types_do_not_fit_is_named() -> None:
    with pytest.raises(ResourceRequestError, match=r"its autoscaler can add 16 CPU, 0 GPU\)"):
        check_request({"CPU": 1, "GPU": 1}, [{"CPU": 8.0}], who="a scoring actor", flags=FLAGS,
                      addable=[{"CPU": 16.0}])
    with pytest.raises(ResourceRequestError, match="its autoscaler can add none"):
        check_request({"CPU": 1, "GPU": 1}, [{"CPU": 8.0}], who="a scoring actor", flags=FLAGS, addable=[])


def test_no_node_at_all() -> None:
    with pytest.raises(ResourceRequestError, match=r"\(no node\)"):
        check_request({"CPU": 1}, [], who="a scoring actor", flags=FLAGS)


def test_session_judges_a_local_ray_without_starting_it(monkeypatch: pytest.MonkeyPatch) -> None:
    import ray

    from raynas.parallel import session

    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", lambda **kw: pytest.fail("the check must not start Ray"))
    monkeypatch.setattr(session, "local_resources", lambda *a: {"CPU": 2.0, "GPU": 0.0})
    with pytest.raises(ResourceRequestError, match="this machine's local Ray"):
        session.require({"CPU": 1, "GPU": 1}, who="a query task", flags=FLAGS)
    assert session.require({"CPU": 1, "GPU": 0}, who="a query task", flags=FLAGS) is True
    # a named cluster is checked once attached
    assert session.require({"CPU": 1, "GPU": 1}, who="a query task", flags=FLAGS, address="auto") is False
