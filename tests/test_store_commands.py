"""`umi-tui get|set|del|ttl|search|blocks|render|agents|export|import URL …`: output for
people and for machines, the exit codes, values from stdin. Each command opens the store
afresh, so the data lives in SQLite and Postgres (a sim:// store lives for one command)."""

import asyncio
import json

import pytest
from click.testing import CliRunner

from tests.conftest import postgres_url, store_url, wipe_postgres
from umi_store.sync import open_store
from umi_tui.cli import cli


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def url(request, tmp_path):
    if request.param == "postgres":
        asyncio.run(wipe_postgres(postgres_url()))
    return store_url(request.param, tmp_path)


def umi(*args: str, input: bytes | str | None = None):
    return CliRunner().invoke(cli, list(args), input=input)


def test_set_get_ttl_del_with_exit_codes(url):
    assert umi("set", url, "topic", "billing", "--ttl", "90s").exit_code == 0
    got = umi("get", url, "topic")
    assert (got.exit_code, got.stdout) == (0, "billing\n")
    ttl = umi("ttl", url, "topic", "--json")
    assert ttl.exit_code == 0 and 0 < json.loads(ttl.stdout)["ttl_ms"] <= 90_000
    assert umi("ttl", url, "topic", "--set", "2h").stdout.startswith("2h (")
    assert umi("del", url, "topic").exit_code == 0
    missing = umi("get", url, "topic")
    assert missing.exit_code == 1 and "no key 'topic'" in missing.stderr
    assert umi("del", url, "topic").exit_code == 1
    assert umi("ttl", url, "topic").exit_code == 1


def test_a_value_of_dash_is_read_from_stdin_as_bytes(url):
    assert umi("set", url, "blob", "-", input=b"\xff\x00 raw\n").exit_code == 0
    got = umi("get", url, "blob", "--json")
    assert json.loads(got.stdout)["value_base64"] == "/wAgcmF3Cg=="
    assert umi("get", url, "blob").stdout_bytes == b"\xff\x00 raw\n"


def test_agents_are_separate_and_listed(url):
    umi("set", url, "k", "mine", "--agent", "alice")
    assert umi("get", url, "k").exit_code == 1
    assert umi("get", url, "k", "-a", "alice").stdout == "mine\n"
    listed = json.loads(umi("agents", url, "--json").stdout)
    assert [(a["agent"], a["keys"]) for a in listed] == [("alice", 1)]


def test_search_blocks_and_render(url):
    with open_store(url) as store:
        store.core.set_block("human", "Prefers <short> answers", label="profile")
        store.archival.remember("Ada runs the payments team", "person", name="Ada")
    hits = umi("search", url, "PAYMENTS", "--json")
    assert hits.exit_code == 0 and [h["name"] for h in json.loads(hits.stdout)] == ["Ada"]
    assert umi("search", url, "payments").stdout.startswith("person       Ada")
    assert umi("search", url, "nobody").exit_code == 1
    assert umi("blocks", url, "human").stdout == "Prefers <short> answers\n"
    assert umi("blocks", url).stdout.startswith("human    profile")
    assert umi("blocks", url, "facts").exit_code == 1
    assert umi("render", url).stdout == (
        '<core_memory>\n<block type="human" label="profile" importance="0.50">\n'
        "Prefers &lt;short&gt; answers\n</block>\n</core_memory>\n")


def test_bad_input_exits_2_and_changes_nothing(url):
    assert umi("set", url, "k", "v", "--ttl", "8d").exit_code == 2
    assert umi("set", url, "k", "v", "--ttl", "soon").exit_code == 2
    assert umi("blocks", url, "diary").exit_code == 2
    assert umi("search", url, "x", "--limit", "0").exit_code == 2
    assert umi("get", url, "k").exit_code == 1


def test_an_unreachable_store_exits_3_and_masks_the_password():
    result = umi("get", "postgresql://umi:hunter2@127.0.0.1:1/none", "k")
    assert result.exit_code == 3
    assert "hunter2" not in result.stderr and "umi:***@" in result.stderr


def test_a_sim_store_answers_for_one_command():
    assert umi("render", "sim://?seed=1").stdout == "<core_memory>\n</core_memory>\n"


def test_export_and_import_through_the_command_line(url, tmp_path):
    with open_store(url, agent="alice") as store:
        store.core.set_block("facts", "likes tea")
        store.working.set("k", b"v")
    exported = tmp_path / "alice.jsonl"
    assert umi("export", url, "-a", "alice", "-o", str(exported)).exit_code == 0
    assert exported.read_text().count("\n") == 3
    imported = umi("import", url, str(exported), "--agent", "bob")
    assert imported.exit_code == 0 and "2 written" in imported.stderr
    assert umi("blocks", url, "facts", "-a", "bob").stdout == "likes tea\n"
    again = umi("import", url, str(exported), "--agent", "bob")
    assert again.exit_code == 2 and "line 2: the facts block" in again.stderr
    assert umi("import", url, "-", "--agent", "carol", "--on-conflict", "skip",
               input=exported.read_bytes()).exit_code == 0
    broken = tmp_path / "broken.jsonl"
    broken.write_text(exported.read_text() + '{"type": "key"}\n')
    refused = umi("import", url, str(broken), "--agent", "dave")
    assert refused.exit_code == 2 and "line 4: no 'agent' field" in refused.stderr
    assert umi("blocks", url, "-a", "dave").exit_code == 1
    assert umi("export", url, "--all", "--agent", "bob").exit_code == 2
    everyone = umi("export", url, "--all")
    assert json.loads(everyone.stdout.splitlines()[0])["agents"] == ["alice", "bob", "carol"]


def test_one_help_lists_the_inspector_and_every_command(capsys):
    from umi_tui.__main__ import main
    assert main(["--help"]) == 0
    shown = capsys.readouterr().out
    for name in ("open", "sim", "get", "set", "del", "ttl", "search", "blocks", "render", "agents",
                 "export", "import"):
        assert f"\n  {name} " in shown
    assert main(["get", "--help"]) == 0
    assert "Usage: umi-tui get [OPTIONS] URL KEY" in capsys.readouterr().out
