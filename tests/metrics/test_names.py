"""Data-source names for containers (pure)."""

import pytest

from xscontainer.metrics.names import METRICS, ds_name, encode_container_name, parse_ds_name


def test_docker_names_pass_unchanged():
    assert ds_name("/burner", "cpu") == "container_burner_cpu"
    assert ds_name("my_app.web-1", "memory_limit") == "container_my_app.web-1_memory_limit"


def test_other_names_become_a_stable_digest_in_the_safe_alphabet():
    odd = encode_container_name("a:b<c>")
    assert odd == encode_container_name("/a:b<c>")
    assert odd.startswith("_") and len(odd) == 17 and all(c in "_0123456789abcdef" for c in odd)
    assert encode_container_name("x" * 65).startswith("_")
    assert encode_container_name("a:b") != encode_container_name("a;b")


@pytest.mark.parametrize("container", ["web", "a_memory", "b_memory_limit", "x_cpu", "net_rx"])
def test_names_parse_back_for_every_metric(container):
    for metric in METRICS:
        assert parse_ds_name(ds_name(container, metric)) == (container, metric)


def test_foreign_names_are_not_ours():
    assert parse_ds_name("cpu0") is None
    assert parse_ds_name("container__cpu") is None
    assert parse_ds_name("container_web_disk") is None
    with pytest.raises(ValueError):
        ds_name("web", "disk")
