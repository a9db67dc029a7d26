"""Read models built from the event log (DESIGN §4)."""

from lf_pg import MigrationSet
from lf_projections.follower import Follower, FollowerRunner, catch_up, catch_up_once
from lf_projections.outside import FollowerOnPool, catch_up_outside
from lf_projections.projection import Handler, Projection
from lf_projections.rebuild import rebuild, shadow_schema

MIGRATIONS = MigrationSet("projections", "lf_projections")

__all__ = [
    "MIGRATIONS",
    "Follower",
    "FollowerOnPool",
    "FollowerRunner",
    "Handler",
    "Projection",
    "catch_up",
    "catch_up_once",
    "catch_up_outside",
    "rebuild",
    "shadow_schema",
]
