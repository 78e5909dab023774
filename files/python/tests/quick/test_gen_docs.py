"""scripts/gen_docs.py: the generated tables and the defaults check, on the repository and on a copy of it
changed the ways a contributor would change it."""

from __future__ import annotations

import dataclasses
import importlib.util
import shutil
import sys
from pathlib import Path
from types import ModuleType

import pytest

from freqfeed import config

ROOT = Path(__file__).resolve().parents[4]


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_docs", ROOT / "scripts" / "gen_docs.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["gen_docs"] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


gen_docs = _load()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """The parts of the repository gen_docs reads and writes."""
    shutil.copytree(ROOT / "roles", tmp_path / "roles")
    shutil.copytree(ROOT / "docs", tmp_path / "docs", ignore=shutil.ignore_patterns("site"))
    (tmp_path / "scripts").mkdir()
    shutil.copy(ROOT / "scripts" / "check-role-specs.py", tmp_path / "scripts")
    return tmp_path


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))


def test_the_repository_is_up_to_date(capsys: pytest.CaptureFixture[str]) -> None:
    assert gen_docs.main(["--check"]) == 0, capsys.readouterr()


def test_a_changed_code_default_fails_the_check_until_regenerated_and_the_role_follows(
        repo: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    close_wait = {f.name: f for f in dataclasses.fields(config.GatewayConfig)}["close_wait"]
    monkeypatch.setattr(close_wait, "default", 4.0)
    assert gen_docs.main(["--check"], root=repo) == 1
    out, err = capsys.readouterr()
    assert "+| `gateway.close_wait` | seconds | `4` |" in out
    assert "out of date: docs/configuration.md" in err
    assert "`feather_sync_gateway_close_wait` defaults to 3" in err and "defaults to 4.0 in freqfeed/config.py" in err

    assert gen_docs.main([], root=repo) == 1  # the table is rewritten; the role's default cannot be
    edit(repo / "roles/feather_sync/defaults/main.yml", "close_wait: 3", "close_wait: 4")
    edit(repo / "roles/feather_sync/meta/argument_specs.yml", "close_wait:\n        type: float\n        default: 3",
         "close_wait:\n        type: float\n        default: 4")
    assert gen_docs.main([], root=repo) == 0  # the role README's table follows argument_specs
    assert gen_docs.main(["--check"], root=repo) == 0


def test_a_role_default_unlike_its_spec_and_the_code_fails(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    edit(repo / "roles/influx_producer/defaults/main.yml", "influx_producer_request_delay: 0.6",
         "influx_producer_request_delay: 0.3")
    assert gen_docs.main(["--check"], root=repo) == 1
    err = capsys.readouterr().err
    assert "influx_producer_request_delay: argument_specs default 0.6 != defaults 0.3" in err
    assert "`influx_producer_request_delay` defaults to 0.3" in err
    assert "`exchange.request_delay` defaults to 0.6" in err


def test_a_fleet_fallback_is_compared_too(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    edit(repo / "roles/feather_sync/defaults/main.yml", "freqfeed_timeframes | default([",
         "freqfeed_timeframes | default(['5m', ")
    edit(repo / "roles/feather_sync/meta/argument_specs.yml", "freqfeed_timeframes | default([",
         "freqfeed_timeframes | default([''5m'', ")
    assert gen_docs.main(["--check"], root=repo) == 1
    assert "`timeframes` defaults to ('3m', '15m', '1h')" in capsys.readouterr().err


def test_hand_edits_inside_the_markers_are_reported_and_undone(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    readme = repo / "roles/feather_sync/README.md"
    generated = readme.read_text()
    edit(readme, "| `feather_sync_candles` | int | `1500` |", "| `feather_sync_candles` | int | `99` |")
    assert gen_docs.main(["--check"], root=repo) == 1
    assert "-| `feather_sync_candles` | int | `99` |" in capsys.readouterr().out
    assert gen_docs.main([], root=repo) == 0
    assert readme.read_text() == generated


def test_missing_markers_or_file_fail(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    edit(repo / "docs/configuration.md", "<!-- END GENERATED: config-table -->", "")
    (repo / "roles/freqfeed_install/README.md").unlink()
    assert gen_docs.main(["--check"], root=repo) == 1
    err = capsys.readouterr().err
    assert "docs/configuration.md: no '<!-- BEGIN GENERATED: config-table -->'" in err
    assert "roles/freqfeed_install/README.md: missing" in err


def test_a_key_without_a_doc_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    book_idle = {f.name: f for f in dataclasses.fields(config.GatewayConfig)}["book_idle"]
    monkeypatch.setattr(book_idle, "metadata", {**book_idle.metadata, "doc": " "})
    assert gen_docs.key_problems() == ["freqfeed/config.py: `gateway.book_idle` has no doc (setting(..., doc=...))"]


def test_a_template_writing_an_unknown_key_fails(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    edit(repo / "roles/influx_producer/templates/producer.yml.j2", "backfill:\n  candles:", "backfill:\n  candels:")
    assert gen_docs.main(["--check"], root=repo) == 1
    assert "writes `backfill.candels`, which is no configuration key" in capsys.readouterr().err


def test_rendered_keys_follow_sections_and_conditions(tmp_path: Path) -> None:
    template = tmp_path / "x.yml.j2"
    template.write_text(
        "# {{ a_comment }}\ninfluxdb:\n  url: {{ r_url | to_json }}\n{% if r_rp %}\n  retention_policy: {{ r_rp }}\n"
        "{% endif %}\n  verify_tls: true\nsync:\n  datadir: {{ _r_private }}\nlog_level: {{ r_level }}\n")
    found = [(r.key, r.variable, r.conditional) for r in gen_docs.rendered_keys(template)]
    assert found == [("influxdb.url", "r_url", False), ("influxdb.retention_policy", "r_rp", True),
                     ("log_level", "r_level", False)]


@pytest.mark.parametrize(("value", "expected"), [
    (1500, (True, 1500)),
    ("{{ freqfeed_x | default(true) }}", (True, True)),
    ("{{ freqfeed_pairs | default(['A/B:B', 'C/B:B']) }}", (True, ["A/B:B", "C/B:B"])),
    ("{{ freqfeed_x | default('') }}", (True, "")),
    ("{{ other_var }}", (False, None)),
])
def test_role_default_reads_literals_and_fleet_fallbacks(value: object, expected: tuple[bool, object]) -> None:
    assert gen_docs.role_default(value) == expected


def test_the_config_table_has_a_row_per_key() -> None:
    rows = gen_docs.config_table().splitlines()[2:]
    assert [row.split("`")[1] for row in rows] == [key.name for key in config.config_keys()]
    assert "| `trading_mode` | `futures` \\| `spot` | `futures` |" in gen_docs.config_table()


def test_a_role_variable_of_another_type_or_choices_than_its_key_fails(
        repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    specs = repo / "roles/influx_producer/meta/argument_specs.yml"
    candles = "influx_producer_backfill_candles:\n        type:"
    edit(specs, f"{candles} int", f"{candles} str")
    edit(specs, "choices: [DEBUG, INFO, WARNING, ERROR]", "choices: [DEBUG, INFO, WARNING, ERROR, TRACE]")
    assert gen_docs.main(["--check"], root=repo) == 1
    err = capsys.readouterr().err
    assert "`influx_producer_backfill_candles` is type str in meta/argument_specs.yml, but `backfill.candles` " \
           "takes int" in err
    assert "`influx_producer_log_level` has choices ['DEBUG', 'INFO', 'WARNING', 'ERROR', 'TRACE']" in err


def test_a_plain_dataclass_field_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    """A key added the old way (a field with a default, no setting()) would be neither read nor documented."""
    book_idle = {f.name: f for f in dataclasses.fields(config.GatewayConfig)}["book_idle"]
    monkeypatch.setattr(book_idle, "metadata", {})
    assert gen_docs.key_problems() == [
        "freqfeed/config.py: `gateway.book_idle` is a plain dataclass field: declare it with setting(default, doc, "
        "kind=...) so it is read, checked and documented (or derived(...) when it is no key)"]
