"""The agents of a store, summarised in one query: the SQL both SQL backends share."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ..models import AgentSummary


def agent_summaries_sql(now_placeholder: str) -> str:
    """One row per agent with any stored row: (agent, blocks, live keys, entities, last
    change). Each tier is grouped on its (agent, …) index; `now_placeholder` is the
    driver's parameter for the store clock's now (SQLite `?`, Postgres `$1`)."""
    return (
        "SELECT agent, SUM(blocks), SUM(keys), SUM(entities), MAX(last_change_at) FROM ("
        "SELECT agent, COUNT(*) AS blocks, 0 AS keys, 0 AS entities, "
        "MAX(updated_at) AS last_change_at FROM core_blocks GROUP BY agent "
        "UNION ALL SELECT agent, 0, "
        f"COUNT(*) FILTER (WHERE expires_at_ms > {now_placeholder}), 0, MAX(updated_at) "
        "FROM working GROUP BY agent "
        "UNION ALL SELECT agent, 0, 0, COUNT(*), MAX(updated_at) FROM entities GROUP BY agent"
        ") AS tiers GROUP BY agent")


def summaries_from_rows(rows: Iterable[Any]) -> list[AgentSummary]:
    """The summaries in agent-name order (code points, the same on every backend)."""
    summaries = [AgentSummary(agent, int(blocks), int(keys), int(entities), int(last))
                 for agent, blocks, keys, entities, last in rows]
    return sorted(summaries, key=lambda summary: summary.agent)
