-- PostgreSQL dialect of migrations/0060_approval_before_state.sql.
ALTER TABLE approvals ADD COLUMN before_state_source TEXT;
ALTER TABLE approvals ADD COLUMN before_state_error TEXT;
