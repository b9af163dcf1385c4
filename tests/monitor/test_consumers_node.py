"""Our documents through Xen Orchestra's real parser: fast-xml-parser 4.x with the options of XO's
``parseXml`` (``packages/xo-server/src/utils.mjs``, see shared/contracts/consumers.md §8).

The package is installed with npm into a temporary directory, never into the repository; the
test is skipped when node or npm is missing or the registry cannot be reached.
"""

import json
import shutil
import subprocess

import pytest

from xscontainer import consumerxml
from monitor.test_budget import compose_container, rendered, states

PARSE_ALL = r"""
const { XMLParser } = require('fast-xml-parser');
// XO's parseXml: on error it logs and returns '', which breaks the whole VM object.
const parser = new XMLParser({attributeNamePrefix: '', ignoreAttributes: false, ignoreDeclaration: true,
                              parseTagValue: false, parseAttributeValue: false});
let input = '';
process.stdin.on('data', (d) => { input += d; });
process.stdin.on('end', () => {
  const out = JSON.parse(input).map((xml) => {
    try { return {value: parser.parse(xml)}; } catch (e) { return {error: String(e.message)}; }
  });
  process.stdout.write(JSON.stringify(out));
});
"""


@pytest.fixture(scope="module")
def xo_parse_all(tmp_path_factory):
    node, npm = shutil.which("node"), shutil.which("npm")
    if not node or not npm:
        pytest.skip("node and npm are needed to run Xen Orchestra's parser")
    directory = tmp_path_factory.mktemp("xo-parser")
    try:
        subprocess.run([npm, "install", "--no-audit", "--no-fund", "--silent", "--prefix", str(directory),
                        "fast-xml-parser@4"], check=True, timeout=300, stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
        pytest.skip("fast-xml-parser could not be installed: %s" % (exc,))
    script = directory / "parse.js"
    script.write_text(PARSE_ALL)

    def parse_all(documents):
        done = subprocess.run([node, str(script)], input=json.dumps(documents).encode("utf-8"),
                              stdout=subprocess.PIPE, check=True, timeout=120, cwd=str(directory))
        return json.loads(done.stdout.decode("utf-8"))
    return parse_all


def test_the_parser_is_the_one_that_fails_on_a_prototype_name(xo_parse_all):
    # The harness can fail: a raw <hasOwnProperty> followed by a repeated name makes it throw.
    raw = ('<?xml version="1.0" ?><docker_ps><item><entry><labels><hasOwnProperty>x</hasOwnProperty>'
           '<SPECIAL_XS_ENCODED_ELEMENT name="a:b">1</SPECIAL_XS_ENCODED_ELEMENT>'
           '<SPECIAL_XS_ENCODED_ELEMENT name="c:d">2</SPECIAL_XS_ENCODED_ELEMENT></labels></entry></item></docker_ps>')
    assert "error" in xo_parse_all([raw])[0]


def test_every_prototype_name_as_label_info_key_and_inspect_key(xo_parse_all):
    documents = []
    for name in sorted(consumerxml.JS_OBJECT_MEMBERS):
        labels = {name: "x", "a:b": "1", "c:d": "2", "e:f": "3"}
        record = dict(compose_container(1, "running"), Labels=labels)
        documents.append(consumerxml.render_docker_ps([record, dict(compose_container(2, "exited"), Labels=labels)]))
        documents.append(consumerxml.render_docker_info({name: "1", "Driver": "overlay2", "x:y": [1, 2], "z:w": 3}))
        documents.append(consumerxml.render_docker_inspect({"Config": {"Labels": labels}, name: [1, 2],
                                                            "Env": ["a", "b"]}))
    for document, result in zip(documents, xo_parse_all(documents)):
        assert "error" not in result, (result, document[:300])
    parsed = xo_parse_all(documents[:1])[0]["value"]["docker_ps"]
    assert [item["entry"]["names"] for item in parsed["item"]] == ["shop0-svc2-1", "shop0-svc1-1"]


def test_a_thousand_containers_cut_to_fit_read_in_xen_orchestra(xo_parse_all):
    containers = [compose_container(i, s) for i, s in enumerate(states(1000))]
    docker_ps = rendered(containers)["docker_ps"]
    result = xo_parse_all([docker_ps])[0]
    assert "error" not in result
    root = result["value"]["docker_ps"]
    items = root["item"]
    assert root["total"] == "1000" and int(root["listed"]) == len(items)
    assert all(item["entry"]["status"] in ("Up", "Up (Paused)") for item in items)
    assert all(set(("names", "command", "created", "status", "container")) <= set(item["entry"]) for item in items)
