"""``stats --recorded`` (pure): rrdd's per-container data sources back to one row per container."""

from xscontainer.cli import recorded

NAN = float("nan")


def test_sources_group_into_containers_and_gone_ones_are_left_out():
    values = {"container_burner_cpu": 10.5, "container_burner_memory": 2048.0, "container_burner_memory_limit": NAN,
              "container_burner_net_rx": 100.0, "container_old_cpu": NAN, "container_old_memory": NAN,
              "memory": 1073741824.0, "cpu0": 0.5}
    rows = recorded.records(values)
    assert rows == [{"name": "burner", "cpu_percent": 10.5, "memory_usage": 2048.0, "memory_limit": None,
                     "network_rx_per_s": 100.0, "network_tx_per_s": None, "block_read_per_s": None,
                     "block_write_per_s": None}]
    assert recorded.wanted("container_burner_cpu") and not recorded.wanted("cpu0")


def test_table():
    rows = recorded.records({"container_web_cpu": 1.25, "container_web_memory": 1536.0,
                             "container_web_memory_limit": 1048576.0, "container_web_net_rx": 10.0,
                             "container_web_net_tx": 20.0, "container_web_blk_read": 0.0,
                             "container_web_blk_write": NAN})
    lines = recorded.table(rows, None).splitlines()
    assert lines[0].split() == ["NAME", "CPU", "%", "MEM", "USAGE", "/", "LIMIT", "NET", "RX/TX", "PER", "S",
                                "BLOCK", "R/W", "PER", "S"]
    assert lines[1].split() == ["web", "1.25%", "1.5KiB", "/", "1.0MiB", "10B", "/", "20B", "0B", "/", "-"]
