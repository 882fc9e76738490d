"""The worker finds the history `pipeline seed` appended to silver in silver's Delta log
(real delta-rs commits), as whole UTC days, once each, and ignores every other commit."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from deltalake import DeltaTable, write_deltalake

from contracts.settings import Settings
from contracts.tables import SILVER_TRANSACTIONS
from producers.seeder import seed_history
from worker.event_spans import EventSpan
from worker.silver_follower import SilverFollower

END = datetime(2025, 3, 12, 15, 30, tzinfo=UTC)


def _follower(settings: Settings, tmp_path: Path) -> SilverFollower:
    return SilverFollower(SILVER_TRANSACTIONS.path(settings.delta_dir),
                          tmp_path / "marks" / "silver-followed.json")


def _append_other_commit(path: Path) -> None:
    """A commit not made by the seeder (as the stream's would be): same table, no mark."""
    table = DeltaTable(str(path)).to_pyarrow_table()
    write_deltalake(str(path), table.slice(0, 1), mode="append", partition_by=["event_date"])


def test_nothing_before_silver_exists(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    assert _follower(settings, tmp_path).poll() is None


def test_seeded_days_are_found_once_and_other_commits_ignored(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    seed_history(settings, records=1_500, days=3, seed=5, progress=False, chunk_rows=500,
                 end=END)
    follower = _follower(settings, tmp_path)
    found = follower.poll()
    assert found is not None
    assert found.commits == 3
    days = DeltaTable(str(SILVER_TRANSACTIONS.path(settings.delta_dir))).to_pyarrow_table(
        columns=["event_timestamp"])["event_timestamp"]
    first = min(days.to_pylist()).replace(tzinfo=UTC)
    midnight = first.replace(hour=0, minute=0, second=0, microsecond=0)
    # One span of whole days: from the first seeded row's midnight to the day after END.
    assert found.spans == [EventSpan(midnight, datetime(2025, 3, 13, tzinfo=UTC))]
    follower.mark(found.version)

    # A fresh follower (a restart) resumes from the mark: nothing new.
    again = _follower(settings, tmp_path)
    assert again.poll() is None

    # A commit of another writer is looked at (the mark moves on) but hands over nothing.
    _append_other_commit(SILVER_TRANSACTIONS.path(settings.delta_dir))
    other = again.poll()
    assert other is not None and other.spans == [] and other.commits == 0
    again.mark(other.version)

    # A second seeding run on a later day: only its day.
    seed_history(settings, records=50, days=1, seed=6, progress=False,
                 end=END + timedelta(days=5))
    later = again.poll()
    assert later is not None and later.commits == 1
    # The last day before END + 5 days: rows on the 16th and the 17th.
    assert later.spans == [EventSpan(datetime(2025, 3, 16, tzinfo=UTC),
                                     datetime(2025, 3, 18, tzinfo=UTC))]


def test_an_unreadable_mark_means_the_whole_log(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    seed_history(settings, records=100, days=1, seed=5, progress=False, end=END)
    mark = tmp_path / "marks" / "silver-followed.json"
    mark.parent.mkdir()
    mark.write_text("not json")
    found = _follower(settings, tmp_path).poll()
    assert found is not None and found.commits == 1
