"""The xapi boundary on the client side: sessions, host identity, key-by-key map writes."""
