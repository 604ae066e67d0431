-- Sign-ins in progress: the state, nonce and PKCE verifier of each, until the provider calls back.
CREATE TABLE login_attempts (
    state          TEXT    PRIMARY KEY,
    nonce          TEXT    NOT NULL,
    pkce_verifier  TEXT    NOT NULL,
    -- The hash of a cookie set in the browser that began the sign-in: only it can complete it.
    browser_hash   TEXT    NOT NULL,
    created_at_ms  BIGINT  NOT NULL
);

-- Signed-in people. Only a hash of the cookie's secret is kept, so a copy of the table opens nothing.
CREATE TABLE sessions (
    id_hash        TEXT    PRIMARY KEY,
    subject        TEXT    NOT NULL,
    roles          TEXT    NOT NULL,
    created_at_ms  BIGINT  NOT NULL,
    expires_at_ms  BIGINT  NOT NULL
);
