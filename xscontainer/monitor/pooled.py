"""A session-like object whose every xapi call borrows a session from a ``SessionPool``.

Lets code written for ``session.xenapi.X.y(...)`` (the engine layer reads settings and pins
that way) share the monitor's few sessions instead of logging in once per VM.
"""

from xscontainer.monitor.xapipool import SessionPool


class _Method:
    def __init__(self, pool: SessionPool, name: str) -> None:
        self._pool = pool
        self._name = name

    def __getattr__(self, name: str) -> "_Method":
        return _Method(self._pool, "%s.%s" % (self._name, name))

    def __call__(self, *args):
        with self._pool.session() as session:
            target = session.xenapi
            for part in self._name.split("."):
                target = getattr(target, part)
            return target(*args)


class PooledSession:
    def __init__(self, pool: SessionPool) -> None:
        self.xenapi = _Namespace(pool)


class _Namespace:
    def __init__(self, pool: SessionPool) -> None:
        self._pool = pool

    def __getattr__(self, name: str) -> _Method:
        return _Method(self._pool, name)
