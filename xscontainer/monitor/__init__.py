"""The host monitor: keeps ``VM.other_config`` ``docker_ps``/``docker_info``/``docker_version``
current for every registered VM running on this host.

Pure parts: ``render`` (Docker records -> the consumers' XML), ``policy`` (which VMs),
``coalesce`` (which events refresh what; burst coalescing), ``alarm`` (the "cannot monitor VM"
alarm). The rest does xapi and engine I/O.
"""
