"""BENCHMARKS.md: each writer replaces its own sections and keeps the others."""

from __future__ import annotations

from infra.bench.page import _previous, write_benchmarks


def test_sections_are_replaced_and_the_others_kept(tmp_path):
    page = tmp_path / "BENCHMARKS.md"
    write_benchmarks(page, {"ingest": {"platform_events_s": 1.5, "pass": True},
                            "codec": {"max_total_us": 30.0, "pass": False}})
    write_benchmarks(page, {"chaos": {"lost_postgres": 0, "per_kind": {"kill_api": {
        "injected": 3}}, "pass": True}})
    write_benchmarks(page, {"codec": {"max_total_us": 19.0, "pass": True}})
    results = _previous(page)
    assert list(results) == ["ingest", "codec", "chaos"]
    assert results["codec"]["max_total_us"] == 19.0
    assert results["chaos"]["per_kind"]["kill_api"]["injected"] == 3
    assert all("measured_at" in figures for figures in results.values())
    text = page.read_text()
    assert "## chaos — meets its goal" in text and "| per_kind.kill_api.injected | 3 |" in text
    assert "## codec — meets its goal" in text and "falls short" not in text


def test_a_page_without_raw_json_starts_afresh(tmp_path):
    page = tmp_path / "BENCHMARKS.md"
    page.write_text("# Benchmarks\n\nhand-written\n")
    write_benchmarks(page, {"sinks": {"pass": False}})
    assert list(_previous(page)) == ["sinks"]


def test_hand_measured_sections_survive_a_rewrite(tmp_path):
    page = tmp_path / "BENCHMARKS.md"
    write_benchmarks(page, {"codec": {"max_total_us": 30.0, "pass": False}})
    hand = ("## read path, issue #22 — hand-measured (not rewritten)\n\n"
            "| figure | before | after |\n|---|---|---|\n| rps | 183 | 343 |\n")
    text = page.read_text()
    at = text.index("<details>")
    page.write_text(text[:at] + hand + "\n" + text[at:])
    write_benchmarks(page, {"codec": {"max_total_us": 19.0, "pass": True}})
    write_benchmarks(page, {"sinks": {"pass": False}})
    text = page.read_text()
    assert text.count("hand-measured") == 1
    assert "| rps | 183 | 343 |" in text
    assert text.index("## sinks") < text.index("hand-measured") < text.index("raw JSON")
    assert list(_previous(page)) == ["codec", "sinks"]


def test_a_paired_ratio_is_shown_with_its_spread_and_pair_count(tmp_path):
    page = tmp_path / "BENCHMARKS.md"
    figures = {"clickhouse": {"ratio": 0.61, "ratio_min": 0.55, "ratio_max": 0.66,
                              "ratio_pairs": [0.55, 0.61, 0.66], "pairs": 3}, "pass": False}
    write_benchmarks(page, {"sinks": figures})
    text = page.read_text()
    assert "| clickhouse.ratio | 0.610 [0.550–0.660], median of 3 pairs |" in text
    assert "| clickhouse.ratio_min |" not in text
    assert _previous(page)["sinks"]["clickhouse"]["ratio_max"] == 0.66
