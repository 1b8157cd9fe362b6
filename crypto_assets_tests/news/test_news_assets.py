"""`news_articles` materialized through `dagster.materialize` with the warehouse IO manager on a
temporary SQLite warehouse, in replay mode.

Two replay set-ups:
- the project's own catalog (resources/replay): real broken feeds and 404s, reported in metadata;
- a temporary catalog serving small feeds CONSTRUCTED in this file (test inputs, not
  recordings): the recorded real feeds all predate the partition set (2021-04-01), so rows in
  a partition, late articles and cross-feed duplicates need constructed items.
"""

from __future__ import annotations

import warnings
from datetime import datetime, timezone
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from crypto_assets.assets.ingest.news import SCHEDULES, news_articles
from crypto_assets.assets.ingest.rolling import trailing_range
from crypto_assets.news.feeds import RssFeeds
from crypto_assets.news.guardian import GuardianContent
from crypto_assets.tables.news import NEWS_ARTICLES
from crypto_assets.tables.quality import QUARANTINE
from crypto_assets.warehouse.resource import WarehouseIOManager, WarehouseResource
from crypto_assets.warehouse.factory import open_warehouse
from crypto_assets_tests.graph_helpers import row_counts_by_partition

warnings.filterwarnings("ignore", category=dg.BetaWarning)

HOUR = "2023-03-13-10:00"
NEXT_HOUR = "2023-03-13-11:00"
H0 = pd.Timestamp("2023-03-13 10:00", tz="UTC")
COINDESK = "https://www.coindesk.com/arc/outboundfeeds/rss/"
COINTELEGRAPH = "https://cointelegraph.com/rss"


def item(title: str, link: str, when: str | None) -> str:
    date = f"<pubDate>{when}</pubDate>" if when else ""
    return (f"<item><title>{title}</title><link>{link}</link>{date}"
            f"<description>&lt;p&gt;{title}&lt;/p&gt;</description></item>")


def feed(*items: str) -> str:
    head = '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>t</title>'
    return head + "".join(items) + "</channel></rss>"


A = item("Bitcoin steadies as USDC regains its peg", "https://www.coindesk.com/a/?utm_source=rss",
         "Mon, 13 Mar 2023 10:15:00 GMT")
B = item("Ethereum &amp; Solana lead the rebound", "https://www.coindesk.com/b/?utm_source=rss&amp;utm_medium=x",
         "Mon, 13 Mar 2023 10:40:00 +0000")
B_OTHER_FEED = item("Ethereum and Solana lead the rebound",  # same article, other feed, other tracking
                    "https://WWW.COINDESK.COM/b/?utm_source=cointelegraph#top", "Mon, 13 Mar 2023 10:40:00 GMT")
BEFORE = item("Yesterday's news", "https://www.coindesk.com/old/", "Mon, 13 Mar 2023 09:50:00 GMT")
UNDATED = item("No date on this one", "https://cointelegraph.com/news/undated", None)
LATE = item("Late: a link to one solution", "https://www.coindesk.com/late/", "Mon, 13 Mar 2023 10:55:00 GMT")
C = item("Cardano climbs", "https://www.coindesk.com/c/", "Mon, 13 Mar 2023 11:02:00 GMT")


@pytest.fixture
def replay(tmp_path) -> Path:
    folder = tmp_path / "replay" / "rss"
    folder.mkdir(parents=True)
    (folder / "catalog.yaml").write_text(
        f"routes:\n  - url: {COINDESK}\n    file: coindesk.xml\n  - url: {COINTELEGRAPH}\n    file: cointelegraph.xml\n"
    )
    return folder


def serve(folder: Path, coindesk: str, cointelegraph: str) -> None:
    (folder / "coindesk.xml").write_text(coindesk)
    (folder / "cointelegraph.xml").write_text(cointelegraph)


def resources(tmp_path, replay_dir: str | None, guardian: GuardianContent | None = None) -> dict:
    url = f"sqlite:///{tmp_path / 'warehouse.sqlite'}"
    return {
        "io_manager": WarehouseIOManager(url=url),
        "warehouse": WarehouseResource(url=url),
        "rss": RssFeeds(mode="replay", replay_dir=replay_dir),
        "guardian": guardian or GuardianContent(mode="replay", enabled=False),
    }


def metadata(result) -> dict:
    """The run's output metadata (of its first partition), plus each partition's own row count."""
    events = result.get_asset_materialization_events()
    assert events
    return {**{k: v.value for k, v in events[0].materialization.metadata.items()},
            "row_count_by_partition": row_counts_by_partition(result)}


def stored(tmp_path, start=H0, hours=2) -> pd.DataFrame:
    warehouse = open_warehouse(f"sqlite:///{tmp_path / 'warehouse.sqlite'}")
    return warehouse.read(NEWS_ARTICLES, start, start + pd.Timedelta(hours=hours))


def quarantine(tmp_path) -> pd.DataFrame:
    q = open_warehouse(f"sqlite:///{tmp_path / 'warehouse.sqlite'}").read(QUARANTINE)
    return q[q.asset == "news_articles"]


def test_materialize_writes_rows_and_twice_gives_identical_content(tmp_path, replay):
    serve(replay, feed(A, B, BEFORE), feed(B_OTHER_FEED, UNDATED))
    res = resources(tmp_path, str(replay.parent))
    first = dg.materialize([news_articles], resources=res, partition_key=HOUR)
    meta = metadata(first)
    rows = stored(tmp_path)
    assert len(rows) == 2  # A and B; B via two feeds is one row; BEFORE is another hour
    assert meta["rows"] == 2 and meta["duplicates_dropped"] == 1 and meta["articles_outside_window"] == 1
    by_url = rows.set_index("url")
    assert set(by_url.index) == {"https://www.coindesk.com/a/", "https://www.coindesk.com/b/"}
    assert by_url.loc["https://www.coindesk.com/b/", "feed"] == "coindesk"  # first in catalog order
    assert by_url.loc["https://www.coindesk.com/b/", "title"] == "Ethereum & Solana lead the rebound"
    assert by_url.loc["https://www.coindesk.com/b/", "symbols_mentioned"] == "ETH|SOL"
    assert by_url.loc["https://www.coindesk.com/a/", "symbols_mentioned"] == "BTC|USDC"
    assert set(rows.source) == {"replay:rss"}
    assert rows.published_at.dt.tz is not None and rows.ingested_at.notna().all()
    # the undated item is quarantined, never stamped with a time
    q = quarantine(tmp_path)
    assert q.reason.tolist() == ["missing published date"] and meta["rows_quarantined"] == 1
    assert "https://cointelegraph.com/news/undated" in q.record.iloc[0]
    assert q.partition_start.iloc[0] == H0

    dg.materialize([news_articles], resources=res, partition_key=HOUR)
    again = stored(tmp_path)
    pd.testing.assert_frame_equal(rows, again)  # ingested_at too: it records the first ingestion
    assert len(quarantine(tmp_path)) == 1  # replaced, not duplicated


def test_late_article_lands_in_its_own_published_hour(tmp_path, replay):
    serve(replay, feed(A, B), feed())
    res = resources(tmp_path, str(replay.parent))
    dg.materialize([news_articles], resources=res, partition_key=HOUR)
    first_a = stored(tmp_path).set_index("url").loc["https://www.coindesk.com/a/", "ingested_at"]

    # At 11:05 the feed has moved on: A and B scrolled out, LATE (published 10:55) appeared
    # after 10:00 was materialized, C belongs to 11:00. The live schedule's ranged run covers both hours.
    serve(replay, feed(C, LATE), feed())
    result = dg.materialize([news_articles], resources=res, tags={
        "dagster/asset_partition_range_start": HOUR, "dagster/asset_partition_range_end": NEXT_HOUR})
    rows = stored(tmp_path)
    hour_of = dict(zip(rows.url, rows.published_at.dt.floor("h")))
    assert hour_of == {
        "https://www.coindesk.com/a/": H0,
        "https://www.coindesk.com/b/": H0,
        "https://www.coindesk.com/late/": H0,
        "https://www.coindesk.com/c/": H0 + pd.Timedelta(hours=1),
    }
    assert rows.set_index("url").loc["https://www.coindesk.com/a/", "ingested_at"] == first_a
    late = rows.set_index("url").loc["https://www.coindesk.com/late/"]
    assert late.symbols_mentioned == ""  # "link", "one", "solution": no coin
    meta = metadata(result)
    assert meta["rows_kept_from_earlier_runs"] == 2 and meta["rows_new"] == 2
    assert meta["row_count_by_partition"] == {HOUR: 3, NEXT_HOUR: 1}


def test_article_whose_date_moved_stays_in_its_first_partition(tmp_path, replay):
    serve(replay, feed(A), feed())
    res = resources(tmp_path, str(replay.parent))
    dg.materialize([news_articles], resources=res, partition_key=HOUR)
    moved = A.replace("10:15:00", "11:20:00")  # the publisher re-dated the same URL
    serve(replay, feed(moved), feed())
    result = dg.materialize([news_articles], resources=res, partition_key=NEXT_HOUR)
    rows = stored(tmp_path)
    assert rows.url.tolist() == ["https://www.coindesk.com/a/"]  # one row, key stays unique
    assert rows.published_at.iloc[0] == H0 + pd.Timedelta(minutes=15)
    assert metadata(result)["rows_already_stored_in_another_partition"] == 1


def test_project_replay_reports_each_broken_feed_with_its_reason(tmp_path):
    guardian = GuardianContent(mode="replay")  # the recorded 2014 search: answers, nothing in window
    instance = dg.DagsterInstance.ephemeral()
    result = dg.materialize([news_articles], resources=resources(tmp_path, None, guardian), partition_key=HOUR,
                            instance=instance)
    meta = metadata(result)
    broken = meta["broken_feeds"]
    assert broken["theblock"] == "broken: an HTML page instead of a feed (title: 'Document Moved')"
    assert broken["bitcoinmagazine"] == "broken: empty document"
    assert broken["decrypt"].startswith("broken: ill-formed XML: unclosed token")
    assert broken["cryptoslate"].startswith("broken: ill-formed XML")
    # A feed replay has no recording of is not broken: listed apart, and left out of the warning.
    assert "coindesk" not in broken and set(broken) == {"theblock", "bitcoinmagazine", "decrypt", "cryptoslate"}
    unrecorded = meta["sources_without_recording"]
    assert "coindesk" in unrecorded and len(unrecorded) == meta["sources_total"] - 3 - len(broken)
    assert meta["per_feed"]["coindesk"]["status"] == "no_recording"
    lines = [e.user_message for e in instance.all_logs(result.run_id) if "news sources" in (e.user_message or "")]
    assert len(lines) == 1 and lines[0].startswith(f"4 of {meta['sources_total'] - len(unrecorded)} news sources "
                                                   "broken or failed") and "have no recording in replay" in lines[0]
    assert meta["recovered_feeds"] == {
        "bitcoinist": "wrong encoding: document declared as utf-8, but parsed as windows-1252"}
    assert meta["per_feed"]["guardian"] == {
        "status": "ok", "entries": 10, "articles": 10, "rejected": 0, "in_window": 0}
    assert meta["per_feed"]["cryptopotato"]["status"] == "ok"
    assert meta["sources_usable"] == 3  # cryptopotato, bitcoinist, guardian
    assert meta["rows"] == 0
    assert meta["quarantine_by_reason"] == {"unparseable date": 15, "missing published date": 2,
                                            "entry without an http(s) link": 1}
    assert len(quarantine(tmp_path)) == 18


def test_guardian_without_key_in_live_mode_fails_at_setup_naming_the_variable(tmp_path, monkeypatch):
    monkeypatch.delenv("GUARDIAN_API_KEY", raising=False)
    result = dg.materialize([news_articles], resources=resources(tmp_path, None, GuardianContent(mode="live")),
                            partition_key=HOUR, raise_on_error=False)
    assert not result.success
    failure = next(e for e in result.all_events if e.is_failure)
    text = str(failure.event_specific_data)
    assert "GUARDIAN_API_KEY" in text and "resource_fn on ResourceDefinition guardian" in text
    assert stored(tmp_path).empty  # nothing written


@pytest.mark.slow
def test_trailing_schedule_runs_the_last_hours_as_one_ranged_run(tmp_path):
    now = datetime(2023, 3, 13, 11, 5, tzinfo=timezone.utc)
    assert trailing_range(now, 3) == ("2023-03-13-09:00", "2023-03-13-11:00")
    assert trailing_range(datetime(2021, 4, 1, 0, 30, tzinfo=timezone.utc), 3) == ("2021-04-01-00:00",) * 2
    defs = dg.Definitions(assets=[news_articles], schedules=SCHEDULES, resources=resources(tmp_path, None))
    schedule = defs.get_schedule_def("news_articles_trailing_3h")
    with dg.instance_for_test() as instance:
        context = dg.build_schedule_context(instance=instance, scheduled_execution_time=now,
                                            repository_def=defs.get_repository_def())
        request = schedule.evaluate_tick(context).run_requests[0]
        assert request.tags["dagster/asset_partition_range_start"] == "2023-03-13-09:00"
        assert request.tags["dagster/asset_partition_range_end"] == "2023-03-13-11:00"
        result = defs.resolve_job_def(schedule.job_name).execute_in_process(tags=request.tags, instance=instance)
        assert result.success
        assert len(result.get_asset_materialization_events()) == 3  # one run, three partitions
        assert sorted(instance.get_materialized_partitions(dg.AssetKey("news_articles"))) == [
            "2023-03-13-09:00", "2023-03-13-10:00", "2023-03-13-11:00"]
