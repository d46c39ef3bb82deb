//! Reading ledger records through the reader pool: tail, follow, search, the records of a
//! decision or a session, and the aggregate reads of the audit commands.

use sqlx::QueryBuilder;

use super::{seq_param, SqliteStore};
use crate::{SearchFilter, StoreError, StoredRecord};

/// Number of records.
pub(super) async fn count(s: &SqliteStore) -> Result<u64, StoreError> {
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM ledger")
        .fetch_one(s.pool())
        .await?;
    Ok(u64::try_from(n).unwrap_or(0))
}

/// The last `n` records, oldest first.
pub(super) async fn tail(s: &SqliteStore, n: u32) -> Result<Vec<StoredRecord>, StoreError> {
    let records = sqlx::query_as(
        "SELECT seq, hash, record FROM (SELECT seq, hash, record FROM ledger ORDER BY seq DESC LIMIT ?) ORDER BY seq",
    )
    .bind(i64::from(n))
    .fetch_all(s.pool())
    .await?;
    s.opened(records).await
}

/// Records after `seq`, oldest first.
pub(super) async fn after(
    s: &SqliteStore,
    seq: u64,
    limit: u32,
) -> Result<Vec<StoredRecord>, StoreError> {
    let records =
        sqlx::query_as("SELECT seq, hash, record FROM ledger WHERE seq > ? ORDER BY seq LIMIT ?")
            .bind(seq_param(seq))
            .bind(i64::from(limit))
            .fetch_all(s.pool())
            .await?;
    s.opened(records).await
}

/// Records matching a filter, oldest first, at most `filter.limit`.
pub(super) async fn search(
    s: &SqliteStore,
    filter: &SearchFilter,
) -> Result<Vec<StoredRecord>, StoreError> {
    let mut q = QueryBuilder::<sqlx::Sqlite>::new(
        "SELECT seq, hash, record FROM (SELECT seq, hash, record FROM ledger WHERE 1=1",
    );
    if let Some(agent) = &filter.agent {
        q.push(" AND json_extract(record, '$.event.agent') = ")
            .push_bind(agent.clone());
    }
    if let Some(tool) = &filter.tool {
        q.push(" AND (json_extract(record, '$.event.tool') = ")
            .push_bind(tool.clone())
            .push(" OR json_extract(record, '$.event.qualified_tool') = ")
            .push_bind(tool.clone())
            .push(")");
    }
    if let Some(since) = &filter.since {
        q.push(" AND json_extract(record, '$.ts') >= ")
            .push_bind(since.clone());
    }
    if let Some(id) = &filter.decision_id {
        q.push(" AND seq IN (SELECT seq FROM decision_records WHERE decision_id = ")
            .push_bind(id.clone())
            .push(")");
    }
    q.push(" ORDER BY seq DESC LIMIT ")
        .push_bind(i64::from(filter.limit.max(1)))
        .push(") ORDER BY seq");
    let records = q.build_query_as().fetch_all(s.pool()).await?;
    s.opened(records).await
}

/// All records about one decision (its decision record, then any outcome).
pub(super) async fn records_of_decision(
    s: &SqliteStore,
    id: &str,
) -> Result<Vec<StoredRecord>, StoreError> {
    let records: Vec<StoredRecord> = sqlx::query_as(
        "SELECT l.seq, l.hash, l.record FROM decision_records d JOIN ledger l ON l.seq = d.seq \
         WHERE d.decision_id = ? ORDER BY l.seq",
    )
    .bind(id)
    .fetch_all(s.pool())
    .await?;
    // The lookup table is not covered by the chain: trust only records that name the id.
    let records = records
        .into_iter()
        .filter(|r| r.record.event.decision_id() == Some(id))
        .collect();
    s.opened(records).await
}

/// Outcome records of earlier calls in the same session, before `before_seq`, oldest first.
pub(super) async fn session_outputs(
    s: &SqliteStore,
    session: &str,
    before_seq: u64,
    limit: u32,
) -> Result<Vec<StoredRecord>, StoreError> {
    let records = sqlx::query_as(
        "SELECT seq, hash, record FROM (SELECT l.seq, l.hash, l.record FROM ledger l \
         JOIN decision_records d ON d.seq = l.seq \
         WHERE l.seq < ? AND json_extract(l.record, '$.event.kind') = 'outcome' \
         AND d.decision_id IN (SELECT dr.decision_id FROM decision_records dr JOIN ledger l2 ON l2.seq = dr.seq \
             WHERE l2.seq < ? AND json_extract(l2.record, '$.event.kind') = 'decision' \
             AND json_extract(l2.record, '$.event.session') = ?) \
         ORDER BY l.seq DESC LIMIT ?) ORDER BY seq",
    )
    .bind(seq_param(before_seq))
    .bind(seq_param(before_seq))
    .bind(session)
    .bind(i64::from(limit.max(1)))
    .fetch_all(s.pool())
    .await?;
    s.opened(records).await
}

/// Every `approval_vote` record as stored (seq, canonical record text), oldest first.
pub(super) async fn vote_records(s: &SqliteStore) -> Result<Vec<(u64, String)>, StoreError> {
    let rows: Vec<(i64, String)> = sqlx::query_as(
        "SELECT seq, record FROM ledger \
         WHERE json_extract(record, '$.event.kind') = 'approval_vote' ORDER BY seq",
    )
    .fetch_all(s.pool())
    .await?;
    Ok(rows
        .into_iter()
        .map(|(seq, record)| (u64::try_from(seq).unwrap_or(0), record))
        .collect())
}

/// Decision records since `since`, counted by (agent, tool as recorded).
pub(super) async fn decision_usage(
    s: &SqliteStore,
    since: &str,
) -> Result<Vec<(String, String, u64)>, StoreError> {
    let rows: Vec<(Option<String>, Option<String>, i64)> = sqlx::query_as(
        "SELECT json_extract(record, '$.event.agent') AS agent, \
         COALESCE(json_extract(record, '$.event.qualified_tool'), json_extract(record, '$.event.tool')) AS tool, \
         COUNT(*) AS n FROM ledger \
         WHERE json_extract(record, '$.event.kind') = 'decision' AND json_extract(record, '$.ts') >= ? \
         GROUP BY 1, 2 ORDER BY 1, 2",
    )
    .bind(since)
    .fetch_all(s.pool())
    .await?;
    Ok(rows
        .into_iter()
        .map(|(agent, tool, n)| {
            (
                agent.unwrap_or_default(),
                tool.unwrap_or_default(),
                u64::try_from(n).unwrap_or(0),
            )
        })
        .collect())
}

/// The first and last sequence numbers of records whose time is in `[since, until)`.
pub(super) async fn seq_range(
    s: &SqliteStore,
    since: Option<&str>,
    until: Option<&str>,
) -> Result<Option<(u64, u64)>, StoreError> {
    let (lo, hi): (Option<i64>, Option<i64>) = sqlx::query_as(
        "SELECT min(seq), max(seq) FROM ledger WHERE (?1 IS NULL OR json_extract(record, '$.ts') >= ?1) \
         AND (?2 IS NULL OR json_extract(record, '$.ts') < ?2)",
    )
    .bind(since)
    .bind(until)
    .fetch_one(s.pool())
    .await?;
    Ok(match (lo, hi) {
        (Some(a), Some(b)) => Some((u64::try_from(a).unwrap_or(0), u64::try_from(b).unwrap_or(0))),
        _ => None,
    })
}
