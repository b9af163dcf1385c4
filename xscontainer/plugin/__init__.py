"""The xapi host plugin ``xscontainer``: argument checks, forwarding to the owning host, functions.

``plugins/xscontainer`` is a thin script; xapi starts it for every call, so this package imports
only what the called function needs.
"""
