"""A simulated xapi (XenServer/XCP-ng toolstack) that speaks the real XenAPI wire protocol.

It is the embedded default for the demo and the test bed every other part is verified
against: clients use the official ``XenAPI`` package over TCP (``xapi_url``) or over the Unix
socket (``unix_socket``), exactly as against a real host. Start it with
``xscontainer-xapi-sim --dir DIR [--hosts H] [--plugins PLUGINDIR] [--port P]``; it prints one
JSON line when ready (``xapi_url``, ``unix_socket``, ``username``, ``password``,
``pool_uuid``, ``hosts`` = [{uuid, name_label, inventory, dom0_root}], plus ``dir``, ``log``,
``plugins_dir``, ``pid``).

Documented deviations from a real xapi (everything else follows contract §1-§13):

* Plugin interpreter. xapi runs ``/etc/xapi.d/plugins/<name>`` with the environment exactly
  ``PATH=/sbin:/usr/sbin:/bin:/usr/bin`` (``forkhelpers.ml`` ``default_path_env_pair``), and so
  does the simulator: nothing else, nothing of ours on ``PATH``, no locale (Python 3.6 is then in
  the ASCII C locale, as in dom0). (xapi adds tracing variables when its tracing is enabled;
  the simulator never does.) The one deviation: a plugin whose ``#!`` line names Python
  runs on the simulator's own interpreter (``[sys.executable, plugin, xml]``), because dom0's is
  3.6 and the suite runs on 3.6 too; other plugins are executed as they are. As no
  ``PYTHONPATH`` is passed, that interpreter must import ``xscontainer`` by itself (installed,
  or ``pip install -e .`` as ``dev.sh`` does).
* Plugins run from a dom0 tree per host (``xscontainer.sim.dom0``): the program path is
  ``<root>/etc/xapi.d/plugins/<name>`` (a symlink to ``PLUGINDIR/<name>``, the plugins present
  at start), next to ``<root>/etc/xensource-inventory`` (the host's inventory),
  ``<root>/var/lib/xcp/xapi`` (the simulator's Unix socket) and ``<root>/var/log`` (DIR/hosts/
  <uuid>/log). A plugin finds them from its own path, as on a real host where ``<root>`` is ``/``;
  this is how "the call runs on the named host" is simulated. ``<root>`` is ``DIR/dom0/<uuid>``,
  or under a short /tmp directory when that path would be too long for a Unix socket; the ready
  line gives it as ``hosts[].dom0_root``. Deleting ``<root>/etc/xapi.d/plugins/<name>`` removes
  a plugin from that host only.
* Class ``sim`` (not in xapi; needs a valid session): ``sim.set_guest_networks(vm, networks)``
  creates or updates the VM's VM_guest_metrics with that ``networks`` map (keys like
  ``0/ip``, ``0/ipv4/0``), as a guest agent would; ``sim.clear_guest_metrics(vm)`` drops it;
  ``sim.blocked_event_calls()`` is the number of ``event.from`` calls waiting for a change (so a
  test can act once a call waits, instead of sleeping).
* ``VM.create`` is lenient: only ``name_label`` is required; every other field is defaulted
  (xapi requires about 40 constructor fields). VBD/VDI/VIF/secret constructors are strict.
* Only a subset of xapi's custom messages exists (the ones xscontainer and its testbed use:
  VM start/start_on/clean_shutdown/hard_shutdown/pause/unpause/pool_migrate/destroy,
  VBD create/destroy/plug/unplug/insert/eject, VDI create/destroy, VIF create/destroy,
  secret create/introduce/destroy, message create/destroy/get_since, task create/destroy,
  host.call_plugin, event.from/inject/get_current_id); the generic accessors exist for every
  field of Appendix A. Legacy ``event.register/next`` and the pool heartbeat are not
  simulated. VMs run nothing: starting one just changes its state.
* VDI transfer supports ``format=raw`` only (``vhd``, ``tar``, ``qcow2`` get 404); the 302
  redirect to another host never happens (every host sees the shared SR). A body larger
  than the VDI's ``virtual_size`` fails the import task with
  ``VDI_IO_ERROR [write beyond the end of the VDI ...]``.
* Malformed XML-RPC bodies get HTTP 400, bodies over 64 MiB get HTTP 413, and bodies without
  ``Content-Length`` get 411 (xapi closes or answers 500); never a traceback.
* Passwords: TCP logins need ``root`` and the generated password (saved in ``DIR/password``,
  reused on restart); any credentials are accepted on the Unix socket, as in xapi.
* Persistence: the database is ``DIR/db.json`` (written atomically shortly after each change
  and on exit). As in xapi, sessions and tasks are not persisted (datamodel
  ``PersistNothing``): after a restart clients get ``SESSION_INVALID`` and the official
  client logs in again by itself. Messages are kept in the same file.
* Type errors in parameters raise ``FIELD_TYPE_ERROR [param]``; an unknown enum value raises
  ``INVALID_VALUE [param, value]``.
"""
