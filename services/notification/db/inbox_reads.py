"""The 企业码 app's hot read of notification, without a session (``shared.db_reads``): a page of the caller's
inbox, newest first, each notice with its SMS/e-mail delivery states (``notices.page``), as NoticePage's JSON
written by PostgreSQL. The inbox is the caller's own (``app.inbox.inbox_of``): no territory in it."""

from __future__ import annotations

from shared.db_reads import ReadPool, iso_utc


def _page(unread: bool, cursor: bool) -> str:
    """$1 inbox, $2 page size, $3 cursor (when ``cursor``): up to $2 + 1 notices read to know whether more follow."""
    where = "n.recipient = $1" + (" AND n.read_at IS NULL" if unread else "") + (" AND n.id < $3" if cursor else "")
    return f"""
WITH page AS (
  SELECT n.id, n.title, n.body, n.template_code, n.template_version, n.uscc, n.urgent, n.created_at, n.read_at
  FROM notification.notices n WHERE {where} ORDER BY n.id DESC LIMIT $2::int + 1
), shown AS (SELECT * FROM page ORDER BY id DESC LIMIT $2::int)
SELECT json_build_object(
  'items', coalesce((SELECT json_agg(json_build_object(
      'id', s.id, 'title', s.title, 'body', s.body, 'template_code', s.template_code,
      'template_version', s.template_version, 'uscc', s.uscc, 'urgent', s.urgent,
      'created_at', {iso_utc("s.created_at")}, 'read_at', {iso_utc("s.read_at")},
      'deliveries', coalesce((
        SELECT json_agg(json_build_object('channel', d.channel, 'status', d.status, 'attempts', d.attempts,
                                          'sent_at', {iso_utc("d.sent_at")}) ORDER BY d.channel)
        FROM notification.deliveries d WHERE d.notice_id = s.id), '[]'::json))
    ORDER BY s.id DESC) FROM shown s), '[]'::json),
  'next_cursor', CASE WHEN (SELECT count(*) FROM page) > $2::int THEN (SELECT min(id) FROM shown) END)::text"""


_PAGES = {(unread, cursor): _page(unread, cursor) for unread in (False, True) for cursor in (False, True)}


async def page_json(pool: ReadPool, inbox: str, *, unread: bool | None, cursor: int | None, limit: int) -> str:
    """NoticePage's JSON of ``inbox``: up to ``limit`` notices below ``cursor`` (unread ones only if ``unread``)."""
    sql = _PAGES[(bool(unread), bool(cursor))]
    row = await (pool.fetchrow(sql, inbox, limit, cursor) if cursor else pool.fetchrow(sql, inbox, limit))
    assert row is not None  # an aggregate: always one row
    return str(row[0])
