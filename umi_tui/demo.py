"""A seeded, realistic dataset for `umi-tui --demo`: all six core blocks, about fifty
working keys with TTLs from seconds to days, and about two thousand archival entities of
every type, with metadata. The same seed gives the same dataset."""

from __future__ import annotations

import array
import asyncio
import random
from collections.abc import Callable

from umi_store import Entity, EntityType, Store
from umi_store.constants import EMBEDDING_DIMENSIONS_COUNT

DEMO_WORKING_KEYS_COUNT = 50
DEMO_ENTITIES_COUNT = 2_000
DEMO_YIELD_EVERY_COUNT = 100  # let the UI paint between batches

BLOCKS = {
    "system": ("rules", 0.95,
               "You are Tern, a support agent for Harbor Bank's business customers.\n"
               "Answer from the customer's own records; say so when you are unsure.\n"
               "Never reveal another customer's data. Escalate fraud to a human at once."),
    "persona": ("voice", 0.70,
                "Calm, brief and exact. Uses the customer's name. Prefers lists for steps.\n"
                "Explains fees before the customer asks."),
    "human": ("profile", 0.85,
              "Ada Okafor, CFO of Lumen Textiles (42 staff, Lagos and Porto).\n"
              "Prefers short answers and UTC times. Time zone: WAT.\n"
              "Has been a customer since 2019; two open tickets."),
    "facts": ("account", 0.80,
              "Business account BA-4471 (EUR) and BA-4472 (NGN).\n"
              "Monthly card limit: 25 000 EUR. Payroll runs on the 25th.\n"
              "Last statement: 2025-12-31, balance 184 302.17 EUR."),
    "goals": ("this session", 0.60,
              "1. Explain the duplicate charge of 2025-12-29.\n"
              "2. Raise the card limit to 40 000 EUR if the risk team agrees.\n"
              "3. Book a call with her account manager, Tomás Reis."),
    "scratch": (None, 0.20,
                "Refund request #R-2231 opened 10:42; waiting on the card network.\n"
                "She mentioned moving payroll to the NGN account in March."),
}

FIRST = ["Ada", "Tomás", "Mei", "Kwame", "Sofia", "Ravi", "Lena", "Omar", "Hana", "Diego",
         "Ines", "Yusuf", "Freya", "Arjun", "Noor", "Luca", "Zainab", "Emil", "Aiko", "Bruno"]
LAST = ["Okafor", "Reis", "Chen", "Mensah", "Rossi", "Patel", "Novak", "Haddad", "Sato",
        "Silva", "Costa", "Aydin", "Berg", "Iyer", "Khan", "Ricci", "Bello", "Lund", "Mori"]
ORGS = ["Lumen Textiles", "Harbor Bank", "Porto Looms", "Kite Logistics", "Nimbus Freight",
        "Delta Dyes", "Oakline Legal", "Sable Insurance", "Quay Payroll", "Atlas Cotton"]
PLACES = ["Lagos", "Porto", "Lisbon", "Accra", "Milan", "Istanbul", "Osaka", "Rotterdam",
          "Nairobi", "Valencia"]
TOPICS = ["card limits", "payroll", "FX fees", "chargebacks", "invoicing", "fraud checks",
          "loan terms", "statements", "API access", "tax forms"]
MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August",
          "September", "October", "November", "December"]

WORKING_TTLS_MS = [5_000, 15_000, 45_000, 90_000, 5 * 60_000, 20 * 60_000, 3_600_000,
                   6 * 3_600_000, 86_400_000, 3 * 86_400_000, 6 * 86_400_000]
WORKING_KEYS = ["session:topic", "session:language", "session:channel", "session:sentiment",
                "tool:last_call", "tool:balance_lookup", "tool:card_status", "rate:fx_eur_ngn",
                "rate:fx_eur_usd", "ticket:open", "ticket:R-2231:state", "user:timezone",
                "user:name", "user:tier", "cache:statement:2025-12", "cache:statement:2025-11",
                "cache:limits", "plan:step", "plan:next_action", "auth:otp_sent"]


def _embedding(rng: random.Random) -> tuple[float, ...]:
    """Floats in [-1, 1] with three decimals, drawn in one call. It takes the rng as far as
    one `rng.random()` per dimension would (two 32-bit words each), so the entities after
    it are the same as ever; the values themselves are never shown."""
    words = array.array("H", rng.getrandbits(EMBEDDING_DIMENSIONS_COUNT * 64).to_bytes(
        EMBEDDING_DIMENSIONS_COUNT * 8, "little"))[::4]
    return tuple([(word % 2001 - 1000) / 1000 for word in words])


def _entity(rng: random.Random, index: int, entity_type: EntityType) -> Entity:
    person = f"{rng.choice(FIRST)} {rng.choice(LAST)}"
    org, place, topic = rng.choice(ORGS), rng.choice(PLACES), rng.choice(TOPICS)
    month = rng.choice(MONTHS)
    name, content = {
        EntityType.SELF: ("Tern", "I am Tern, Harbor Bank's support agent for business "
                          "customers."),
        EntityType.PERSON: (f"{person} #{index}", f"{person} works at {org} in {place}; "
                            f"asks mostly about {topic}."),
        EntityType.ORGANIZATION: (f"{org} ({place}) #{index}", f"{org} has an office in "
                                  f"{place}; contact {person}."),
        EntityType.PROJECT: (f"{topic.title()} review #{index}", f"Review of {topic} for "
                             f"{org}, due in {month}; owner {person}."),
        EntityType.TOPIC: (f"{topic} #{index}", f"Customers ask about {topic} around "
                           f"{month}; see the {place} desk."),
        EntityType.LOCATION: (f"{place} office #{index}", f"The {place} office of {org}, "
                              f"run by {person}."),
        EntityType.EVENT: (f"{month} call with {person} #{index}", f"Call with {person} of "
                           f"{org} about {topic} in {month}."),
        EntityType.NOTE: (f"Note {index}", f"{person} said {topic} at {org} should be "
                          f"checked before {month}."),
        EntityType.TASK: (f"Follow up {topic} #{index}", f"Follow up with {person} on "
                          f"{topic} by the end of {month}."),
    }[entity_type]
    metadata = {"source": rng.choice(["chat", "email", "call", "import"]),
                "confidence": f"{rng.uniform(0.5, 1.0):.2f}", "region": place}
    embedding = _embedding(rng) if entity_type == EntityType.NOTE and index % 3 == 0 else None
    return Entity(entity_type, name, content, metadata=metadata, embedding=embedding)


async def seed_demo(store: Store, seed: int,
                    progress: Callable[[int, int], None] | None = None) -> None:
    """Fill `store` with the demo dataset for `seed`; `progress(done, total)` as it goes."""
    rng = random.Random(seed)
    total = len(BLOCKS) + DEMO_WORKING_KEYS_COUNT + DEMO_ENTITIES_COUNT
    done = 0
    async with store.batch() as batch:  # one transaction per chunk: one commit, not one per row
        for block_type, (label, importance, content) in BLOCKS.items():
            await batch.core.set_block(block_type, content, label=label, importance=importance)
            done += 1
        for index in range(DEMO_WORKING_KEYS_COUNT):
            key = WORKING_KEYS[index] if index < len(WORKING_KEYS) else \
                f"scratch:{rng.choice(TOPICS).replace(' ', '_')}:{index}"
            value = f"{rng.choice(TOPICS)} · {rng.choice(ORGS)} · {rng.randrange(10_000)}"
            await batch.working.set(key, value.encode(), ttl_ms=rng.choice(WORKING_TTLS_MS))
            done += 1
    others = [entity_type for entity_type in EntityType if entity_type != EntityType.SELF]
    for start in range(0, DEMO_ENTITIES_COUNT, DEMO_YIELD_EVERY_COUNT):
        async with store.batch() as batch:
            for index in range(start, min(start + DEMO_YIELD_EVERY_COUNT, DEMO_ENTITIES_COUNT)):
                entity_type = EntityType.SELF if index == 0 else others[index % len(others)]
                await batch.archival.store(_entity(rng, index, entity_type))
                done += 1
        if progress:
            progress(done, total)
        await asyncio.sleep(0)
    if progress:
        progress(total, total)
