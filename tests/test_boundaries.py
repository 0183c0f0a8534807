"""The house rules a machine can check: the store never knows the UI, never reads bare time."""

import pathlib
import re
import subprocess
import sys

import pytest

from umi_store import InvalidInputError, StoreUnavailableError, mask_url, open_store

STORE = pathlib.Path(__file__).parent.parent / "umi_store"


def test_umi_store_does_not_import_textual():
    code = "import sys, umi_store, umi_store.store; sys.exit('textual' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0
    for path in STORE.rglob("*.py"):
        assert not re.search(r"^\s*(import|from) textual", path.read_text(), re.M), path


HARNESS_MODULES = ("umi_store.dst.model", "umi_store.dst.workload", "umi_store.dst.simulation",
                   "umi_store.dst.campaign")


def test_importing_the_store_loads_no_simulation_harness():
    code = ("import sys, umi_store, umi_store.store, umi_store.tiers.working; "
            f"loaded = [m for m in {HARNESS_MODULES!r} if m in sys.modules]; "
            "print(loaded); sys.exit(len(loaded))")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert run.returncode == 0, f"import umi_store loaded the harness: {run.stdout}"
    harness = {STORE / "dst" / f"{m.rsplit('.', 1)[1]}.py" for m in HARNESS_MODULES}
    importing = re.compile(r"^\s*(from|import) \S*\b(model|workload|simulation|campaign)\b",
                           re.M)
    production = [p for p in STORE.rglob("*.py")
                  if p not in harness and p != STORE / "dst" / "__init__.py"]
    assert [p for p in production if importing.search(p.read_text())] == [], \
        "the harness imports the store, never the reverse"


def test_no_bare_time_or_randomness_outside_clock_and_rng():
    banned = re.compile(r"time\.time\(|time\.monotonic\(|datetime\.now\(|uuid4\(|^\s*import random",
                        re.M)
    allowed = {STORE / "dst" / "clock.py", STORE / "dst" / "rng.py"}
    offenders = [p for p in STORE.rglob("*.py") if p not in allowed and banned.search(p.read_text())]
    assert offenders == []


async def test_malformed_url_is_invalid_input():
    with pytest.raises(InvalidInputError):
        async with open_store("mysql://x"):
            pass
    with pytest.raises(InvalidInputError):
        async with open_store("sim://?seed=abc"):
            pass


async def test_unopenable_sqlite_path_is_store_unavailable(tmp_path):
    with pytest.raises(StoreUnavailableError):
        async with open_store(f"sqlite:///{tmp_path}/no/such/dir/umi.db"):
            pass


async def test_an_unopenable_relative_sqlite_path_names_the_absolute_one_and_the_slashes(
        tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(StoreUnavailableError) as refused:
        async with open_store("sqlite:///tmp/no-such-dir/umi.db"):
            pass
    message = str(refused.value)
    assert f"{tmp_path}/tmp/no-such-dir/umi.db" in message
    assert "three slashes is relative" in message
    assert "sqlite:////tmp/no-such-dir/umi.db is the absolute /tmp/no-such-dir/umi.db" in message


async def test_an_unopenable_absolute_sqlite_path_gets_no_slash_hint(tmp_path):
    with pytest.raises(StoreUnavailableError) as refused:
        async with open_store(f"sqlite:///{tmp_path}"):  # a directory
            pass
    assert f"(the file {tmp_path})" in str(refused.value)
    assert "slashes" not in str(refused.value)


def test_password_is_masked():
    assert mask_url("postgresql://bob:s3cret@db/umi") == "postgresql://bob:***@db/umi"
