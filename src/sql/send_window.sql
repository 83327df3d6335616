-- src/sql/send_window.sql: send windows in the customer's local time (see
-- src/send_window.c).
--
-- A window spec is a comma-separated list of "DAYS HH:MM-HH:MM": days are
-- mon..sun, a range (mon-fri, fri-mon wraps), daily, weekdays or weekends,
-- several joined by commas ("sat,sun 09:00-12:00"); the end may be 24:00 and
-- an end before the start runs into the next day ("fri 22:00-02:00").  The
-- normalized form has one entry per day, in week order, lower-case; exact
-- duplicates are dropped, overlapping and adjacent windows are kept as
-- written (wam.window_closes_at treats them as one open stretch).  Wall times
-- are converted with the zone's rules of that date: a time in a
-- spring-forward gap is the first instant after the gap, an ambiguous
-- fall-back time the earlier instant.

CREATE FUNCTION wam_internal.normalize_send_windows(windows text) RETURNS text
	AS 'MODULE_PATHNAME', 'wam_normalize_send_windows' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION wam_internal.normalize_send_windows(text) IS 'internal: the normalized form of a send window spec (no preset names); raises 22023 naming the bad part';

REVOKE EXECUTE ON FUNCTION wam_internal.normalize_send_windows(text) FROM PUBLIC;

CREATE TABLE wam.send_window_preset (
	name text PRIMARY KEY CONSTRAINT send_window_preset_name CHECK (btrim(name) <> '' AND length(name) <= 100),
	windows text NOT NULL,
	description text NOT NULL
);
COMMENT ON TABLE wam.send_window_preset IS 'named send windows that wam.check_send_windows accepts in place of a spec; windows are stored normalized';

REVOKE ALL ON wam.send_window_preset FROM PUBLIC;
GRANT SELECT ON wam.send_window_preset TO wam_reader;
GRANT SELECT ON wam.send_window_preset TO wam_definer;
GRANT INSERT, UPDATE, DELETE ON wam.send_window_preset TO wam_admin;

CREATE FUNCTION wam_internal.send_window_preset_trigger() RETURNS trigger
	AS 'MODULE_PATHNAME', 'wam_send_window_preset_trigger' LANGUAGE C;
COMMENT ON FUNCTION wam_internal.send_window_preset_trigger() IS 'trigger: checks a preset''s windows and stores them normalized';
CREATE TRIGGER send_window_preset_check BEFORE INSERT OR UPDATE OF windows ON wam.send_window_preset
	FOR EACH ROW EXECUTE FUNCTION wam_internal.send_window_preset_trigger();

REVOKE EXECUTE ON FUNCTION wam_internal.send_window_preset_trigger() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam_internal.send_window_preset_trigger() TO wam_admin;

INSERT INTO wam.send_window_preset (name, windows, description) VALUES
	('best times', 'tue 10:00-11:00, thu 19:00-20:00', 'the best send times: Tuesday 10-11 and Thursday 19-20'),
	('students', 'daily 21:00-23:00', 'students: every evening 21-23'),
	('office workers', 'weekdays 12:30-13:30', 'office workers: the lunch break on weekdays'),
	('no weekend afternoons', 'weekdays 00:00-24:00, sat 00:00-12:00, sat 18:00-24:00, sun 00:00-12:00, sun 18:00-24:00',
	 'any time except Saturday and Sunday afternoons (12-18), the worst send times');

CREATE FUNCTION wam.check_send_windows(windows text) RETURNS text
	AS 'MODULE_PATHNAME', 'wam_check_send_windows' LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION wam.check_send_windows(text) IS 'the normalized form of send windows, given as a spec such as ''tue 10:00-11:00, thu 19:00-20:00'' or as the name of a preset of wam.send_window_preset; raises an error naming the bad part';

REVOKE EXECUTE ON FUNCTION wam.check_send_windows(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam.check_send_windows(text) TO wam_reader;

CREATE FUNCTION wam.next_window_opening(windows text, time_zone text, at timestamptz) RETURNS timestamptz
	AS 'MODULE_PATHNAME', 'wam_next_window_opening' LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION wam.next_window_opening(text, text, timestamptz) IS 'the time itself if it is inside one of the windows in the zone''s local time, else the start of the next window; NULL windows: the time itself (no restriction)';

REVOKE EXECUTE ON FUNCTION wam.next_window_opening(text, text, timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam.next_window_opening(text, text, timestamptz) TO wam_reader;

CREATE FUNCTION wam.window_open(windows text, time_zone text, at timestamptz) RETURNS boolean
	AS 'MODULE_PATHNAME', 'wam_window_open' LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION wam.window_open(text, text, timestamptz) IS 'whether the time is inside one of the windows in the zone''s local time (always with NULL windows)';

REVOKE EXECUTE ON FUNCTION wam.window_open(text, text, timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam.window_open(text, text, timestamptz) TO wam_reader;

CREATE FUNCTION wam.window_closes_at(windows text, time_zone text, at timestamptz) RETURNS timestamptz
	AS 'MODULE_PATHNAME', 'wam_window_closes_at' LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION wam.window_closes_at(text, text, timestamptz) IS 'when the window containing the time ends (overlapping and adjacent windows count as one), NULL if the time is outside the windows, infinity if they never close';

REVOKE EXECUTE ON FUNCTION wam.window_closes_at(text, text, timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam.window_closes_at(text, text, timestamptz) TO wam_reader;

-- One zone per country: the first of tzdata's zone.tab, which lists the most
-- populous zone first.  Countries with several zones get that one (US:
-- America/New_York); a customer's own time_zone always wins.
CREATE TABLE wam.country_time_zone (
	country text PRIMARY KEY,
	time_zone text NOT NULL
);
COMMENT ON TABLE wam.country_time_zone IS 'per ISO 3166 country: the time zone of customers whose own zone is unknown (the most populous zone of the country, from tzdata''s zone.tab)';

REVOKE ALL ON wam.country_time_zone FROM PUBLIC;
GRANT SELECT ON wam.country_time_zone TO wam_reader;
GRANT SELECT ON wam.country_time_zone TO wam_definer;
GRANT INSERT, UPDATE, DELETE ON wam.country_time_zone TO wam_admin;

-- generated by test/data/tz/country_time_zone.sh from zone.tab (tzdata 2025b-0+deb12u2)
INSERT INTO wam.country_time_zone (country, time_zone) VALUES
	('AD', 'Europe/Andorra'),
	('AE', 'Asia/Dubai'),
	('AF', 'Asia/Kabul'),
	('AG', 'America/Antigua'),
	('AI', 'America/Anguilla'),
	('AL', 'Europe/Tirane'),
	('AM', 'Asia/Yerevan'),
	('AO', 'Africa/Luanda'),
	('AQ', 'Antarctica/McMurdo'),
	('AR', 'America/Argentina/Buenos_Aires'),
	('AS', 'Pacific/Pago_Pago'),
	('AT', 'Europe/Vienna'),
	('AU', 'Australia/Lord_Howe'),
	('AW', 'America/Aruba'),
	('AX', 'Europe/Mariehamn'),
	('AZ', 'Asia/Baku'),
	('BA', 'Europe/Sarajevo'),
	('BB', 'America/Barbados'),
	('BD', 'Asia/Dhaka'),
	('BE', 'Europe/Brussels'),
	('BF', 'Africa/Ouagadougou'),
	('BG', 'Europe/Sofia'),
	('BH', 'Asia/Bahrain'),
	('BI', 'Africa/Bujumbura'),
	('BJ', 'Africa/Porto-Novo'),
	('BL', 'America/St_Barthelemy'),
	('BM', 'Atlantic/Bermuda'),
	('BN', 'Asia/Brunei'),
	('BO', 'America/La_Paz'),
	('BQ', 'America/Kralendijk'),
	('BR', 'America/Noronha'),
	('BS', 'America/Nassau'),
	('BT', 'Asia/Thimphu'),
	('BW', 'Africa/Gaborone'),
	('BY', 'Europe/Minsk'),
	('BZ', 'America/Belize'),
	('CA', 'America/St_Johns'),
	('CC', 'Indian/Cocos'),
	('CD', 'Africa/Kinshasa'),
	('CF', 'Africa/Bangui'),
	('CG', 'Africa/Brazzaville'),
	('CH', 'Europe/Zurich'),
	('CI', 'Africa/Abidjan'),
	('CK', 'Pacific/Rarotonga'),
	('CL', 'America/Santiago'),
	('CM', 'Africa/Douala'),
	('CN', 'Asia/Shanghai'),
	('CO', 'America/Bogota'),
	('CR', 'America/Costa_Rica'),
	('CU', 'America/Havana'),
	('CV', 'Atlantic/Cape_Verde'),
	('CW', 'America/Curacao'),
	('CX', 'Indian/Christmas'),
	('CY', 'Asia/Nicosia'),
	('CZ', 'Europe/Prague'),
	('DE', 'Europe/Berlin'),
	('DJ', 'Africa/Djibouti'),
	('DK', 'Europe/Copenhagen'),
	('DM', 'America/Dominica'),
	('DO', 'America/Santo_Domingo'),
	('DZ', 'Africa/Algiers'),
	('EC', 'America/Guayaquil'),
	('EE', 'Europe/Tallinn'),
	('EG', 'Africa/Cairo'),
	('EH', 'Africa/El_Aaiun'),
	('ER', 'Africa/Asmara'),
	('ES', 'Europe/Madrid'),
	('ET', 'Africa/Addis_Ababa'),
	('FI', 'Europe/Helsinki'),
	('FJ', 'Pacific/Fiji'),
	('FK', 'Atlantic/Stanley'),
	('FM', 'Pacific/Chuuk'),
	('FO', 'Atlantic/Faroe'),
	('FR', 'Europe/Paris'),
	('GA', 'Africa/Libreville'),
	('GB', 'Europe/London'),
	('GD', 'America/Grenada'),
	('GE', 'Asia/Tbilisi'),
	('GF', 'America/Cayenne'),
	('GG', 'Europe/Guernsey'),
	('GH', 'Africa/Accra'),
	('GI', 'Europe/Gibraltar'),
	('GL', 'America/Nuuk'),
	('GM', 'Africa/Banjul'),
	('GN', 'Africa/Conakry'),
	('GP', 'America/Guadeloupe'),
	('GQ', 'Africa/Malabo'),
	('GR', 'Europe/Athens'),
	('GS', 'Atlantic/South_Georgia'),
	('GT', 'America/Guatemala'),
	('GU', 'Pacific/Guam'),
	('GW', 'Africa/Bissau'),
	('GY', 'America/Guyana'),
	('HK', 'Asia/Hong_Kong'),
	('HN', 'America/Tegucigalpa'),
	('HR', 'Europe/Zagreb'),
	('HT', 'America/Port-au-Prince'),
	('HU', 'Europe/Budapest'),
	('ID', 'Asia/Jakarta'),
	('IE', 'Europe/Dublin'),
	('IL', 'Asia/Jerusalem'),
	('IM', 'Europe/Isle_of_Man'),
	('IN', 'Asia/Kolkata'),
	('IO', 'Indian/Chagos'),
	('IQ', 'Asia/Baghdad'),
	('IR', 'Asia/Tehran'),
	('IS', 'Atlantic/Reykjavik'),
	('IT', 'Europe/Rome'),
	('JE', 'Europe/Jersey'),
	('JM', 'America/Jamaica'),
	('JO', 'Asia/Amman'),
	('JP', 'Asia/Tokyo'),
	('KE', 'Africa/Nairobi'),
	('KG', 'Asia/Bishkek'),
	('KH', 'Asia/Phnom_Penh'),
	('KI', 'Pacific/Tarawa'),
	('KM', 'Indian/Comoro'),
	('KN', 'America/St_Kitts'),
	('KP', 'Asia/Pyongyang'),
	('KR', 'Asia/Seoul'),
	('KW', 'Asia/Kuwait'),
	('KY', 'America/Cayman'),
	('KZ', 'Asia/Almaty'),
	('LA', 'Asia/Vientiane'),
	('LB', 'Asia/Beirut'),
	('LC', 'America/St_Lucia'),
	('LI', 'Europe/Vaduz'),
	('LK', 'Asia/Colombo'),
	('LR', 'Africa/Monrovia'),
	('LS', 'Africa/Maseru'),
	('LT', 'Europe/Vilnius'),
	('LU', 'Europe/Luxembourg'),
	('LV', 'Europe/Riga'),
	('LY', 'Africa/Tripoli'),
	('MA', 'Africa/Casablanca'),
	('MC', 'Europe/Monaco'),
	('MD', 'Europe/Chisinau'),
	('ME', 'Europe/Podgorica'),
	('MF', 'America/Marigot'),
	('MG', 'Indian/Antananarivo'),
	('MH', 'Pacific/Majuro'),
	('MK', 'Europe/Skopje'),
	('ML', 'Africa/Bamako'),
	('MM', 'Asia/Yangon'),
	('MN', 'Asia/Ulaanbaatar'),
	('MO', 'Asia/Macau'),
	('MP', 'Pacific/Saipan'),
	('MQ', 'America/Martinique'),
	('MR', 'Africa/Nouakchott'),
	('MS', 'America/Montserrat'),
	('MT', 'Europe/Malta'),
	('MU', 'Indian/Mauritius'),
	('MV', 'Indian/Maldives'),
	('MW', 'Africa/Blantyre'),
	('MX', 'America/Mexico_City'),
	('MY', 'Asia/Kuala_Lumpur'),
	('MZ', 'Africa/Maputo'),
	('NA', 'Africa/Windhoek'),
	('NC', 'Pacific/Noumea'),
	('NE', 'Africa/Niamey'),
	('NF', 'Pacific/Norfolk'),
	('NG', 'Africa/Lagos'),
	('NI', 'America/Managua'),
	('NL', 'Europe/Amsterdam'),
	('NO', 'Europe/Oslo'),
	('NP', 'Asia/Kathmandu'),
	('NR', 'Pacific/Nauru'),
	('NU', 'Pacific/Niue'),
	('NZ', 'Pacific/Auckland'),
	('OM', 'Asia/Muscat'),
	('PA', 'America/Panama'),
	('PE', 'America/Lima'),
	('PF', 'Pacific/Tahiti'),
	('PG', 'Pacific/Port_Moresby'),
	('PH', 'Asia/Manila'),
	('PK', 'Asia/Karachi'),
	('PL', 'Europe/Warsaw'),
	('PM', 'America/Miquelon'),
	('PN', 'Pacific/Pitcairn'),
	('PR', 'America/Puerto_Rico'),
	('PS', 'Asia/Gaza'),
	('PT', 'Europe/Lisbon'),
	('PW', 'Pacific/Palau'),
	('PY', 'America/Asuncion'),
	('QA', 'Asia/Qatar'),
	('RE', 'Indian/Reunion'),
	('RO', 'Europe/Bucharest'),
	('RS', 'Europe/Belgrade'),
	('RU', 'Europe/Kaliningrad'),
	('RW', 'Africa/Kigali'),
	('SA', 'Asia/Riyadh'),
	('SB', 'Pacific/Guadalcanal'),
	('SC', 'Indian/Mahe'),
	('SD', 'Africa/Khartoum'),
	('SE', 'Europe/Stockholm'),
	('SG', 'Asia/Singapore'),
	('SH', 'Atlantic/St_Helena'),
	('SI', 'Europe/Ljubljana'),
	('SJ', 'Arctic/Longyearbyen'),
	('SK', 'Europe/Bratislava'),
	('SL', 'Africa/Freetown'),
	('SM', 'Europe/San_Marino'),
	('SN', 'Africa/Dakar'),
	('SO', 'Africa/Mogadishu'),
	('SR', 'America/Paramaribo'),
	('SS', 'Africa/Juba'),
	('ST', 'Africa/Sao_Tome'),
	('SV', 'America/El_Salvador'),
	('SX', 'America/Lower_Princes'),
	('SY', 'Asia/Damascus'),
	('SZ', 'Africa/Mbabane'),
	('TC', 'America/Grand_Turk'),
	('TD', 'Africa/Ndjamena'),
	('TF', 'Indian/Kerguelen'),
	('TG', 'Africa/Lome'),
	('TH', 'Asia/Bangkok'),
	('TJ', 'Asia/Dushanbe'),
	('TK', 'Pacific/Fakaofo'),
	('TL', 'Asia/Dili'),
	('TM', 'Asia/Ashgabat'),
	('TN', 'Africa/Tunis'),
	('TO', 'Pacific/Tongatapu'),
	('TR', 'Europe/Istanbul'),
	('TT', 'America/Port_of_Spain'),
	('TV', 'Pacific/Funafuti'),
	('TW', 'Asia/Taipei'),
	('TZ', 'Africa/Dar_es_Salaam'),
	('UA', 'Europe/Simferopol'),
	('UG', 'Africa/Kampala'),
	('UM', 'Pacific/Midway'),
	('US', 'America/New_York'),
	('UY', 'America/Montevideo'),
	('UZ', 'Asia/Samarkand'),
	('VA', 'Europe/Vatican'),
	('VC', 'America/St_Vincent'),
	('VE', 'America/Caracas'),
	('VG', 'America/Tortola'),
	('VI', 'America/St_Thomas'),
	('VN', 'Asia/Ho_Chi_Minh'),
	('VU', 'Pacific/Efate'),
	('WF', 'Pacific/Wallis'),
	('WS', 'Pacific/Apia'),
	('YE', 'Asia/Aden'),
	('YT', 'Indian/Mayotte'),
	('ZA', 'Africa/Johannesburg'),
	('ZM', 'Africa/Lusaka'),
	('ZW', 'Africa/Harare');

CREATE FUNCTION wam.customer_time_zone(time_zone text, phone text) RETURNS text
	AS 'MODULE_PATHNAME', 'wam_customer_time_zone' LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION wam.customer_time_zone(text, text) IS 'a customer''s time zone: their own time_zone if it is a zone name, else that of the phone number''s country (wam.country_time_zone), else the setting wam.default_time_zone';

REVOKE EXECUTE ON FUNCTION wam.customer_time_zone(text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam.customer_time_zone(text, text) TO wam_reader;
