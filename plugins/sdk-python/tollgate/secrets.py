"""Raw secret reads (capability `secrets`). **Discouraged**: every read is audited and the
operator must grant each secret by name. Prefer a manifest `Credential`, which the host adds
at egress and the plugin never sees.

Errors: a secret not granted is `Denied`, an unreadable source `Retryable`. Outside a
component (unit tests) values come from the dict `testing_values`.
"""

from ._host import binding
from .errors import Denied, Retryable

__all__ = ["get", "testing_values"]

testing_values: "dict[str, str]" = {}


def get(name: str) -> str:
    wit = binding("secrets", "secrets")
    if wit is None:
        if name not in testing_values:
            raise Denied(f"secret `{name}` is not granted (set tollgate.secrets.testing_values in tests)")
        return testing_values[name]
    from componentize_py_types import Err

    try:
        return wit.get(name)
    except Err as err:
        if type(err.value).__name__.endswith("NotGranted"):
            raise Denied(f"secret `{name}` is not granted: {err.value.value}") from None
        raise Retryable(f"secret `{name}` is unavailable: {err.value.value}") from None
