"""The administrator's command line (``xscontainer``): a pool-wide container view from dom0.

``parser.py`` is the command line, ``main.py`` runs a verb and maps errors to exit codes;
``xapiclient.py`` is the only module that talks to xapi; ``xmlread.py``, ``resolve.py`` and
``layout.py`` are pure.
"""
