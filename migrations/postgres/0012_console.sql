-- A session now names who acted as the audit trail names them (`user:<sub>` for a person signed in
-- through the identity provider, `token:dev` for one signed in with the node's development token),
-- not only the provider's subject.
ALTER TABLE sessions RENAME COLUMN subject TO actor;
UPDATE sessions SET actor = 'user:' || actor;

-- Single-use sign-in codes, such as the console links the demo prints: each opens one session with
-- its roles, once, before it expires. Only a hash of the code is kept.
CREATE TABLE signin_codes (
    code_hash      TEXT    PRIMARY KEY,
    roles          TEXT    NOT NULL,
    created_at_ms  BIGINT  NOT NULL,
    expires_at_ms  BIGINT  NOT NULL
);
