-- Where an approval request's before-state came from (issue 5): `snapshot` when Warden read it
-- itself through the scope card's snapshot read, `caller` when the agent's framework reported
-- it; and, when a configured snapshot read failed, why (the request is held all the same).
ALTER TABLE approvals ADD COLUMN before_state_source TEXT;
ALTER TABLE approvals ADD COLUMN before_state_error TEXT;
