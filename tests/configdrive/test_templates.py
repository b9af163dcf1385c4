"""The guest templates shipped under templates/, in XenServer's guest-templates JSON format."""

import json
import os
import re
import uuid

import pytest

TEMPLATES = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                         "templates")
KEYS = {"uuid", "reference_label", "name_label", "derived_from", "min_memory", "max_memory", "disks"}


def _load_all():
    result = {}
    for name in sorted(os.listdir(TEMPLATES)):
        if name.endswith(".json"):
            with open(os.path.join(TEMPLATES, name)) as handle:
                result[name] = json.load(handle)
    return result


def test_flatcar_and_coreos_templates_exist():
    assert {"flatcar.json", "coreos.json"} <= set(_load_all())


@pytest.mark.parametrize("name", sorted(_load_all()))
def test_template_format(name):
    template = _load_all()[name]
    assert set(template) <= KEYS and {"uuid", "reference_label", "name_label", "derived_from"} <= set(template)
    assert str(uuid.UUID(template["uuid"])) == template["uuid"]
    assert template["reference_label"] == name[:-len(".json")]
    assert template["derived_from"] == "base-hvmlinux.json"
    for field in ("min_memory", "max_memory"):
        assert re.match(r"^\d+[MG]$", template[field])
    assert all(re.match(r"^\d+G$", disk["size"]) for disk in template["disks"])
    # XenCenter's wizard offers the cloud-config page for default templates named "*coreos*".
    assert "coreos" in template["name_label"].lower()


def test_uuids_distinct_and_coreos_keeps_the_original_identity():
    templates = _load_all()
    assert len({t["uuid"] for t in templates.values()}) == len(templates)
    assert templates["coreos.json"]["uuid"] == "094706dd-5d22-4830-99b7-c710769c9dcc"
    assert templates["coreos.json"]["name_label"] == "CoreOS"  # Xen Orchestra matches it exactly
