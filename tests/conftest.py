import pytest

from umi_store import SimClock, open_store

BACKENDS = ["sim", "sqlite"]


def store_url(backend: str, tmp_path) -> str:
    return {"sim": "sim://?seed=1", "sqlite": f"sqlite:///{tmp_path}/umi.db"}[backend]


@pytest.fixture(params=BACKENDS)
def backend_name(request):
    return request.param


@pytest.fixture
async def store(backend_name, tmp_path):
    async with open_store(store_url(backend_name, tmp_path), agent="tester",
                          clock=SimClock()) as opened:
        yield opened
