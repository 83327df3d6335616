-- send windows in the customer's local time (src/send_window.c)
SET TimeZone = 'UTC';
SET DateStyle = 'ISO';
\set VERBOSITY default
-- every syntax form; the normalized form has one entry per day in week order
SELECT w, wam.check_send_windows(w) FROM (VALUES
	('tue 10:00-11:00, thu 19:00-20:00'),
	('MON-FRI 9:00-17:00'),
	('fri-mon 22:00-02:00'),
	('daily 21:00-23:00'),
	('weekdays 12:30-13:30'),
	('weekends 00:00-24:00'),
	(' sat , Sun  09:00 - 12:00 '),
	('sun 22:00-00:00'),
	('wed 10:00-11:00, mon 08:00-09:00, wed 10:00-11:00, wed 09:00-10:30')) v(w);
-- presets, by exact name
SELECT name, wam.check_send_windows(name) FROM wam.send_window_preset ORDER BY name;
SELECT wam.check_send_windows('Best Times');
SELECT wam.check_send_windows(NULL) IS NULL AS null_is_null;
-- every error class: 22023 naming the bad part (54000 for too long)
DO $$
DECLARE
	w text;
BEGIN
	FOREACH w IN ARRAY ARRAY['mo 10:00-11:00',
						 'mon-fro 10:00-11:00',
						 'mon 25:00-26:00',
						 'mon 24:30-01:00',
						 'mon 10:00-24:30',
						 'mon 10:60-11:00',
						 'mon 10:0-11:00',
						 'mon 24:00-01:00',
						 'mon 10:00-10:00',
						 'mon 10:00',
						 'mon 10:00-',
						 'mon',
						 'mon,',
						 '10:00-11:00',
						 'mon 10:00-11:00 tue',
						 'mon 10:00-11:00;',
						 '#!',
						 '',
						 '   ',
						 repeat('mon 10:00-11:00, ', 700)] LOOP
		BEGIN
			PERFORM wam.check_send_windows(w);
			RAISE NOTICE '"%": accepted', left(w, 30);
		EXCEPTION WHEN OTHERS THEN
			RAISE NOTICE '"%": % %', left(w, 30), SQLSTATE, SQLERRM;
		END;
	END LOOP;
END
$$;
\set VERBOSITY default
SELECT wam.check_send_windows('mon 10:60-11:00');
SELECT wam.check_send_windows('mon 10:00-10:00');
SELECT wam.check_send_windows(repeat('x', 10001));

-- next opening in UTC; 2030-01-07 is a Monday
SELECT t, wam.next_window_opening('tue 10:00-11:00, thu 19:00-20:00', 'UTC', t) AS opening,
	   wam.window_open('tue 10:00-11:00, thu 19:00-20:00', 'UTC', t) AS open,
	   wam.window_closes_at('tue 10:00-11:00, thu 19:00-20:00', 'UTC', t) AS closes
FROM unnest(ARRAY['2030-01-07 12:00', '2030-01-08 09:59:59.999999', '2030-01-08 10:00', '2030-01-08 10:30',
				  '2030-01-08 10:59:59.999999', '2030-01-08 11:00', '2030-01-10 20:00', '2030-01-13 23:59']::timestamptz[]) t;
-- crossing midnight and the week's end
SELECT t, wam.next_window_opening('fri 22:00-02:00', 'UTC', t) AS opening,
	   wam.window_closes_at('fri 22:00-02:00', 'UTC', t) AS closes
FROM unnest(ARRAY['2030-01-11 21:00', '2030-01-12 01:00', '2030-01-12 02:00']::timestamptz[]) t;
SELECT t, wam.next_window_opening('sun 23:00-01:00', 'UTC', t) AS opening,
	   wam.window_closes_at('sun 23:00-01:00', 'UTC', t) AS closes
FROM unnest(ARRAY['2030-01-13 22:00', '2030-01-13 23:30', '2030-01-14 00:30', '2030-01-14 01:00']::timestamptz[]) t;
-- adjacent windows are one open stretch; windows covering the week never close
SELECT wam.window_closes_at('mon 10:00-11:00, mon 11:00-12:00, mon 11:30-13:00', 'UTC', '2030-01-07 10:15') AS closes,
	   wam.window_closes_at('daily 00:00-24:00', 'UTC', '2030-01-07 10:15') AS never;
-- the window functions take specs, not preset names (store wam.check_send_windows' result)
SELECT wam.window_open('no weekend afternoons', 'UTC', '2030-01-07 10:15');
-- NULL windows: no restriction; NULL zone or time: NULL
SELECT wam.next_window_opening(NULL, 'UTC', '2030-01-07 12:00') AS opening, wam.window_open(NULL, 'UTC', '2030-01-07 12:00') AS open,
	   wam.window_closes_at(NULL, 'UTC', '2030-01-07 12:00') AS closes,
	   wam.next_window_opening('daily 10:00-11:00', NULL, '2030-01-07 12:00') AS null_zone,
	   wam.window_open('daily 10:00-11:00', 'UTC', NULL) AS null_time;
SELECT wam.next_window_opening('daily 10:00-11:00', 'Mars/Olympus', '2030-01-07 12:00');
SELECT wam.next_window_opening('daily 10:00-11:00', '', '2030-01-07 12:00');

-- the same instant in different zones: Monday 2030-01-07 12:00 UTC
SELECT z, wam.next_window_opening('tue 10:00-11:00, thu 19:00-20:00', z, '2030-01-07 12:00') AS opening,
	   wam.window_open('daily 20:00-21:00', z, '2030-01-07 12:00') AS open_20_21
FROM unnest(ARRAY['UTC', 'Asia/Taipei', 'America/New_York', 'Europe/Berlin', 'Pacific/Kiritimati', 'Pacific/Pago_Pago']) z;
-- Asia/Taipei has no daylight saving: 10:00 there is 02:00 UTC all year
SELECT t, wam.next_window_opening('daily 10:00-11:00', 'Asia/Taipei', t) AS opening
FROM unnest(ARRAY['2030-03-10 00:00', '2030-07-01 03:00', '2030-11-03 00:00']::timestamptz[]) t;

-- daylight saving, America/New_York: 2030-03-10 02:00 EST -> 03:00 EDT (07:00 UTC);
-- 2030-11-03 02:00 EDT -> 01:00 EST (06:00 UTC), 01:00-02:00 occurs twice
SET TimeZone = 'America/New_York';
-- a start in the gap opens at the first instant after it (03:00 EDT)
SELECT t, wam.next_window_opening('sun 02:30-03:30', 'America/New_York', t) AS opening,
	   wam.window_closes_at('sun 02:30-03:30', 'America/New_York', t) AS closes
FROM unnest(ARRAY['2030-03-10 01:00-05', '2030-03-10 03:00-04', '2030-03-10 03:29-04', '2030-03-10 03:30-04']::timestamptz[]) t;
-- a window wholly inside the gap does not happen that day
SELECT wam.next_window_opening('sun 02:00-03:00', 'America/New_York', '2030-03-10 00:00-05') AS next_week;
-- the days before and after keep their wall times
SELECT t, wam.next_window_opening('daily 10:00-11:00', 'America/New_York', t) AS opening
FROM unnest(ARRAY['2030-03-09 12:00-05', '2030-03-10 12:00-04']::timestamptz[]) t;
-- an ambiguous start is the earlier instant (EDT)
SELECT t, wam.next_window_opening('sun 01:30-02:00', 'America/New_York', t) AS opening,
	   wam.window_closes_at('sun 01:30-02:00', 'America/New_York', t) AS closes
FROM unnest(ARRAY['2030-11-03 00:00-04', '2030-11-03 01:45-04', '2030-11-03 01:15-05', '2030-11-03 01:45-05', '2030-11-03 02:00-05']::timestamptz[]) t;
SELECT wam.window_closes_at('sat 23:00-02:00', 'America/New_York', '2030-11-02 23:30-04') AS closes_at_wall_02_00_est;
-- Europe/Berlin: 2030-03-31 02:00 CET -> 03:00 CEST; 2030-10-27 03:00 CEST -> 02:00 CET
SET TimeZone = 'Europe/Berlin';
SELECT t, wam.next_window_opening('sun 02:30-03:30', 'Europe/Berlin', t) AS opening,
	   wam.window_closes_at('sun 02:30-03:30', 'Europe/Berlin', t) AS closes
FROM unnest(ARRAY['2030-03-31 00:00+01', '2030-10-27 00:00+02', '2030-10-27 02:45+01']::timestamptz[]) t;
RESET TimeZone;
SET TimeZone = 'UTC';

-- a customer's time zone
SELECT wam.customer_time_zone('asia/taipei', '886912345678') AS own_zone_wins,
	   wam.customer_time_zone('Mars/Olympus', '886912345678') AS invalid_zone_uses_phone,
	   wam.customer_time_zone('UTC+8', '886912345678') AS posix_is_not_a_name,
	   wam.customer_time_zone(NULL, '886912345678') AS taiwan,
	   wam.customer_time_zone(NULL, '+1 212 555 0100') AS us,
	   wam.customer_time_zone(NULL, '12') AS no_country,
	   wam.customer_time_zone(NULL, NULL) AS nothing;
SHOW wam.default_time_zone;
SET wam.default_time_zone = 'europe/berlin';
SHOW wam.default_time_zone;
SELECT wam.customer_time_zone(NULL, '12') AS default_zone, wam.customer_time_zone('', NULL) AS empty_zone;
SET wam.default_time_zone = 'Mars/Olympus';
SET wam.default_time_zone = 'UTC+8';
RESET wam.default_time_zone;
SELECT wam.customer_time_zone(NULL, NULL) AS reset_default;
SELECT count(*) > 240 AS countries, count(*) FILTER (WHERE time_zone NOT IN (SELECT name FROM pg_timezone_names)) AS unknown_zones
FROM wam.country_time_zone;
SELECT * FROM wam.country_time_zone WHERE country IN ('US', 'TW', 'DE', 'BR', 'AU') ORDER BY country;
-- the zone feeds the window functions
SELECT c.phone, wam.next_window_opening('daily 10:00-11:00', wam.customer_time_zone(c.time_zone, c.phone), '2030-01-07 00:00') AS opening
FROM (VALUES ('886912345678', NULL), ('12125550100', NULL), ('12125550100', 'Asia/Tokyo')) c(phone, time_zone);

-- privileges: readers call the functions and read the tables; only admins change presets
CREATE ROLE wam_sw_reader IN ROLE wam_reader;
CREATE ROLE wam_sw_operator IN ROLE wam_operator;
CREATE ROLE wam_sw_admin IN ROLE wam_admin;
SET ROLE wam_sw_reader;
SELECT wam.check_send_windows('students') AS students,
	   wam.window_open('daily 21:00-23:00', wam.customer_time_zone(NULL, '886912345678'), '2030-01-07 13:30') AS open,
	   (SELECT count(*) FROM wam.send_window_preset) AS presets, (SELECT count(*) > 0 FROM wam.country_time_zone) AS zones;
RESET ROLE;
SET ROLE wam_sw_operator;
INSERT INTO wam.send_window_preset VALUES ('night', 'daily 22:00-06:00', 'night owls');
UPDATE wam.send_window_preset SET windows = 'daily 00:00-24:00' WHERE name = 'students';
DELETE FROM wam.send_window_preset WHERE name = 'students';
RESET ROLE;
SET ROLE wam_sw_admin;
INSERT INTO wam.send_window_preset VALUES ('night', 'Daily 22:00-06:00', 'night owls') RETURNING windows;
INSERT INTO wam.send_window_preset VALUES ('broken', 'daily 22:00-22:00', 'refused');
INSERT INTO wam.send_window_preset VALUES ('preset of a preset', 'best times', 'refused');
UPDATE wam.send_window_preset SET windows = 'sat 10:00-11:00' WHERE name = 'night' RETURNING windows;
UPDATE wam.send_window_preset SET windows = 'sat 10:00' WHERE name = 'night';
SELECT wam.check_send_windows('night');
DELETE FROM wam.send_window_preset WHERE name = 'night';
RESET ROLE;
DROP ROLE wam_sw_reader, wam_sw_operator, wam_sw_admin;
