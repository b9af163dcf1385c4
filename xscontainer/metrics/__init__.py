"""Per-container metrics beside the VM's own: xcp-rrdd's plugin protocol v2 (``protocol``), the
data-source names (``names``), samples from the engine (``sample``), rrdd's registration
interface (``rrddclient``), the shared file (``shmfile``) and the per-host ``reporter``."""
