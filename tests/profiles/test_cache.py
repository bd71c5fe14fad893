"""The on-disk profile cache: bad entries are re-estimated with a warning, writes are atomic."""

from __future__ import annotations

import logging
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from routerwise.profiles.estimator import (
    PROFILE_COLUMNS,
    TokenLengths,
    cache_entry_bytes,
    estimate_profile_cached,
    parse_cache_entry,
    read_cache_entry,
    write_cache_entry,
)
from routerwise.profiles.table import ProfileTable, validate_profile_frame
from routerwise.spec.catalog import get_gpu, get_model

RATES = (1.0, 3.0, 5.0)
LENGTHS = TokenLengths.fixed(256, 32)


def _estimate(cache_dir: Path, seed: int = 0) -> ProfileTable:
    return estimate_profile_cached(get_model("qwen2.5-7b"), get_gpu("h200"), 1, 1.0, RATES,
                                   LENGTHS, num_requests=100, seed=seed, cache_dir=cache_dir)


def _entry(cache_dir: Path) -> Path:
    (path,) = (cache_dir / "profiles").glob("*.csv")
    return path


def _table(rows: int = 3) -> ProfileTable:
    frame = pd.DataFrame({col: [0.0] * rows for col in PROFILE_COLUMNS})
    frame["model"], frame["gpu"], frame["provenance"] = "m", "H200-SXM", "estimated"
    frame["rate_rps"] = np.arange(1.0, rows + 1.0)
    frame["ttft_mean_ms"] = 10.0 + frame["rate_rps"]
    return validate_profile_frame(frame, "<test>")


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> pd.DataFrame:
    return _estimate(tmp_path_factory.mktemp("ref")).to_frame()


def _same(table: ProfileTable, reference: pd.DataFrame) -> None:
    frame = table.to_frame()
    assert frame["rate_rps"].tolist() == list(RATES)
    np.testing.assert_allclose(frame["ttft_mean_ms"], reference["ttft_mean_ms"], rtol=1e-12)


@pytest.mark.parametrize("damage", ["truncate", "empty", "drop_last_row", "garbage", "old_format"])
def test_a_damaged_entry_is_re_estimated_with_a_warning(
    tmp_path: Path, reference: pd.DataFrame, damage: str, caplog: pytest.LogCaptureFixture,
) -> None:
    _estimate(tmp_path)
    path = _entry(tmp_path)
    data = path.read_bytes()
    damaged = {
        "truncate": data[: len(data) * 2 // 3],
        "empty": b"",
        "drop_last_row": data[: data.rstrip(b"\n").rfind(b"\n") + 1],
        "garbage": b"\xff\xfe\x00 not a cache entry",
        "old_format": data.split(b"\n", 1)[1],  # a plain CSV, as schema 1 wrote them
    }[damage]
    path.write_bytes(damaged)
    with caplog.at_level(logging.WARNING, logger="routerwise.profiles.estimator"):
        again = _estimate(tmp_path)
    _same(again, reference)
    assert any(str(path) in r.getMessage() and r.levelno == logging.WARNING
               for r in caplog.records), caplog.text
    assert path.read_bytes() == data  # the entry was rewritten whole


def test_a_good_entry_is_used_without_a_warning(
    tmp_path: Path, reference: pd.DataFrame, caplog: pytest.LogCaptureFixture,
) -> None:
    _estimate(tmp_path)
    with caplog.at_level(logging.WARNING):
        _same(_estimate(tmp_path), reference)
    assert not caplog.records
    assert not list((tmp_path / "profiles").glob(".*"))  # no temp files left behind


@pytest.mark.parametrize(("table", "expected", "needle"), [
    (_table(3), (1.0, 2.0, 4.0), "rates"),
    (_table(3), 4, "a sweep has 4"),
    (ProfileTable(_table(3).frame.drop(columns=["tpot_mean_ms"])), 3, "columns"),
])
def test_entries_are_checked_against_the_request(
    table: ProfileTable, expected: tuple[float, ...] | int, needle: str,
) -> None:
    with pytest.raises(ValueError, match=needle):
        parse_cache_entry(cache_entry_bytes(table), "<entry>", expected)
    assert len(parse_cache_entry(cache_entry_bytes(_table(3)), "<entry>", 3).frame) == 3


def test_a_header_row_count_must_match(tmp_path: Path) -> None:
    data = cache_entry_bytes(_table(3)).replace(b" rows=3 ", b" rows=4 ", 1)
    with pytest.raises(ValueError, match="the header says 4"):
        parse_cache_entry(data, "<entry>", 3)


def test_an_unwritable_cache_only_warns(
    tmp_path: Path, reference: pd.DataFrame, caplog: pytest.LogCaptureFixture,
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with caplog.at_level(logging.WARNING):
        _same(_estimate(blocker), reference)
    assert "not writable" in caplog.text


def _hammer(path: str, seed: int) -> int:
    """Write and read one entry many times; count reads that saw a bad entry."""
    table, bad = _table(200), 0
    rng = np.random.default_rng(seed)
    for _ in range(40):
        write_cache_entry(Path(path), table)
        for _ in range(int(rng.integers(1, 4))):
            bad += read_cache_entry(Path(path), 200) is None
    return bad


def test_concurrent_writers_never_expose_a_partial_entry(tmp_path: Path) -> None:
    path = tmp_path / "profiles" / "k.csv"
    with ProcessPoolExecutor(4) as pool:
        bad = list(pool.map(_hammer, [str(path)] * 4, range(4)))
    assert bad == [0, 0, 0, 0]
    assert read_cache_entry(path, 200) is not None
    assert [p.name for p in path.parent.iterdir()] == ["k.csv"]


def _estimate_in_worker(cache_dir: str) -> list[float]:
    return _estimate(Path(cache_dir)).to_frame()["ttft_mean_ms"].tolist()


def test_estimates_in_a_process_pool_share_one_valid_entry(
    tmp_path: Path, reference: pd.DataFrame,
) -> None:
    with ProcessPoolExecutor(2) as pool:
        results = list(pool.map(_estimate_in_worker, [str(tmp_path)] * 2))
    for ttft in results:
        np.testing.assert_allclose(ttft, reference["ttft_mean_ms"], rtol=1e-12)
    assert read_cache_entry(_entry(tmp_path), RATES) is not None
