package energy

// Migration is one numbered step of the energy schema. Versions start at 1;
// appliance/store applies each in its own transaction, in order.
type Migration struct {
	Version int
	Name    string
	SQL     string
}

// Migrations returns the energy schema. A released migration never
// changes; new ones are appended.
//
// Hours are unix seconds of the start of a UTC-aligned hour; days are
// made of the hours that start within them in the calendar's time zone
// (exact for zones whose offset is a whole number of hours, like
// Europe/Paris). The seconds column is the time the samples covered in
// that hour: what is missing from 3600 is "pas de mesure".
func Migrations() []Migration {
	return []Migration{{
		Version: 1,
		Name:    "box hours plug hours left-on alerts",
		SQL: `
CREATE TABLE energy_box_hours (
	hour    INTEGER NOT NULL,
	source  TEXT NOT NULL,             -- rapl | battery | model
	detail  TEXT NOT NULL DEFAULT '',  -- the model's profile
	joules  REAL NOT NULL,
	seconds REAL NOT NULL,
	PRIMARY KEY (hour, source, detail)
) STRICT;

CREATE TABLE energy_plug_hours (
	device  TEXT NOT NULL,
	hour    INTEGER NOT NULL,
	source  TEXT NOT NULL,             -- shelly | tasmota
	wh      REAL NOT NULL,
	seconds REAL NOT NULL,
	PRIMARY KEY (device, hour)
) STRICT;

CREATE TABLE energy_alerts (
	device          TEXT NOT NULL,
	period_start    INTEGER NOT NULL,  -- unix seconds
	period_end      INTEGER NOT NULL,
	name            TEXT NOT NULL,
	class           TEXT NOT NULL,
	first_seen      INTEGER NOT NULL,
	last_seen       INTEGER NOT NULL,
	present_seconds INTEGER NOT NULL,
	watts           REAL NOT NULL,
	kwh             REAL NOT NULL,
	raised_at       INTEGER NOT NULL,
	updated_at      INTEGER NOT NULL,
	PRIMARY KEY (device, period_start)
) STRICT;
CREATE INDEX energy_alerts_period ON energy_alerts(period_start, period_end);
`,
	}}
}
