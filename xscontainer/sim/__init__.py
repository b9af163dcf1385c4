"""A simulated xapi (XenServer/XCP-ng toolstack) that speaks the real XenAPI wire protocol.

It is the embedded default for the demo and the test bed every other part is verified
against: clients use the official ``XenAPI`` package over TCP (``xapi_url``) or over the Unix
socket (``unix_socket``), exactly as against a real host. Start it with
``xscontainer-xapi-sim --dir DIR [--hosts H] [--plugins PLUGINDIR] [--port P]``; it prints one
JSON line when ready (``xapi_url``, ``unix_socket``, ``username``, ``password``,
``pool_uuid``, ``hosts`` = [{uuid, name_label, inventory}], plus ``dir``, ``log``,
``plugins_dir``, ``pid``).

Documented deviations from a real xapi (everything else follows contract §1-§13):

* Plugin environment. xapi runs plugins with only ``PATH=/sbin:/usr/sbin:/bin:/usr/bin``.
  The simulator adds: the directory of its own interpreter in front of ``PATH`` (so
  ``#!/usr/bin/env python3`` finds the Python that has our packages),
  ``XSCONTAINER_XAPI_SOCKET`` (its Unix socket, instead of ``/var/lib/xcp/xapi``),
  ``XSCONTAINER_INVENTORY`` (the called host's inventory file, instead of
  ``/etc/xensource-inventory``; this is how "forwarding to the named host" is simulated),
  and ``PYTHONPATH`` = the project root only when the package is not importable otherwise.
* Class ``sim`` (not in xapi; needs a valid session): ``sim.set_guest_networks(vm, networks)``
  creates or updates the VM's VM_guest_metrics with that ``networks`` map (keys like
  ``0/ip``, ``0/ipv4/0``), as a guest agent would; ``sim.clear_guest_metrics(vm)`` drops it.
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
* xcp-rrdd (``xscontainer.sim.rrdd``): each host has one, its socket in the ready line
  (``hosts[].rrdd_socket``, instead of ``/var/lib/xcp/xcp-rrdd``) and its plugin files in
  ``DIR/hosts/<uuid>/metrics`` (instead of ``/dev/shm/metrics``); ``VM.get_data_sources``,
  ``query_data_source``, ``record_data_source``, ``forget_data_source_archives`` and
  ``GET /rrd_updates`` read it. Its deviations are listed in that module.
* Type errors in parameters raise ``FIELD_TYPE_ERROR [param]``; an unknown enum value raises
  ``INVALID_VALUE [param, value]``.
"""
