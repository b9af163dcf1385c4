"""How the consumers read what the monitor writes -- written from the contract
(``shared/contracts/consumers.md`` §2-§3, ``consumers-detail.md`` §1.3, §2.1, §4), never from our
renderer, so tests can check ``VM.other_config`` the way XenCenter and Xen Orchestra see it.

XenCenter (``XenModel/DockerContainers.cs``, ``DockerContainer.cs``, ``VM_Docker_Info.cs``,
``DockerDetailsPage.cs``) uses .NET's ``XmlDocument``; the DOM of ``xml.dom.minidom`` behaves the
same for what it does: ``GetElementsByTagName`` = every descendant of that name, a direct child
found by exact (case-sensitive) name, ``InnerText`` = all descendant text, ``InnerXml`` = the
child markup. Xen Orchestra (``xo-server/src/xapi-object-to-xo.mjs``) uses fast-xml-parser with
``attributeNamePrefix: ''``, ``ignoreAttributes: false``, ``parseTagValue: false``, default
``trimValues: true``, no numeric-entity decoding; ``xo_parse`` mimics that.

Every function raises ``xml.parsers.expat.ExpatError`` on XML that is not well-formed, as
XenCenter's ``LoadXml`` throws (uncaught) and XO's conversion breaks.
"""

import re
import xml.dom.minidom
from typing import Any, Dict, List, NamedTuple, Optional, Tuple

SPECIAL = "SPECIAL_XS_ENCODED_ELEMENT"

# XenCenter's VM_Docker_Info properties, read as direct children of <docker_info>.
XENCENTER_INFO_FIELDS = ("NGoroutines", "DockerRootDir", "DriverStatus", "OperatingSystem",
                         "Containers", "MemTotal", "Driver", "IndexServerAddress", "InitPath",
                         "ExecutionDriver", "Name", "NCPU", "Debug", "ID", "IPv4Forwarding",
                         "KernelVersion", "NFd", "InitSha1", "Labels", "MemoryLimit", "SwapLimit",
                         "Images", "NEventsListener")
# What XenCenter's General tab shows of docker_version.
XENCENTER_VERSION_FIELDS = ("Version", "ApiVersion", "GitCommit", "GoVersion", "Os", "Arch",
                            "KernelVersion")


# -- .NET DOM equivalents --------------------------------------------------------------------

def load_xml(text: str) -> xml.dom.minidom.Document:
    """``XmlDocument.LoadXml``."""
    return xml.dom.minidom.parseString(text.encode("utf-8"))


def inner_text(node) -> str:
    """``XmlNode.InnerText``: the concatenated text of every descendant text node."""
    if node.nodeType in (node.TEXT_NODE, node.CDATA_SECTION_NODE):
        return node.data
    return "".join(inner_text(child) for child in node.childNodes)


def inner_xml(node) -> str:
    """``XmlNode.InnerXml``: the markup of the children."""
    return "".join(child.toxml() for child in node.childNodes)


def direct_child(node, name: str):
    """``node.ChildNodes.Cast<XmlNode>().FirstOrDefault(n => n.Name == name)``."""
    for child in node.childNodes:
        if child.nodeType == child.ELEMENT_NODE and child.tagName == name:
            return child
    return None


def child_text(node, name: str) -> str:
    """The InnerText of the first direct child ``name``, ``""`` when there is none."""
    child = direct_child(node, name)
    return "" if child is None else inner_text(child)


# -- XenCenter: docker_ps ----------------------------------------------------------------------

class Port(NamedTuple):
    ip: str
    public_port: str
    private_port: str
    type: str


class Container(NamedTuple):
    id: str
    name: str
    status: str
    container: str
    created: str
    image: str
    command: str
    ports: List[Port]
    power_state: str  # "Paused", "Running" or "Halted", derived as DockerContainer.cs does


def xencenter_power_state(status: str) -> str:
    """``status.Contains("Paused")`` -> Paused; ``StartsWith("Up")`` -> Running; else Halted."""
    if "Paused" in status:
        return "Paused"
    if status.startswith("Up"):
        return "Running"
    return "Halted"


def xencenter_ports(ports_inner_xml: str) -> List[Port]:
    """``DockerContainer.PortList``: wrap the InnerXml of <ports> in <items>, then every
    descendant ``item``'s children IP/PublicPort/PrivatePort/Type (parse errors swallowed)."""
    try:
        doc = load_xml("<items>%s</items>" % ports_inner_xml)
    except Exception:
        return []
    result = []
    for item in doc.getElementsByTagName("item"):
        result.append(Port(child_text(item, "IP"), child_text(item, "PublicPort"),
                           child_text(item, "PrivatePort"), child_text(item, "Type")))
    return result


def xencenter_containers(docker_ps: Optional[str]) -> List[Container]:
    """``DockerContainers.GetContainersFromOtherConfig``: absent key -> no containers."""
    if docker_ps is None:
        return []
    doc = load_xml(docker_ps)
    containers = []
    for entry in doc.getElementsByTagName("entry"):
        status = child_text(entry, "status")
        ports_node = direct_child(entry, "ports")
        ports = xencenter_ports(inner_xml(ports_node)) if ports_node is not None else []
        containers.append(Container(
            id=child_text(entry, "id"), name=child_text(entry, "names"), status=status,
            container=child_text(entry, "container"), created=child_text(entry, "created"),
            image=child_text(entry, "image"), command=child_text(entry, "command"),
            ports=ports, power_state=xencenter_power_state(status)))
    return containers


def entry_children(docker_ps: str) -> List[Dict[str, str]]:
    """Every direct child of every entry, name -> InnerText (the extra children consumers may
    read, such as ``started_at``)."""
    doc = load_xml(docker_ps)
    result = []
    for entry in doc.getElementsByTagName("entry"):
        fields = {}
        for child in entry.childNodes:
            if child.nodeType == child.ELEMENT_NODE and child.tagName not in fields:
                fields[child.tagName] = inner_text(child)
        result.append(fields)
    return result


# -- XenCenter: docker_info, docker_version, get_top, details tree -------------------------------

def _direct_fields(document: str, root: str, names: Optional[Tuple[str, ...]]) -> Dict[str, str]:
    doc = load_xml(document)
    fields = {}  # type: Dict[str, str]
    # As VM_Docker_Info: every element named root (descendant search), later ones overwrite;
    # within one, FirstOrDefault: the first direct child of a name wins.
    for node in doc.getElementsByTagName(root):
        seen = set()
        for child in node.childNodes:
            if child.nodeType != child.ELEMENT_NODE or child.tagName in seen:
                continue
            seen.add(child.tagName)
            if names is None or child.tagName in names:
                fields[child.tagName] = inner_text(child)
    return fields


def xencenter_docker_info(docker_info: str, names: Optional[Tuple[str, ...]] = XENCENTER_INFO_FIELDS
                          ) -> Dict[str, str]:
    """``VM_Docker_Info``: direct children of <docker_info> by Docker's field names (all direct
    children when ``names`` is None)."""
    return _direct_fields(docker_info, "docker_info", names)


def xencenter_docker_version(docker_version: str,
                             names: Optional[Tuple[str, ...]] = XENCENTER_VERSION_FIELDS) -> Dict[str, str]:
    return _direct_fields(docker_version, "docker_version", names)


def xencenter_top(docker_top: str) -> List[Dict[str, str]]:
    """The Processes tab: every ``Process`` element, its direct children PID, CMD, TIME (and the
    others) by name. Encoded titles are reported under their ``name`` attribute."""
    doc = load_xml(docker_top)
    rows = []
    for process in doc.getElementsByTagName("Process"):
        row = {}
        for child in process.childNodes:
            if child.nodeType == child.ELEMENT_NODE:
                row.setdefault(_label(child), inner_text(child))
        rows.append(row)
    return rows


def _label(element) -> str:
    if element.tagName == SPECIAL and element.hasAttribute("name"):
        return element.getAttribute("name")
    return element.tagName


def details_tree(document: str) -> Tuple[str, list]:
    """``DockerDetailsPage.CreateTree``: (label, children) per element, where the label is the
    ``name`` attribute of a SPECIAL_XS_ENCODED_ELEMENT and the tag name otherwise; a text node is
    the string itself. Whitespace-only text between elements never occurs in our documents."""
    def build(node):
        if node.nodeType in (node.TEXT_NODE, node.CDATA_SECTION_NODE):
            return node.data
        return (_label(node), [build(child) for child in node.childNodes
                               if child.nodeType in (child.ELEMENT_NODE, child.TEXT_NODE,
                                                     child.CDATA_SECTION_NODE)])
    return build(load_xml(document).documentElement)


# -- Xen Orchestra ----------------------------------------------------------------------------

_NUMERIC_REF = re.compile(r"&#")


def xo_parse(document: str) -> Any:
    """fast-xml-parser with XO's options: ``{root: value}``. An element with neither attributes
    nor child elements is its trimmed text (``''`` when empty); otherwise an object of its
    attributes (unprefixed), its children (one -> value, several of one name -> list) and
    ``#text`` when it has non-blank text. The declaration is ignored."""
    doc = load_xml(document)
    if _NUMERIC_REF.search(document):
        # fast-xml-parser leaves numeric references undecoded by default: what XO shows would
        # differ from what a DOM parser shows. Our renderer must never need them.
        raise ValueError("numeric character reference in a document XO reads")
    root = doc.documentElement
    return {root.tagName: _xo_value(root)}


def _xo_value(element) -> Any:
    children = [c for c in element.childNodes if c.nodeType == c.ELEMENT_NODE]
    text = "".join(c.data for c in element.childNodes
                   if c.nodeType in (c.TEXT_NODE, c.CDATA_SECTION_NODE)).strip()
    attributes = [(a.name, a.value) for a in element.attributes.values()] if element.attributes else []
    if not children and not attributes:
        return text
    value = dict(attributes)  # type: Dict[str, Any]
    groups = []  # type: List[Tuple[str, List[Any]]]
    for child in children:
        for name, values in groups:
            if name == child.tagName:
                values.append(_xo_value(child))
                break
        else:
            groups.append((child.tagName, [_xo_value(child)]))
    for name, values in groups:
        value[name] = values[0] if len(values) == 1 else values
    if text:
        value["#text"] = text
    return value


def ensure_array(value: Any) -> List[Any]:
    """XO's ``_ensureArray``: undefined -> [], array -> itself, anything else -> [it]."""
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def xo_vm_docker(other_config: Dict[str, str]) -> Optional[Dict[str, Any]]:
    """``xapi-object-to-xo.mjs``: the VM's ``docker`` property. ``containers`` is the list of
    ``{'entry': {...}}`` objects XO's container tab reads."""
    monitor = other_config.get("xscontainer-monitor")
    if not monitor:
        return None
    if monitor == "False":
        return {"enabled": False}

    def parsed(key: str) -> Any:
        text = other_config.get(key)
        if text is None:
            return None
        return xo_parse(text)

    ps = parsed("docker_ps")
    info = parsed("docker_info")
    version = parsed("docker_version")
    docker_ps = ps.get("docker_ps") if isinstance(ps, dict) else None
    return {
        "enabled": True,
        "info": info.get("docker_info") if isinstance(info, dict) else None,
        "containers": ensure_array(docker_ps.get("item") if isinstance(docker_ps, dict) else None),
        "process": docker_ps,
        "version": version.get("docker_version") if isinstance(version, dict) else None,
    }


def xo_container_actions(status: str) -> List[str]:
    """The action buttons xo-web shows for an exact status string (consumers-detail §2.2)."""
    if status == "Up":
        return ["stop", "restart", "pause"]
    if status == "Exited (137)":
        return ["start"]
    if status == "Up (Paused)":
        return ["unpause"]
    return []
