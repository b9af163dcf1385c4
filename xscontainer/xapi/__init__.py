"""The xapi boundary on the client side: sessions, host identity, key-by-key map writes.

The one way into xapi's client library (XenAPI) for code about our product: ``Failure`` and
``Session`` are XenAPI's own, so ``except Failure`` catches what a XenAPI session raises
(``tests/core/test_xapi_boundary.py`` keeps every other import of XenAPI out, but the simulator's).
"""

import XenAPI

# xapi's null reference: what a ref field holds when it points at nothing.
NULL_REF = "OpaqueRef:NULL"

# A call xapi refused: ``details`` is xapi's error, code first ("UUID_INVALID", "VM", uuid).
Failure = XenAPI.Failure
# A client session: ``session.xenapi.VM.get_record(ref)``.
Session = XenAPI.Session
