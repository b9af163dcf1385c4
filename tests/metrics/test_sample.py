"""From engine stats documents to data sources (pure, literal documents)."""

import math

from xscontainer.engine.operations import stats_summary
from xscontainer.metrics.sample import Sample, Summary, summarize, vm_datasources

VM = "0b1d2c3e-0000-4000-8000-000000000001"


def doc(total, system, precpu=None, usage=100 << 20, cache=0):
    result = {
        "name": "/burner", "id": "c" * 64,
        "cpu_stats": {"cpu_usage": {"total_usage": total}, "system_cpu_usage": system, "online_cpus": 2},
        "precpu_stats": precpu or {},
        "memory_stats": {"usage": usage, "limit": 512 << 20, "stats": {"cache": cache}},
        "networks": {"eth0": {"rx_bytes": 1000, "tx_bytes": 2000}, "eth1": {"rx_bytes": 5, "tx_bytes": 6}},
        "blkio_stats": {"io_service_bytes_recursive": [{"op": "Read", "value": 4096}, {"op": "Write", "value": 8192}]},
    }
    return result


def test_cpu_from_our_previous_sample_as_docker_stats_computes_it():
    previous = {"cpu_usage": {"total_usage": 1000}, "system_cpu_usage": 100000, "online_cpus": 2}
    summary = summarize(Sample("/burner", doc(11000, 200000)), previous)
    # docker stats: cpu_delta / system_delta * online_cpus * 100 = 10000/100000*2*100
    assert summary.cpu_percent == 20.0
    assert summary == Summary("/burner", 20.0, 100 << 20, 512 << 20, 1005, 2006, 4096, 8192)


def test_same_figures_as_the_get_stats_operation():
    engine = doc(11000, 200000, precpu={"cpu_usage": {"total_usage": 1000}, "system_cpu_usage": 100000})
    summary = summarize(Sample("/burner", engine), None)
    expected = stats_summary(engine)
    assert (summary.cpu_percent, summary.memory, summary.net_rx, summary.blk_write) == (
        expected["cpu_percent"], expected["memory_usage"], expected["network_rx_bytes"], expected["block_write_bytes"])


def test_no_earlier_sample_means_unknown_cpu_not_a_lifetime_average():
    summary = summarize(Sample("/burner", doc(11000, 200000)), None)
    assert math.isnan(summary.cpu_percent)
    assert summary.memory == 100 << 20


def test_implausible_documents_are_left_out():
    assert summarize(Sample("x", "not a dict"), None) is None
    assert summarize(Sample("x", doc(1, 2, usage="lots")), None) is None
    assert summarize(Sample("x", doc(1, 2, usage=1 << 64)), None) is None
    assert summarize(Sample("x", doc(1, 2, usage=1.5)), None) is None


def test_vm_datasources_owner_names_types_and_duplicates():
    summary = Summary("/burner", 20.0, 1, 2, 3, 4, 5, 6)
    sources = vm_datasources(VM, [summary, summary._replace(name="burner")])
    assert [s.name for s in sources] == ["container_burner_" + m for m in
                                         ("cpu", "memory", "memory_limit", "net_rx", "net_tx", "blk_read", "blk_write")]
    assert {s.owner for s in sources} == {"vm " + VM}
    assert [(s.ds_type, s.value_type, s.units) for s in sources[:4]] == [
        ("gauge", "float", "%"), ("gauge", "int64", "B"), ("gauge", "int64", "B"), ("derive", "int64", "B/s")]
    assert [s.value for s in sources] == [20.0, 1, 2, 3, 4, 5, 6]
