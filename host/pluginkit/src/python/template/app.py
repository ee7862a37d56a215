"""`{{name}}`: a Tollgate plugin. Each `@plugin.tool` function is a tool the agent can call."""

from dataclasses import dataclass
from typing import Annotated

from tollgate import Field, InvalidInput, Plugin

plugin = Plugin("{{name}}", "0.1.0", "Describe what {{name}} does, for the model that will use it.")


@dataclass
class Greeting:
    message: str
    length: int


@plugin.tool(idempotent=True)
def greet(
    name: Annotated[str, Field("Who to greet.", min_length=1, max_length=100)],
    excited: Annotated[bool, "End with an exclamation mark."] = False,
) -> Greeting:
    """Greets someone by name."""
    if not name.strip():
        raise InvalidInput("`name` is blank")
    message = f"Hello, {name.strip()}" + ("!" if excited else ".")
    return Greeting(message=message, length=len(message))
