"""Routes: one RouteTableDef per module."""
