"""Backends every conformance test runs on; Postgres comes from UMI_TEST_POSTGRES_URL.

Without that variable the Postgres runs skip with a reason, except under CI=true, where
they fail: CI must show that Postgres ran. A URL whose server cannot be reached fails too.
"""

import os

import asyncpg
import pytest

from umi_store import SimClock, StoreUnavailableError, mask_url, open_store

BACKENDS = ["sim", "sqlite", "postgres"]
POSTGRES_URL_ENV = "UMI_TEST_POSTGRES_URL"


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"


def postgres_url() -> str:
    """The test database URL; skips (or fails under CI=true) when it is not configured."""
    url = os.environ.get(POSTGRES_URL_ENV)
    if not url:
        reason = f"postgres: set {POSTGRES_URL_ENV} to a database the tests may wipe"
        if in_ci():
            pytest.fail(f"{reason} (CI=true: Postgres tests must run)", pytrace=False)
        pytest.skip(reason)
    return url


def store_url(backend: str, tmp_path) -> str:
    if backend == "postgres":
        return postgres_url()
    return {"sim": "sim://?seed=1", "sqlite": f"sqlite:///{tmp_path}/umi.db"}[backend]


_migrated: set[str] = set()


async def wipe_postgres(url: str) -> None:
    """Empty every Umi table (creating the schema on first use), so tests start clean.
    A server that cannot be reached fails the test: a configured Postgres must run."""
    try:
        if url not in _migrated:
            async with open_store(url):
                pass
            _migrated.add(url)
        conn = await asyncpg.connect(url)
    except (StoreUnavailableError, OSError, asyncpg.PostgresError) as exc:
        pytest.fail(f"postgres at {mask_url(url)} is unusable: {type(exc).__name__}: {exc}",
                    pytrace=False)
    try:
        await conn.execute("DELETE FROM core_blocks; DELETE FROM working; DELETE FROM entities; "
                           "DELETE FROM history; DELETE FROM history_totals")
    finally:
        await conn.close()


@pytest.fixture(params=BACKENDS)
async def backend_name(request):
    if request.param == "postgres":
        await wipe_postgres(postgres_url())
    return request.param


@pytest.fixture
async def store(backend_name, tmp_path):
    async with open_store(store_url(backend_name, tmp_path), agent="tester",
                          clock=SimClock()) as opened:
        yield opened


def pytest_configure(config):
    config.addinivalue_line("markers", "postgres: the test needs the Postgres test database")


def _runs_on_postgres(item) -> bool:
    callspec = getattr(item, "callspec", None)
    return item.get_closest_marker("postgres") is not None or (
        callspec is not None and callspec.params.get("backend_name") == "postgres")


_POSTGRES_OUTCOMES = pytest.StashKey[dict]()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Under CI=true a skipped Postgres test is a failure: CI must prove Postgres ran."""
    outcome = yield
    report = outcome.get_result()
    if not _runs_on_postgres(item):
        return
    if report.skipped and in_ci() and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        report.longrepr = f"postgres test skipped under CI=true: {report.longrepr}"
    outcomes = item.config.stash.setdefault(_POSTGRES_OUTCOMES, {})
    if report.outcome != "passed" or report.when == "call":
        if outcomes.get(item.nodeid) != "failed":
            outcomes[item.nodeid] = report.outcome


def pytest_terminal_summary(terminalreporter, config):
    """One line in every run's log saying how the Postgres tests went."""
    outcomes = list(config.stash.get(_POSTGRES_OUTCOMES, {}).values())
    counts = ", ".join(f"{outcomes.count(o)} {o}" for o in ("passed", "failed", "skipped"))
    terminalreporter.write_line(f"postgres backend: {counts}")
