"""The hooks the servant test plugin declares for other plugins to implement."""

from __future__ import annotations

from typing import TYPE_CHECKING

from orbit.plugins.api import hookspec

if TYPE_CHECKING:
    from orbit.plugins.api import PluginContext


@hookspec
def servant_quote(ctx: PluginContext, amount: int) -> str | None:
    """A quote for ``amount``; ``None`` to stay out."""
