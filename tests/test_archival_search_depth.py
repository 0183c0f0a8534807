"""Search finds old matches behind many newer entities, on every backend.

SQLite reads the newest entities' text first and asks its trigram index only for rarer
matches (queries of three characters or more) or scans (shorter ones): these tests put
the matches behind more newer entities than that first read covers.
"""

import pytest

from umi_store.backends.sqlite import SEARCH_RECENT_SCAN_ROWS_MAX

FILLERS_COUNT = SEARCH_RECENT_SCAN_ROWS_MAX + 200
OLD_CONTENTS = ['a needle with "quotes" inside', "100% of *stars* and [brackets]",
                "ÉMILE said zq once", "a needle again, newer"]


@pytest.fixture
async def old_matches(store):
    for content in OLD_CONTENTS:
        await store.archival.remember(content, "note")
        store.clock.advance(1)
    await store.archival.remember_many([(f"filler {i} about tea", "note")
                                        for i in range(FILLERS_COUNT)])
    return store


@pytest.mark.parametrize("query, expected", [
    ("needle", ["a needle again, newer", 'a needle with "quotes" inside']),
    ('"quotes"', ['a needle with "quotes" inside']),
    ("100%", ["100% of *stars* and [brackets]"]),
    ("*stars*", ["100% of *stars* and [brackets]"]),
    ("[brackets]", ["100% of *stars* and [brackets]"]),
    ("émile", ["ÉMILE said zq once"]),
    ("zq", ["ÉMILE said zq once"]),
    ("xyzzy", []),
])
async def test_old_matches_behind_many_newer_entities_are_found_newest_first(
        old_matches, query, expected):
    hits = await old_matches.archival.search(query, limit=10)
    assert [hit.content for hit in hits] == expected


async def test_a_page_of_common_matches_is_the_newest(old_matches):
    hits = await old_matches.archival.search("tea", limit=5)
    newest = await old_matches.archival.list(limit=5)
    assert hits == newest
