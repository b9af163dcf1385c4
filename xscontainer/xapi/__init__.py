"""The xapi boundary on the client side: sessions, host identity, key-by-key map writes."""

# xapi's null reference: what a ref field holds when it points at nothing.
NULL_REF = "OpaqueRef:NULL"
