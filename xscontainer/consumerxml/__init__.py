"""The consumer XML: Docker engine records -> the exact XML strings XenCenter and Xen Orchestra
read. Used by the monitor (``VM.other_config`` values) and the plugin (function results) alike.

Owns the values of ``VM.other_config`` keys ``docker_ps``, ``docker_info``, ``docker_version``
and the XML of the plugin results ``get_top`` (``docker_top``), ``get_inspect``
(``docker_inspect``) and ``get_stats`` (``docker_stats``); the contract is
``shared/contracts/consumers.md`` §2-§4. ``encoding`` is the generic rule every document follows,
``ps`` the ``docker_ps`` document, ``documents`` the others (all pure); ``state`` reads an engine
and renders the other_config values.
"""

from xscontainer.consumerxml.documents import (render_docker_info, render_docker_inspect, render_docker_top,
                                               render_docker_version)
from xscontainer.consumerxml.encoding import JS_OBJECT_MEMBERS, fit_document, render_document
from xscontainer.consumerxml.ps import (PsDocument, container_name, fit_docker_ps, normalise_status,
                                        normalise_timestamp, render_docker_ps, started_at_of)

__all__ = ["JS_OBJECT_MEMBERS", "PsDocument", "container_name", "fit_docker_ps", "fit_document", "normalise_status",
           "normalise_timestamp", "render_docker_info", "render_docker_inspect", "render_docker_ps",
           "render_docker_top", "render_docker_version", "render_document", "started_at_of"]
