package console

// Migration is one numbered step of the console schema. Versions start at 1;
// appliance/store applies each in its own transaction, in order, under the
// component name "console".
type Migration struct {
	Version int
	Name    string
	SQL     string
}

// Migrations returns the console schema. A released migration never
// changes; new ones are appended.
func Migrations() []Migration {
	return []Migration{{
		Version: 1,
		Name:    "accounts sessions lock-outs audit tokens setup",
		SQL: `
CREATE TABLE console_accounts (
	id             INTEGER PRIMARY KEY,
	login          TEXT NOT NULL UNIQUE,  -- lower case
	name           TEXT NOT NULL,
	role           TEXT NOT NULL CHECK (role IN ('technicien', 'direction', 'enseignant')),
	password_hash  TEXT NOT NULL,         -- PHC string: $argon2id$v=19$m=…,t=…,p=…$salt$hash
	-- The TOTP secret must be readable to check codes: a copy of the
	-- database gives the second factor away, not the password.
	totp_secret    TEXT NOT NULL DEFAULT '',  -- base32, '' when TOTP is off
	totp_pending   TEXT NOT NULL DEFAULT '',  -- secret shown on the enrolment page, not yet confirmed
	totp_last_step INTEGER NOT NULL DEFAULT 0, -- last accepted time step: a code is used once
	disabled_at    INTEGER,               -- unix milliseconds, NULL while active
	created_at     INTEGER NOT NULL,
	updated_at     INTEGER NOT NULL,
	last_login_at  INTEGER
) STRICT;

-- The cookie holds a random 256-bit id; only its SHA-256 is stored, so a
-- copy of the database does not open sessions. stage 'totp' is a session
-- whose password was right and whose code is still awaited: it opens
-- nothing but the code page.
CREATE TABLE console_sessions (
	id_sha256  TEXT PRIMARY KEY,
	account    INTEGER NOT NULL REFERENCES console_accounts(id) ON DELETE CASCADE,
	stage      TEXT NOT NULL CHECK (stage IN ('full', 'totp')),
	csrf       TEXT NOT NULL,
	ip         TEXT NOT NULL,
	created_at INTEGER NOT NULL,
	seen_at    INTEGER NOT NULL,
	expires_at INTEGER NOT NULL           -- absolute end
) STRICT;
CREATE INDEX console_sessions_account ON console_sessions(account);
CREATE INDEX console_sessions_expires ON console_sessions(expires_at);

-- Failed sign-ins per key ("login:NAME", "ip:ADDR", "setup:ADDR"). Kept in
-- the database so that a restart does not lift a lock.
CREATE TABLE console_lockouts (
	key          TEXT PRIMARY KEY,
	failures     INTEGER NOT NULL,
	window_start INTEGER NOT NULL,
	locked_until INTEGER NOT NULL DEFAULT 0,
	locks        INTEGER NOT NULL DEFAULT 0,  -- locks in a row: each lasts twice the one before
	updated_at   INTEGER NOT NULL
) STRICT;

CREATE TABLE console_audit (
	id     INTEGER PRIMARY KEY,
	at     INTEGER NOT NULL,  -- unix milliseconds
	actor  TEXT NOT NULL,
	action TEXT NOT NULL,
	detail TEXT NOT NULL,
	ip     TEXT NOT NULL
) STRICT;
CREATE INDEX console_audit_at ON console_audit(at);

CREATE TABLE console_tokens (
	id           INTEGER PRIMARY KEY,
	name         TEXT NOT NULL,
	token_sha256 TEXT NOT NULL UNIQUE,
	role         TEXT NOT NULL CHECK (role IN ('technicien', 'direction')),
	created_by   TEXT NOT NULL,
	created_at   INTEGER NOT NULL,
	used_at      INTEGER,
	revoked_at   INTEGER
) STRICT;

-- The first-run setup code, hashed; the row goes when the first
-- technicien account is created.
CREATE TABLE console_setup (
	id         INTEGER PRIMARY KEY CHECK (id = 1),
	code_sha256 TEXT NOT NULL,
	created_at INTEGER NOT NULL
) STRICT;
`,
	}}
}
