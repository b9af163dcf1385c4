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
  ``sim.set_host_state(host, state)`` with ``live``, ``offline`` (as if its
  ``host_metrics.live`` were false: ``host.call_plugin`` on it gives ``HOST_OFFLINE [host]``)
  or ``unreachable`` (the coordinator cannot connect: ``CANNOT_CONTACT_HOST [host]``); as in
  xapi's ``message_forwarding.ml`` the coordinator itself is always live. ``host_metrics`` is
  not simulated. ``sim.remove_plugin(host, name)`` / ``sim.restore_plugin(host, name)`` make one
  host lack a plugin (``XENAPI_MISSING_PLUGIN [name]``), as a host not upgraded yet.
  ``sim.add_user(name, password, role)`` (role ``pool-admin`` or ``read-only``) stands in for an
  external-authentication subject: it logs in over TCP; a ``read-only`` session may call
  ``get_*``, ``event.*`` (not ``inject``) and ``session.*`` and gets
  ``RBAC_PERMISSION_DENIED [permission, "No permission in user session. (Roles with this
  permission: ...)"]`` for anything else (the role list is xapi's for ``host.call_plugin`` and
  VM writes, approximate elsewhere). Host states and users are kept in memory only.
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
* XML-RPC bodies are refused as xapi refuses them (``api_server.ml``, ``Http_svr``): over
  300 KiB (``Constants.http_limit_max_rpc_size``; the body is not read, so the client may see
  the reset rather than the answer), without ``Content-Length``, or not an XML-RPC call, the
  answer is xapi's HTTP 500 page with ``Connection: close`` and the connection is closed.
  Not a deviation; listed because the simulator accepted 64 MiB before.
* ``event.from`` batches as xapi does (``Throttle.Batching``, defaults of v26.10.0): 50 ms
  before a call first looks at the database (none for a subscription to tasks alone), then from
  6.25 ms doubling up to 50 ms after each wake-up. Not a deviation; listed because the
  simulator answered at once before, sooner than xapi and in more, smaller batches.
* Passwords: TCP logins need ``root`` and the generated password (saved in ``DIR/password``,
  reused on restart), or a user added with ``sim.add_user``; any credentials are accepted on
  the Unix socket (a root session), as in xapi.
* Persistence: the database is ``DIR/db.json`` (written atomically within 2 s of a change,
  xapi's flush period, and on exit). As in xapi, sessions and tasks are not persisted (datamodel
  ``PersistNothing``): after a restart clients get ``SESSION_INVALID`` and the official
  client logs in again by itself. Messages are kept in the same file.
* Plugin output is checked as xapi's xmlm parser checks it: a character outside XML 1.0, raw
  or as a reference, or bytes that are not UTF-8 give ``XENAPI_PLUGIN_FAILURE ["failed to
  parse plugin output", stdout, "<xmlm message> line N"]`` with xmlm's words; for other syntax
  errors the third parameter is expat's message (xmlm words them differently). As xapi's writer
  does, every string in an answer loses its control characters other than tab, LF and CR, and
  bytes that are not UTF-8 are sent unchanged (a client then cannot parse that answer).
* A plugin gets the call in argv[1] byte for byte as xapi writes it (``Xml.to_string``). A call
  longer than one argv element (Linux ``MAX_ARG_STRLEN``, 128 KiB with its NUL) gives what xapi
  gives when the kernel refuses it (E2BIG: forkexecd's child exits 126 before the plugin runs):
  ``XENAPI_PLUGIN_FAILURE ["non-zero exit", "", ""]``. The simulator checks the size itself so
  that the answer does not depend on the machine it runs on.
* xcp-rrdd (``xscontainer.sim.rrdd``): each host has one, its socket in the ready line
  (``hosts[].rrdd_socket``, instead of ``/var/lib/xcp/xcp-rrdd``) and its plugin files in
  ``DIR/hosts/<uuid>/metrics`` (instead of ``/dev/shm/metrics``); ``VM.get_data_sources``,
  ``query_data_source``, ``record_data_source``, ``forget_data_source_archives`` and
  ``GET /rrd_updates`` read it. Its deviations are listed in that module.
* Type errors in parameters raise ``FIELD_TYPE_ERROR [param]``; an unknown enum value raises
  ``INVALID_VALUE [param, value]``.
* Updates (``sim/pool_update.py``): of pool_update's messages only ``introduce`` exists (and
  ``xe update-upload``). It checks the uploaded ISO as xapi does (update.xml, then the gpg
  signatures of update.xml and repodata/repomd.xml: GOODSIG and TRUST_ULTIMATE), with gpg
  against ``DIR/gpg`` instead of ``/opt/xensource/gpg``; that keyring starts empty, so every
  update is refused until a key is imported there with ultimate trust. It reads the ISO with
  pycdlib instead of mounting it through a dom0 VBD, skips the 1 MiB free-space check, and
  creates no pool_patch twin; ``xe update-upload`` leaves the VDI's name as the import set it.
"""
