"""What the simulator's constructors and lifecycle calls share: reading a constructor struct as
xapi's dispatcher does, and a VM's power state with the failure that names it."""

from typing import Any, Dict

from xscontainer.sim import datamodel as dm
from xscontainer.sim.failures import XapiFailure


class Ctor:
    """Reads a constructor struct: required fields raise as xapi's dispatcher does."""

    def __init__(self, cls: str, args: Any) -> None:
        if not isinstance(args, dict):
            raise XapiFailure("FIELD_TYPE_ERROR", "args")
        self.cls = cls
        self.args = args

    def get(self, name: str, default: Any = None, required: bool = True) -> Any:
        if name not in self.args:
            if required:
                raise XapiFailure("INTERNAL_ERROR",
                                  'Server_helpers.Dispatcher_FieldNotFound("%s")' % name)
            return default
        return dm.decode(dm.field(self.cls, name).kind, self.args[name], name)


def power_state(row: Dict[str, Any]) -> str:
    return row["power_state"].lower()


def bad_power(vm: str, expected: str, row: Dict[str, Any]) -> XapiFailure:
    return XapiFailure("VM_BAD_POWER_STATE", vm, expected, power_state(row))
