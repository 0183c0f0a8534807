"""The agents of a store, summarised per tier: the SQL both SQL backends share.

One grouped statement per tier, each served by that tier's (agent, …) index, merged here:
about half the time of one statement over their UNION (measured in bench/agents.py).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ..models import AgentSummary


def agent_tier_sql(now_placeholder: str) -> tuple[str, str, str]:
    """(core, working, entities) statements giving (agent, rows, last change) per agent;
    working counts live keys only. `now_placeholder` is the driver's parameter for the
    store clock's now (SQLite `?`, Postgres `$1`); only the working statement takes it."""
    return ("SELECT agent, COUNT(*), MAX(updated_at) FROM core_blocks GROUP BY agent",
            f"SELECT agent, COUNT(*) FILTER (WHERE expires_at_ms > {now_placeholder}), "
            "MAX(updated_at) FROM working GROUP BY agent",
            "SELECT agent, COUNT(*), MAX(updated_at) FROM entities GROUP BY agent")


def summaries_from_tiers(core: Iterable[Any], working: Iterable[Any],
                         entities: Iterable[Any]) -> list[AgentSummary]:
    """The per-tier rows merged, one summary per agent, in agent-name order (code points,
    the same on every backend)."""
    counts: dict[str, list[int]] = {}
    for tier, found in enumerate((core, working, entities)):
        for agent, rows, last_change_at in found:
            merged = counts.setdefault(agent, [0, 0, 0, 0])
            merged[tier] = int(rows)
            merged[3] = max(merged[3], int(last_change_at))
    return [AgentSummary(agent, *merged) for agent, merged in sorted(counts.items())]
