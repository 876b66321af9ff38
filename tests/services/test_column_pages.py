"""fetch_page's columnar mode on a real DuckDB file: the same rows, the same next_page_token and
the same total as the row mode, for a mixed-direction (time, id) keyset with NULLs, skip and
continued tokens; so a store can hand whole columns to its caller without a second paging concept."""
from __future__ import annotations

import datetime as dt

import pytest

from trainhouse.common.duckdb_store import DuckStore
from trainhouse.common.pagination import ColumnRows, Order, PageRequest, SortKey, _decode_token, fetch_page

ORDER = Order((SortKey("create_time", descending=True, kind=dt.datetime), SortKey("item_id")))


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    store = DuckStore(tmp_path_factory.mktemp("columns") / "items.duckdb",
                      ["CREATE TABLE items (item_id VARCHAR NOT NULL, create_time TIMESTAMP NOT NULL, "
                       "score DOUBLE, label VARCHAR, shard INTEGER)"])
    # Several rows share a create_time (the id breaks the tie); score and label are sometimes NULL.
    store.execute("INSERT INTO items SELECT 'item-' || lpad(i::VARCHAR, 3, '0'), "
                  "TIMESTAMP '2026-03-01 12:00:00.123456' + INTERVAL (i // 3) SECOND, "
                  "CASE WHEN i % 5 = 0 THEN NULL ELSE i / 4 END, CASE WHEN i % 7 = 0 THEN NULL ELSE 'l' || i END, "
                  "i % 2 FROM range(100) t(i)")
    yield store
    store.close()


def walk(db: DuckStore, columnar: bool, size: int, skip: int) -> list[tuple[list, str, int]]:
    """Every page of shard 1 as (rows, token, total): the first page with `skip` and a total."""
    pages, after, first = [], None, True
    while True:
        page = fetch_page(db, "items", ["shard = ?"], [1], ORDER,
                          PageRequest(size=size, skip=skip if first else 0, after=after, digest="d", with_total=first),
                          columns="item_id, create_time, score, label", columnar=columnar)
        assert isinstance(page.rows, ColumnRows) == columnar
        pages.append((list(page.rows), page.next_page_token, page.total_size))
        if not page.next_page_token:
            return pages
        after, first = _decode_token(page.next_page_token)[0], False


@pytest.mark.parametrize("size,skip", [(7, 0), (7, 3), (50, 0), (1, 49)])
def test_columnar_pages_equal_row_pages(db, size, skip):
    rows = walk(db, False, size, skip)
    columns = walk(db, True, size, skip)
    assert columns == rows
    assert rows[0][2] == 50
    listed = [r for page, _, _ in rows for r in page]
    expected = db.query_dicts("SELECT item_id, create_time, score, label FROM items WHERE shard = 1 "
                              "ORDER BY create_time DESC, item_id OFFSET ?", [skip])
    assert listed == expected
    if not skip:  # the NULLs went through both modes
        assert any(r["score"] is None for r in listed) and any(r["label"] is None for r in listed)


def test_a_column_is_the_numpy_array(db):
    page = fetch_page(db, "items", ["shard = ?"], [0], ORDER, PageRequest(size=10), columns="item_id, score",
                      columnar=True)
    assert page.rows.column("item_id").tolist() == [r["item_id"] for r in page.rows]
    assert page.rows.column("score").tolist() == [r["score"] for r in page.rows]


def test_query_columns_refuses_two_columns_of_one_name(db):
    """fetchnumpy renames the second of two same-named columns; query_columns says so instead."""
    with pytest.raises(ValueError, match="distinct column names"):
        db.query_columns("SELECT item_id, item_id FROM items LIMIT 3")
    assert list(db.query_columns("SELECT item_id, score AS s FROM items LIMIT 3")) == ["item_id", "s"]
