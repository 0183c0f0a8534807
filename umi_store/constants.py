"""Every limit of Umi, named category first and unit last (SPEC §5)."""

CORE_MEMORY_SIZE_BYTES_MAX = 32 * 1024
CORE_MEMORY_SIZE_BYTES_MIN = 4 * 1024
CORE_MEMORY_BLOCK_SIZE_BYTES_MAX = 16 * 1024
CORE_MEMORY_BLOCK_LABEL_BYTES_MAX = 64
CORE_MEMORY_IMPORTANCE_DEFAULT = 0.5

WORKING_MEMORY_SIZE_BYTES_MAX = 1024 * 1024
WORKING_MEMORY_ENTRY_SIZE_BYTES_MAX = 64 * 1024
WORKING_MEMORY_TTL_SECS_DEFAULT = 3600
WORKING_MEMORY_TTL_SECS_MAX = 604_800
WORKING_MEMORY_ENTRIES_COUNT_MAX = 10_000
WORKING_MEMORY_KEY_BYTES_MAX = 256

ENTITY_CONTENT_BYTES_MAX = 1_000_000
ENTITY_NAME_BYTES_MAX = 256
ENTITY_NAME_DERIVED_CHARS_MAX = 50
ENTITY_LIST_COUNT_MAX = 1_000
EMBEDDING_DIMENSIONS_COUNT = 1536

SEARCH_RESULTS_COUNT_MAX = 100
SEARCH_QUERY_BYTES_MAX = 10_000
SIMILAR_RESULTS_COUNT_MAX = 100  # archival.similar's k
# Reciprocal rank fusion (archival.search with a vector): a hit at rank r (1-based) in one
# list scores 1 / (SEARCH_FUSION_RANK_OFFSET + r); the usual constant of Cormack et al.
SEARCH_FUSION_RANK_OFFSET = 60

STORAGE_RETRY_COUNT_MAX = 3
STORAGE_RETRY_DELAY_MS_BASE = 100
STORAGE_RETRY_DELAY_MS_MAX = 5000

DST_SIMULATION_STEPS_MAX = 1_000_000
# Between these, a simulation step reads back only the rows it could have changed.
DST_FULL_CHECK_INTERVAL_STEPS = 100
DST_TIME_ADVANCE_MS_MAX = 86_400_000
DST_EPOCH_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z

CHANGE_FEED_POLL_MS = 250  # real time between checks for other processes' commits
CHANGE_FEED_LOG_ROWS_MAX = 10_000  # change-log rows kept for other processes' feeds
CHANGE_FEED_BATCH_ROWS_MAX = 1_000  # change-log rows read per poll

WORKING_MEMORY_EXPIRY_SWEEP_MS = 1_000  # store-clock time between active-expiry sweeps
WORKING_MEMORY_EXPIRY_SWEEP_KEYS_MAX = 100  # expired keys removed per sweep at most

HISTORY_KEY_VERSIONS_COUNT_MAX = 1_000  # versions kept per core block, working key, entity
HISTORY_AGENT_SIZE_BYTES_MAX = 64 * 1024 * 1024  # history kept per agent, all tiers
HISTORY_AGENT_SIZE_BYTES_PRUNED = 48 * 1024 * 1024  # what pruning an agent's history leaves
HISTORY_RECORDS_COUNT_MAX = 10_000  # records one history() or history_since() returns
HISTORY_ACTOR_BYTES_MAX = 128
