"""collectors: arrives with its own issue (see DESIGN.md)."""

__all__: list[str] = []
