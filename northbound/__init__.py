"""What people and other systems use: the ``switchboard`` CLI (and, later, the REST API
and the console). Nothing imports northbound."""

__all__: list[str] = []
