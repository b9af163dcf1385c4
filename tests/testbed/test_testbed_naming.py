"""Pure parts of the testbed: names, subnets, rendered configuration."""

from xscontainer.testbed import config, naming


def test_names_fit_linux_interface_limits_and_differ_per_directory():
    first = naming.testbed_hash("/tmp/a")
    second = naming.testbed_hash("/tmp/b")
    assert first != second and first == naming.testbed_hash("/tmp/a")
    for index in (1, 9, naming.MAX_VMS):
        for name in (naming.bridge_name(first), naming.host_veth_name(first, index),
                     naming.peer_veth_name(first, index)):
            assert len(name) <= naming.IFNAMSIZ
    assert naming.host_veth_name(first, 1) != naming.host_veth_name(second, 1)
    assert naming.netns_name(first, 2) == "xstb-%s-vm2" % first


def test_used_octets_come_from_addresses_and_routes_in_the_link_local_range():
    used = naming.used_link_local_octets(
        ["127.0.0.1/8", "169.254.7.1/24", "169.254.9.0/24", "169.254.0.0/16", "10.0.0.0/8",
         "169.254.20.0/23", "default", "fe80::1/64", "169.254.40.5"])
    assert used == {7, 9, 20, 21, 40}


def test_subnet_choice_is_stable_and_skips_used_and_reserved_octets():
    tb_hash = "00000000"  # hash 0 -> starts at octet 1
    assert naming.choose_subnet_octet(tb_hash, set()) == 1
    assert naming.choose_subnet_octet(tb_hash, {1, 2}) == 3
    start = naming.choose_subnet_octet("000000a8", set())  # 168 % 254 + 1 = 169, reserved
    assert start == 170
    assert naming.choose_subnet_octet(tb_hash, set(range(1, 255))) is None


def test_addresses():
    assert naming.root_address(5) == "169.254.5.1"
    assert naming.vm_address(5, 1) == "169.254.5.2"
    assert naming.vm_address(5, 3) == "169.254.5.4"


def test_sample_containers_keep_the_base_names():
    assert naming.sample_containers(4) == ["web", "burner", "sleeper", "exited"]
    assert naming.sample_containers(2) == ["web", "burner"]
    assert naming.sample_containers(6) == ["web", "burner", "sleeper", "exited", "extra1", "extra2"]


def test_sshd_config_listens_on_the_vm_address_and_switches_streamlocal_forwarding():
    text = config.sshd_config("169.254.5.2", "/d/key", allow_streamlocal=False)
    lines = text.splitlines()
    assert "ListenAddress 169.254.5.2:22" in lines
    assert "AllowStreamLocalForwarding no" in lines
    assert "UsePAM no" in lines and "HostKey /d/key" in lines
    assert "AllowStreamLocalForwarding yes" in config.sshd_config("a", "k").splitlines()


def test_dockerd_arguments_use_the_standard_socket_and_the_vm_data_root():
    args = config.dockerd_args("/d/vms/vm1/docker", "xstb-x-vm1")
    assert args[args.index("-H") + 1] == "unix:///var/run/docker.sock"
    assert args[args.index("--data-root") + 1] == "/d/vms/vm1/docker"
    assert args[args.index("--group") + 1] == "docker"
    assert "--live-restore" in args and "--iptables=false" in args


def test_sample_run_arguments():
    web = config.sample_run_args("web", "169.254.5.2")
    assert "169.254.5.2:8080:80" in web and web[-3:] == ["-p", "80", "-h", "/www"][-3:]
    exited = config.sample_run_args("exited", "169.254.5.2")
    assert "-d" not in exited and exited[-1] == "exit 3"
    assert config.sample_description("sleeper", "x")["state"] == "paused"


def test_xe_script_binds_the_simulator_socket():
    text = config.xe_script("/v/bin/python", "/d/xapi/xapi")
    assert "XSCONTAINER_XAPI_SOCKET=/d/xapi/xapi" in text
    assert "exec /v/bin/python -m xscontainer.sim.xe \"$@\"" in text
